"""Spike encoders: the spike train of one active input neuron over a window of ``num_steps`` SNN time steps.

A one-hot input (e.g. a Taxi state among 500 neurons) has one active neuron; only its train needs drawing, the
others are silent. :func:`onehot_trains` expands a train to the whole population when a dense (T, n) raster is
wanted; :func:`onehot_current` gives the synaptic current it drives through a weight matrix without building it.

Rates are in spikes per SNN time step, in [0, 1].
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

Encoding = Literal["regular", "poisson"]
ENCODINGS: tuple[str, ...] = ("regular", "poisson")


def regular_train(num_steps: int, rate: float | jax.Array = 1.0, dtype=jnp.float32) -> jax.Array:
    """Evenly spaced spikes: a spike at step ``t`` iff ``floor((t + 1) * rate) > floor(t * rate)``.

    Args:
      num_steps: T, window length in time steps.
      rate: spikes per time step in [0, 1]; ``rate = 1`` spikes every step.
    Returns:
      (T,) 0/1 train with exactly ``floor(T * rate)`` spikes.
    """
    t = jnp.arange(num_steps, dtype=jnp.float32)
    rate = jnp.asarray(rate, jnp.float32)
    # A small tolerance keeps rates like 0.1 (inexact in binary) from losing a spike to rounding.
    eps = 1e-5
    return (jnp.floor((t + 1) * rate + eps) > jnp.floor(t * rate + eps)).astype(dtype)


def poisson_train(
    key: jax.Array, num_steps: int, rate: float | jax.Array = 0.5, dtype=jnp.float32
) -> jax.Array:
    """Bernoulli (discrete-time Poisson) spikes: each step spikes independently with probability ``rate``.

    Returns:
      (T,) 0/1 train; its spike count is Binomial(T, rate).
    """
    return jax.random.bernoulli(key, rate, (num_steps,)).astype(dtype)


def spike_train(
    key: jax.Array, encoding: Encoding, num_steps: int, rate: float | jax.Array, dtype=jnp.float32
) -> jax.Array:
    """Either encoder by name (``key`` is unused for "regular"). Returns (T,) 0/1."""
    if encoding == "regular":
        return regular_train(num_steps, rate, dtype)
    if encoding == "poisson":
        return poisson_train(key, num_steps, rate, dtype)
    raise ValueError(f"encoding={encoding!r} is invalid: must be one of {', '.join(ENCODINGS)}")


def onehot_trains(index: jax.Array, num_neurons: int, train: jax.Array) -> jax.Array:
    """The dense raster of a one-hot input: neuron ``index`` fires ``train``, the others are silent.

    Args:
      index: int scalar in [0, num_neurons).
      train: (T,) spike train of the active neuron.
    Returns:
      (T, num_neurons).
    """
    return train[:, None] * jax.nn.one_hot(index, num_neurons, dtype=train.dtype)[None, :]


def onehot_current(index: jax.Array, train: jax.Array, weights: jax.Array) -> jax.Array:
    """Synaptic current of a one-hot raster through ``weights``: equals ``onehot_trains(...) @ weights``.

    Args:
      index: int scalar, the active input neuron.
      train: (T,) its spike train.
      weights: (num_neurons, n_out).
    Returns:
      (T, n_out): ``train[t] * weights[index]``.
    """
    return train[:, None] * weights[index][None, :]
