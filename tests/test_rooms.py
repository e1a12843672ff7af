"""The house's layout holds: modules import only what is below them, the compiled rooms keep
their contract, and no room grows into a second job."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import bpe
from bpe import _core, patterns

PACKAGE = Path(bpe.__file__).resolve().parent
SOURCES = Path(__file__).resolve().parent.parent / "bpe"
# Pickling a named encoding by name (as tiktoken does) is the one look upward.
ALLOWED_UPWARD = {("bpe.core", "bpe.registry")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCES.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the bpe modules it imports (at module level or inside functions)."""
    modules = {_module_name(p): p for p in SOURCES.rglob("*.py")}
    compiled = {_module_name(p) for p in SOURCES.glob("*.pyx")}  # leaves: they import no Python module
    graph: dict[str, set[str]] = {name: set() for name in compiled}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("bpe")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bpe"):
                for alias in node.names:  # "from bpe import hf": the submodule, when it is one
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules or sub in compiled else node.module)
        graph[name] = {e for e in edges if (e in modules or e in compiled) and e != name
                       and (name, e) not in ALLOWED_UPWARD}
    return graph


def test_no_import_circles():
    graph = import_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert "bpe.cli" not in graph["bpe.lm.cli"] and "bpe.lm.cli" in graph["bpe.cli"]


def test_nothing_cimports_the_core_and_the_engine_imports_no_python_module():
    for path in list(SOURCES.glob("*.pyx")) + list(SOURCES.glob("*.pxd")):
        text = path.read_text(encoding="utf-8")
        assert "cimport _core" not in text and "bpe._core cimport" not in text, path.name
        for node in ast.walk(ast.parse("\n".join(l for l in text.splitlines() if l.startswith(("import ", "from ")) and " cimport " not in l))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert not any(n and n.startswith("bpe") for n in names), (path.name, names)


def test_no_room_over_800_lines():
    for path in SOURCES.rglob("*"):
        if path.suffix in (".py", ".pyx", ".pxd", ".h") and path.name != "_unicode_data.py":
            n = len(path.read_text(encoding="utf-8").splitlines())
            assert n <= 800, f"{path.relative_to(SOURCES)} has {n} lines"


def test_the_functions_kept_out_of_line_exist_under_their_c_names():
    """_core.pyx names room functions by Cython's C names to keep them out of line; a
    renamed room would leave those names pointing at nothing, silently."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("needs nm (binutils) to list the built module's symbols")
    symbols = subprocess.run([nm, _core.__file__], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1].lstrip("_").split(".")[0] for line in symbols.splitlines() if line.strip()}
    for name in _core.OUT_OF_LINE:  # macOS prefixes an underscore; GCC may add a .part suffix
        assert name.lstrip("_") in names, f"{name} is not in {Path(_core.__file__).name}"


def test_the_functions_forced_inline_are_room_functions_under_their_c_names():
    """bpe/_c/out_of_line.h forces some room functions inline by their C names; a renamed
    function would leave its prototype naming nothing (a warning, not an error)."""
    import re

    header = (SOURCES / "_c" / "out_of_line.h").read_text(encoding="utf-8")
    forced = re.findall(r"static \w+ (__pyx_f_3bpe_\d+(_\w+))\([^;]*\) BPE_IN_LINE;", header)
    assert len(forced) >= 4, forced
    for cname, _ in forced:
        match = re.fullmatch(r"__pyx_f_3bpe_(\d+)(\w+)", cname)
        size, rest = int(match.group(1)), match.group(2)
        module, function = rest[:size], rest[size + 1:]
        source = (SOURCES / f"{module}.pxd").read_text(encoding="utf-8")
        assert re.search(rf"^cdef inline \w+\*? ?{function}\(", source, re.M), cname


def test_the_family_ids_and_class_bits_come_from_one_place():
    assert {f.name.lower(): f.value for f in patterns.Family if f} == _core.FAMILIES
    assert patterns.scanner_family(patterns.O200K_PATTERN) is patterns.Family.O200K
    assert set(_core.CLASS_BITS) == {"L", "N", "UP", "LO", "WS"}


def test_importing_bpe_does_no_work_a_first_call_could_do(tmp_path):
    """The scanners' class table (1.1 MB) is built on first use, not at import."""
    code = ("import bpe, bpe._core as c\nassert not c.unicode_classes_set()\n"
            "bpe.get_encoding('o200k_base').encode('x')\nassert c.unicode_classes_set()\n")
    import sys

    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=120)


def test_the_compiled_modules_stubs_match_them(tmp_path):
    """stubtest (mypy) holds bpe/_core.pyi, _image.pyi, _ranks.pyi, _train.pyi and _trie.pyi to the built modules."""
    pytest.importorskip("mypy", reason="stubtest is mypy's: pip install '.[test]'")
    import sys

    project = SOURCES.parent
    env = dict(os.environ)
    if "site-packages" not in PACKAGE.parts:  # an editable install: point mypy at the sources
        env["MYPYPATH"] = str(PACKAGE.parent)
    run = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(project / "pyproject.toml"),
                          "--allowlist", str(project / "tools" / "stubtest-allowlist.txt"), "--ignore-unused-allowlist",
                          "bpe._core", "bpe._image", "bpe._ranks", "bpe._train", "bpe._trie"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600,
                         env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Success" in run.stdout
