"""ShowerEnv PPO: greedy (mode) against sampled evaluation, per seed, with a diagnosis of each greedy failure.

Trains ``synjax ppo --preset shower-tuned`` in-process (``run_seeds(ppo.make_train(config))``: the keys of
``synjax ppo --seed S``), then for every seed computes, without noise (the preset's default):

- ``train``: the run's own last ``train_return`` and ``eval_return`` (10 greedy episodes, random starts);
- ``greedy``: the mode policy's return from each of the 7 starts (35..41; deterministic, so one episode each)
  and their mean, the exact expectation over the uniform start;
- ``sampled``: the sampled policy's exact expected return over the uniform start (the state is the temperature
  alone, so the temperature distribution is propagated through the 60 steps; no Monte Carlo noise), and a
  Monte Carlo check over ``--episodes`` episodes per start.

For every greedy failure (a start whose greedy return is below ``--fail-below``) it prints that start's greedy
trajectory until a temperature repeats (temperature, action probabilities, chosen action), the policy at
temperatures 30..46, and how often the sampled policy visits the failure's temperatures (expected visits per
episode).

    python scripts/shower_greedy.py --seeds 0,1,2 --num-seeds 16 --sample-std
    python scripts/shower_greedy.py --seeds 3,4,5,6
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from synjax.agents import losses, ppo
from synjax.agents.config import make_env
from synjax.agents.on_policy import make_network
from synjax.envs import shower
from synjax.runner.experiment import run_seeds

ACTIONS = "-=+"  # cooler, keep, warmer
STARTS = np.arange(shower.START_CENTER - shower.START_SPREAD, shower.START_CENTER + shower.START_SPREAD + 1)
TEMPS = np.arange(shower.T_MIN, shower.T_MAX + 1)


def sample_std_normalize(x):
    """SB3's advantage standardization: torch's sample std (ddof=1)."""
    return (x - x.mean()) / (x.std(ddof=1) + 1e-8)


def policy_table(config, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, 101, 3) action probabilities and (S, 101) values at every temperature 0..100, and (S, 2) the
    observation statistics (mean, std) each seed ended with (NaN without observation normalization)."""
    env, env_params = make_env(config)
    graphdef, _ = nnx.split(make_network(config, env, env_params, nnx.Rngs(0)))
    obs = jnp.asarray(TEMPS, jnp.float32)[:, None]

    def one(state):
        model = nnx.merge(graphdef, state)
        dist, value, _ = model(obs, (), jnp.zeros((obs.shape[0],), bool))
        if model.obs_norm is None:
            stats = jnp.full((2,), jnp.nan)
        else:
            stats = jnp.stack([model.obs_norm.mean[...][0], jnp.sqrt(model.obs_norm.var[...][0])])
        return dist.probs, value, stats

    probs, values, stats = jax.jit(jax.vmap(one))(params)
    return np.asarray(probs, np.float64), np.asarray(values), np.asarray(stats)


def step_temp(t, a):
    return int(np.clip(t + a - 1, shower.T_MIN, shower.T_MAX))


def reward(t) -> float:
    return 1.0 if shower.COMFORT_LOW <= t <= shower.COMFORT_HIGH else -1.0


def greedy_returns(probs: np.ndarray) -> np.ndarray:
    """(7,) return of the mode policy (argmax probabilities, as ``dist.mode()``) from each start."""
    greedy = probs.argmax(-1)
    out = []
    for t0 in STARTS:
        t, ret = int(t0), 0.0
        for _ in range(shower.EPISODE_STEPS):
            t = step_temp(t, greedy[t])
            ret += reward(t)
        out.append(ret)
    return np.asarray(out)


def sampled_exact(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(7,) expected return of the sampled policy from each start, and (101,) expected visits per episode to each
    temperature (observations the policy acts on, start included) under the uniform start."""
    n = len(TEMPS)
    trans = np.zeros((n, n))
    for t in TEMPS:
        for a in range(3):
            trans[t, step_temp(t, a)] += probs[t, a]
    r = np.asarray([reward(t) for t in TEMPS])
    d = np.zeros((len(STARTS), n))
    d[np.arange(len(STARTS)), STARTS] = 1.0
    ret = np.zeros(len(STARTS))
    visits = np.zeros(n)
    for _ in range(shower.EPISODE_STEPS):
        visits += d.mean(0)
        d = d @ trans
        ret += d @ r
    return ret, visits


def sampled_monte_carlo(probs: np.ndarray, episodes: int, rng: np.random.Generator) -> float:
    """Mean return of ``episodes`` sampled episodes from each of the 7 starts."""
    cum = probs.cumsum(-1)
    t = np.repeat(STARTS, episodes)
    ret = np.zeros(t.shape)
    for _ in range(shower.EPISODE_STEPS):
        a = (rng.random(t.shape)[:, None] > cum[t]).sum(-1).clip(0, 2)
        t = np.clip(t + a - 1, shower.T_MIN, shower.T_MAX)
        ret += np.where((t >= shower.COMFORT_LOW) & (t <= shower.COMFORT_HIGH), 1.0, -1.0)
    return float(ret.mean())


def fmt_probs(p) -> str:
    return " ".join(f"{x:.3f}" for x in p)


def greedy_trajectory(probs: np.ndarray, t0: int) -> list[str]:
    """The mode policy's steps from ``t0`` until a temperature repeats."""
    greedy = probs.argmax(-1)
    seen, t, lines = set(), int(t0), []
    while t not in seen:
        seen.add(t)
        a = int(greedy[t])
        lines.append(f"      T={t:3d} r={reward(t):+.0f} p(-,=,+)=[{fmt_probs(probs[t])}] -> {ACTIONS[a]}")
        t = step_temp(t, a)
    lines.append(f"      T={t:3d} repeats")
    return lines


def classify(probs: np.ndarray, t0: int) -> str:
    """Where the mode policy from ``t0`` ends: ``stuck at T`` (keep outside the band), ``rests at T`` (keep
    inside it) or ``oscillation`` (a cycle of 2+ temperatures)."""
    greedy = probs.argmax(-1)
    seen, t = [], int(t0)
    while t not in seen:
        seen.append(t)
        t = step_temp(t, greedy[t])
    cycle = seen[seen.index(t) :]
    if len(cycle) == 1:
        c = cycle[0]
        return f"stuck at {c} (keep, max prob {probs[c].max():.3f})" if reward(c) < 0 else f"rests at {c}"
    inside = sum(reward(c) > 0 for c in cycle)
    return (f"oscillation {'<->'.join(map(str, cycle))} ({inside} of {len(cycle)} in the band; max probs "
            f"{', '.join(f'{probs[c].max():.3f}' for c in cycle)})")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0", help="comma-separated root seeds (synjax ppo --seed)")
    p.add_argument("--num-seeds", type=int, default=16, help="seeds per root seed (the preset's 16)")
    p.add_argument(
        "--sample-std",
        action="store_true",
        help="standardize advantages with the sample std (ddof=1), as SB3 (docs/host.md)",
    )
    p.add_argument("--total-timesteps", type=int, default=None, help="override the preset's 100k")
    p.add_argument("--no-norm-obs", action="store_true", help="train without observation normalization")
    p.add_argument("--set", default="", help="extra PPOConfig fields, JSON, e.g. '{\"ent_coef\": 0.01}'")
    p.add_argument("--episodes", type=int, default=32, help="Monte Carlo sampled episodes per start")
    p.add_argument("--fail-below", type=float, default=50.0, help="a start's greedy return below this fails")
    p.add_argument("--json", default=None, help="write the per-seed numbers here")
    args = p.parse_args()

    if args.sample_std:
        losses.normalize = sample_std_normalize  # ppo_loss calls losses.normalize at trace time
    changes = {"num_seeds": args.num_seeds, "progress": False}
    if args.total_timesteps:
        changes["total_timesteps"] = args.total_timesteps
    if args.no_norm_obs:
        changes["norm_obs"] = False
    changes.update(json.loads(args.set) if args.set else {})
    base = dataclasses.replace(ppo.PRESETS["shower-tuned"], **changes)
    rng = np.random.default_rng(0)
    rows = []
    for root in [int(s) for s in args.seeds.split(",")]:
        config = dataclasses.replace(base, seed=root)
        t0 = time.perf_counter()
        run = run_seeds(ppo.make_train(config), config.num_seeds, root)
        out = run.output
        probs, values, stats = policy_table(config, out.params)
        print(
            f"== root seed {root}: {config.num_seeds} seeds x {config.env_steps} steps, "
            f"{time.perf_counter() - t0:.0f} s{' (sample std)' if args.sample_std else ''}",
            flush=True,
        )
        print("  seed | run train  run eval | greedy per start 35..41          mean | sampled exact  MC")
        for i in range(config.num_seeds):
            g = greedy_returns(probs[i])
            s, visits = sampled_exact(probs[i])
            mc = sampled_monte_carlo(probs[i], args.episodes, rng)
            row = {
                "root": root,
                "seed": i,
                "train_return": float(out.final["train_return"][i]),
                "run_eval_return": float(out.final["eval_return"][i]),
                "greedy": g.tolist(),
                "greedy_mean": float(g.mean()),
                "sampled_exact": float(s.mean()),
                "sampled_mc": mc,
                "obs_mean": float(stats[i, 0]),
                "obs_std": float(stats[i, 1]),
            }
            rows.append(row)
            fails = [int(t) for t, r in zip(STARTS, g) if r < args.fail_below]
            flag = "  <-- greedy fails" if fails else ""
            print(
                f"  {i:4d} | {row['train_return']:9.2f} {row['run_eval_return']:9.2f} | "
                f"{' '.join(f'{x:4.0f}' for x in g)} {g.mean():6.2f} | {s.mean():13.2f} {mc:5.2f}{flag}"
            )
            if not fails:
                continue
            row["failures"] = {}
            for t in fails:
                kind = classify(probs[i], t)
                row["failures"][t] = kind
                print(f"    start {t}: greedy return {g[STARTS == t][0]:.0f}, {kind}")
                print("\n".join(greedy_trajectory(probs[i], t)))
            curve = np.asarray(out.metrics["eval_return"][i])
            row["eval_curve"] = curve.tolist()
            print(
                f"    obs norm: mean {stats[i, 0]:.3f}, std {stats[i, 1]:.3f}; the run's greedy eval_return at "
                f"steps {out.steps[i, 0]}..{out.steps[i, -1]}: {' '.join(f'{x:.1f}' for x in curve)}"
            )
            print(
                "    policy at 30..46 (p(-), p(=), p(+), V, expected visits per episode of the sampled policy):"
            )
            for t in range(30, 47):
                band = "*" if reward(t) > 0 else " "
                print(
                    f"      {t:3d}{band} [{fmt_probs(probs[i, t])}] {ACTIONS[probs[i, t].argmax()]} "
                    f"V={values[i, t]:7.2f} visits={visits[t]:.4f}"
                )
    n = len(rows)
    fails = [r for r in rows if r["greedy_mean"] < args.fail_below or min(r["greedy"]) < args.fail_below]
    named = ", ".join("root {root} seed {seed}: {greedy_mean:.2f}".format(**r) for r in fails) or "none"
    print(f"\n{n} seeds: greedy failures {len(fails)} ({named})")
    for key in ("train_return", "run_eval_return", "greedy_mean", "sampled_exact", "sampled_mc"):
        v = np.asarray([r[key] for r in rows])
        print(f"  {key:16s} mean {v.mean():7.3f}  median {np.median(v):7.3f}  min {v.min():7.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
