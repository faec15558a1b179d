"""Which seeds diverged: non-finite parameters, or metrics that blew up, found after training.

A run (a seed, or one (point, seed) of a sweep) *diverged* when

* any floating-point leaf of its final parameters holds a NaN or an infinity (a NaN loss always gets there:
  its gradients are NaN), or
* any metric is +-inf at some evaluation point.

A NaN metric alone is "not measured", not divergence: DQN's ``loss`` before learning starts, PPO's
``train_return`` over a stretch where no episode ended (a policy that balances CartPole for 500 steps can end
no episode in the last stretch; 10 of 16 spiking-PPO seeds did, 2026-12-01). For a run that diverged, the
first point of a metric's NaN tail (NaN from there to the end, after finite values) or its first inf is where
it is reported to have gone. :func:`find` gives the runs; :mod:`synjax.runs.results` keeps them
out of the means, names them in ``summary.json`` and marks them on ``curves.png``; :func:`describe` is the
command line's line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Diverged:
    """One diverged run.

    Attributes:
      first_point: index of the first evaluation point where a metric is non-finite (None: metrics finite).
      first_step: ``steps`` at that point (None alike).
      metrics: the names of the metrics that diverged, in ``metrics`` order.
      params_finite: whether every parameter value is finite.
    """

    first_point: int | None
    first_step: int | float | None
    metrics: tuple[str, ...]
    params_finite: bool


@dataclasses.dataclass(frozen=True)
class Divergence:
    """The diverged runs of ``num_runs`` (run index -> :class:`Diverged`)."""

    num_runs: int
    runs: dict[int, Diverged]

    @property
    def keep(self) -> np.ndarray:
        """Shape (num_runs,) bool: True for the runs that did not diverge."""
        keep = np.ones(self.num_runs, bool)
        keep[list(self.runs)] = False
        return keep

    def summary(self) -> dict[str, Any]:
        """summary.json's ``diverged`` entry: ``{"seeds", "count", "kept", "by_seed": {"3": {"first_step",
        "metrics", "params_finite"}}}`` (``seeds`` empty and ``count`` 0 when none diverged)."""
        seeds = sorted(self.runs)
        by_seed = {
            str(r): {"first_step": d.first_step, "metrics": list(d.metrics), "params_finite": d.params_finite}
            for r, d in sorted(self.runs.items())
        }
        return {"seeds": seeds, "count": len(seeds), "kept": self.num_runs - len(seeds), "by_seed": by_seed}


def _first_bad_point(v: np.ndarray) -> np.ndarray:
    """Per row of ``v`` (R, P): index of the first point where the row diverged, or P (see the module doc)."""
    num_points = v.shape[1]
    inf = np.isinf(v)
    first_inf = np.where(inf.any(1), inf.argmax(1), num_points)
    finite = np.isfinite(v)
    last_finite = np.where(finite.any(1), num_points - 1 - finite[:, ::-1].argmax(1), -1)
    first_finite = np.where(finite.any(1), finite.argmax(1), num_points)
    # NaN from last_finite + 1 to the end, after a finite value: diverged there
    nan_tail = (last_finite < num_points - 1) & (first_finite < num_points)
    first_nan = np.where(nan_tail, last_finite + 1, num_points)
    return np.minimum(first_inf, first_nan)


def _params_finite(params: Any, num_runs: int) -> np.ndarray:
    """Shape (num_runs,) bool: whether each run's floating-point parameter leaves are all finite."""
    import jax
    import jax.numpy as jnp

    ok = np.ones(num_runs, bool)
    for leaf in jax.tree.leaves(params):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact) or np.ndim(leaf) == 0:
            continue  # PRNG keys, integer counters, scalars without a run axis
        x = np.asarray(leaf)
        if x.shape[0] != num_runs:
            continue
        if x.dtype.kind not in "fc":  # bfloat16 and other extension floats
            x = x.astype(np.float32)
        ok &= np.isfinite(x.reshape(num_runs, -1)).all(axis=1)
    return ok


def find(
    steps: np.ndarray, metrics: Mapping[str, np.ndarray], params: Any = None, num_runs: int | None = None
) -> Divergence:
    """The runs that diverged (see the module doc).

    Args:
      steps: shape (P,) or (R, P), the x-axis of ``metrics``.
      metrics: name -> shape (R, P), values at the evaluation points.
      params: pytree with leading run axis R (leaves of another leading size, integer leaves and PRNG keys are
        not looked at), or None.
      num_runs: R, needed only when ``metrics`` is empty.
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
    if num_runs is None:
        if not arrays:
            raise ValueError("find: give num_runs when there are no metrics")
        num_runs = next(iter(arrays.values())).shape[0]
    num_points = next(iter(arrays.values())).shape[1] if arrays else 0
    firsts = {k: _first_bad_point(v.reshape(num_runs, num_points)) for k, v in arrays.items() if num_points}
    params_ok = _params_finite(params, num_runs) if params is not None else np.ones(num_runs, bool)
    steps_2d = np.broadcast_to(np.asarray(steps), (num_runs, num_points)) if num_points else None
    runs = {}
    for r in range(num_runs):
        infinite = any(np.isinf(v.reshape(num_runs, -1)[r]).any() for v in arrays.values())
        if not infinite and params_ok[r]:
            continue  # a NaN metric alone is "not measured" (no episode ended in that stretch), not divergence
        bad = [k for k, f in firsts.items() if f[r] < num_points]  # where it went: inf, or a NaN to the end
        point = int(min(firsts[k][r] for k in bad)) if bad else None
        step = steps_2d[r, point].item() if point is not None else None
        runs[r] = Diverged(point, step, tuple(bad), bool(params_ok[r]))
    return Divergence(num_runs, runs)


def describe(summary: Mapping[str, Any], limit: int = 8) -> str | None:
    """The command line's one line about the diverged runs of a summary.json dict, or None when none diverged:
    ``"diverged: seed 3 (loss non-finite from step 12000; params non-finite); kept out of the means, which use
    7 of 8 seeds"`` (at most ``limit`` runs named)."""
    entry = summary.get("diverged") or {}
    seeds = entry.get("seeds") or []
    if not seeds:
        return None
    word = "run" if "sweep" in summary else "seed"
    parts = []
    for s in seeds[:limit]:
        d = entry["by_seed"][str(s)]
        why = []
        if d["metrics"]:
            why.append(f"{', '.join(d['metrics'])} non-finite from step {d['first_step']}")
        if not d["params_finite"]:
            why.append("params non-finite")
        parts.append(f"{word} {s} ({'; '.join(why)})")
    if len(seeds) > limit:
        parts.append(f"and {len(seeds) - limit} more")
    total = entry["count"] + entry["kept"]
    return (
        f"diverged: {', '.join(parts)}; kept out of the means, which use {entry['kept']} of {total} {word}s"
    )
