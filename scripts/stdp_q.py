"""The spiking STDP + Q-learning hybrid on Taxi-v4; same as `synjax stdp-q`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["stdp-q", *sys.argv[1:]]))
