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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
