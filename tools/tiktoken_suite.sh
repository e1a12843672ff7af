#!/usr/bin/env bash
# Run tiktoken's own test suite (from its sdist on the package index) with bpe standing in
# for the tiktoken module. Tests that need an encoding bpe cannot have offline (gpt2,
# r50k_base, p50k_base) are reported as skipped with that reason; every other test must pass.
#
#   bash tools/tiktoken_suite.sh [VERSION]     (default 0.14.0; run from the project root,
#                                               in an environment where bpe is installed)
set -euo pipefail
version=${1:-0.14.0}
tools=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip download --quiet --no-deps --no-binary :all: "tiktoken==$version" -d "$work"
tar xzf "$work/tiktoken-$version.tar.gz" -C "$work" "tiktoken-$version/tests"
cd "$work/tiktoken-$version"
PYTHONPATH="$tools/tiktoken_shim:$tools" python -m pytest -p tiktoken_suite_plugin -p no:cacheprovider -rs tests
