"""Random-policy environment steps/s: synjax's JAX Taxi and ShowerEnv against Gymnasium's own Taxi-v4.

Runs every side in this one process and prints a markdown table with ratios against Gymnasium's single-env
Python loop. Compile time is reported separately and not counted in steps/s.

    python scripts/bench_envs.py                 # full table (about 2 minutes on a 2-core CPU)
    python scripts/bench_envs.py --quick         # smaller budgets, for a smoke test
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import jax
import numpy as np

from synjax.envs.random_rollout import RandomRolloutConfig, make_rollout
from synjax.runner.experiment import run_seeds


def gymnasium_loop(steps: int) -> float:
    """Steps/s of a plain Python loop over one Gymnasium Taxi-v4 with random actions."""
    env = gymnasium.make("Taxi-v4")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(6)))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def gymnasium_sync_vector(num_envs: int, steps: int) -> float:
    """Steps/s of ``gymnasium.vector.SyncVectorEnv`` of Taxi-v4 (auto-reset) with random actions."""
    env = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("Taxi-v4") for _ in range(num_envs)])
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(6, size=num_envs))
    return steps * num_envs / (time.perf_counter() - t0)


def synjax_rollout(env: str, num_envs: int, steps: int) -> tuple[float, float]:
    """(steps/s, compile seconds) of synjax's random rollout of ``num_envs`` JAX envs for ``steps`` steps."""
    config = RandomRolloutConfig(env=env, num_envs=num_envs, steps=steps, num_points=1, progress=False)
    run = run_seeds(make_rollout(config), num_seeds=1)
    return num_envs * steps / run.wall_time_s, run.compile_time_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke test)")
    parser.add_argument(
        "--sizes",
        default="1,1024,16384",
        help="comma-separated env counts of the synjax rows (a GPU takes 262144)",
    )
    args = parser.parse_args()
    try:
        sizes = [int(n) for n in args.sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        parser.error(f"--sizes {args.sizes!r}: give comma-separated integers >= 1")
    scale = 10 if args.quick else 1
    # steps per environment for each batch size: about 10-50 M env steps at the large sizes
    budgets = {n: (100_000 if n == 1 else 10_000 if n <= 1024 else 2_000) // scale for n in sizes}

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, gymnasium {gymnasium.__version__}")
    base = gymnasium_loop(100_000 // scale)
    vec = gymnasium_sync_vector(64, 2_000 // scale)
    rows = [
        ("Gymnasium Taxi-v4, Python loop", 1, base, None),
        ("Gymnasium Taxi-v4, SyncVectorEnv", 64, vec, None),
    ]
    for env in ("Taxi-v4", "ShowerEnv"):
        for n, steps in budgets.items():
            sps, compile_s = synjax_rollout(env, n, steps)
            rows.append((f"synjax {env}", n, sps, compile_s))

    print("\n| simulator | parallel envs | steps/s | x Gymnasium loop | compile s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, n, sps, compile_s in rows:
        comp = f"{compile_s:.2f}" if compile_s is not None else "-"
        print(f"| {name} | {n} | {sps:,.0f} | {sps / base:,.1f} | {comp} |")
    n_max = max(sizes)
    best_taxi = next(sps for name, n, sps, _ in rows if name == "synjax Taxi-v4" and n == n_max)
    target = "met" if best_taxi >= 100 * base else "NOT met"
    print(f"\nTaxi at {n_max} envs: {best_taxi / base:,.0f}x the Gymnasium loop (target >= 100x: {target})")


if __name__ == "__main__":
    main()
