"""PQN on a JAX environment, every seed vmapped in one jit; same as `synjax pqn`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["pqn", *sys.argv[1:]]))
