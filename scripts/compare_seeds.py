"""Compare two methods' per-seed final scores (statistics and a strip plot); see :mod:`synjax.compare`."""

import sys

from synjax.compare import main

if __name__ == "__main__":
    sys.exit(main())
