"""Taxi's dynamics for fast tabular training: one gather per step from a packed table, pre-drawn uniforms.

Stepping through the packed exact transition table instead of ``Taxi.step`` gives the same distribution with
one gather and no PRNG call inside a step (what matters when hundreds of seeds are vmapped on a CPU).

- :func:`dynamics_table`: (3000, 7) float32 packed MDP, built from ``synjax.envs.taxi.transition_table``.
- :func:`model_step`: one transition per env from a uniform; :func:`model_reset`: a start state from a uniform.
- :func:`gather_rows`: ``table[index]`` in the fastest form under vmap on CPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from synjax.envs import taxi
from synjax.tabular.value_iteration import sparse_model

#: columns of :func:`dynamics_table`: three outcome states, two cumulative thresholds, reward, terminal.
_NEXT, _CUT, _REWARD, _TERMINAL = slice(0, 3), slice(3, 5), 5, 6


def dynamics_table(is_rainy: bool = False, rainy_probability: float = 0.8) -> np.ndarray:
    """Taxi's exact MDP packed for one gather per step: (500 * 6, 7) float32, row ``s * 6 + a``.

    Columns: next states of the (up to) three outcomes, the two uniform thresholds that pick them (outcome
    ``(u >= c0) + (u >= c1)``; 2.0 marks an impossible outcome), the reward and the terminal flag. Built from
    :func:`synjax.envs.taxi.transition_table`, so it has the env's exact transition probabilities.
    """
    m = sparse_model(bool(is_rainy), float(rainy_probability))
    p = m.prob
    c0 = np.where(p[..., 1] + p[..., 2] > 0, p[..., 0], 2.0)
    c1 = np.where(p[..., 2] > 0, p[..., 0] + p[..., 1], 2.0)
    cols = [
        m.next.astype(np.float64),
        c0[..., None],
        c1[..., None],
        m.reward[..., None],
        m.terminal[..., None],
    ]
    return np.concatenate(cols, -1).reshape(taxi.NUM_STATES * taxi.NUM_ACTIONS, 7).astype(np.float32)


def gather_rows(table: jax.Array, index: jax.Array) -> jax.Array:
    """``table[index]`` for a (B,) index, as B dynamic slices (the fastest gather form under vmap on CPU)."""
    return jax.vmap(lambda i: jax.lax.dynamic_index_in_dim(table, i, keepdims=False))(index)


def model_step(table: jax.Array, obs: jax.Array, action: jax.Array, u: jax.Array):
    """One Taxi transition per env from the packed table and a uniform: ``(next_obs, reward, terminated)``.

    Args:
      table: :func:`dynamics_table`; obs, action: (B,) int32; u: (B,) uniforms in [0, 1) for the rain.
    """
    row = gather_rows(table, obs * taxi.NUM_ACTIONS + action)
    outcome = (u >= row[:, 3]).astype(jnp.int32) + (u >= row[:, 4]).astype(jnp.int32)
    nxt = jnp.where(outcome == 0, row[:, 0], jnp.where(outcome == 1, row[:, 1], row[:, 2]))
    return nxt.astype(jnp.int32), row[:, _REWARD], row[:, _TERMINAL] > 0


def model_reset(u: jax.Array) -> jax.Array:
    """A start state from a uniform in [0, 1): uniform over Taxi's 300 starts (taxi anywhere, passenger at a
    landmark, destination another landmark), computed without a table. Any shape."""
    i = jnp.minimum((u * 300).astype(jnp.int32), 299)
    cell, pair = i // 12, i % 12
    pass_loc, other = pair // 3, pair % 3
    dest = other + (other >= pass_loc).astype(jnp.int32)
    return (cell * 5 + pass_loc) * 4 + dest
