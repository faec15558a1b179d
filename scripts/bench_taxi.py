"""Agent steps per second on Taxi: synjax (seeds vmapped in one jit) against the plain NumPy loop a user would write.

Two sections, each timed in this one process so that both sides see the same machine load:

1. tabular Q-learning (preset ``notebook``): ``synjax.tabular.qlearning.make_train`` at 1, 64, 256 and 1024
   seeds against the original script's loop (Gymnasium ``Taxi-v4``, a NumPy table, one agent, the same
   hyperparameters and episode budget);
2. the STDP + Q hybrid (preset ``tuned``): ``synjax.snn.stdp_q.make_train`` against ``scripts/numpy_stdp_q.py``,
   the same spiking algorithm as a NumPy loop (skipped with a message when part 2 is not in the tree).

Steps are agent (environment) steps actually taken; synjax's compile time is reported separately and is not in
its steps/s. Episodes get shorter as the agents learn, so both sides run the same number of episodes.

    python scripts/bench_taxi.py                       # the full benchmark (several minutes)
    python scripts/bench_taxi.py --episodes 1000 --seeds 1,64 --hybrid-episodes 100 --hybrid-seeds 1,64
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

from synjax.runner.experiment import run_seeds
from synjax.tabular import evaluate
from synjax.tabular.experiment import PRESETS as TABULAR_PRESETS
from synjax.tabular.qlearning import TabularQConfig, make_train


def numpy_qlearning(config: TabularQConfig, seed: int, num_episodes: int) -> tuple[np.ndarray, int]:
    """The original script's loop on Gymnasium Taxi-v4 (epsilon-greedy; terminal states not bootstrapped).

    Returns (Q table (500, 6), agent steps taken).
    """
    import gymnasium as gym

    env = gym.make("Taxi-v4", is_rainy=config.is_rainy, rainy_probability=config.rainy_probability)
    rng = np.random.default_rng(seed)
    q = np.zeros((500, 6))
    epsilon, steps = config.epsilon_start, 0
    state, _ = env.reset(seed=seed)
    for episode in range(num_episodes):
        if episode:
            state, _ = env.reset()
        for _ in range(config.max_steps):
            if rng.random() < epsilon:
                action = int(rng.integers(6))
            else:
                action = int(np.argmax(q[state]))
            new_state, reward, terminated, truncated, _ = env.step(action)
            target = reward if terminated else reward + config.gamma * np.max(q[new_state])
            q[state, action] += config.alpha * (target - q[state, action])
            state = new_state
            steps += 1
            if terminated or truncated:
                break
        epsilon = max(config.epsilon_end, epsilon * config.epsilon_decay)
    return q, steps


def time_synjax(make, config, seeds: int) -> dict:
    """Compile and run ``make(config)`` for ``seeds`` seeds; agent steps from ``extras['agent_steps']``."""
    sweep = run_seeds(make(config), seeds, 0)
    steps = int(np.asarray(sweep.output.extras["agent_steps"]).astype(np.int64).sum())
    greedy = np.asarray(sweep.output.final["greedy_return"], np.float64)
    return {
        "seeds": seeds,
        "compile_s": sweep.compile_time_s,
        "wall_s": sweep.wall_time_s,
        "agent_steps": steps,
        "steps_per_s": steps / sweep.wall_time_s,
        "greedy_return_mean": float(greedy.mean()),
    }


def time_numpy(fn, config, episodes: int) -> dict:
    t0 = time.perf_counter()
    q, steps = fn(config, 0, episodes)
    wall = time.perf_counter() - t0
    greedy = float(np.mean(np.asarray(evaluate.greedy_returns_all_starts(np.asarray(q, np.float32)))))
    return {
        "seeds": 1,
        "wall_s": wall,
        "agent_steps": int(steps),
        "steps_per_s": steps / wall,
        "greedy_return_mean": greedy,
    }


def print_rows(title: str, reference: dict, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(
        f"  {'runner':<22}{'seeds':>6}{'compile s':>11}{'run s':>9}{'agent steps':>14}{'steps/s':>13}"
        f"{'x numpy':>9}{'greedy':>8}"
    )
    print(
        f"  {'numpy loop (1 agent)':<22}{1:>6}{'-':>11}{reference['wall_s']:>9.2f}{reference['agent_steps']:>14,}"
        f"{reference['steps_per_s']:>13,.0f}{1.0:>9.1f}{reference['greedy_return_mean']:>8.2f}"
    )
    for r in rows:
        print(
            f"  {'synjax jit(vmap)':<22}{r['seeds']:>6}{r['compile_s']:>11.2f}{r['wall_s']:>9.2f}"
            f"{r['agent_steps']:>14,}{r['steps_per_s']:>13,.0f}{r['ratio']:>9.1f}{r['greedy_return_mean']:>8.2f}"
        )


def bench(label, make, config, numpy_fn, seeds: list[int], episodes: int, numpy_episodes: int) -> dict:
    print(f"[{label}] numpy reference, {numpy_episodes} episodes ...", flush=True)
    reference = time_numpy(numpy_fn, config, numpy_episodes)
    rows = []
    for s in seeds:
        print(f"[{label}] synjax, {s} seeds x {episodes} episodes ...", flush=True)
        row = time_synjax(make, dataclasses.replace(config, num_seeds=s, num_episodes=episodes), s)
        row["ratio"] = row["steps_per_s"] / reference["steps_per_s"]
        rows.append(row)
    print_rows(f"{label}: {episodes} episodes per seed (numpy: {numpy_episodes})", reference, rows)
    return {"episodes": episodes, "numpy_episodes": numpy_episodes, "numpy": reference, "synjax": rows}


def hybrid_pieces():
    """(StdpQConfig preset, make_train, numpy run) of part 2, or None with the reason."""
    try:
        from synjax.snn.experiment import PRESETS
        from synjax.snn.stdp_q import make_train as stdp_make_train

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import numpy_stdp_q
    except ImportError as e:
        return None, f"the STDP + Q hybrid is not in the tree yet ({e})"
    preset = "tuned" if "tuned" in PRESETS else next(iter(PRESETS))
    return (preset, PRESETS[preset], stdp_make_train, numpy_stdp_q.run), ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000, help="tabular episodes per seed (both sides)")
    parser.add_argument(
        "--numpy-episodes", type=int, default=None, help="tabular numpy episodes (default: --episodes)"
    )
    parser.add_argument("--seeds", default="1,64,256,1024", help="comma-separated seed counts for synjax")
    parser.add_argument(
        "--hybrid-episodes", type=int, default=1000, help="hybrid episodes per seed (both sides)"
    )
    parser.add_argument("--hybrid-numpy-episodes", type=int, default=None, help="default: --hybrid-episodes")
    parser.add_argument("--hybrid-seeds", default="1,64,256,1024")
    parser.add_argument("--skip-tabular", action="store_true")
    parser.add_argument("--skip-hybrid", action="store_true")
    parser.add_argument("--json", default="", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    hybrid_seeds = [int(s) for s in args.hybrid_seeds.split(",") if s]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "jax_devices": [str(d) for d in jax.devices()],
            "jax": jax.__version__,
            "load_average_at_start": os.getloadavg()[0],
        },
        "command": " ".join(["python scripts/bench_taxi.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    if not args.skip_tabular:
        config = TABULAR_PRESETS["notebook"]
        result["tabular"] = bench(
            "tabular Q-learning, preset notebook",
            make_train,
            config,
            numpy_qlearning,
            seeds,
            args.episodes,
            args.numpy_episodes or args.episodes,
        )
    if not args.skip_hybrid:
        pieces, why = hybrid_pieces()
        if pieces is None:
            print(f"\n[hybrid] skipped: {why}")
            result["hybrid"] = {"skipped": why}
        else:
            preset, config, stdp_make, numpy_run = pieces
            result["hybrid"] = bench(
                f"STDP + Q hybrid, preset {preset}",
                stdp_make,
                config,
                numpy_run,
                hybrid_seeds,
                args.hybrid_episodes,
                args.hybrid_numpy_episodes or args.hybrid_episodes,
            )
            result["hybrid"]["preset"] = preset
    result["machine"]["load_average_at_end"] = os.getloadavg()[0]
    print(
        f"\nload average (1 min) at start {result['machine']['load_average_at_start']:.1f}, "
        f"at end {result['machine']['load_average_at_end']:.1f} on {os.cpu_count()} CPUs"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
