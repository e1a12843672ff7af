#!/usr/bin/env bash
# The vector classifiers against the scalar reference: natively, and for AArch64 (NEON)
# under qemu-user when a cross compiler is there (apt-get install gcc-aarch64-linux-gnu
# qemu-user). The Python tests (tests/test_simd.py) cover the levels of the machine they
# run on; this covers NEON on an x86-64 machine.
set -euo pipefail
cd "$(dirname "$0")"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cc -O2 -Wall -Wextra -Wno-unused-function -o "$out/native" simd_check.c
"$out/native"
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
    aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Wno-unused-function -static -o "$out/aarch64" simd_check.c
    qemu-aarch64 "$out/aarch64"
else
    echo "no aarch64-linux-gnu-gcc and qemu-aarch64: NEON not checked" >&2
    exit 1
fi
