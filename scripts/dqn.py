"""DQN on any JAX environment with discrete actions; same as `synjax dqn`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["dqn", *sys.argv[1:]]))
