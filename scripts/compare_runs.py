"""Are two sets of results folders the same run, bit for bit? For a change that must keep behaviour.

    python scripts/compare_runs.py BEFORE_DIR AFTER_DIR

Each sub-folder of BEFORE_DIR (a results folder: summary.json, metrics.csv, params.msgpack) is compared with the
sub-folder of the same name in AFTER_DIR: every final metric's per-seed values, the metrics.csv text and every
saved parameter array, exactly. Prints one line per folder and exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np
from flax import serialization


def compare(a: Path, b: Path) -> dict[str, bool]:
    """``{"final": ..., "metrics": ..., "params": ...}``: which parts of results folders ``a`` and ``b`` agree."""
    fa, fb = (json.loads((p / "summary.json").read_text())["final"] for p in (a, b))
    final = fa.keys() == fb.keys() and all(fa[k]["per_seed"] == fb[k]["per_seed"] for k in fa)
    metrics = (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    la, lb = (jax.tree.leaves(serialization.msgpack_restore((p / "params.msgpack").read_bytes())) for p in (a, b))
    params = len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))
    return {"final": final, "metrics": metrics, "params": params}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    args = p.parse_args(argv)
    ok = True
    for run in sorted(d for d in Path(args.before).iterdir() if (d / "summary.json").is_file()):
        other = Path(args.after) / run.name
        if not (other / "summary.json").is_file():
            print(f"{run.name:<14} missing in {args.after}")
            ok = False
            continue
        same = compare(run, other)
        print(f"{run.name:<14} " + "  ".join(f"{k} {'==' if v else '!='}" for k, v in same.items()))
        ok &= all(same.values())
    print("all equal" if ok else "differences")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
