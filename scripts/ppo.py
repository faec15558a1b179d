"""PPO on a JAX environment, every seed vmapped in one jit; same as `synjax ppo`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["ppo", *sys.argv[1:]]))
