"""``python scripts/carracing.py [flags]``: the same as ``synjax carracing [flags]``."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["carracing", *sys.argv[1:]]))
