"""Two methods' final scores, one per seed, compared: means with 95% intervals, medians, Welch's t-test,
Mann-Whitney U, and (given a threshold) Fisher's exact test on how many seeds stayed below it; a strip plot.

``python scripts/compare_seeds.py --a synjax 16.2 16.9 2.3 --b SB3 11.0 16.7 15.5 --below 10 --plot seeds.png``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from synjax.runs import results


def compare_seeds(a: Sequence[float], b: Sequence[float], below: float | None = None) -> dict[str, Any]:
    """Statistics of per-seed scores ``a`` (shape (n_a,)) against ``b`` (shape (n_b,)), each at least 2 seeds.

    Returns ``{"a": stats, "b": stats, "welch_p", "mannwhitney_p"}`` (two-sided; ``stats`` as
    :func:`synjax.runs.results.stats` plus ``"median"``) and, when ``below`` is given, ``"below": {"a": count,
    "b": count, "fisher_p"}``.
    """
    from scipy import stats as st

    x, y = (np.asarray(v, np.float64).reshape(-1) for v in (a, b))
    for name, v in (("a", x), ("b", y)):
        if v.size < 2 or not np.isfinite(v).all():
            raise ValueError(f"{name} must hold at least 2 finite per-seed scores, got {v.tolist()}")
    out: dict[str, Any] = {
        "a": {**results.stats(x), "median": float(np.median(x))},
        "b": {**results.stats(y), "median": float(np.median(y))},
        "welch_p": float(st.ttest_ind(x, y, equal_var=False).pvalue),
        "mannwhitney_p": float(st.mannwhitneyu(x, y, alternative="two-sided").pvalue),
    }
    if below is not None:
        low_x, low_y = int((x < below).sum()), int((y < below).sum())
        table = [[low_x, x.size - low_x], [low_y, y.size - low_y]]
        out["below"] = {"a": low_x, "b": low_y, "fisher_p": float(st.fisher_exact(table).pvalue)}
    return out


def report(names: tuple[str, str], comparison: dict[str, Any], below: float | None = None) -> str:
    """Readable lines of :func:`compare_seeds`'s result for methods named ``names``."""
    lines = []
    for name, key in zip(names, ("a", "b")):
        s = comparison[key]
        scores = ", ".join(f"{v:g}" for v in s["per_seed"])
        lines.append(
            f"{name}: {s['mean']:.2f} +- {s['std']:.2f} (95% CI {s['ci95'][0]:.1f}..{s['ci95'][1]:.1f}; "
            f"median {s['median']:.2f}; {len(s['per_seed'])} seeds: {scores})"
        )
    lines.append(
        f"Welch t-test p = {comparison['welch_p']:.2f}, Mann-Whitney U p = {comparison['mannwhitney_p']:.2f}"
    )
    if "below" in comparison:
        low = comparison["below"]
        lines.append(
            f"seeds below {below:g}: {names[0]} {low['a']}, {names[1]} {low['b']} (Fisher p = {low['fisher_p']:.2f})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="compare_seeds.py",
        description="Compare two methods' per-seed final scores (see synjax.runs.compare).",
    )
    parser.add_argument("--a", nargs="+", required=True, metavar="X", help="NAME then per-seed scores")
    parser.add_argument("--b", nargs="+", required=True, metavar="X", help="NAME then per-seed scores")
    parser.add_argument(
        "--below", type=float, default=None, help="count seeds under this score (Fisher test)"
    )
    parser.add_argument("--plot", default=None, help="write a strip plot of the seeds to this PNG")
    parser.add_argument("--title", default="", help="plot title")
    parser.add_argument("--ylabel", default="score", help="plot y-axis label")
    args = parser.parse_args(argv)
    groups = {}
    for flag, values in (("--a", args.a), ("--b", args.b)):
        try:
            groups[values[0]] = [float(v) for v in values[1:]]
        except ValueError:
            parser.error(f"{flag} takes a name then numbers, got {' '.join(values)}")
    if len(groups) != 2:
        parser.error("--a and --b need different names")
    try:
        comparison = compare_seeds(*groups.values(), below=args.below)
    except ValueError as e:
        parser.error(str(e))
    print(report(tuple(groups), comparison, args.below))
    if args.plot:
        from synjax.runs.plots import plot_seed_scores

        plot_seed_scores(args.plot, groups, title=args.title, ylabel=args.ylabel)
        print(f"plot: {args.plot}")
    return 0
