"""``python scripts/atari.py [flags]``: the same as ``synjax atari [flags]``."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["atari", *sys.argv[1:]]))
