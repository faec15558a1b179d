"""DQN on MountainCar-v0 with rl-baselines3-zoo's "Tuned" settings: Stable-Baselines3 and synjax side by side.

synjax's ``synjax dqn --preset tuned --env MountainCar-v0`` runs those settings (``synjax.agents.dqn.ENV_PRESETS``)
and left 8 of 8 seeds at -200 on 2026-12-02. This script asks whether SB3 itself, with the same settings, solves
the task on the same number of seeds, or whether synjax's DQN differs from it where MountainCar's sparse reward
makes a difference. SB3 runs Gymnasium's MountainCar-v0 (one torch thread), synjax gymnax's port; both report the
final deterministic return over 10 episodes per seed. Needs the bench extra (``stable-baselines3``, ``torch``).

    python scripts/bench_dqn_mountaincar.py --seeds 4
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

#: rl-baselines3-zoo hyperparams/dqn.yml, MountainCar-v0 ("Tuned"), in SB3's argument names.
ZOO = {
    "learning_rate": 4e-3, "batch_size": 128, "buffer_size": 10_000, "learning_starts": 1_000, "gamma": 0.98,
    "target_update_interval": 5_000, "train_freq": 16, "gradient_steps": 8, "exploration_fraction": 0.2,
    "exploration_final_eps": 0.07, "policy_kwargs": {"net_arch": [256, 256]},
}  # fmt: skip
STEPS = 120_000


def sb3_returns(seeds: int, steps: int = STEPS, episodes: int = 10) -> tuple[np.ndarray, np.ndarray, float]:
    """Per SB3 seed 0..seeds-1: (final deterministic mean return, mean training return of the last 10 episodes),
    and the wall seconds of all the training."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    finals, trains, wall = [], [], 0.0
    for seed in range(seeds):
        env = Monitor(gym.make("MountainCar-v0"))
        model = DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ZOO)
        t0 = time.perf_counter()
        model.learn(total_timesteps=steps)
        wall += time.perf_counter() - t0
        trains.append(np.mean(env.get_episode_rewards()[-10:]))
        mean, _ = evaluate_policy(model, Monitor(gym.make("MountainCar-v0")), n_eval_episodes=episodes)
        finals.append(mean)
        print(f"SB3 seed {seed}: final {mean:.1f}, last-10 training episodes {trains[-1]:.1f}", flush=True)
    return np.asarray(finals), np.asarray(trains), wall


def synjax_returns(seeds: int, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray, float]:
    """The same for synjax's preset, ``seeds`` seeds vmapped in one jit: (final eval_return, final train_return,
    wall seconds without the compile)."""
    from synjax.agents import dqn
    from synjax.runner.experiment import run_seeds

    config = dataclasses.replace(
        dqn.ENV_PRESETS["tuned"]["MountainCar-v0"], total_timesteps=steps, eval_every=steps, num_seeds=seeds,
        progress=False,
    )
    run = run_seeds(dqn.make_train(config), seeds, 0)
    final = run.output.final
    return np.asarray(final["eval_return"]), np.asarray(final["train_return"]), run.wall_time_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds per side")
    parser.add_argument("--steps", type=int, default=STEPS, help="environment steps per seed")
    parser.add_argument("--skip-sb3", action="store_true", help="run synjax only")
    args = parser.parse_args(argv)
    rows = [("synjax", *synjax_returns(args.seeds, args.steps))]
    if not args.skip_sb3:
        rows.insert(0, ("SB3", *sb3_returns(args.seeds, args.steps)))
    print(f"\nDQN MountainCar-v0, rl-zoo Tuned settings, {args.steps:,} steps, {args.seeds} seeds each\n")
    print("| side | final return per seed | solved seeds (> -200) | last training returns | train wall (s) |")
    print("| --- | --- | ---: | --- | ---: |")
    for name, finals, trains, wall in rows:
        per_seed = ", ".join(f"{v:.1f}" for v in finals)
        train = ", ".join(f"{v:.1f}" for v in trains)
        print(f"| {name} | {per_seed} | {int(np.sum(finals > -200))} | {train} | {wall:.0f} |")


if __name__ == "__main__":
    main()
