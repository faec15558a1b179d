"""``synjax random-rollout``: uniformly random actions in a batch of JAX environments, to measure steps/s.

It exercises the environments, the runner and the results folder end to end; its ``steps_per_s`` is the raw
simulation speed any agent is bounded by.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from synjax import envs
from synjax.checks import at_least, require
from synjax.envs.episodes import EpisodeStats
from synjax.runner.config import RunConfig
from synjax.runner.experiment import run_experiment
from synjax.runner.progress import report
from synjax.trainer import Trainer, TrainOutput


@dataclasses.dataclass(frozen=True)
class RandomRolloutConfig(RunConfig):
    """Random-policy rollout.

    Attributes:
      env: environment id (see ``synjax.envs.env_ids()``).
      num_envs: environments stepped in parallel per seed.
      steps: steps of every environment.
      num_points: how many points the curve (mean return of finished episodes) has.
    """

    num_seeds: int = 1
    env: str = "Taxi-v4"
    num_envs: Annotated[int, at_least(1)] = 1024
    steps: int = 1000
    num_points: Annotated[int, at_least(1)] = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.env in envs.env_ids(), "env", self.env, f"one of {', '.join(envs.env_ids())}")
        require(
            self.steps >= self.num_points and self.steps % self.num_points == 0,
            "steps",
            self.steps,
            f"a positive multiple of num_points={self.num_points}",
        )


def batch_sampler(space: spaces.Space, n: int) -> Callable[[jax.Array], jax.Array]:
    """``sample(key) -> n`` uniform actions of ``space`` with one PRNG call (Discrete and Box), else per-env keys.

    Splitting ``n`` keys and sampling each costs several times the step of a small environment on CPU.
    """
    if isinstance(space, spaces.Discrete):
        return lambda key: jax.random.randint(key, (n,), 0, space.n).astype(space.dtype)
    if isinstance(space, spaces.Box):
        shape = (n, *space.shape)
        return lambda key: jax.random.uniform(key, shape, minval=space.low, maxval=space.high).astype(
            space.dtype
        )
    return lambda key: jax.vmap(space.sample)(jax.random.split(key, n))


def make_rollout(config: RandomRolloutConfig) -> Trainer:
    """``config.steps`` random steps of ``config.num_envs`` environments as a :class:`Trainer`, one step a point.

    Its state is ``(key, env state (N, ...), EpisodeStats (N,))``. Metrics per point (``config.num_points``):
    ``episode_return`` and ``episode_length``, means over the episodes that ended in that stretch of
    ``steps // num_points`` steps (NaN when none did).
    """
    env, params = envs.make(config.env)
    n = config.num_envs
    per_point = config.steps // config.num_points
    sample = batch_sampler(env.action_space(params), n)
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(key):
        key, reset_key = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, n), params)
        return key, state, EpisodeStats.zeros((n,))

    def one_step(carry, t):
        key, state, stats = carry
        key, act_key, step_key = jax.random.split(key, 3)
        action = sample(act_key)
        _, state, reward, terminated, truncated, _ = env_step(
            jax.random.split(step_key, n), state, action, params
        )
        stats = stats.update(reward.astype(jnp.float32), terminated | truncated)
        report(t + 1, every=max(1, config.steps // 100))
        return (key, state, stats), None

    def step(carry, p):
        ts = p * per_point + jnp.arange(per_point)
        (key, state, stats), _ = jax.lax.scan(one_step, carry, ts)
        point = {"episode_return": stats.mean_return(), "episode_length": stats.mean_length()}
        return (key, state, stats.drain()), point

    def finish(carry, metrics):
        return TrainOutput(
            params={},
            steps=(jnp.arange(1, config.num_points + 1) * per_point * n).astype(jnp.int32),
            metrics=metrics,
            final={"episode_return": jnp.nanmean(metrics["episode_return"])},
        )

    return Trainer(init=init, step=step, finish=finish, num_steps=config.num_points)


def run(config: RandomRolloutConfig):
    """Run the rollout for every seed, write the results folder, return ``(path, SweepRun)``."""
    return run_experiment(
        "random-rollout",
        config,
        make_rollout,
        progress_total=config.steps,
        progress_unit_metric="return",
        steps_per_seed=config.steps * config.num_envs,
    )


PRESETS = {"default": RandomRolloutConfig()}
