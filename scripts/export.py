"""Write a spiking run's network as a NIR graph; same as `synjax export --run DIR --out FILE.nir`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
