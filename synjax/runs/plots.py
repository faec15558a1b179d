"""Learning-curve pictures: every seed faint, the mean bold, and the 95% interval of the mean shaded; diverged seeds
red and dashed up to their first non-finite point, marked with an x, and left out of the mean."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def mean_ci95(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its Student-t 95% interval at each point, of the seeds with a finite value there
    (NaN where none has; the interval collapses to the mean where one has).

    Args:
      values: shape (S, P).
    Returns:
      (mean, low, high), each shape (P,).
    """
    from scipy import stats as st

    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis=0) / n
        var = np.where(ok, (v - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
        half = np.where(n > 1, st.t.ppf(0.975, np.maximum(n - 1, 1)) * np.sqrt(var) / np.sqrt(n), 0.0)
    return mean, mean - half, mean + half


def draw_diverged(ax, x: np.ndarray, curve: np.ndarray, first: int | None, label: str | None) -> None:
    """One diverged seed's ``curve`` (P,): red dashed up to point ``first`` (None: the whole curve) and an x at
    that point, drawn at the last finite value before it."""
    end = len(x) if first is None else first
    at = min(end, len(x) - 1)
    seen = np.flatnonzero(np.isfinite(curve[: at + 1]))
    xs, ys = list(x[:end]), list(curve[:end])
    if seen.size and end < len(
        x
    ):  # the line reaches the first non-finite point, level with the last finite value
        xs.append(x[at])
        ys.append(curve[seen[-1]])
    ax.plot(xs, ys, color="tab:red", ls="--", lw=1.0, alpha=0.8, label=label, zorder=3)
    if seen.size:
        ax.plot([x[at]], [curve[seen[-1]]], marker="x", color="tab:red", ms=8, mew=2, ls="none", zorder=3)


def plot_curves(
    path: str | Path,
    steps: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    title: str = "",
    xlabel: str = "step",
    diverged: Mapping[int, int | None] | None = None,
) -> None:
    """Write one panel per metric to ``path`` (PNG).

    Args:
      steps: shape (P,) x-axis.
      metrics: name -> shape (S, P).
      diverged: seed -> index of its first non-finite point (None: its parameters only), for the seeds kept out
        of the mean (:class:`synjax.runner.divergence.Divergence`).
    """
    diverged = dict(diverged or {})
    names = list(metrics)
    num_seeds = len(np.asarray(metrics[names[0]]))
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    x = np.asarray(steps).reshape(-1)
    for ax, name in zip(axes.flat, names):
        v = np.asarray(metrics[name], dtype=np.float64)
        kept = np.array([s not in diverged for s in range(num_seeds)], bool)
        for seed_curve in v[kept]:
            ax.plot(x, seed_curve, color="tab:blue", alpha=max(0.04, min(0.3, 3.0 / num_seeds)), lw=0.8)
        for i, (s, first) in enumerate(sorted(diverged.items())):
            draw_diverged(
                ax, x, v[s], first, f"{len(diverged)} diverged (x: first non-finite)" if i == 0 else None
            )
        if kept.any():
            mean, low, high = mean_ci95(v[kept])
            ax.fill_between(x, low, high, color="tab:orange", alpha=0.3, label="95% CI of mean")
            ax.plot(x, mean, color="tab:orange", lw=2, label=f"mean of {int(kept.sum())} seeds")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="best", fontsize=8)
    if diverged:
        title = f"{title}: " if title else ""
        title += f"{len(diverged)} of {num_seeds} seeds diverged, left out of the mean"
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_seed_scores(
    path: str | Path, groups: Mapping[str, np.ndarray], title: str = "", ylabel: str = "score"
) -> None:
    """Write a strip plot to ``path`` (PNG): one column per method, every seed a dot, the mean a bar with its
    95% interval.

    Args:
      groups: method name -> shape (S,) final scores, one per seed.
    """
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * len(groups), 3.8))
    jitter = np.random.default_rng(0)
    for i, (name, scores) in enumerate(groups.items()):
        v = np.asarray(scores, dtype=np.float64).reshape(-1)
        ax.scatter(i + jitter.uniform(-0.12, 0.12, v.size), v, color=f"C{i}", alpha=0.7, zorder=2)
        mean, low, high = (float(m[0]) for m in mean_ci95(v[:, None]))
        ax.errorbar(
            i + 0.3, mean, yerr=[[mean - low], [high - mean]], fmt="_", color="black", capsize=4, ms=14
        )
    ax.set_xticks(range(len(groups)), [f"{name}\n({len(np.ravel(s))} seeds)" for name, s in groups.items()])
    ax.set_xlim(-0.5, len(groups) - 0.3)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
