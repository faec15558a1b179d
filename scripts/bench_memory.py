"""The memory task side by side: PPO with a GRU and with the feedforward MLP on CartPole-masked-v1 (velocities
hidden), same settings, budget and seeds; prints each one's final deterministic returns and the medians.

    python scripts/bench_memory.py                          # the presets: 16 seeds, 1M steps each
    python scripts/bench_memory.py --num-seeds 2 --total-timesteps 50000 --out-dir /tmp/memory
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np


def main() -> None:
    from synjax.agents import ppo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--total-timesteps", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/memory")
    parser.add_argument("--plot", default="", help="also draw both curves (mean, 95%% CI) into this PNG")
    parser.add_argument("--plot-only", action="store_true", help="redraw --plot from --out-dir, train nothing")
    args = parser.parse_args()
    if args.plot_only:
        plot(Path(args.out_dir), args.plot)
        return
    rows = {}
    for name in ("masked-gru", "masked-mlp"):
        config = dataclasses.replace(
            ppo.PRESETS[name], num_seeds=args.num_seeds, total_timesteps=args.total_timesteps, seed=args.seed,
            out=str(Path(args.out_dir) / name), overwrite=True, progress=False,
        )  # fmt: skip
        path, _ = ppo.run(config)
        summary = json.loads((path / "summary.json").read_text())
        rows[name] = (summary["final"]["eval_return"]["per_seed"], summary["steps_per_s"])
    print(f"\nCartPole-masked-v1, PPO, {args.num_seeds} seeds x {args.total_timesteps} steps, deterministic eval")
    print(f"{'network':<12} {'median':>8} {'mean':>8} {'>=450':>6} {'steps/s':>9}  per seed")
    for name, (per_seed, sps) in rows.items():
        x = np.asarray(per_seed)
        print(f"{name:<12} {np.median(x):8.1f} {x.mean():8.1f} {int((x >= 450).sum()):>3}/{x.size:<2} {sps:9.0f}  "
              f"{', '.join(f'{v:.0f}' for v in x)}")  # fmt: skip
    if args.plot:
        plot(Path(args.out_dir), args.plot)


def plot(out_dir: Path, path: str) -> None:
    """Deterministic evaluation return over training of both runs: each seed faint, mean bold, 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synjax.runs.plots import mean_ci95
    from synjax.runs.results import read_metrics_csv

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, color in (("masked-gru", "tab:blue"), ("masked-mlp", "tab:orange")):
        m = read_metrics_csv(out_dir / name / "metrics.csv")
        x, y = m["step"][0], m["eval_return"]
        ax.plot(x, y.T, color=color, alpha=0.12, lw=0.8)
        mean, low, high = mean_ci95(y)
        ax.fill_between(x, low, high, color=color, alpha=0.25)
        ax.plot(x, mean, color=color, lw=2, label=f"{name.split('-')[1].upper()} ({y.shape[0]} seeds)")
    ax.set(xlabel="environment steps per seed", ylabel="deterministic return",
           title="PPO on CartPole-masked-v1 (velocities hidden)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
