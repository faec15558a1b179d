"""Spiking neurons in the discretization that a NIR graph expresses exactly: integrate, spike on the updated
membrane, subtract the threshold in the same step.

A spyx neuron (:mod:`synjax.snn.spyx_neurons`) emits the spike of the membrane *before* the step's update, so
each layer delays its input by one SNN step, and no NIR node says that. :class:`NirLIF` is the forward-Euler
step (dt = 1) of NIR's ``LIF`` node with ``tau = 1 / (1 - beta)``, ``r = tau``, ``v_leak = 0`` (``IF``: no leak)
followed by a subtract reset, which is what an exported graph's metadata names::

    V_t = beta V_{t-1} + I_t (+ W_rec s_{t-1})     s_t = H(V_t - thr)     V_t <- V_t - s_t thr

The recurrent kinds read the previous step's spikes (NIR's cycle: the edge that closes it carries the previous
step's output), so their state holds the membrane and those spikes, ``(B, 2 size)``. Same call shape as spyx's:
``spikes, state = layer(current, state)``, ``state = layer.initial_state(batch)``; the surrogate gradient is the
same spyx spike function. :func:`synjax.snn.spyx_neurons.make_neuron` builds these with
``discretization="nir"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

#: the neuron kinds of :mod:`synjax.snn.spyx_neurons` that the NIR discretization has (NIR has no ALIF node;
#: the current-based kinds are not built in it)
NIR_KINDS = ("LIF", "IF", "RLIF", "RIF")


class NirLIF(nnx.Module):
    """A layer of ``size`` leaky (``beta`` given) or non-leaky (``beta=None``: IF) integrate-and-fire neurons,
    optionally with recurrent weights ``recurrent_w (size, size)`` (``s_{t-1} @ recurrent_w``).

    Args:
      size: units.
      beta: membrane decay per step in [0, 1] (kept as a fixed ``beta`` parameter), or None for IF.
      threshold: firing threshold (> 0).
      activation: the spike function (Heaviside forward, surrogate backward).
      recurrent: add ``recurrent_w``, drawn as spyx draws its recurrent kinds' weights (truncated normal, std
        0.01) and divided by sqrt(size).
      rngs: draws the recurrent weights.
    """

    def __init__(self, size: int, *, beta: float | None, threshold: float,
                 activation: Callable[[jax.Array], jax.Array], recurrent: bool = False, rngs: nnx.Rngs):  # fmt: skip
        self.hidden_shape = (size,)
        self.threshold = threshold
        self.spike = activation
        self.beta = None if beta is None else nnx.Param(jnp.full((), beta, jnp.float32))
        self.recurrent = recurrent
        if recurrent:
            w = nnx.initializers.truncated_normal()(rngs.params(), (size, size))
            self.recurrent_w = nnx.Param(w / math.sqrt(size))

    def initial_state(self, batch: int) -> jax.Array:
        """At rest: ``(batch, size)``, or ``(batch, 2 size)`` (membrane, last spikes) with recurrent weights."""
        return jnp.zeros((batch, self.hidden_shape[0] * (2 if self.recurrent else 1)), jnp.float32)

    def __call__(self, x: jax.Array, state: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x (B, size)`` input current, ``state`` -> (spikes ``(B, size)`` of this step, new state)."""
        if self.recurrent:
            v, last = jnp.split(state, 2, axis=-1)
            x = x + last @ self.recurrent_w[...]
        else:
            v = state
        v = v + x if self.beta is None else jnp.clip(self.beta[...], 0, 1) * v + x
        spikes = self.spike(v - self.threshold)
        v = v - spikes * self.threshold
        return spikes, (jnp.concatenate([v, spikes], -1) if self.recurrent else v)
