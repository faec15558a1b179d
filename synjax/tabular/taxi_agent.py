"""What the Taxi agents (tabular Q-learning, the STDP + Q hybrid) share, as pure functions.

- :func:`exploration_schedule`: per-episode decay ``max(end, start * decay**episode)`` of epsilon, temperature
  or noise.
- :func:`epsilon_greedy`: the epsilon-greedy pick from two pre-drawn uniforms.
- :func:`solve_threshold`, :func:`greedy_eval`: the exact greedy evaluation of a (500, 6) table over the 300
  starts and the return at which a seed counts as solved.
- :func:`stretch_metrics`, :func:`final_metrics`: the metrics of an evaluation point and of the end of a run.

The config arguments are any object with the fields of :class:`EvalConfig` (both agents' configs have them).
"""

from __future__ import annotations

import math
from typing import Protocol

import jax
import jax.numpy as jnp

from synjax.envs import taxi
from synjax.tabular import evaluate
from synjax.tabular.value_iteration import optimal_start_return


class EvalConfig(Protocol):
    """The evaluation fields of a Taxi agent's config.

    eval_max_steps: step cap of the greedy evaluation episodes. is_rainy, rainy_probability: the Taxi variant.
    solve_margin: solved = greedy return >= value-iteration optimum - solve_margin.
    sampled_eval_episodes: rainy only: sampled greedy episodes for ``greedy_return_sampled``.
    """

    eval_max_steps: int
    is_rainy: bool
    rainy_probability: float
    solve_margin: float
    sampled_eval_episodes: int


def exploration_schedule(episode: jax.Array, start: float, decay: float, end: float) -> jax.Array:
    """Epsilon (or temperature, noise std) of 0-based episode index ``episode`` (any shape), float32:
    ``max(end, start * decay**episode)``."""
    e = jnp.asarray(episode, jnp.float32)
    return jnp.maximum(end, start * jnp.exp(e * math.log(decay)))


def epsilon_greedy(u: jax.Array, greedy: jax.Array, epsilon: jax.Array, num_actions: int) -> jax.Array:
    """With probability epsilon the uniform random action ``floor(u1 * A)``, else ``greedy``.

    Args:
      u: (..., 2) uniforms in [0, 1): u0 the coin, u1 the random action.
      greedy: (...) int32 actions; epsilon: (...) or scalar.
    Returns:
      (...) int32 actions.
    """
    random = jnp.minimum((u[..., 1] * num_actions).astype(jnp.int32), num_actions - 1)
    return jnp.where(u[..., 0] < epsilon, random, greedy)


def solve_threshold(config: EvalConfig) -> float:
    """Greedy return at which a seed counts as solved: the value-iteration optimum minus ``solve_margin``."""
    return (
        optimal_start_return(config.eval_max_steps, config.is_rainy, config.rainy_probability)
        - config.solve_margin
    )


def greedy_eval(q: jax.Array, config: EvalConfig) -> tuple[jax.Array, jax.Array]:
    """Exact greedy (mean return, delivered fraction), float32 scalars, of ``argmax q`` (q: (500, 6)) over the
    300 starts: dry Taxi by exact episodes (:func:`evaluate.greedy_outcomes_all_starts`), rainy by expected
    values (:func:`evaluate.expected_greedy_outcomes_all_starts`)."""
    if config.is_rainy:
        ret, ok = evaluate.expected_greedy_outcomes_all_starts(
            q, config.eval_max_steps, True, config.rainy_probability
        )
    else:
        ret, ok = evaluate.greedy_outcomes_all_starts(q, config.eval_max_steps)
    return ret.mean(), ok.astype(jnp.float32).mean()


def stretch_metrics(
    return_sum: jax.Array,
    length_sum: jax.Array,
    success_sum: jax.Array,
    count: jax.Array | float,
    exploration_name: str,
    exploration: jax.Array,
    greedy_return: jax.Array,
) -> dict[str, jax.Array]:
    """Metrics of one evaluation point (float32 scalars) from the sums over the ``count`` training episodes of
    its stretch: ``train_return``, ``episode_length``, ``success_rate`` (the means), ``exploration_name`` (the
    exploration of the stretch's last episode) and ``greedy_return``."""
    return {
        "train_return": return_sum / count,
        "episode_length": jnp.asarray(length_sum, jnp.float32) / count,
        "success_rate": jnp.asarray(success_sum, jnp.float32) / count,
        exploration_name: exploration,
        "greedy_return": greedy_return,
    }


def final_metrics(
    key: jax.Array,
    q: jax.Array,
    greedy_returns: jax.Array,
    steps: jax.Array,
    config: EvalConfig,
    target_return: float | None = None,
) -> dict[str, jax.Array]:
    """The final metrics of a run (float32 scalars).

    Args:
      key: PRNG key of the sampled evaluation (rainy only).
      q: (500, 6) final table; greedy_returns: (P,) greedy return at each evaluation point; steps: (P,) int32
        the episodes done at each point.
    Returns:
      ``greedy_return``, ``greedy_success`` (fraction of starts delivered) of ``q``; ``solved`` (1/0: some point
      reached :func:`solve_threshold`); ``episodes_to_solve`` (the first such point's steps, NaN if none);
      ``reached_target`` (final greedy return >= ``target_return``, when given); rainy Taxi:
      ``greedy_return_sampled``, the mean of ``sampled_eval_episodes`` greedy episodes of the JAX Taxi env
      capped at ``eval_max_steps``.
    """
    greedy_ret, greedy_success = greedy_eval(q, config)
    ok = greedy_returns >= solve_threshold(config)
    final = {
        "greedy_return": greedy_ret,
        "greedy_success": greedy_success,
        "solved": jnp.any(ok).astype(jnp.float32),
        "episodes_to_solve": jnp.where(jnp.any(ok), steps[jnp.argmax(ok)].astype(jnp.float32), jnp.nan),
    }
    if target_return is not None:
        final["reached_target"] = (greedy_ret >= target_return).astype(jnp.float32)
    if config.is_rainy:
        params = taxi.make_params(
            max_steps_in_episode=config.eval_max_steps,
            is_rainy=True,
            rainy_probability=config.rainy_probability,
        )
        final["greedy_return_sampled"] = evaluate.sampled_greedy_return(
            key, q, params, config.sampled_eval_episodes
        )
    return final
