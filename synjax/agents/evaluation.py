"""Evaluating a policy inside the jit: returns of whole episodes on fresh environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import distrax
import jax
import jax.numpy as jnp


def episode_returns(
    env: Any,
    env_params: Any,
    act: Callable[[jax.Array, Any], tuple[jax.Array, Any]],
    key: jax.Array,
    num_episodes: int,
    max_steps: int = 100_000,
    carry: Any = (),
) -> jax.Array:
    """Returns of ``num_episodes`` episodes of the policy ``act`` on fresh environments, run side by side.

    Args:
      act: ``(raw batched observations (E, *obs_shape), carry) -> (actions (E, ...), carry)`` (deterministic for
        evaluation); a feedforward policy passes the carry through.
      carry: the policy's carry at the episodes' start (leaves (E, ...)); ``()`` for a feedforward policy.
      key: PRNG key for the resets and the environment's randomness.
      max_steps: safety cap on steps (environments truncate themselves well before).
    Returns:
      (num_episodes,) float32 undiscounted returns.
    """
    keys = jax.random.split(key, num_episodes + 1)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys[1:], env_params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    zeros = jnp.zeros((num_episodes,), jnp.float32)

    def cond(c):
        t, _, _, _, _, done, _ = c
        return jnp.logical_and(t < max_steps, jnp.logical_not(jnp.all(done)))

    def body(c):
        t, key, obs, state, ret, done, carry = c
        keys = jax.random.split(key, num_episodes + 1)
        action, carry = act(obs, carry)
        obs, state, reward, terminated, truncated, _ = step(keys[1:], state, action, env_params)
        ret = ret + jnp.where(done, 0.0, reward.astype(jnp.float32))
        done = done | terminated | truncated
        return t + 1, keys[0], obs, state, ret, done, carry

    init = (jnp.int32(0), keys[0], obs, state, zeros, jnp.zeros((num_episodes,), bool), carry)
    return jax.lax.while_loop(cond, body, init)[4]


def deterministic_action(dist: distrax.Distribution, bounds: tuple[jax.Array, jax.Array] | None) -> jax.Array:
    """The policy's mode (argmax logits, or the Gaussian mean clipped to the action ``bounds``)."""
    action = dist.mode()
    return action if bounds is None else jnp.clip(action, *bounds)
