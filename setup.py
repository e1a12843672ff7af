"""Build the compiled engine. Compiler directives live here and nowhere else.

BPE_CYTHON_DEBUG=1 at build time turns bounds checks, wraparound and initialised-view
checks back on (slow; for hunting memory bugs).
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("BPE_CYTHON_DEBUG", "") not in ("", "0")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "bpe._core",
        ["bpe/_core.pyx"],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    ),
    Extension(
        "bpe._train",
        ["bpe/_train.pyx"],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
