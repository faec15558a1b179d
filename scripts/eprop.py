"""The online spiking actor-critic (reward-based e-prop, or its controls), every seed vmapped in one jit; same
as `synjax eprop`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["eprop", *sys.argv[1:]]))
