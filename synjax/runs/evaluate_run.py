"""``synjax eval --run DIR``: load a finished run's saved parameters and evaluate (or render) its policies.

It reads ``DIR/config.json`` to rebuild the environment and the network, loads ``DIR/params.msgpack`` (every
seed), plays ``--episodes`` deterministic episodes per seed on fresh environments (all seeds at once, jitted),
and prints the returns (and, where the experiment has one, its own final evaluation recomputed from the saved
parameters: the Taxi agents' exact greedy return over the 300 starts). ``--render`` also plays one episode of
``--seed-index`` step by step as text (Taxi and ShowerEnv draw their state; other environments print the
observation); ``--gif PATH`` writes that episode as an animated GIF (:mod:`synjax.runs.episode_gif`).

Each experiment plugs in through :data:`BUILDERS` (``experiment name -> builder(config dict) -> Policy``, the
builder owned by the experiment: :mod:`synjax.runs.saved_policy`); an on-policy algorithm of the CLI (a module with an
``ALGORITHM``) is found without an entry; :func:`register` adds one (DQN's is a ``QNetwork`` template and a greedy
``act``; tabular-q's and stdp-q's the argmax of a (500, 6) Taxi table on the Taxi variant the run trained on).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np

from synjax.agents import dqn
from synjax.agents.on_policy_experiment import saved_policy_builder
from synjax.checks import at_least, check_fields, require
from synjax.runs import results, saved_policy
from synjax.runs.saved_policy import Builder, Policy
from synjax.snn.stdp_q_config import StdpQConfig
from synjax.tabular.config import TabularQConfig
from synjax.tabular.experiment import saved_policy_builder as taxi_policy_builder

__all__ = ["BUILDERS", "EvalConfig", "Policy", "builder", "evaluable", "load_policy", "register", "run"]

#: experiment name (``config.json``'s ``experiment``) -> builder of its :class:`Policy`.
BUILDERS: dict[str, Builder] = {
    "dqn": dqn.saved_policy,
    "tabular-q": taxi_policy_builder(TabularQConfig),
    "stdp-q": taxi_policy_builder(StdpQConfig),
}


def builder(experiment: str | None) -> Builder | None:
    """The :class:`Policy` builder of ``experiment``: a registered one, or, for any on-policy algorithm of the CLI
    (a module with an ``ALGORITHM``, its config the type of its presets), the actor-critic one; else None."""
    if experiment in BUILDERS:
        return BUILDERS[experiment]
    from synjax.cli import EXPERIMENTS

    if experiment not in EXPERIMENTS:
        return None
    module = importlib.import_module(EXPERIMENTS[experiment][0])
    if not hasattr(module, "ALGORITHM"):
        return None
    return saved_policy_builder(type(next(iter(module.PRESETS.values()))))


def evaluable() -> list[str]:
    """The experiments whose runs ``synjax eval`` loads."""
    from synjax.cli import EXPERIMENTS

    return [name for name in EXPERIMENTS if builder(name) is not None]


def register(experiment: str, builder: Builder) -> None:
    """Let ``synjax eval`` load runs of ``experiment``."""
    BUILDERS[experiment] = builder


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluate a saved run.

    Attributes:
      run: the run's results folder (holds config.json and params.msgpack).
      nir: instead of a run, a NIR graph file (``synjax export`` writes them; graphs of other tools with the
        metadata docs/export.md names) played as a policy by :mod:`synjax.export.from_nir`.
      env: the JAX environment a ``nir`` graph plays (default: the graph's ``env`` metadata).
      episodes: deterministic episodes per saved seed.
      seed: PRNG seed of the evaluation episodes.
      render: also print one episode of ``seed_index`` step by step.
      gif: also write one episode of ``seed_index`` as an animated GIF at this path (Taxi-v4 and ShowerEnv
        drawn here, classic control and MinAtar by gymnax's visualization; needs Pillow).
      seed_index: which saved run (row of params.msgpack) to render.
      max_render_steps: stop the rendered episode (text or GIF) after this many steps.
    """

    run: str = ""
    nir: str = ""
    env: str = ""
    episodes: Annotated[int, at_least(1)] = 10
    seed: Annotated[int, at_least(0)] = 0
    render: bool = False
    gif: str = ""
    seed_index: Annotated[int, at_least(0)] = 0
    max_render_steps: Annotated[int, at_least(1)] = 200

    def __post_init__(self) -> None:
        check_fields(self)
        require(not (self.run and self.nir), "nir", self.nir, "left unset with --run (evaluate one or the other)")
        require(not self.env or self.nir, "env", self.env, "left unset without --nir (a run names its own env)")
        if self.nir:
            require(Path(self.nir).is_file(), "nir", self.nir, "an existing NIR file (synjax export writes one)")
            require(not (self.render or self.gif), "render", self.render or self.gif,
                    "left unset with --nir (rendering plays a saved run)")  # fmt: skip
        if self.run:
            path = Path(self.run)
            require(
                (path / "config.json").is_file() and (path / "params.msgpack").is_file(),
                "run",
                self.run,
                "a synjax results folder holding config.json and params.msgpack",
            )
            data = results.load_config(path)
            experiment = data.get("experiment")
            require(
                builder(experiment) is not None,
                "run",
                self.run,
                f"a run of an experiment with saved policies ({', '.join(evaluable())}), not {experiment!r}",
            )
            if self.gif:  # refused before anything is played
                from synjax.runs import episode_gif

                why = episode_gif.unavailable(builder(experiment)(data).env)
                require(why is None, "gif", self.gif, f"left unset: {why}")
                require(Path(self.gif).parent.is_dir(), "gif", self.gif, "a path in an existing folder")


def load_policy(run_dir: str | Path) -> tuple[Policy, Any, dict[str, Any]]:
    """``(Policy, stacked parameters with a leading run axis, config dict)`` of a saved run."""
    return saved_policy.load(run_dir, builder(results.load_config(run_dir)["experiment"]))


def evaluate_saved(policy: Policy, params: Any, episodes: int, seed: int = 0) -> np.ndarray:
    """Deterministic returns of every saved run: shape (runs, episodes)."""
    from synjax.agents.evaluation import episode_returns

    num_runs = jax.tree.leaves(params)[0].shape[0]
    max_steps = int(getattr(policy.env_params, "max_steps_in_episode", 100_000))

    def one(p, key):
        act = lambda obs, carry: policy.act(p, obs, carry)
        carry = policy.initial_carry(p, (episodes,))
        return episode_returns(policy.env, policy.env_params, act, key, episodes, max_steps, carry)

    keys = jax.random.split(jax.random.key(seed), num_runs)
    return np.asarray(jax.jit(jax.vmap(one))(params, keys))


def render_episode(policy: Policy, params: Any, seed: int = 0, max_steps: int = 200) -> list[str]:
    """Text frames of one deterministic episode of one run's ``params`` (:func:`synjax.runs.episode_gif.record_episode`,
    the episode ``--gif`` draws): the start, then one per step."""
    from synjax.runs.episode_gif import record_episode

    text = getattr(policy.env, "render", None)

    def show(state, obs) -> str:
        if text is not None:
            try:
                return str(text(state))
            except (TypeError, NotImplementedError):
                pass
        return f"obs={np.array2string(np.asarray(obs), precision=3)}"

    episode = record_episode(policy, params, seed, max_steps)
    returns = episode.returns
    frames = [show(episode.states[0], episode.observations[0])]
    for t, (action, reward) in enumerate(zip(episode.actions, episode.rewards)):
        shown = show(episode.states[t + 1], episode.observations[t + 1])
        if t == len(episode.rewards) - 1 and (episode.terminated or episode.truncated):
            shown += f"\n(episode over: terminated={episode.terminated}, truncated={episode.truncated})"
        frames.append(
            f"step {t + 1}: action={np.asarray(action).tolist()} reward={float(reward):g} "
            f"return={returns[t + 1]:g}\n{shown}"
        )
    return frames


def run(config: EvalConfig):
    """Evaluate (and optionally render, or draw as a GIF) the run ``config.run``; prints the returns;
    ``(None, returns)``."""
    if config.nir:
        return None, _evaluate_nir(config)
    require(bool(config.run), "run", config.run, "a results folder (--run DIR) or a NIR file (--nir FILE)")
    policy, params, data = load_policy(config.run)
    returns = evaluate_saved(policy, params, config.episodes, config.seed)
    own = policy.final_eval(params) if policy.final_eval is not None else {}
    print(
        f"{data['experiment']} run {config.run} on {data.get('env', policy.env.name)}: {config.episodes} "
        "deterministic episodes per saved run"
    )
    for i, r in enumerate(returns):
        extra = "".join(f", final {name} {values[i]:.4g}" for name, values in own.items())
        print(f"  run {i}: mean return {r.mean():.4g} (min {r.min():.4g}, max {r.max():.4g}){extra}")
    per_run = returns.mean(axis=1)
    print(f"  all runs: mean {per_run.mean():.4g}, median {np.median(per_run):.4g}")
    for name, values in own.items():
        print(f"  the run's own final evaluation, recomputed: {name} mean {np.mean(values):.4g}")
    if config.render:
        one = saved_policy.one_run(params, config.seed_index)
        for frame in render_episode(policy, one, config.seed, config.max_render_steps):
            print(frame)
    if config.gif:
        from synjax.runs.episode_gif import write_episode_gif

        one = saved_policy.one_run(params, config.seed_index)
        episode = write_episode_gif(config.gif, policy, one, config.seed, config.max_render_steps)
        print(f"wrote {config.gif}: run {config.seed_index}, {len(episode.states)} frames, return "
              f"{episode.returns[-1]:g}")  # fmt: skip
    return None, returns


def _evaluate_nir(config: EvalConfig) -> np.ndarray:
    """Play the NIR graph ``config.nir`` for ``config.episodes`` deterministic episodes; prints the returns."""
    from synjax.export.from_nir import nir_policy

    policy, params, graph = nir_policy(config.nir, config.env)
    returns = evaluate_saved(policy, params, config.episodes, config.seed)
    timing = "spyx timing" if graph.before_update else "NIR's forward Euler"
    print(f"NIR graph {config.nir} on {policy.env.name}: {config.episodes} deterministic episodes "
          f"({graph.steps} SNN steps per decision, {timing})")  # fmt: skip
    r = returns[0]
    print(f"  mean return {r.mean():.4g} (min {r.min():.4g}, max {r.max():.4g})")
    return returns


PRESETS = {"default": EvalConfig()}
