"""A2C on a JAX environment, every seed vmapped in one jit; same as `synjax a2c`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["a2c", *sys.argv[1:]]))
