"""Learning-curve pictures: every seed faint, the mean bold, and the 95% interval of the mean shaded."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def mean_ci95(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its Student-t 95% interval at each point.

    Args:
      values: shape (S, P).
    Returns:
      (mean, low, high), each shape (P,).
    """
    from scipy import stats as st

    v = np.asarray(values, dtype=np.float64)
    mean = v.mean(axis=0)
    n = v.shape[0]
    if n < 2:
        return mean, mean, mean
    half = st.t.ppf(0.975, n - 1) * v.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def plot_curves(
    path: str | Path,
    steps: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    title: str = "",
    xlabel: str = "step",
) -> None:
    """Write one panel per metric to ``path`` (PNG).

    Args:
      steps: shape (P,) x-axis.
      metrics: name -> shape (S, P).
    """
    names = list(metrics)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    x = np.asarray(steps).reshape(-1)
    for ax, name in zip(axes.flat, names):
        v = np.asarray(metrics[name], dtype=np.float64)
        for seed_curve in v:
            ax.plot(x, seed_curve, color="tab:blue", alpha=max(0.04, min(0.3, 3.0 / len(v))), lw=0.8)
        mean, low, high = mean_ci95(v)
        ax.fill_between(x, low, high, color="tab:orange", alpha=0.3, label="95% CI of mean")
        ax.plot(x, mean, color="tab:orange", lw=2, label=f"mean of {len(v)} seeds")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="best", fontsize=8)
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
