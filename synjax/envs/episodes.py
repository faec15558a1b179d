"""Episode bookkeeping inside jitted rollouts: running return/length and what finished episodes achieved."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EpisodeStats:
    """Per-environment running episode statistics (every field has shape ``batch``).

    Attributes:
      ret: return of the running episode so far.
      length: steps of the running episode so far.
      done_return_sum: sum of the returns of episodes finished since the last :func:`drain`.
      done_length_sum: sum of their lengths.
      done_count: how many finished.
      last_return: return of the last finished episode (NaN before the first).
    """

    ret: jax.Array
    length: jax.Array
    done_return_sum: jax.Array
    done_length_sum: jax.Array
    done_count: jax.Array
    last_return: jax.Array

    @classmethod
    def zeros(cls, batch: tuple[int, ...] = ()) -> EpisodeStats:
        z = jnp.zeros(batch, jnp.float32)
        return cls(
            z, jnp.zeros(batch, jnp.int32), z, z, jnp.zeros(batch, jnp.int32), jnp.full(batch, jnp.nan)
        )

    def update(self, reward: jax.Array, done: jax.Array) -> EpisodeStats:
        """Add one step's ``reward``; ``done`` (terminated or truncated) closes the episode."""
        ret = self.ret + reward
        length = self.length + 1
        return EpisodeStats(
            ret=jnp.where(done, 0.0, ret),
            length=jnp.where(done, 0, length),
            done_return_sum=self.done_return_sum + jnp.where(done, ret, 0.0),
            done_length_sum=self.done_length_sum + jnp.where(done, length, 0),
            done_count=self.done_count + done.astype(jnp.int32),
            last_return=jnp.where(done, ret, self.last_return),
        )

    def mean_return(self) -> jax.Array:
        """Mean return of the episodes finished since the last drain, over the whole batch (NaN if none)."""
        return jnp.sum(self.done_return_sum) / jnp.sum(self.done_count)

    def mean_length(self) -> jax.Array:
        """Mean length of those episodes (NaN if none)."""
        return jnp.sum(self.done_length_sum) / jnp.sum(self.done_count)

    def drain(self) -> EpisodeStats:
        """Forget finished episodes (keep the running ones)."""
        z = jnp.zeros_like(self.done_return_sum)
        return self.replace(done_return_sum=z, done_length_sum=z, done_count=jnp.zeros_like(self.done_count))
