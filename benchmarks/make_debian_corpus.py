"""Build a multilingual training corpus of about 1 GB from Debian packages.

    python benchmarks/make_debian_corpus.py OUT_DIR            # about 1 GB
    python benchmarks/make_debian_corpus.py OUT_DIR --mb 300   # smaller

Installs what is missing with apt-get (as root, or through sudo): the manual pages in
English, German, French, Japanese, Chinese, Spanish, Polish, Russian, Italian and Brazilian
Portuguese, fortunes in German, Italian, Spanish and Russian, and the kernel sources of
``linux-source``. Writes into OUT_DIR:

- ``manpages-en.txt`` and ``manpages-l10n.txt``: every manual page's source text (roff
  markup and all, as a tokenizer trained on documentation sees it), the English pages and
  the translated ones, each in a seeded shuffled order so that any prefix mixes the
  sections and languages;
- ``fortunes.txt``: the fortune files;
- ``linux.txt``: C sources, headers and documentation of the kernel, as much as fills the
  size asked for;
- ``mix-30mb.txt``: 30 MB for ``bench_train.py``'s multilingual table: the fortunes, then
  translated man pages, then English ones, a third each as far as they reach;
- ``corpus.txt``: all three, about OUT_DIR's size (the 131,072 benchmark's input).

Prints what it wrote, with sizes. Nothing is downloaded but the Debian packages.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

MAN_PACKAGES = ["manpages", "manpages-dev", "manpages-de", "manpages-fr", "manpages-ja", "manpages-zh",
                "manpages-es", "manpages-pl", "manpages-ru", "manpages-it", "manpages-pt-br"]
FORTUNE_PACKAGES = ["fortunes-de", "fortunes-it", "fortunes-es", "fortunes-ru"]
KERNEL_PACKAGE = "linux-source"
KERNEL_SUFFIXES = (".c", ".h", ".rst", ".txt", ".S", ".py", ".sh")


def missing(packages: list[str]) -> list[str]:
    out = []
    for package in packages:
        probe = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in probe.stdout:
            out.append(package)
    return out


def install(packages: list[str]) -> None:
    todo = missing(packages)
    if not todo:
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(f"needs apt-get to install {' '.join(todo)} (a Debian or Ubuntu machine)")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    if prefix and shutil.which("sudo") is None:
        raise SystemExit(f"run as root, or install sudo, to install {' '.join(todo)}")
    print(f"installing {' '.join(todo)}", file=sys.stderr, flush=True)
    subprocess.run(prefix + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *todo], check=True)


def write_manpages(path: Path, translated: bool) -> int:
    """The English pages (/usr/share/man/manN/) or the translated ones (/usr/share/man/LANG/)."""
    pages = sorted(p for p in glob.glob("/usr/share/man/**/*.gz", recursive=True)
                   if (Path(p).relative_to("/usr/share/man").parts[0].startswith("man")) != translated)
    random.Random(0).shuffle(pages)
    with path.open("w", encoding="utf-8") as out:
        for page in pages:
            try:
                text = gzip.decompress(Path(page).read_bytes()).decode("utf-8", errors="replace")
            except (OSError, EOFError):
                continue  # a broken symlink or a damaged file: pass over it
            out.write(text if text.endswith("\n") else text + "\n")
    return path.stat().st_size


def write_fortunes(path: Path) -> int:
    files = [f for f in sorted(glob.glob("/usr/share/games/fortunes*/**/*", recursive=True))
             if os.path.isfile(f) and not f.endswith((".dat", ".u8")) and not os.path.islink(f)]
    with path.open("w", encoding="utf-8") as out:
        for name in files:
            out.write(Path(name).read_bytes().decode("utf-8", errors="replace"))
    return path.stat().st_size


def write_kernel(path: Path, budget: int) -> int:
    tarballs = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    if not tarballs:
        raise SystemExit("no /usr/src/linux-source-*.tar.xz after installing linux-source")
    written = 0
    with tarfile.open(tarballs[-1]) as tar, path.open("w", encoding="utf-8") as out:
        for member in tar:
            if written >= budget:
                break
            if member.isfile() and member.name.endswith(KERNEL_SUFFIXES):
                data = tar.extractfile(member).read().decode("utf-8", errors="replace")
                out.write(data)
                written += len(data.encode("utf-8"))
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write into (made if missing)")
    parser.add_argument("--mb", type=int, default=1024, help="size of corpus.txt in MB (default 1024)")
    args = parser.parse_args()
    install(MAN_PACKAGES + FORTUNE_PACKAGES + [KERNEL_PACKAGE])
    args.out.mkdir(parents=True, exist_ok=True)
    english = write_manpages(args.out / "manpages-en.txt", translated=False)
    translated = write_manpages(args.out / "manpages-l10n.txt", translated=True)
    fortunes = write_fortunes(args.out / "fortunes.txt")
    kernel = write_kernel(args.out / "linux.txt", max(0, args.mb * 2**20 - english - translated - fortunes))
    with (args.out / "mix-30mb.txt").open("wb") as out:
        left = 30 * 2**20
        for k, name in enumerate(("fortunes.txt", "manpages-l10n.txt", "manpages-en.txt")):
            with (args.out / name).open("rb") as f:
                chunk = f.read(left if k == 2 else min(left, 10 * 2**20))
            chunk = chunk[: chunk.rfind(b"\n") + 1]  # whole lines: no code point cut in two
            out.write(chunk)
            left -= len(chunk)
    with (args.out / "corpus.txt").open("wb") as out:
        for name in ("manpages-en.txt", "manpages-l10n.txt", "fortunes.txt", "linux.txt"):
            with (args.out / name).open("rb") as f:
                shutil.copyfileobj(f, out, 2**22)
    for name in ("manpages-en.txt", "manpages-l10n.txt", "fortunes.txt", "linux.txt", "mix-30mb.txt", "corpus.txt"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
