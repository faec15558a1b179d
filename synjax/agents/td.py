"""Temporal-difference pieces of the value-based agents (DQN; PQN to come): one-step targets, the TD loss and
the target network's Polyak update. Pure functions of arrays, vectorized over the batch."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax


def td_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q_target: jax.Array,
    next_q_online: jax.Array,
    gamma: float | jax.Array,
    double_dqn: bool,
) -> jax.Array:
    """One-step TD targets ``r + gamma * (1 - terminated) * Q_target(s', a')`` (no gradient).

    Args:
      reward: (B,) float32.
      terminated: (B,) 1/True for terminal transitions; truncated-only ones must pass 0 (they bootstrap).
      next_q_target: (B, A) target network's values at the true next observation.
      next_q_online: (B, A) online network's values there (read only when ``double_dqn``).
      gamma: discount.
      double_dqn: ``a' = argmax next_q_online`` instead of ``argmax next_q_target``.
    Returns:
      (B,) float32.
    """
    chex.assert_equal_shape([next_q_target, next_q_online])
    chex.assert_rank(next_q_target, 2)
    if double_dqn:
        a_next = jnp.argmax(next_q_online, axis=-1)
        next_v = jnp.take_along_axis(next_q_target, a_next[:, None], axis=-1)[:, 0]
    else:
        next_v = jnp.max(next_q_target, axis=-1)
    live = 1.0 - jnp.asarray(terminated, jnp.float32)
    return jax.lax.stop_gradient(reward + gamma * live * next_v)


def target_update(target: Any, online: Any, tau: float | jax.Array, count: jax.Array) -> Any:
    """``count`` Polyak updates ``target <- tau * online + (1 - tau) * target`` with the same ``online``.

    They equal one update with step ``1 - (1 - tau) ** count``: ``count = 0`` keeps ``target`` exactly, and
    ``tau = 1`` with ``count >= 1`` copies ``online`` exactly (the hard update).
    """
    step = 1.0 - (1.0 - tau) ** jnp.asarray(count, jnp.float32)
    return optax.incremental_update(online, target, step)


def crossings(before: jax.Array, after: jax.Array, interval: int) -> jax.Array:
    """Multiples of ``interval`` in ``(before, after]``: the target updates due while those steps ran."""
    return after // interval - before // interval


def td_loss(q_taken: jax.Array, target: jax.Array, loss: str, huber_delta: float | jax.Array) -> jax.Array:
    """Mean TD loss of a batch: ``"huber"`` ``mean(huber(q - y, delta))`` or ``"mse"`` ``mean((q - y)**2)``.

    Args:
      q_taken: (B,) Q(s, a) of the online network.
      target: (B,) TD targets (see :func:`td_target`).
    """
    if loss == "mse":
        return jnp.mean(jnp.square(q_taken - target))
    return jnp.mean(optax.huber_loss(q_taken, target, delta=huber_delta))
