"""Compile bpe's C for other targets with ``zig cc`` (the ``ziglang`` package): a check that
it builds there, run here (object files only; nothing is linked or run).

    python tools/cross_check.py            # every target below; exit 1 on the first failure

For each target, ``tools/port_check.c`` (every helper of ``bpe/_c`` that needs no Python),
and once more as a C11 compiler that is neither GCC nor Clang (``<stdatomic.h>``);
for the 64-bit Unix targets also the Cython-generated C of each extension, against this
machine's Python headers (their sizes are those of every LP64 target). Windows gets the
helpers only: its Python headers are not on this machine, and the generated C's Windows
side is Cython's own. The wheel workflow (.github/workflows/wheels.yml) builds and tests
on the real machines.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "aarch64-linux-gnu": True,      # (target, also the generated C)
    "x86_64-macos": True,
    "aarch64-macos": True,
    "x86_64-windows-gnu": False,
}
EXTENSIONS = ["_core", "_trie", "_train"]


def zig_cc(target: str, source: Path, out: Path, includes: list[Path], *extra: str) -> None:
    command = [sys.executable, "-m", "ziglang", "cc", "-target", target, "-O2", "-c", str(source),
               "-o", str(out), "-Wno-unused-function", "-Wno-attributes", *extra,
               *[f"-I{p}" for p in includes]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{target}: {source.name} does not compile:\n{done.stderr[-4000:]}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generated = []
        for name in EXTENSIONS:  # the C that setup.py's cythonize writes
            c_file = work / f"{name}.c"
            subprocess.run([sys.executable, "-m", "cython", "-3", "-X", "boundscheck=False",
                            "-X", "wraparound=False", "-X", "initializedcheck=False", "-X", "cdivision=True",
                            str(ROOT / "bpe" / f"{name}.pyx"), "-o", str(c_file)], check=True, cwd=ROOT)
            generated.append(c_file)
        python_include = Path(sysconfig.get_paths()["include"])
        for target, full in TARGETS.items():
            zig_cc(target, ROOT / "tools" / "port_check.c", work / f"port-{target}.o", [])
            if full:
                for c_file in generated:
                    zig_cc(target, c_file, work / f"{c_file.stem}-{target}.o", [ROOT / "bpe", python_include])
            print(f"{target}: compiles ({'helpers and the generated C' if full else 'helpers'})", flush=True)
        # port.h's branch for a C11 compiler that is neither GCC nor Clang (<stdatomic.h>)
        zig_cc("aarch64-linux-gnu", ROOT / "tools" / "port_check.c", work / "port-c11.o", [],
               "-std=c11", "-U__GNUC__", "-U__clang__")
        print("aarch64-linux-gnu, plain C11: compiles (helpers)", flush=True)


if __name__ == "__main__":
    main()
