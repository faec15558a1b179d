"""``synjax eval --run DIR``: load a finished run's saved parameters and evaluate (or render) its policies.

It reads ``DIR/config.json`` to rebuild the environment and the network, loads ``DIR/params.msgpack`` (every
seed), plays ``--episodes`` deterministic episodes per seed on fresh environments (all seeds at once, jitted),
and prints the returns. ``--render`` also plays one episode of ``--seed-index`` step by step as text
(Taxi and ShowerEnv draw their state; other environments print the observation).

Each experiment plugs in through :data:`BUILDERS` (``experiment name -> builder(config dict) -> Policy``); an
on-policy algorithm of the CLI (a module with an ``ALGORITHM``) is found without an entry;
:func:`register` adds one (DQN's is a ``QNetwork`` template and a greedy ``act``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np

from synjax import results
from synjax.checks import at_least, check_fields, require
from synjax.results import config_from_dict


@dataclasses.dataclass
class Policy:
    """What evaluating a saved run needs.

    Attributes:
      env, env_params: the environment the run trained on.
      template: one seed's parameter pytree with the saved structure (e.g. an ``nnx.State``), filled in with
        ``nnx.replace_by_pure_dict`` (or given to ``results.load_params`` as template when ``from_dict`` is None).
      act: ``(params of one seed, raw observations (E, *obs_shape), carry) -> (deterministic actions (E, ...),
        carry)``: the stateful policy contract (:mod:`synjax.agents.policy`); a feedforward policy passes the
        carry through.
      initial_carry: ``(params of one seed, batch_shape) -> carry`` at an episode's start (``()`` by default).
      from_dict: ``(template, loaded nested dict with a leading run axis) -> parameter pytree``; defaults to
        ``nnx.replace_by_pure_dict`` on a copy of ``template``.
    """

    env: Any
    env_params: Any
    template: Any
    act: Callable[[Any, jax.Array, Any], tuple[jax.Array, Any]]
    from_dict: Callable[[Any, Any], Any] | None = None
    initial_carry: Callable[[Any, tuple[int, ...]], Any] = lambda params, batch_shape: ()


def _actor_critic(module: str, config_name: str) -> Callable[[dict[str, Any]], Policy]:
    def build(data: dict[str, Any]) -> Policy:
        from flax import nnx

        from synjax import sweep
        from synjax.agents.config import make_env
        from synjax.agents.evaluation import deterministic_action
        from synjax.agents.networks import action_spec, obs_encoder
        from synjax.agents.on_policy import make_network

        config = config_from_dict(getattr(importlib.import_module(module), config_name), data)
        # swept fields do not change the network's structure: build it with the first value of each
        config = sweep.at(config, **{k: v[0] for k, v in sweep.swept(config).items()})
        env, env_params = make_env(config)
        _, encode = obs_encoder(env, env_params)
        _, _, bounds = action_spec(env, env_params)
        model = make_network(config, env, env_params, nnx.Rngs(0))
        graphdef, template = nnx.split(model)

        def act(state, obs, carry):
            reset = jnp.zeros(obs.shape[:1], bool)
            dist, _, carry = nnx.merge(graphdef, state)(encode(obs), carry, reset)
            return deterministic_action(dist, bounds), carry

        def initial_carry(state, batch_shape):
            return nnx.merge(graphdef, state).initial_carry(batch_shape)

        return Policy(env, env_params, template, act, initial_carry=initial_carry)

    return build


def _dqn(data: dict[str, Any]) -> Policy:
    """A saved DQN run's greedy policy."""
    from synjax import sweep
    from synjax.agents import dqn

    config = config_from_dict(dqn.DQNConfig, data)
    config = sweep.at(config, **{k: v[0] for k, v in sweep.swept(config).items()})
    env, env_params = dqn.make_env(config)
    _, init, q = dqn.make_q_network(config, env, env_params)

    def act(params, obs, carry):
        return jnp.argmax(q(params, obs), axis=-1), carry

    return Policy(env, env_params, init(jax.random.key(0)), act)


#: experiment name (``config.json``'s ``experiment``) -> builder of its :class:`Policy`.
BUILDERS: dict[str, Callable[[dict[str, Any]], Policy]] = {"dqn": _dqn}


def builder(experiment: str | None) -> Callable[[dict[str, Any]], Policy] | None:
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
    return _actor_critic(module.__name__, type(next(iter(module.PRESETS.values()))).__name__)


def evaluable() -> list[str]:
    """The experiments whose runs ``synjax eval`` loads."""
    from synjax.cli import EXPERIMENTS

    return [name for name in EXPERIMENTS if builder(name) is not None]


def register(experiment: str, builder: Callable[[dict[str, Any]], Policy]) -> None:
    """Let ``synjax eval`` load runs of ``experiment``."""
    BUILDERS[experiment] = builder


def _default_from_dict(template: Any, loaded: Any) -> Any:
    from flax import nnx

    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, loaded)
    return state


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluate a saved run.

    Attributes:
      run: the run's results folder (holds config.json and params.msgpack).
      episodes: deterministic episodes per saved seed.
      seed: PRNG seed of the evaluation episodes.
      render: also print one episode of ``seed_index`` step by step.
      seed_index: which saved run (row of params.msgpack) to render.
      max_render_steps: stop the rendered episode after this many steps.
    """

    run: str = ""
    episodes: Annotated[int, at_least(1)] = 10
    seed: Annotated[int, at_least(0)] = 0
    render: bool = False
    seed_index: Annotated[int, at_least(0)] = 0
    max_render_steps: Annotated[int, at_least(1)] = 200

    def __post_init__(self) -> None:
        check_fields(self)
        if self.run:
            path = Path(self.run)
            require(
                (path / "config.json").is_file() and (path / "params.msgpack").is_file(),
                "run",
                self.run,
                "a synjax results folder holding config.json and params.msgpack",
            )
            experiment = results.load_config(path).get("experiment")
            require(
                builder(experiment) is not None,
                "run",
                self.run,
                f"a run of an experiment with saved policies ({', '.join(evaluable())}), not {experiment!r}",
            )


def load_policy(run_dir: str | Path) -> tuple[Policy, Any, dict[str, Any]]:
    """``(Policy, stacked parameters with a leading run axis, config dict)`` of a saved run."""
    data = results.load_config(run_dir)
    policy = builder(data["experiment"])(data)
    loaded = results.load_params(run_dir)
    params = (policy.from_dict or _default_from_dict)(policy.template, loaded)
    return policy, params, data


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
    """Text frames of one deterministic episode of one run's ``params``: the start, then one per step."""
    env, env_params = policy.env, policy.env_params
    text = getattr(env, "render", None)

    def show(state, obs) -> str:
        if text is not None:
            try:
                return str(text(state))
            except (TypeError, NotImplementedError):
                pass
        return f"obs={np.array2string(np.asarray(obs), precision=3)}"

    step = jax.jit(env.step)

    @jax.jit
    def act(p, obs, carry):
        action, carry = policy.act(p, obs[None], carry)
        return action[0], carry

    key_reset, key = jax.random.split(jax.random.key(seed))
    obs, state = jax.jit(env.reset)(key_reset, env_params)
    frames, total, carry = [show(state, obs)], 0.0, policy.initial_carry(params, (1,))
    for t in range(max_steps):
        action, carry = act(params, obs, carry)
        key, k = jax.random.split(key)
        next_obs, next_state, reward, terminated, truncated, _ = step(k, state, action, env_params)
        total += float(reward)
        end = bool(terminated) or bool(truncated)
        # after an auto-reset, draw the state the episode ended in
        shown = (
            show(next_state, next_obs)
            if not end
            else f"(episode over: terminated={bool(terminated)}, truncated={bool(truncated)})"
        )
        frames.append(
            f"step {t + 1}: action={np.asarray(action).tolist()} reward={float(reward):g} "
            f"return={total:g}\n{shown}"
        )
        if end:
            break
        obs, state = next_obs, next_state
    return frames


def run(config: EvalConfig):
    """Evaluate (and optionally render) the run ``config.run``; prints the returns; ``(None, returns)``."""
    require(bool(config.run), "run", config.run, "a results folder (--run DIR)")
    policy, params, data = load_policy(config.run)
    returns = evaluate_saved(policy, params, config.episodes, config.seed)
    print(
        f"{data['experiment']} run {config.run} on {data.get('env')}: {config.episodes} deterministic episodes "
        f"per saved run"
    )
    for i, r in enumerate(returns):
        print(f"  run {i}: mean return {r.mean():.4g} (min {r.min():.4g}, max {r.max():.4g})")
    per_run = returns.mean(axis=1)
    print(f"  all runs: mean {per_run.mean():.4g}, median {np.median(per_run):.4g}")
    if config.render:
        require(
            config.seed_index < len(returns),
            "seed_index",
            config.seed_index,
            f"an index below the {len(returns)} saved runs",
        )
        one = jax.tree.map(lambda x: jnp.asarray(x[config.seed_index]), params)
        for frame in render_episode(policy, one, config.seed, config.max_render_steps):
            print(frame)
    return None, returns


PRESETS = {"default": EvalConfig()}
