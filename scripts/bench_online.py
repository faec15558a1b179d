"""Online spiking learners side by side: e-prop, its BPTT twin, the frozen-hidden control, the non-spiking twin
and the three-factor (reward-modulated STDP) baseline, on one network, seeds and budget; and what one update
costs in memory and time.

    python scripts/bench_online.py learning --task masked [--num-seeds 4] [--total-timesteps 2000000]
    python scripts/bench_online.py memory              # peak temporary bytes of one update, 16 / 128 / 1024 steps
    python scripts/bench_online.py speed               # agent steps/s, e-prop and BPTT, 1 and 64 seeds
    python scripts/bench_online.py gradient            # e-prop against jax.grad (BPTT), exact and recurrent cases

``learning`` runs every variant of one task's preset (``synjax eprop --preset TASK``) in this process, one after
the other, and prints the medians of the final deterministic return with their 95% intervals, per-seed values
and steps/s; ``--out DIR`` (default ``runs/bench_online``) keeps each variant's results folder and a JSON of the
table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from synjax.agents import a2c
from synjax.agents import eprop as agent
from synjax.agents.config import make_env, parse_env_params
from synjax.agents.on_policy import StepData, make_network
from synjax.agents.rollout import Batch, Transition
from synjax.runs.compare import compare_seeds
from synjax.runs.plots import mean_ci95
from synjax.runs.results import read_metrics_csv, stats

#: (key, row label, settings over the preset)
VARIANTS = (
    ("eprop", "e-prop", {}),
    ("bptt", "BPTT twin (A2C through time)", {"learning": "bptt"}),
    ("frozen", "frozen hidden (read-out only)", {"learning": "frozen"}),
    ("random", "e-prop, random feedback", {"feedback": "random"}),
    ("twin", "e-prop, non-spiking twin (sigmoid)", {"neuron": "sigmoid"}),  # adaptive-sigmoid for ALIF
    ("rstdp", "three-factor R-STDP", {"learning": "rstdp"}),
)


def learning(args) -> None:
    if args.replot:
        out = Path(args.out) / (
            args.task + "".join(f"-{k}-{v}" for k, v in parse_env_params(args.set).items())
        )
        record = json.loads((out / "table.json").read_text())
        record["against_eprop"] = against_eprop(record["rows"])
        (out / "table.json").write_text(json.dumps(record, indent=1))
        plot(
            out / "curves.png",
            record["rows"],
            f"{record['env']}: {record['num_seeds']} seeds each (mean, 95% interval)",
        )
        print(markdown(record))
        return
    preset = agent.PRESETS[args.task]
    budget = {"total_timesteps": args.total_timesteps} if args.total_timesteps else {}
    base = dataclasses.replace(
        preset, num_seeds=args.num_seeds, progress=False, gif=False, overwrite=True, **budget
    )
    out = Path(args.out) / args.task
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for key, label, change in VARIANTS:
        if args.variants and key not in args.variants:
            continue
        if change.get("neuron") == "sigmoid" and base.neuron == "ALIF":  # the twin keeps the adaptation
            change = {**change, "neuron": "adaptive-sigmoid"}
        config = dataclasses.replace(base, out=str(out / key), **change)
        path, _ = agent.run(config)
        summary = json.loads((path / "summary.json").read_text())
        final = np.asarray(summary["final"]["eval_return"]["per_seed"], np.float64)
        mean = stats(final)
        row = {"key": key, "variant": label, "settings": change, "median": float(np.median(final)), "mean": mean["mean"],
               "ci95_mean": mean["ci95"], "per_seed": final.round(1).tolist(), "steps_per_s": summary["steps_per_s"],
               "wall_s": round(summary["wall_time_s"], 1), "folder": str(path)}  # fmt: skip
        rows.append(row)
        low, high = mean["ci95"]
        print(f"{label:<34} median {row['median']:7.1f}  mean {row['mean']:7.1f} [{low:6.1f}, {high:6.1f}]  "
              f"{summary['steps_per_s']:9.0f} steps/s  per seed {row['per_seed']}", flush=True)  # fmt: skip
    table = out / "table.json"
    if args.variants and table.exists():  # a rerun of some rows keeps the others
        kept = [r for r in json.loads(table.read_text())["rows"] if r.get("key") not in args.variants]
        rows = sorted(kept + rows, key=lambda r: [v[0] for v in VARIANTS].index(r.get("key", "eprop")))
    record = {"task": args.task, "env": base.env, "num_seeds": base.num_seeds, "total_timesteps": base.total_timesteps,
              "date": time.strftime("%Y-%m-%d"), "rows": rows, "against_eprop": against_eprop(rows)}  # fmt: skip
    (out / "table.json").write_text(json.dumps(record, indent=1))
    plot(out / "curves.png", rows, f"{base.env}: {base.num_seeds} seeds each (mean, 95% interval)")
    print(markdown(record))
    print(f"wrote {out / 'table.json'} and {out / 'curves.png'}")


def markdown(record) -> str:
    """The table of ``record`` (table.json) as Markdown rows: each variant's median, mean [95% interval], per-seed
    finals, and its comparison with e-prop."""
    lines = ["| variant | median | mean [95% interval] | per seed | e-prop vs it (Mann-Whitney p) |",
             "| --- | ---: | --- | --- | --- |"]  # fmt: skip
    for row in record["rows"]:
        low, high = row["ci95_mean"]
        versus = record.get("against_eprop", {}).get(row["variant"])
        cmp = "" if versus is None else f"p = {versus['mannwhitney_p']:.2f}"
        seeds = ", ".join(f"{v:g}" for v in row["per_seed"])
        lines.append(f"| {row['variant']} | {row['median']:.1f} | {row['mean']:.1f} [{low:.1f}, {high:.1f}] | {seeds} "
                     f"| {cmp} |")  # fmt: skip
    return "\n".join(lines)


def against_eprop(rows) -> dict:
    """Every other row's per-seed finals against e-prop's: the ratio of medians and of means, Welch's and
    Mann-Whitney's p (:func:`synjax.runs.compare.compare_seeds`)."""
    first = next((r for r in rows if r.get("key", "eprop") == "eprop" and r["variant"] == "e-prop"), None)
    if first is None or len(first["per_seed"]) < 2:
        return {}
    out = {}
    for row in rows:
        if row is first:
            continue
        c = compare_seeds(first["per_seed"], row["per_seed"])
        out[row["variant"]] = {
            "eprop_over_it_median": first["median"] / row["median"] if row["median"] else None,
            "eprop_over_it_mean": first["mean"] / row["mean"] if row["mean"] else None,
            "welch_p": c["welch_p"], "mannwhitney_p": c["mannwhitney_p"],
        }  # fmt: skip
        print(f"  e-prop / {row['variant']}: medians {out[row['variant']]['eprop_over_it_median']:.2f}x, "
              f"Welch p = {c['welch_p']:.2f}, Mann-Whitney p = {c['mannwhitney_p']:.2f}")  # fmt: skip
    return out


def plot(path: Path, rows, title: str) -> None:
    """Each row's deterministic evaluation return against environment steps: its seeds' mean and the 95% interval
    of the mean (:func:`synjax.runs.plots.mean_ci95`)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for row in rows:
        curves = read_metrics_csv(Path(row["folder"]) / "metrics.csv")
        steps, mean_low_high = curves["step"][0], mean_ci95(curves["eval_return"])
        line = ax.plot(steps, mean_low_high[0], lw=1.8, label=row["variant"])[0]
        ax.fill_between(steps, mean_low_high[1], mean_low_high[2], color=line.get_color(), alpha=0.15)
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("deterministic return")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sequence(config: agent.EpropConfig, length: int):
    """A network of ``config`` and a random batch of ``length`` steps of its environment, shaped as the loop's."""
    env, env_params = make_env(config)
    net = make_network(config, env, env_params, nnx.Rngs(0))
    n = config.num_envs
    obs_dim = net.obs_dim
    k = jax.random.split(jax.random.key(1), 3)
    obs = jax.random.normal(k[0], (length, n, obs_dim))
    action = jax.random.randint(k[1], (length, n), 0, net.action_dim)
    reward = jax.random.normal(k[2], (length, n))
    return net, obs, action, reward


def compiled_update(learning: str, length: int):
    """One update over a sequence of ``length`` steps of the acrobot preset's network (recurrent LIF), compiled:
    e-prop's (the network and the learner, step by step, nothing stacked) or BPTT's (A2C's gradient through the
    ``length`` steps)."""
    config = dataclasses.replace(agent.PRESETS["acrobot"], learning=learning, num_steps=length)
    net, obs, action, reward = _sequence(config, length)
    graphdef, params, stats = nnx.split(net, nnx.Param, ...)

    def apply(p, c, o, r):
        return nnx.merge(graphdef, p, stats)(o, c, r)

    tx = agent.make_optimizer(config, 1)
    carry0 = net.initial_carry((config.num_envs,))
    first = jnp.zeros(action.shape, bool)
    if learning == "bptt":
        batch = Batch(
            obs, action, jnp.zeros_like(reward), jnp.zeros_like(reward), reward, reward, first, carry0
        )

        def bptt(params, opt_state):
            return a2c.update_step(config, apply, tx, params, opt_state, batch, None, 0)[:2]

        return jax.jit(bptt).lower(params, tx.init(params)).compile()

    def step(c, x):
        params, opt_state, traces, carry = c
        o, a, r, f = x
        _, value, nxt = apply(params, carry, o, f)
        data = StepData(
            Transition(o, a, jnp.zeros_like(r), r, f, f, o, f), o, value, value, carry, nxt, jnp.int32(0)
        )
        traces, params, opt_state, _ = agent.learner_step(config, apply, tx, traces, params, opt_state, data)
        return (params, opt_state, traces, nxt), None

    def online(params, opt_state, traces):
        return jax.lax.scan(step, (params, opt_state, traces, carry0), (obs, action, reward, first))[0]

    traces = agent.learner_init(config, params, config.num_envs)
    return jax.jit(online).lower(params, tx.init(params), traces).compile()


def memory(args) -> None:
    """Peak temporary bytes (XLA's compiled memory analysis) of one update over a sequence of L steps of N
    environments, e-prop's against BPTT's (:func:`compiled_update`)."""
    print(f"{'steps':>6} {'e-prop MiB':>11} {'BPTT MiB':>10} {'e-prop / BPTT':>14}  (peak temporary bytes)")
    rows = []
    for length in args.lengths:
        analyses = {
            learning: compiled_update(learning, length).memory_analysis() for learning in ("eprop", "bptt")
        }
        temp = {k: a.temp_size_in_bytes for k, a in analyses.items()}
        arguments = {k: a.argument_size_in_bytes for k, a in analyses.items()}
        ratio = temp["eprop"] / temp["bptt"]
        rows.append({"steps": length, "eprop_bytes": temp["eprop"], "bptt_bytes": temp["bptt"], "ratio": ratio,
                     "eprop_argument_bytes": arguments["eprop"], "bptt_argument_bytes": arguments["bptt"]})  # fmt: skip
        print(f"{length:>6} {temp['eprop'] / 2**20:>11.2f} {temp['bptt'] / 2**20:>10.2f} {ratio:>14.4f}"
              f"   (arguments: e-prop {arguments['eprop'] / 2**20:.2f} MiB: parameters, optimizer state, "
              f"traces per environment; BPTT {arguments['bptt'] / 2**20:.2f} MiB)", flush=True)  # fmt: skip
    _write(args, "memory", rows)


def speed(args) -> None:
    """Total agent steps/s of e-prop and its BPTT twin at equal settings (the acrobot preset's network on
    CartPole-v1), 1 and 64 seeds, alternating, best of ``--repeats``."""
    rows = []
    for seeds in args.seeds:
        best = {}
        for _ in range(args.repeats):
            for learning in ("eprop", "bptt"):
                config = dataclasses.replace(agent.PRESETS["acrobot"], env="CartPole-v1", learning=learning,
                                             num_seeds=seeds, total_timesteps=args.steps, eval_every=10_000,
                                             progress=False, gif=False, overwrite=True,
                                             out=str(Path(args.out) / "speed"))  # fmt: skip
                path, _ = agent.run(config)
                rate = json.loads((path / "summary.json").read_text())["steps_per_s"]
                best[learning] = max(best.get(learning, 0.0), rate)
        rows.append({"seeds": seeds, **best, "ratio": best["eprop"] / best["bptt"]})
        print(f"{seeds:>3} seeds: e-prop {best['eprop']:,.0f}  BPTT {best['bptt']:,.0f}  agent steps/s "
              f"(e-prop / BPTT {best['eprop'] / best['bptt']:.2f})", flush=True)  # fmt: skip
    _write(args, "speed", rows)


def gradient(args) -> None:
    """e-prop's gradient against jax.grad through time, from the test's problem (tests/test_eprop.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_eprop as t

    from synjax.snn import eprop as rule

    for kind, recurrent in (("LIF", False), ("ALIF", False), ("LIF", True), ("ALIF", True)):
        x, w_in, w_rec, w_out, target = t._problem(1)
        cell = rule.Cell(kind=kind, beta_a=0.5 if kind == "ALIF" else 0.07)
        w_rec = w_rec if recurrent else None
        bptt = jax.grad(t._loss, argnums=1)(cell, w_in, w_rec, w_out, x, target)
        ours = t._eprop_gradients(cell, w_in, w_rec, w_out, x, target)[0]
        cos = float((ours * bptt).sum() / jnp.linalg.norm(ours) / jnp.linalg.norm(bptt))
        print(
            f"{kind:<5} recurrent={recurrent!s:<5} relative error {t._relative(ours, bptt):.2e}  cosine {cos:.4f}"
        )


def _write(args, name: str, rows) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1))
    print(f"wrote {out / f'{name}.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="section", required=True)
    p = sub.add_parser("learning")
    p.add_argument("--task", choices=tuple(agent.PRESETS), required=True)
    p.add_argument("--num-seeds", type=int, default=4)
    p.add_argument("--total-timesteps", type=int, default=None)
    p.add_argument(
        "--variants",
        nargs="*",
        default=None,
        help=f"the rows to run (default all): {' '.join(v[0] for v in VARIANTS)}",
    )
    p.add_argument(
        "--set", default="", help="preset fields to change for every row: 'hidden=16,time_steps=2'"
    )
    p.add_argument(
        "--replot", action="store_true", help="redraw table.json's curves and comparisons, no runs"
    )
    p = sub.add_parser("memory")
    p.add_argument("--lengths", type=int, nargs="*", default=[16, 128, 1024])
    p = sub.add_parser("speed")
    p.add_argument("--seeds", type=int, nargs="*", default=[1, 64])
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=2)
    sub.add_parser("gradient")
    for p in sub.choices.values():
        p.add_argument("--out", default="runs/bench_online")
    args = parser.parse_args()
    {"learning": learning, "memory": memory, "speed": speed, "gradient": gradient}[args.section](args)


if __name__ == "__main__":
    main()
