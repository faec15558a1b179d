"""Hyperparameter sweeps in one jit: every value of every swept field x every seed, vmapped together.

How it works
------------
1. A config field that may be swept is annotated :data:`Floats` (``lr: Floats = 3e-4``). It holds a float, or a
   tuple of floats for a sweep; on the command line ``--lr 1e-4,3e-4,1e-3`` gives the tuple. Its range is
   declared next to it (``lr: Annotated[Floats, above(0.0)]``, :mod:`synjax.checks`), which checks every value.
2. The experiment's ``run`` calls :func:`synjax.runner.experiment.run_experiment` with ``make_train`` (``config ->``
   :class:`synjax.trainer.Trainer`). With a multi-valued field, the grid (cartesian product of the swept
   fields, G points) times the seeds (S) becomes one batch of G*S runs, vmapped and sharded over devices like
   seeds, where each run calls ``make_train(at(config, **values))`` *inside* the trace, so the swept fields are
   traced scalars and one compilation serves every value. Point g, seed i uses seed key i (the same keys for
   every point: differences between points are not seed noise).
3. So ``make_train`` and ``train`` must use the sweepable fields only as numbers (``jnp`` arithmetic, optax
   hyperparameters), never in Python control flow or shapes; integers that set shapes are not ``Floats``.
4. The results folder: rows of ``metrics.csv`` and of ``params.msgpack`` are run ``r = g * S + i`` (point g, seed
   i) and carry the swept values as columns; ``summary.json`` has ``final`` entries per point, named
   ``"<metric>[lr=0.001]"``, and a ``sweep`` section listing each point's values, per-metric stats, medians and
   diverged seeds (:mod:`synjax.runner.divergence`; kept out of that point's stats); ``curves.png`` draws one mean line
   with its 95% interval per point, over the seeds that did not diverge.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np
from tyro.constructors import PrimitiveConstructorSpec


def _parse(args: list[str]) -> float | tuple[float, ...]:
    (text,) = args
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(",") if v != "")
    except ValueError:
        raise ValueError(f"{text!r} is not a float or a comma-separated list of floats") from None
    if not vals:
        raise ValueError("empty value list")
    return vals[0] if len(vals) == 1 else vals


def _format(value: Any) -> list[str]:
    return [",".join(repr(float(v)) for v in values(value))]


#: Marks a config field as sweepable: a float, or a tuple of floats (``--field 1e-4,3e-4`` on the command line).
SWEEP_SPEC = PrimitiveConstructorSpec(
    nargs=1,
    metavar="FLOAT[,FLOAT...]",
    instance_from_str=_parse,
    is_instance=lambda x: isinstance(x, (float, int, tuple)),
    str_from_instance=_format,
)
Floats = Annotated[float | tuple[float, ...], SWEEP_SPEC]


def values(value: Any) -> tuple[float, ...]:
    """The values a :data:`Floats` field holds, as a tuple (one element when it is not swept)."""
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,)


def sweepable_fields(config_type: type) -> tuple[str, ...]:
    """Names of the fields of ``config_type`` annotated :data:`Floats`."""
    hints = typing.get_type_hints(config_type, include_extras=True)
    out = []
    for f in dataclasses.fields(config_type):
        meta = getattr(hints.get(f.name), "__metadata__", ())
        if any(m is SWEEP_SPEC for m in meta):
            out.append(f.name)
    return tuple(out)


def swept(config: Any) -> dict[str, tuple[float, ...]]:
    """The sweepable fields of ``config`` holding more than one value: name -> values (in field order)."""
    return {
        name: values(getattr(config, name))
        for name in sweepable_fields(type(config))
        if len(values(getattr(config, name))) > 1
    }


def grid(config: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """Cartesian product of the swept fields: ``(names (F,), values (G, F) float64)``; G = 1, F = 0 if none."""
    axes = swept(config)
    names = tuple(axes)
    points = list(itertools.product(*axes.values())) if axes else [()]
    return names, np.asarray(points, dtype=np.float64).reshape(len(points), len(names))


def at(config: Any, **assignment: Any) -> Any:
    """A copy of ``config`` with fields set to ``assignment`` *without* re-running ``__post_init__``.

    Used inside the trace, where the values are tracers (the concrete values were validated when the sweep's
    config was built). Remaining one-element tuples of :data:`Floats` fields become plain floats.
    """
    new = copy.copy(config)
    for name in sweepable_fields(type(config)):
        vals = values(getattr(config, name))
        if len(vals) == 1:
            object.__setattr__(new, name, float(vals[0]))
    for name, value in assignment.items():
        object.__setattr__(new, name, value)
    return new


def first_point(config: Any) -> Any:
    """``config`` at the first value of every swept field: a concrete config whose structure (network, shapes)
    every point of the sweep shares, for rebuilding a saved network or drawing a run's pictures."""
    return at(config, **{name: vals[0] for name, vals in swept(config).items()})


def label(names: tuple[str, ...], point: np.ndarray) -> str:
    """``"lr=0.001,gamma=0.99"`` for one grid point."""
    return ",".join(f"{n}={float(v):g}" for n, v in zip(names, point))


def sweep_results(
    names: tuple[str, ...],
    points: np.ndarray,
    num_seeds: int,
    output: Any,
    extra_summary: Callable[[Any], Mapping[str, Any]] | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """What a sweep writes: ``(metrics, final, summary entries)`` of the G*S runs' ``output`` (a ``TrainOutput``
    with a leading run axis).

    ``metrics`` gets the swept values as extra columns; ``final`` is named ``"<metric>[<point label>]"`` and holds
    that point's :func:`synjax.runs.results.stats` (over its seeds that did not diverge); the summary entry ``sweep``
    lists each point's values, per-metric stats, medians and ``diverged`` seeds (``seeds`` numbered within the
    point; and ``extra_summary`` of that point's runs).
    """
    from synjax.runner import divergence
    from synjax.runs.results import stats

    steps = np.asarray(output.steps)[0]
    metrics = {k: np.asarray(v) for k, v in output.metrics.items()}
    keep_all = divergence.find(steps, metrics, output.params).keep
    for j, name in enumerate(names):  # the swept values as metrics.csv columns
        metrics[name] = np.repeat(points[:, j], num_seeds)[:, None].repeat(steps.shape[0], axis=1)
    final, entries = {}, []
    for g, point in enumerate(points):
        rows = slice(g * num_seeds, (g + 1) * num_seeds)
        part = jax.tree.map(lambda x, rows=rows: x[rows], output)
        keep = keep_all[rows]
        tag = label(names, point)
        point_final = {k: stats(np.asarray(v), keep) for k, v in part.final.items()}
        for k, v in point_final.items():
            final[f"{k}[{tag}]"] = v
        lost = np.flatnonzero(~keep).tolist()
        entries.append(
            {
                "values": {n: float(v) for n, v in zip(names, point)},
                "runs": [rows.start, rows.stop],
                "final": point_final,
                "final_median": {k: _median(np.asarray(v)[keep]) for k, v in part.final.items()},
                "diverged": {"seeds": lost, "count": len(lost), "kept": int(keep.sum())},
                **(dict(extra_summary(part)) if extra_summary else {}),
            }
        )
    summary = {
        "sweep": {
            "fields": list(names),
            "num_points": len(points),
            "layout": "run r (metrics.csv seed column, params leading axis) = point r // num_seeds, seed r % num_seeds",
            "points": entries,
        }
    }
    return metrics, final, summary


def _median(x: np.ndarray) -> float | None:
    """``np.median`` of ``x`` (S,), None for no seeds."""
    return float(np.median(x)) if x.size else None


def plot_sweep(
    path: Path,
    steps: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    names: tuple[str, ...],
    points: np.ndarray,
    num_seeds: int,
    title: str = "",
    diverged: Mapping[int, int | None] | None = None,
) -> None:
    """One panel per metric, one mean line with its 95% interval per grid point over the point's seeds that did
    not diverge; each diverged run red and dashed up to its first non-finite point, marked with an x.

    Args:
      metrics: name -> (G*S, P).
      diverged: run -> index of its first non-finite point (None: parameters only); default: found from
        ``metrics`` (:func:`synjax.runner.divergence.find`, which cannot see parameters).
    """
    import matplotlib.pyplot as plt

    from synjax.runner import divergence
    from synjax.runs.plots import draw_diverged, mean_ci95

    if diverged is None:
        diverged = {r: d.first_point for r, d in divergence.find(steps, metrics).runs.items()}
    keys = list(metrics)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    x = np.asarray(steps).reshape(-1)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(points)))
    for ax, key in zip(axes.flat, keys):
        v = np.asarray(metrics[key], dtype=np.float64)
        for g, point in enumerate(points):
            runs = [r for r in range(g * num_seeds, (g + 1) * num_seeds) if r not in diverged]
            lost = num_seeds - len(runs)
            tag = label(names, point) + (f" ({lost} diverged)" if lost else "")
            if runs:
                mean, low, high = mean_ci95(v[runs])
                ax.fill_between(x, low, high, color=colors[g], alpha=0.2)
                ax.plot(x, mean, color=colors[g], lw=1.8, label=tag)
        for i, (r, first) in enumerate(sorted(diverged.items())):
            draw_diverged(ax, x, v[r], first, "diverged runs" if i == 0 else None)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="best", fontsize=7)
    if title:
        lost = f", {len(diverged)} runs diverged" if diverged else ""
        fig.suptitle(f"{title}: mean and 95% CI of {num_seeds} seeds per point{lost}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
