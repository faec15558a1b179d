"""Tabular Q-learning on Taxi-v4, many seeds in one jit; same as `synjax tabular-q`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["tabular-q", *sys.argv[1:]]))
