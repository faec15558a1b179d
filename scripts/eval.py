"""Evaluate or text-render the saved policies of a run; same as `synjax eval --run DIR`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
