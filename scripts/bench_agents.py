"""Speed of synjax's agents against Stable-Baselines3 (CPU PyTorch) on CartPole-v1, ratios printed.

PPO: SB3's PPO on Gymnasium's CartPole-v1 (DummyVecEnv) versus synjax's PPO on gymnax's CartPole-v1 with the
*same* hyperparameters (``--preset``: ``notebook`` = SB3's defaults, as the original notebook; ``tuned`` =
rl-baselines3-zoo's) and the same budget (``--steps``), 1 seed and ``--seeds`` seeds vmapped in one jit. synjax's
compile time is reported apart from its training wall time; its run includes the in-jit deterministic evaluation
before and after training (10 episodes each), which SB3's ``learn`` does not do.

Runner (``--skip-runner`` to skip): PPO with rejax's CartPole settings (5 envs x 100 steps, 5 epochs x 5
minibatches, lr 7.5e-4, 100k steps, evaluation only before and after training), 1 and ``--seeds`` seeds, run as
one ``jit(vmap(train))`` scan (:func:`synjax.runner.experiment.run_seeds`) and through the resumable runner
(:func:`synjax.runner.experiment.run_experiment`: 20 jitted chunks, a checkpoint after each); prints the runner's
overhead (training plus checkpoint writing over the single scan) and the agent steps/s next to rejax's, which
the issue measured on this machine on 2026-12-01 (91k at 1 seed, 74k at 64 seeds; rejax itself breaks on
gymnax 1.0, so it cannot run in this process).

DQN: the section in ``scripts/bench_dqn_section.py`` (SB3 DQN vs ``synjax.agents.dqn``), skipped with a message
when that module is absent.

Usage: ``nice -n 5 python scripts/bench_agents.py [--steps 100000] [--seeds 64] [--preset notebook]
[--skip-sb3] [--skip-dqn] [--json out.json]``
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any


def sb3_ppo_wall_time(config: Any, total_timesteps: int, seed: int = 0) -> float:
    """Seconds SB3's PPO with ``config``'s hyperparameters takes to ``learn(total_timesteps)`` on CPU."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=config.num_envs, seed=seed)

    def schedule(value: float, anneal: bool):
        return (lambda progress: progress * value) if anneal else value

    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=schedule(config.lr, config.anneal_lr),
        n_steps=config.num_steps,
        batch_size=config.batch_size // config.num_minibatches,
        n_epochs=config.update_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=schedule(config.clip_eps, config.anneal_clip),
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        normalize_advantage=config.norm_adv,
        policy_kwargs={
            "net_arch": {"pi": list(config.hidden), "vf": list(config.hidden)},
            "activation_fn": torch.nn.Tanh,
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=total_timesteps)
    return time.perf_counter() - t0


def synjax_ppo_run(config: Any, num_seeds: int, seed: int = 0) -> dict[str, float]:
    """Compile and train synjax PPO for ``num_seeds`` seeds in one jit (no results folder)."""
    import numpy as np

    from synjax.agents import ppo
    from synjax.runner.experiment import run_seeds

    run = run_seeds(ppo.make_train(config), num_seeds, seed)
    return {
        "compile_s": run.compile_time_s,
        "wall_s": run.wall_time_s,
        "agent_steps_per_s": config.env_steps * num_seeds / run.wall_time_s,
        "final_eval_return_median": float(np.median(run.output.final["eval_return"])),
    }


def bench_ppo(preset: str, total_timesteps: int, seeds: tuple[int, ...], run_sb3: bool) -> dict[str, Any]:
    """SB3 and synjax PPO with the hyperparameters of synjax's ``preset`` at ``total_timesteps``."""
    from synjax.agents import ppo

    base = ppo.PRESETS[preset]
    config = dataclasses.replace(base, env="CartPole-v1", total_timesteps=total_timesteps, progress=False)
    config = dataclasses.replace(
        config, eval_every=config.num_updates
    )  # evaluate before and after training only
    out: dict[str, Any] = {
        "preset": preset,
        "total_timesteps": total_timesteps,
        "env_steps": config.env_steps,
    }
    sb3 = None
    if run_sb3:
        wall = sb3_ppo_wall_time(config, total_timesteps)
        sb3 = {"wall_s": wall, "steps_per_s": config.env_steps / wall}
    out["sb3"] = sb3
    out["synjax"] = {}
    for n in seeds:
        r = synjax_ppo_run(dataclasses.replace(config, num_seeds=n), n)
        if sb3 is not None:
            r["speedup_wall"] = sb3["wall_s"] / r["wall_s"]
            r["speedup_steps_per_s"] = r["agent_steps_per_s"] / sb3["steps_per_s"]
        out["synjax"][n] = r
    return out


def format_ppo(result: dict[str, Any]) -> str:
    lines = [
        f"PPO on CartPole-v1, {result['preset']} hyperparameters, {result['env_steps']} env steps per seed"
    ]
    sb3 = result["sb3"]
    if sb3 is not None:
        lines.append(f"  SB3 (PyTorch CPU), 1 seed: {sb3['wall_s']:.1f} s, {sb3['steps_per_s']:.0f} steps/s")
    else:
        lines.append("  SB3: skipped")
    for n, r in result["synjax"].items():
        ratio = ""
        if "speedup_wall" in r:
            ratio = (
                f"; wall-time ratio SB3/synjax {r['speedup_wall']:.1f}x, "
                f"steps/s ratio {r['speedup_steps_per_s']:.1f}x"
            )
        lines.append(
            f"  synjax, {n} seed(s): compile {r['compile_s']:.1f} s, train {r['wall_s']:.2f} s, "
            f"{r['agent_steps_per_s']:.0f} agent-steps/s, median final eval return "
            f"{r['final_eval_return_median']:.1f}{ratio}"
        )
    return "\n".join(lines)


#: rejax's CartPole PPO settings (keraJLi/rejax configs/gymnax/cartpole.yaml), as the issue quotes them.
REJAX_PPO = {"num_envs": 5, "num_steps": 100, "update_epochs": 5, "num_minibatches": 5, "lr": 7.5e-4,
             "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.0, "vf_coef": 0.5,
             "max_grad_norm": 0.5, "total_timesteps": 100_000}  # fmt: skip
REJAX_STEPS_PER_S = {1: 91_000, 64: 74_000}


def bench_runner(seeds: tuple[int, ...], repeats: int = 8) -> dict[str, Any]:
    """Single scan vs the chunked, checkpointed runner on rejax's PPO settings: ``repeats`` runs of each,
    alternating (so that load from other jobs hits both alike), the best of each compared."""
    import tempfile

    import numpy as np

    from synjax.agents import ppo
    from synjax.runner.experiment import run_experiment, run_seeds

    base = dataclasses.replace(ppo.PPOConfig(), env="CartPole-v1", progress=False, **REJAX_PPO)
    base = dataclasses.replace(base, eval_every=base.num_updates)
    out: dict[str, Any] = {"settings": REJAX_PPO, "env_steps": base.env_steps}
    for n in seeds:
        config = dataclasses.replace(base, num_seeds=n)
        scans, chunked, saving = [], [], []
        for _ in range(repeats if n == 1 else 3):
            scans.append(run_seeds(ppo.make_train(config), n).wall_time_s)
            with tempfile.TemporaryDirectory() as tmp:
                cfg = dataclasses.replace(config, out=f"{tmp}/run")
                _, run = run_experiment("ppo", cfg, ppo.make_train, progress_total=cfg.env_steps,
                                        steps_per_seed=cfg.env_steps)  # fmt: skip
            chunked.append(run.wall_time_s + run.checkpoint_time_s)
            saving.append(run.checkpoint_time_s)
        best, scan = min(chunked), min(scans)
        out[n] = {
            "single_scan_s": scan, "chunked_s": best, "checkpoint_s": saving[chunked.index(best)],
            "single_scan_all_s": scans, "chunked_all_s": chunked,
            "overhead": best / scan - 1.0, "overhead_median": float(np.median(chunked) / np.median(scans) - 1.0),
            "steps_per_s_scan": config.env_steps * n / scan,
            "steps_per_s_chunked": config.env_steps * n / best, "rejax_steps_per_s": REJAX_STEPS_PER_S.get(n),
        }  # fmt: skip
    return out


def format_runner(result: dict[str, Any]) -> str:
    lines = [f"Runner overhead, PPO with rejax's CartPole settings, {result['env_steps']} env steps per seed"]
    for n, r in result.items():
        if not isinstance(n, int):
            continue
        rejax = r["rejax_steps_per_s"]
        vs = f"; rejax {rejax:,} (x{r['steps_per_s_scan'] / rejax:.2f})" if rejax else ""
        lines.append(
            f"  {n} seed(s): single scan {r['single_scan_s']:.2f} s ({r['steps_per_s_scan']:,.0f} steps/s), "
            f"chunked + checkpoints {r['chunked_s']:.2f} s (checkpoints {r['checkpoint_s']:.2f} s): overhead "
            f"{100 * r['overhead']:+.1f}% best to best, {100 * r['overhead_median']:+.1f}% median to median "
            f"({len(r['chunked_all_s'])} runs each){vs}"
        )
    return "\n".join(lines)


def _dqn_section():
    """``(bench_dqn, format_dqn)`` from scripts/bench_dqn_section.py, or None (with the reason) if absent."""
    if importlib.util.find_spec("synjax.agents.dqn") is None:
        return None, "synjax/agents/dqn.py is absent"
    path = Path(__file__).with_name("bench_dqn_section.py")
    if not path.is_file():
        return None, f"{path.name} is absent"
    spec = importlib.util.spec_from_file_location("bench_dqn_section", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return (module.bench_dqn, module.format_dqn), ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100_000, help="environment steps per seed (both libraries)")
    p.add_argument("--seeds", type=int, default=64, help="seed count of the vmapped synjax run")
    p.add_argument("--preset", default="notebook", choices=("notebook", "tuned"), help="PPO hyperparameters")
    p.add_argument("--skip-sb3", action="store_true", help="do not run Stable-Baselines3")
    p.add_argument("--skip-dqn", action="store_true", help="do not run the DQN section")
    p.add_argument("--skip-ppo", action="store_true", help="do not run the PPO section")
    p.add_argument("--skip-runner", action="store_true", help="do not run the runner-overhead section")
    p.add_argument("--json", default="", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.steps < 1 or args.seeds < 1:
        p.error("--steps and --seeds must be >= 1")
    seeds = (1, args.seeds) if args.seeds > 1 else (1,)
    if not args.skip_sb3:
        import torch

        torch.set_num_threads(1)
    results: dict[str, Any] = {}
    if not args.skip_ppo:
        results["ppo"] = bench_ppo(args.preset, args.steps, seeds, not args.skip_sb3)
        print(format_ppo(results["ppo"]), flush=True)
    if not args.skip_runner:
        results["runner"] = bench_runner(seeds)
        print(format_runner(results["runner"]), flush=True)
    if not args.skip_dqn:
        section, why = _dqn_section()
        if section is None:
            print(f"DQN: skipped ({why})")
        else:
            bench_dqn, format_dqn = section
            results["dqn"] = bench_dqn(args.steps, seeds, not args.skip_sb3)
            print(format_dqn(results["dqn"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
