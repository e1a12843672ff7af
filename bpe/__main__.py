"""``python -m bpe``: the ``bpe`` command (see bpe/cli.py)."""

import sys

from bpe.cli import main

if __name__ == "__main__":
    sys.exit(main())
