"""Random actions in N parallel JAX environments; same as `synjax random-rollout`."""

import sys

from synjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["random-rollout", *sys.argv[1:]]))
