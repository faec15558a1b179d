"""Spiking policies trained by deep RL, side by side with their ANN twins (issue 16).

    python scripts/bench_spiking_rl.py speed       # PPO agent steps/s: ANN MLP vs SNN at T = 1, 4, 16
    python scripts/bench_spiking_rl.py cartpole    # spiking PPO (inner, T = 8) on CartPole-v1: final returns

``speed`` trains each network for a short budget at 1 and 64 seeds in one jit and prints steps/s and the SNN's
cost against the ANN (the ratio). ``cartpole`` trains 16 seeds for 200k steps per seed with the CartPole-tuned
PPO preset and ``--network snn``, and prints the median final deterministic return (target >= 475), the energy
per decision and the ANN twin's multiply-accumulates. Both print one line per configuration and a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from synjax.agents import ppo
from synjax.experiment import run_seeds


def _config(**kw) -> ppo.PPOConfig:
    return dataclasses.replace(ppo.PRESETS["tuned"], progress=False, **kw)


def speed(total: int) -> None:
    """Steps/s of PPO with the MLP and the SNN at several T, 1 and 64 seeds."""
    rows = []
    for seeds in (1, 64):
        base = None
        for network, steps in (("mlp", 0), ("snn", 1), ("snn", 4), ("snn", 16)):
            extra = {"snn_time_steps": steps} if network == "snn" else {}
            config = _config(network=network, total_timesteps=total, eval_every=10_000, **extra)
            run = run_seeds(ppo.make_train(config), seeds)
            rate = seeds * config.env_steps / run.wall_time_s
            base = base or rate
            label = "ANN mlp" if network == "mlp" else f"SNN T={steps}"
            rows.append((seeds, label, rate, rate / base, run.compile_time_s))
            print(f"seeds {seeds:3d}  {label:9s}  {rate:10,.0f} agent steps/s  x{rate / base:.3f} of the ANN  "
                  f"(compile {run.compile_time_s:.1f}s)", flush=True)  # fmt: skip


def cartpole(num_seeds: int, total: int, time_steps: int) -> None:
    """The CartPole-v1 target: median final deterministic return of spiking PPO (inner mode)."""
    config = _config(network="snn", snn_time_steps=time_steps, total_timesteps=total, num_seeds=num_seeds)
    t0 = time.perf_counter()
    run = run_seeds(ppo.make_train(config), num_seeds)
    final = run.output.final
    ret = np.asarray(final["eval_return"])
    print(f"spiking PPO (inner, T={time_steps}) CartPole-v1, {num_seeds} seeds x {config.env_steps:,} steps: "
          f"median final return {np.median(ret):.1f}, mean {ret.mean():.1f}, {int((ret >= 475).sum())} of "
          f"{num_seeds} seeds >= 475 (target: median >= 475)")  # fmt: skip
    print(f"  per seed: {np.round(ret, 1).tolist()}")
    print(f"  energy per decision: synops median {np.median(final['synops']):,.0f}, ANN twin MACs "
          f"{float(np.asarray(final['ann_macs'])[0]):,.0f}; firing rates "
          + ", ".join(f"layer {k[-1]} {np.median(v):.3f}" for k, v in final.items() if k.startswith("firing_rate")))
    print(f"  train {run.wall_time_s:.1f}s, compile {run.compile_time_s:.1f}s, all {time.perf_counter() - t0:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "cartpole"))
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--total-timesteps", type=int, default=0, help="0: 20,480 for speed, 200,000 for cartpole")
    parser.add_argument("--time-steps", type=int, default=8, help="T of the cartpole run")
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.total_timesteps or 20_480)
    else:
        cartpole(args.num_seeds, args.total_timesteps or 200_000, args.time_steps)


if __name__ == "__main__":
    main()
