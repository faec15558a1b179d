"""The host loop against Stable-Baselines3 (CPU PyTorch), side by side in one process, ratios printed.

Sections (``--sections``, comma-separated):
  speed-breakout    A2C on Breakout, 4 environments, standard preprocessing: SB3 ``CnnPolicy`` with
                    ``make_atari_env("BreakoutNoFrameskip-v4")`` + ``VecFrameStack(4)`` versus ``synjax atari
                    --algo a2c --num-envs 4``; agent steps/s of training (synjax: compile time apart), and synjax
                    with 2 seeds x 4 environments in one loop.
  speed-carracing   PPO on CarRacing-v3, 4 environments, frame stack 4: SB3 ``CnnPolicy`` (defaults) versus
                    ``synjax carracing --algo ppo``; agent steps/s.
  cnn               The Nature CNN actor-critic's gradient (forward + backward, 84x84x4 frames, batches of 20, 64
                    and 256): synjax's XLA CPU setting (``synjax.cpu_flags``), jaxlib's default (YNNPACK
                    convolutions) and PyTorch, milliseconds per call; each JAX setting in its own process.
  speed-breakout-history  speed-breakout's A2C (1 seed) for SB3, this tree and the git revision ``--against``
                    (default ec44b5d, checked out into a temporary folder), ``--repeats`` runs each, alternating.
  quality-notebook  The original notebook's Breakout setting (ALE/Breakout-v5 inside SB3's Atari wrapper: 16
                    frames per action, sticky actions), A2C with SB3's defaults, 4 environments, ``--steps`` per
                    seed, ``--seeds`` seeds: SB3 one seed after another, synjax all seeds in one loop; mean score
                    of ``--eval-episodes`` whole games per seed (policy sampled, as both evaluate).

Usage: ``python scripts/bench_host.py [--sections speed-breakout,speed-carracing,cnn,quality-notebook]
[--speed-steps 20000] [--carracing-steps 8192] [--steps 100000] [--seeds 4] [--sb3-seeds 4] [--eval-episodes 10]
[--sb3-seed-start 0] [--skip-synjax] [--sb3-device cpu] [--torch-threads 2] [--json out.json]``.
Needs ``pip install -e ".[bench,host]"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS = ("speed-breakout", "speed-carracing", "cnn", "quality-notebook", "speed-breakout-history")
CNN_BATCHES = (20, 64, 256)


def _sb3_atari_env(env_id: str, n_envs: int, seed: int):
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    return VecFrameStack(make_atari_env(env_id, n_envs=n_envs, seed=seed), n_stack=4)


def sb3_learn(
    algo: str, env: Any, steps: int, seed: int, device: str = "cpu", **kwargs: Any
) -> tuple[Any, float]:
    """``(model, seconds of model.learn(steps))`` for SB3 ``algo`` ("A2C" or "PPO") with a CnnPolicy on CPU."""
    import stable_baselines3

    model = getattr(stable_baselines3, algo)("CnnPolicy", env, seed=seed, device=device, verbose=0, **kwargs)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model, time.perf_counter() - t0


def synjax_run(module: Any, config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a host experiment into a temporary folder: ``(summary.json, info)``."""
    with tempfile.TemporaryDirectory() as tmp:
        path, info = module.run(dataclasses.replace(config, out=str(Path(tmp) / "run"), progress=False))
        return json.loads((path / "summary.json").read_text()), info


def speed_breakout(steps: int, sb3_device: str = "cpu") -> dict[str, Any]:
    from synjax.host import atari

    _, wall = sb3_learn("A2C", _sb3_atari_env("BreakoutNoFrameskip-v4", 4, 0), steps, 0, sb3_device)
    out: dict[str, Any] = {"steps": steps, "sb3_steps_per_s": steps / wall}
    for seeds in (1, 2):
        config = dataclasses.replace(
            atari.PRESETS["a2c"], num_seeds=seeds, num_envs=4, total_timesteps=steps, eval_episodes=0
        )
        summary, _ = synjax_run(atari, config)
        out[f"synjax_{seeds}_seeds"] = {
            "steps_per_s": summary["steps_per_s"],
            "compile_s": summary["compile_time_s"],
            "ratio": summary["steps_per_s"] / out["sb3_steps_per_s"],
        }
    return out


#: one synjax Breakout A2C run (4 envs, no evaluation) in a child process: argv = steps; prints agent steps/s
HISTORY_CHILD = """
import dataclasses, json, sys, tempfile
from pathlib import Path
from synjax.host import atari
config = dataclasses.replace(atari.PRESETS["a2c"], num_seeds=1, num_envs=4, total_timesteps=int(sys.argv[1]),
                             eval_episodes=0, progress=False)
with tempfile.TemporaryDirectory() as tmp:
    path, _ = atari.run(dataclasses.replace(config, out=str(Path(tmp) / "run")))
    print(json.loads((path / "summary.json").read_text())["steps_per_s"])
"""


def speed_breakout_history(steps: int, against: str, repeats: int, sb3_device: str = "cpu") -> dict[str, Any]:
    """Breakout A2C at 4 envs: SB3, this tree's synjax and synjax at git revision ``against`` (checked out into
    a temporary folder), ``repeats`` runs of each, alternating; each synjax run in a process of its own."""
    repo = Path(__file__).resolve().parents[1]
    runs: dict[str, list[float]] = {"sb3": [], "head": [], against: []}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(old), against],
                       check=True, capture_output=True)  # fmt: skip
        try:
            for _ in range(repeats):
                _, wall = sb3_learn("A2C", _sb3_atari_env("BreakoutNoFrameskip-v4", 4, 0), steps, 0, sb3_device)
                runs["sb3"].append(steps / wall)
                for name, tree in (("head", repo), (against, old)):
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    out = subprocess.run([sys.executable, "-c", HISTORY_CHILD, str(steps)], cwd=tree, env=env,
                                         capture_output=True, text=True, check=True)  # fmt: skip
                    runs[name].append(float(out.stdout.strip().splitlines()[-1]))
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(old)], check=False)
    best = {name: max(r) for name, r in runs.items()}
    return {"steps": steps, "against": against, "runs": runs, "best": best,
            "ratio_head": best["head"] / best["sb3"], "ratio_against": best[against] / best["sb3"]}  # fmt: skip


def speed_carracing(steps: int, sb3_device: str = "cpu") -> dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from synjax.host import carracing

    del gym
    env = VecFrameStack(make_vec_env("CarRacing-v3", n_envs=4, seed=0), n_stack=4)
    _, wall = sb3_learn("PPO", env, steps, 0, sb3_device)
    out: dict[str, Any] = {"steps": steps, "sb3_steps_per_s": steps / wall}
    config = dataclasses.replace(
        carracing.PRESETS["ppo"], num_seeds=1, total_timesteps=steps, eval_episodes=0
    )
    summary, _ = synjax_run(carracing, config)
    out["synjax_1_seeds"] = {
        "steps_per_s": summary["steps_per_s"],
        "compile_s": summary["compile_time_s"],
        "ratio": summary["steps_per_s"] / out["sb3_steps_per_s"],
    }
    return out


def _time_ms(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def jax_cnn_gradient_ms() -> dict[str, float]:
    """Milliseconds per gradient of ``ConvActorCritic`` (4 actions) for each of :data:`CNN_BATCHES`, in this
    process's XLA setting."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from synjax.agents.cnn import ConvActorCritic

    graph, state = nnx.split(ConvActorCritic((4, 84, 84), 4, rngs=nnx.Rngs(0)))

    def loss(state, obs):
        pi, value = nnx.merge(graph, state)(obs)
        return (pi.entropy() + value).mean()

    grad = jax.jit(jax.grad(loss))
    out = {}
    for batch in CNN_BATCHES:
        obs = jax.random.randint(jax.random.key(batch), (batch, 4, 84, 84), 0, 256).astype(jnp.uint8)
        out[str(batch)] = _time_ms(lambda obs=obs: jax.block_until_ready(grad(state, obs)), 20)
    return out


def torch_cnn_gradient_ms() -> dict[str, float]:
    """The same network in PyTorch (SB3's ``NatureCNN`` layout), milliseconds per gradient."""
    import torch

    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(4, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(), nn.Conv2d(64, 64, 3, 1),
        nn.ReLU(), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 5),
    )  # fmt: skip
    out = {}
    for batch in CNN_BATCHES:
        obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)

        def step(obs=obs):
            net.zero_grad()
            net(obs.float() / 255.0).sum().backward()

        out[str(batch)] = _time_ms(step, 20)
    return out


def cnn() -> dict[str, Any]:
    """JAX in subprocesses (XLA reads its flags once per process), PyTorch here."""
    from synjax import cpu_flags

    # "+individual_convolution" adds what jaxlib 0.10 has by default; naming the flag stops synjax adding its own
    default = "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"
    out: dict[str, Any] = {}
    for name, flag in (("synjax", cpu_flags.CONV_FLAG), ("jaxlib_default", default)):
        env = {**os.environ, "XLA_FLAGS": flag}
        proc = subprocess.run(
            [sys.executable, __file__, "--cnn-worker"], env=env, capture_output=True, text=True, check=True
        )
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["torch"] = torch_cnn_gradient_ms()
    return out


def quality_notebook(
    steps: int,
    seeds: int,
    eval_episodes: int,
    sb3_seeds: int,
    sb3_device: str = "cpu",
    sb3_seed_start: int = 0,
    run_synjax: bool = True,
) -> dict[str, Any]:
    """SB3 seeds ``sb3_seed_start ..`` one after another, then synjax's ``seeds`` in one loop (unless skipped)."""
    from stable_baselines3.common.evaluation import evaluate_policy

    from synjax.host import atari

    sb3_scores, sb3_wall = [], 0.0
    for seed in range(sb3_seed_start, sb3_seed_start + sb3_seeds):
        model, wall = sb3_learn("A2C", _sb3_atari_env("ALE/Breakout-v5", 4, seed), steps, seed, sb3_device)
        sb3_wall += wall
        eval_env = _sb3_atari_env("ALE/Breakout-v5", 1, 10_000 + seed)
        # Monitor sits inside SB3's Atari wrapper: evaluate_policy reports whole games' unclipped scores
        rewards, _ = evaluate_policy(
            model, eval_env, n_eval_episodes=eval_episodes, deterministic=False, return_episode_rewards=True
        )
        sb3_scores.append(float(np.mean(rewards)))
        print(f"  SB3 seed {seed}: {sb3_scores[-1]:.1f}", flush=True)
    out = {
        "steps": steps,
        "sb3_seeds": list(range(sb3_seed_start, sb3_seed_start + sb3_seeds)),
        "sb3_scores": sb3_scores,
        "sb3_steps_per_s": sb3_seeds * steps / sb3_wall,
    }
    if run_synjax:
        config = dataclasses.replace(
            atari.PRESETS["notebook"], num_seeds=seeds, total_timesteps=steps, eval_episodes=eval_episodes
        )
        summary, info = synjax_run(atari, config)
        out["seeds"] = seeds
        out["synjax_scores"] = info["eval_scores"].mean(axis=1).tolist()
        out["synjax_steps_per_s"] = summary["steps_per_s"]
        out["synjax_compile_s"] = summary["compile_time_s"]
    return out


def _fmt(name: str, r: dict[str, Any]) -> str:
    if name == "cnn":
        return "\n".join(
            [f"cnn gradient, ms per call for batches {', '.join(map(str, CNN_BATCHES))}:"]
            + [f"  {k:15s} " + "  ".join(f"{v[str(b)]:7.1f}" for b in CNN_BATCHES) for k, v in r.items()]
            + [f"  jaxlib default / synjax: {r['jaxlib_default']['256'] / r['synjax']['256']:.2f}x at 256"]
        )
    if name == "speed-breakout-history":
        runs = ", ".join(f"{k} {' / '.join(f'{x:.0f}' for x in v)}" for k, v in r["runs"].items())
        return (f"{name} ({r['steps']} agent steps, 4 envs): agent steps/s per run: {runs}; best against SB3's "
                f"best: this tree {r['ratio_head']:.2f}x, {r['against']} {r['ratio_against']:.2f}x")  # fmt: skip
    if name.startswith("speed"):
        rows = [f"{name} ({r['steps']} agent steps per seed): SB3 {r['sb3_steps_per_s']:.0f} steps/s"]
        rows += [
            f"  synjax {k.split('_')[1]} seed(s): {v['steps_per_s']:.0f} agent steps/s (compile "
            f"{v['compile_s']:.1f} s), ratio {v['ratio']:.2f}x"
            for k, v in r.items()
            if k.startswith("synjax")
        ]
        return "\n".join(rows)
    sd = lambda x: x.std(ddof=1) if len(x) > 1 else 0.0
    sb3 = np.array(r["sb3_scores"])
    line = (
        f"{name} ({r['steps']} steps): SB3 (seeds {r['sb3_seeds']}) mean {sb3.mean():.2f} +- {sd(sb3):.2f} "
        f"{sb3.round(1).tolist()} at {r['sb3_steps_per_s']:.0f} steps/s"
    )
    if "synjax_scores" not in r:
        return line + "; synjax skipped"
    ours = np.array(r["synjax_scores"])
    return (
        f"{line}; synjax mean {ours.mean():.2f} +- {sd(ours):.2f} {ours.round(1).tolist()} at "
        f"{r['synjax_steps_per_s']:.0f} steps/s"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--speed-steps", type=int, default=20_000)
    p.add_argument("--carracing-steps", type=int, default=8192)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--sb3-seeds", type=int, default=0, help="SB3's seeds in quality-notebook (0 = --seeds)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--sb3-seed-start", type=int, default=0, help="quality-notebook: SB3's first seed")
    p.add_argument("--skip-synjax", action="store_true", help="quality-notebook: run SB3's seeds only")
    p.add_argument("--json", default="")
    p.add_argument("--sb3-device", default="cpu", help="torch device of Stable-Baselines3 (cpu, cuda)")
    p.add_argument(
        "--torch-threads", type=int, default=2, help="torch CPU threads (default: the 2-core CPU's)"
    )
    p.add_argument("--against", default="ec44b5d", help="speed-breakout-history: the git revision to time")
    p.add_argument("--repeats", type=int, default=2, help="speed-breakout-history: runs of each side")
    p.add_argument("--cnn-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cnn_worker:
        print(json.dumps(jax_cnn_gradient_ms()))
        return 0
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; allowed: {', '.join(SECTIONS)}")
    if (
        min(
            args.speed_steps,
            args.carracing_steps,
            args.steps,
            args.seeds,
            args.eval_episodes,
            args.torch_threads,
        )
        < 1
    ):
        p.error("step counts, --seeds, --eval-episodes and --torch-threads must be >= 1")
    if args.sb3_seed_start < 0:
        p.error(f"--sb3-seed-start {args.sb3_seed_start}: must be >= 0")
    import torch

    if args.sb3_device != "cpu" and not torch.cuda.is_available():
        p.error(f"--sb3-device {args.sb3_device!r}: this torch sees no CUDA device; allowed: cpu")
    torch.set_num_threads(args.torch_threads)  # SB3's default thread count contends with its own env loop
    results: dict[str, Any] = {}
    for name in sections:
        if name == "speed-breakout":
            results[name] = speed_breakout(args.speed_steps, args.sb3_device)
        elif name == "speed-carracing":
            results[name] = speed_carracing(args.carracing_steps, args.sb3_device)
        elif name == "cnn":
            results[name] = cnn()
        elif name == "speed-breakout-history":
            results[name] = speed_breakout_history(args.speed_steps, args.against, args.repeats, args.sb3_device)
        else:
            results[name] = quality_notebook(
                args.steps,
                args.seeds,
                args.eval_episodes,
                args.sb3_seeds or args.seeds,
                args.sb3_device,
                args.sb3_seed_start,
                not args.skip_synjax,
            )
        print(_fmt(name, results[name]), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
