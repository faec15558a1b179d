"""Loss pieces and optimizer helpers that PPO, A2C and PQN (and the host loop) share."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from synjax.agents.policy import PolicyApply, unroll
from synjax.agents.rollout import Batch


def normalize(x: jax.Array) -> jax.Array:
    """``(x - mean) / (std + 1e-8)`` over all elements, with the population std (``jnp.std``, as PureJaxRL).
    SB3 and CleanRL divide by torch's sample std, ``sqrt(B / (B - 1))`` larger: 0.8% for a minibatch of 64, the
    one difference between the host loop's PPO update and SB3's (``tests/test_host.py``)."""
    return (x - x.mean()) / (x.std() + 1e-8)


def value_loss(value: jax.Array, old_value: jax.Array, returns: jax.Array, vf_clip: Any = 0.0) -> jax.Array:
    """Mean squared error of ``value`` to ``returns`` (SB3: no 1/2). With ``vf_clip > 0`` the PPO-style
    pessimistic clipped loss around ``old_value``: ``max((v - R)^2, (old + clip(v - old, +-c) - R)^2)``."""
    unclipped = (value - returns) ** 2
    c = jnp.maximum(vf_clip, 1e-12)
    clipped = (old_value + jnp.clip(value - old_value, -c, c) - returns) ** 2
    return jnp.where(vf_clip > 0, jnp.maximum(unclipped, clipped), unclipped).mean()


def policy_outputs(apply: PolicyApply, params: Any, batch: Batch):
    """``(distribution, value)`` of the current network on ``batch``, leading axes like ``batch.log_prob``: (B,)
    for a flat batch, (T, N) for sequences (replayed from ``batch.carry``)."""
    if batch.is_sequence:
        dist, value, _ = unroll(apply, params, batch.carry, batch.obs, batch.first)
    else:
        dist, value, _ = apply(params, (), batch.obs, batch.first)
    return dist, value


def policy_terms(apply: PolicyApply, params: Any, batch: Batch):
    """``(log_prob, entropy, value)`` of ``batch.action`` under the current network (:func:`policy_outputs`)."""
    dist, value = policy_outputs(apply, params, batch)
    return dist.log_prob(batch.action), dist.entropy(), value


def lr_schedule(lr: Any, anneal: bool, num_updates: int, steps_per_update: int):
    """Constant ``lr``, or (``anneal``) ``lr * (1 - u / num_updates)`` during update ``u`` (0-based), where
    each update makes ``steps_per_update`` optimizer steps (SB3's linear schedule, stepped per rollout)."""
    if not anneal:
        return lr
    return lambda count: lr * (1.0 - (count // steps_per_update) / num_updates)


def apply_gradients(tx: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any):
    """One optimizer step: ``(new params, new opt_state)``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
