"""DQN speed: synjax (JAX, jitted, seeds vmapped) versus Stable-Baselines3 (PyTorch CPU) on CartPole-v1.

Both run the original notebook's agent, SB3's DQN defaults with learning rate 1e-4 (synjax's ``notebook``
preset), for the same number of environment steps: SB3 on Gymnasium's CartPole-v1, one seed, one torch thread
(as ``scripts/bench_agents.py``); synjax on gymnax's CartPole-v1 with 1 seed and with many seeds vmapped in
one jit. synjax's compile time is reported apart from its training wall time; its run includes the in-jit
greedy evaluation before and after training (10 episodes each), which SB3's ``learn`` does not do.

``scripts/bench_agents.py`` calls :func:`bench_dqn`; ``python scripts/bench_dqn_section.py`` runs it alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

#: train_freq * num_envs of the notebook preset: synjax's budget is a whole number of these chunks.
CHUNK = 4


def sb3_dqn_wall_time(total_timesteps: int, seed: int = 0) -> float:
    """Seconds SB3's DQN (defaults, lr 1e-4, CPU) takes to ``learn(total_timesteps)`` on CartPole-v1."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env = gym.make("CartPole-v1")
    model = DQN("MlpPolicy", env, learning_rate=1e-4, seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=total_timesteps)
    return time.perf_counter() - t0


def synjax_dqn_run(total_timesteps: int, num_seeds: int, seed: int = 0) -> dict[str, float]:
    """Compile and train synjax's ``notebook`` DQN, ``num_seeds`` seeds in one jit (no results folder)."""
    import numpy as np

    from synjax.agents import dqn
    from synjax.runner.experiment import run_seeds

    config = dataclasses.replace(
        dqn.PRESETS["notebook"],
        total_timesteps=total_timesteps,
        eval_every=total_timesteps,
        num_seeds=num_seeds,
        progress=False,
    )
    run = run_seeds(dqn.make_train(config), num_seeds, seed)
    return {
        "compile_s": run.compile_time_s,
        "wall_s": run.wall_time_s,
        "agent_steps_per_s": total_timesteps * num_seeds / run.wall_time_s,
        "final_eval_return_median": float(np.median(run.output.final["eval_return"])),
    }


def bench_dqn(
    total_timesteps: int = 100_000, seeds: tuple[int, ...] = (1, 64), run_sb3: bool = True
) -> dict[str, Any]:
    """Time SB3's DQN and synjax's DQN at the same budget.

    Args:
      total_timesteps: environment steps per seed for both (rounded up to a multiple of 4).
      seeds: synjax seed counts to run, each as one jit of vmapped seeds.
      run_sb3: also time SB3 (needs ``stable-baselines3``); else ``"sb3"`` is None and there are no ratios.
    Returns:
      ``{"total_timesteps", "sb3": {"wall_s", "steps_per_s"} | None, "synjax": {num_seeds: {"compile_s",
      "wall_s", "agent_steps_per_s", "final_eval_return_median", "speedup_wall" (SB3 wall / synjax wall),
      "speedup_steps_per_s" (synjax agent-steps/s / SB3 steps/s)}}}``.
    """
    total_timesteps = -(-total_timesteps // CHUNK) * CHUNK
    sb3 = None
    if run_sb3:
        wall = sb3_dqn_wall_time(total_timesteps)
        sb3 = {"wall_s": wall, "steps_per_s": total_timesteps / wall}
    out: dict[str, Any] = {"total_timesteps": total_timesteps, "sb3": sb3, "synjax": {}}
    for n in seeds:
        r = synjax_dqn_run(total_timesteps, n)
        if sb3 is not None:
            r["speedup_wall"] = sb3["wall_s"] / r["wall_s"]
            r["speedup_steps_per_s"] = r["agent_steps_per_s"] / sb3["steps_per_s"]
        out["synjax"][n] = r
    return out


def format_dqn(result: dict[str, Any]) -> str:
    """A markdown table of :func:`bench_dqn`'s result."""
    lines = [
        f"DQN on CartPole-v1, SB3 defaults with lr 1e-4, {result['total_timesteps']:,} env steps per seed",
        "",
        "| run | compile (s) | train wall (s) | agent steps/s | SB3 wall / synjax wall | steps/s vs SB3 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    sb3 = result["sb3"]
    if sb3 is not None:
        wall, sps = sb3["wall_s"], sb3["steps_per_s"]
        lines.append(f"| SB3 DQN (PyTorch CPU), 1 seed | - | {wall:.1f} | {sps:,.0f} | 1 | 1 |")
    for n, r in result["synjax"].items():
        wall = f"{r['speedup_wall']:.1f}x" if "speedup_wall" in r else "-"
        sps = f"{r['speedup_steps_per_s']:.1f}x" if "speedup_steps_per_s" in r else "-"
        lines.append(
            f"| synjax DQN, {n} seed{'s' if n > 1 else ''} | {r['compile_s']:.1f} | {r['wall_s']:.2f} | "
            f"{r['agent_steps_per_s']:,.0f} | {wall} | {sps} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="environment steps per seed")
    parser.add_argument("--seeds", default="1,64", help="comma-separated synjax seed counts")
    parser.add_argument("--skip-sb3", action="store_true", help="do not run Stable-Baselines3")
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    print(format_dqn(bench_dqn(args.steps, seeds, run_sb3=not args.skip_sb3)))


if __name__ == "__main__":
    main()
