"""Build bpe from its sdist and run the tests under every CPython 3.9-3.13 that pyenv has here.

    nox                   # every Python found
    nox -s tests-3.9      # one of them

Interpreters are found, not named: each ``pyenv`` version 3.9 to 3.13 (``pyenv root``/versions),
else whatever ``python3.X`` is on PATH. A version that is not there is left out, said so.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
nox.options.error_on_missing_interpreters = False


def _interpreter(version: str) -> str | None:
    """The path of a CPython ``version`` interpreter on this machine, or None."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")))
        if found:
            return found[-1]
    return shutil.which(f"python{version}")


FOUND = {v: p for v in VERSIONS if (p := _interpreter(v))}


@nox.session(python=list(FOUND.values()) or VERSIONS)
def tests(session: nox.Session) -> None:
    """Build the sdist, install it with the test extras, run the suite away from the sources."""
    session.install("build")
    dist = session.create_tmp()
    session.run("python", "-m", "build", "--sdist", "--outdir", dist)
    (sdist,) = glob.glob(os.path.join(dist, "*.tar.gz"))
    session.install(f"{sdist}[test]")
    tests_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests")
    session.chdir(dist)
    session.run("pytest", "-rs", tests_dir, "-p", "no:cacheprovider", "-m", "not slow and not memory",
                *session.posargs)
