"""Uniform experience replay for off-policy agents: a ring buffer of :class:`ReplayItem` inside the jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayItem:
    """One replayed transition (every field may carry the same leading batch axes).

    Attributes:
      obs: the observation the action was chosen in (the environment's raw observation).
      action: int32 action.
      reward: float32 reward.
      terminated: float32, 1.0 when the episode reached a terminal state (no bootstrap); 0.0 for truncation.
      next_obs: the true next observation, ``info["final_observation"]`` (before any auto-reset).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: jax.Array


@struct.dataclass
class ReplayBuffer:
    """Uniform replay of the last ``capacity`` transitions (a ring buffer).

    Not flashbax's item buffer, measured: that one is the same ring, but its ``sample`` makes two
    ``jax.random.randint`` draws (a row and a time index), which on CPU cost more than the gather itself;
    here the indices come from random bits the caller draws (DQN: :func:`synjax.agents.dqn.chunk_randomness`), drawn once per chunk for all its gradient
    steps. docs/dqn.md has the end-to-end comparison.

    Attributes:
      data: a :class:`ReplayItem` whose leaves have a leading axis of ``capacity``.
      pos: int32 scalar, the next slot to write.
      size: int32 scalar, valid transitions (at most ``capacity``).
    """

    data: ReplayItem
    pos: jax.Array
    size: jax.Array

    @classmethod
    def create(cls, example: ReplayItem, capacity: int) -> ReplayBuffer:
        """An empty buffer for items shaped like ``example`` (no leading axis)."""
        data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
        return cls(data=data, pos=jnp.int32(0), size=jnp.int32(0))

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]

    def add(self, items: ReplayItem) -> ReplayBuffer:
        """Write ``items`` (leading axis k <= capacity) after the newest, overwriting the oldest once full."""
        k = jax.tree.leaves(items)[0].shape[0]
        idx = (self.pos + jnp.arange(k)) % self.capacity
        data = jax.tree.map(
            lambda d, x: d.at[idx].set(x.astype(d.dtype), unique_indices=True), self.data, items
        )
        return ReplayBuffer(
            data=data, pos=(self.pos + k) % self.capacity, size=jnp.minimum(self.size + k, self.capacity)
        )

    def take(self, bits: jax.Array) -> ReplayItem:
        """Items at ``bits % size`` for uniform random uint32 ``bits`` of any shape (leaves get that shape in
        front): uniform with replacement over the valid items; the modulo bias is below ``size / 2**32``."""
        idx = (bits % jnp.maximum(self.size, 1).astype(jnp.uint32)).astype(jnp.int32)
        return jax.tree.map(lambda d: d[idx], self.data)

    def sample(self, key: jax.Array, shape: tuple[int, ...]) -> ReplayItem:
        """Uniform with replacement over the valid items; leaves get leading axes ``shape``."""
        return self.take(jax.random.bits(key, shape, jnp.uint32))
