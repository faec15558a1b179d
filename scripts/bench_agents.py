"""Speed of synjax's agents against Stable-Baselines3 (CPU PyTorch) on CartPole-v1, ratios printed.

PPO: SB3's PPO on Gymnasium's CartPole-v1 (DummyVecEnv) versus synjax's PPO on gymnax's CartPole-v1 with the
*same* hyperparameters (``--preset``: ``notebook`` = SB3's defaults, as the original notebook; ``tuned`` =
rl-baselines3-zoo's) and the same budget (``--steps``), 1 seed and ``--seeds`` seeds vmapped in one jit. synjax's
compile time is reported apart from its training wall time; its run includes the in-jit deterministic evaluation
before and after training (10 episodes each), which SB3's ``learn`` does not do.

Runner (``--skip-runner`` to skip): PPO with rejax's CartPole settings (5 envs x 100 steps, 5 epochs x 5
minibatches, lr 7.5e-4, 100k steps, 10 evaluation episodes before and after training), 1 and ``--seeds`` seeds,
``--repeats`` runs of each side, alternating: rejax 0.1.3's own PPO (``jit(vmap(train))``, in a venv the script
makes on first use under ``~/.cache/synjax-bench``, since rejax breaks on gymnax 1.0), synjax's single
``jit(vmap(train))`` scan (:func:`synjax.runner.experiment.run_seeds`, on the default devices and on one) and its
resumable runner (:func:`synjax.runner.experiment.run_experiment`: 20 jitted chunks, a checkpoint after each).
Prints the agent steps/s of each and the ratios against rejax (``--skip-rejax``: synjax only).

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


#: rejax's CartPole PPO settings (keraJLi/rejax configs/gymnax/cartpole.yaml: tanh, 64 x 64 actor and critic).
REJAX_PPO = {"num_envs": 5, "num_steps": 100, "update_epochs": 5, "num_minibatches": 5, "lr": 7.5e-4,
             "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
             "max_grad_norm": 0.5, "total_timesteps": 100_000}  # fmt: skip
#: rejax breaks on gymnax 1.0 (its old five-value ``step``): it runs in a venv of its own, made here on first use,
#: with the same jax as this process so that both sides compile with the same XLA
REJAX_VENV = "rejax-0.1.3"
#: one rejax run in that venv: argv = settings JSON, seed count; prints {"wall_s", "compile_s"} as JSON. Its
#: evaluation is synjax's: 10 deterministic episodes before and after training.
REJAX_CHILD = """
import json, sys, time
import jax
from rejax import PPO
from rejax.evaluate import evaluate
s, n = json.loads(sys.argv[1]), int(sys.argv[2])
algo = PPO.create(env="CartPole-v1", agent_kwargs={"activation": "tanh"}, num_envs=s["num_envs"],
                  num_steps=s["num_steps"], num_epochs=s["update_epochs"], num_minibatches=s["num_minibatches"],
                  learning_rate=s["lr"], gamma=s["gamma"], gae_lambda=s["gae_lambda"], clip_eps=s["clip_eps"],
                  ent_coef=s["ent_coef"], vf_coef=s["vf_coef"], max_grad_norm=s["max_grad_norm"],
                  total_timesteps=s["total_timesteps"], eval_freq=s["total_timesteps"])
def ten_episodes(algo, ts, rng):
    return evaluate(algo.make_act(ts), rng, algo.env, algo.env_params, 10, algo.env_params.max_steps_in_episode)
algo = algo.replace(eval_callback=ten_episodes)
keys = jax.random.split(jax.random.PRNGKey(0), n)
t0 = time.perf_counter()
compiled = jax.jit(jax.vmap(algo.train)).lower(keys).compile()
t1 = time.perf_counter()
jax.block_until_ready(compiled(keys))
print(json.dumps({"wall_s": time.perf_counter() - t1, "compile_s": t1 - t0}))
"""


def rejax_python() -> Path:
    """The venv's python with rejax 0.1.3 and gymnax < 1 (and this process's jax), made if absent."""
    from importlib.metadata import version

    from peer_venv import peer_python

    return peer_python(REJAX_VENV, ["rejax==0.1.3", "gymnax<1", f"jax=={version('jax')}",
                                    f"jaxlib=={version('jaxlib')}"])  # fmt: skip


def rejax_wall_time(settings: dict[str, Any], num_seeds: int) -> float:
    """Seconds of one run of rejax's PPO with ``settings`` for ``num_seeds`` seeds in one jit (compile apart)."""
    import subprocess

    from peer_venv import clean_env

    out = subprocess.run([str(rejax_python()), "-c", REJAX_CHILD, json.dumps(settings), str(num_seeds)],
                         capture_output=True, text=True, env=clean_env(), check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["wall_s"]


def bench_runner(seeds: tuple[int, ...], repeats: int = 3, run_rejax: bool = True) -> dict[str, Any]:
    """PPO with rejax's CartPole settings: rejax's own PPO (its venv, one CPU device), synjax's single
    ``jit(vmap(train))`` scan on its default devices (one per core on a CPU) and on one device, and synjax's
    chunked, checkpointed runner: ``repeats`` runs of each, alternating (so that load from other jobs hits all
    alike), best against best and median against median."""
    import tempfile

    import jax
    import numpy as np
    from jax.sharding import Mesh

    from synjax.agents import ppo
    from synjax.runner.experiment import run_experiment, run_seeds

    base = dataclasses.replace(ppo.PPOConfig(), env="CartPole-v1", progress=False, **REJAX_PPO)
    base = dataclasses.replace(base, eval_every=base.num_updates)
    one_device = Mesh(np.array(jax.devices()[:1]), ("seeds",))
    out: dict[str, Any] = {"settings": REJAX_PPO, "env_steps": base.env_steps, "devices": jax.device_count()}
    for n in seeds:
        config = dataclasses.replace(base, num_seeds=n)
        times: dict[str, list[float]] = {"rejax": [], "scan": [], "scan_1_device": [], "chunked": []}
        for _ in range(repeats):
            if run_rejax:
                times["rejax"].append(rejax_wall_time(REJAX_PPO, n))
            times["scan"].append(run_seeds(ppo.make_train(config), n).wall_time_s)
            if jax.device_count() > 1 and n > 1:
                times["scan_1_device"].append(run_seeds(ppo.make_train(config), n, mesh=one_device).wall_time_s)
            with tempfile.TemporaryDirectory() as tmp:
                cfg = dataclasses.replace(config, out=f"{tmp}/run")
                _, run = run_experiment("ppo", cfg, ppo.make_train, progress_total=cfg.env_steps,
                                        steps_per_seed=cfg.env_steps)  # fmt: skip
            times["chunked"].append(run.wall_time_s + run.checkpoint_time_s)
        out[n] = {name: {"best_s": min(t), "median_s": float(np.median(t)), "all_s": t,
                         "steps_per_s": config.env_steps * n / min(t)} for name, t in times.items() if t}  # fmt: skip
    return out


def format_runner(result: dict[str, Any]) -> str:
    head = (f"PPO with rejax's CartPole settings, {result['env_steps']} env steps per seed, synjax on "
            f"{result['devices']} device(s); agent steps/s of the best run, x rejax best to best (median to median)")
    lines = [head]
    names = {"rejax": "rejax 0.1.3", "scan": "synjax scan", "scan_1_device": "synjax scan, 1 device",
             "chunked": "synjax chunked + checkpoints"}  # fmt: skip
    for n, r in result.items():
        if not isinstance(n, int):
            continue
        parts = []
        for name, t in r.items():
            vs = ""
            if "rejax" in r and name != "rejax":
                vs = (f" x{r['rejax']['best_s'] / t['best_s']:.2f} "
                      f"({r['rejax']['median_s'] / t['median_s']:.2f})")  # fmt: skip
            parts.append(f"{names[name]} {t['steps_per_s']:,.0f}{vs}")
        lines.append(f"  {n} seed(s), {len(r['scan']['all_s'])} runs each: " + "; ".join(parts))
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
    p.add_argument("--skip-runner", action="store_true", help="do not run the runner section (rejax side by side)")
    p.add_argument("--skip-rejax", action="store_true", help="the runner section without rejax")
    p.add_argument("--repeats", type=int, default=3, help="runs of each side in the runner section")
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
        results["runner"] = bench_runner(seeds, args.repeats, not args.skip_rejax)
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
