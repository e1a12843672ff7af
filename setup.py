"""Build the compiled engine. Compiler directives and flags live here and nowhere else.

BPE_CYTHON_DEBUG=1 at build time turns bounds checks, wraparound and initialised-view
checks back on, and compiles with -O0 -g (slow; for hunting memory bugs);
``bpe._core.DEBUG_BUILD`` says which build is installed. BPE_SANITIZE picks sanitizers
(GCC and Clang): ``address,undefined`` (AddressSanitizer and UndefinedBehaviorSanitizer,
every finding fatal; run Python with LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
ASAN_OPTIONS=detect_leaks=0) or ``thread`` (ThreadSanitizer;
LD_PRELOAD="$(gcc -print-file-name=libtsan.so)"), as .ci/run does.

Flags follow the compiler that setuptools picks: MSVC gets /O2 (and /Od /Zi for debug),
GCC and Clang -O3 (-O0 -g). 32-bit targets other than MSVC link libatomic, which some of
them need for the 64-bit atomics of bpe/_c/port.h. Big-endian machines stop at compile
time with a message saying why (bpe/_c/port.h).
"""

import os
import struct
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("BPE_CYTHON_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("BPE_SANITIZE", "")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}


def flags(compiler_type: str) -> tuple[list[str], list[str]]:
    """(compile arguments, link arguments) for a setuptools compiler type."""
    if compiler_type == "msvc":
        return (["/Od", "/Zi"] if DEBUG else ["/O2"]), []
    compile_args = ["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O3"]
    # _core.pyx keeps some inline room functions out of line with a noinline prototype; GCC
    # warns that the inline definition follows it, which is the point.
    compile_args.append("-Wno-attributes")
    link_args = ["-latomic"] if struct.calcsize("P") == 4 else []
    if SANITIZE:
        compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
        if "undefined" in SANITIZE.split(","):
            compile_args.append("-fno-sanitize-recover=undefined")  # abort at the first finding
        link_args += [f"-fsanitize={SANITIZE}"]
    return compile_args, link_args


class BuildExt(build_ext):
    """build_ext with the flags of the compiler it found."""

    def build_extensions(self):
        compile_args, link_args = flags(self.compiler.compiler_type)
        for ext in self.extensions:
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
        super().build_extensions()


# Every extension depends on every room and header: a change to one rebuilds what inlines it.
depends = sorted(str(p) for p in Path("bpe").glob("*.pxd")) + sorted(str(p) for p in Path("bpe/_c").glob("*.h"))
extensions = [
    Extension(name, [source], define_macros=[("BPE_DEBUG", "1")] if DEBUG else [], depends=depends)
    for name, source in [("bpe._core", "bpe/_core.pyx"), ("bpe._trie", "bpe/_trie.pyx"),
                         ("bpe._ranks", "bpe/_ranks.pyx"), ("bpe._image", "bpe/_image.pyx"),
                         ("bpe._train", "bpe/_train.pyx")]
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives), cmdclass={"build_ext": BuildExt})
