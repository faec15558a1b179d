"""``python scripts/snn_classify.py [--preset NAME] [flags]``: the same as ``synjax snn-classify``."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["snn-classify", *sys.argv[1:]]))
