"""Build the compiled engine. Compiler directives live here and nowhere else.

BPE_CYTHON_DEBUG=1 at build time turns bounds checks, wraparound and initialised-view
checks back on, and compiles with -O0 -g (slow; for hunting memory bugs);
``bpe._core.DEBUG_BUILD`` says which build is installed. BPE_SANITIZE picks sanitizers:
``address,undefined`` (AddressSanitizer and UndefinedBehaviorSanitizer, every finding fatal;
run Python with LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0)
or ``thread`` (ThreadSanitizer; LD_PRELOAD="$(gcc -print-file-name=libtsan.so)"), as
.ci/run does.
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

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

compile_args = ["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O3"]
# _core.pyx keeps some inline room functions out of line with a noinline prototype; GCC warns
# that the inline definition follows it, which is the point.
compile_args.append("-Wno-attributes")
link_args = []
macros = [("BPE_DEBUG", "1")] if DEBUG else []
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
    if "undefined" in SANITIZE.split(","):
        compile_args.append("-fno-sanitize-recover=undefined")  # abort at the first finding
    link_args += [f"-fsanitize={SANITIZE}"]

# Every extension depends on every room and header: a change to one rebuilds what inlines it.
depends = sorted(str(p) for p in Path("bpe").glob("*.pxd")) + sorted(str(p) for p in Path("bpe/_c").glob("*.h"))
extensions = [
    Extension(name, [source], extra_compile_args=compile_args, extra_link_args=link_args,
              define_macros=macros, depends=depends)
    for name, source in [("bpe._core", "bpe/_core.pyx"), ("bpe._trie", "bpe/_trie.pyx"),
                         ("bpe._train", "bpe/_train.pyx")]
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
