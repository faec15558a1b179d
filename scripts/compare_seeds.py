"""Compare two methods' per-seed final scores (statistics and a strip plot); see :mod:`synjax.runs.compare`."""

import sys

from synjax.runs.compare import main

if __name__ == "__main__":
    sys.exit(main())
