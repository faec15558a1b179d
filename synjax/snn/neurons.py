"""Leaky integrate-and-fire neurons as pure functions of explicit state (no modules, no gradients).

Time is discrete: one call of :func:`lif_step` is one SNN time step; currents are in units of the threshold's
units (dimensionless, the threshold defaults to 1). The membrane update is

    potential = beta * v + current            (leak, then integrate)
    spike     = potential >= threshold
    v'        = potential - threshold * spike (reset="subtract")   or   potential * (1 - spike) (reset="zero")

i.e. the reset is applied at once (the stored ``v`` is after reset), so a neuron driven by a constant current
``I >= threshold`` from ``v = 0`` spikes on every step. spyx's and snntorch's ``Leaky`` apply the reset one step
later; the firing pattern is the same up to that bookkeeping. Plasticity here is local (no surrogate gradients),
which is why these are plain functions rather than spyx modules.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

Reset = Literal["subtract", "zero"]
RESETS: tuple[str, ...] = ("subtract", "zero")


class LIFStep(NamedTuple):
    """One step's result; every field has the shape of the neuron population.

    v: membrane potential after reset (the state to carry). spike: float 0/1.
    potential: membrane potential before reset (``>= threshold`` where a spike happened).
    """

    v: jax.Array
    spike: jax.Array
    potential: jax.Array


def lif_step(
    v: jax.Array,
    current: jax.Array,
    *,
    beta: float | jax.Array,
    threshold: float | jax.Array = 1.0,
    reset: Reset = "subtract",
) -> LIFStep:
    """Advance LIF neurons by one time step.

    Args:
      v: membrane potentials, any shape (n,).
      current: input current this step, broadcastable to ``v``.
      beta: leak factor per step in [0, 1] (``exp(-1/tau_mem)``; 1 means no leak).
      threshold: firing threshold, > 0.
      reset: "subtract" (keep the overshoot) or "zero".
    Returns:
      :class:`LIFStep` (v after reset, spikes, potential before reset).
    """
    if reset not in RESETS:
        raise ValueError(f"reset={reset!r} is invalid: must be one of {', '.join(RESETS)}")
    potential = beta * v + current
    spike = (potential >= threshold).astype(potential.dtype)
    if reset == "subtract":
        v_new = potential - threshold * spike
    else:
        v_new = potential * (1.0 - spike)
    return LIFStep(v_new, spike, potential)


def lateral_inhibition(spikes: jax.Array, strength: float | jax.Array) -> jax.Array:
    """Inhibitory current each neuron receives from the others' spikes (all-to-all, no self-inhibition).

    Args:
      spikes: shape (..., n), 0/1 spikes of one step.
      strength: inhibitory weight per spike (>= 0; in threshold units).
    Returns:
      shape (..., n): ``-strength * (sum(spikes) - spikes)``.
    """
    return -strength * (jnp.sum(spikes, axis=-1, keepdims=True) - spikes)


class Window(NamedTuple):
    """A simulated window of ``T`` steps of ``n`` neurons.

    spikes: (T, n) 0/1. potentials: (T, n) before reset. v_final: (n,) after the last step.
    first_spike: (n,) time of the first spike, resolved within the step (see :func:`first_spike_time`);
    ``inf`` where the neuron did not spike.
    """

    spikes: jax.Array
    potentials: jax.Array
    v_final: jax.Array
    first_spike: jax.Array


def simulate(
    currents: jax.Array,
    *,
    beta: float | jax.Array,
    threshold: float | jax.Array = 1.0,
    reset: Reset = "subtract",
    inhibition: float | jax.Array = 0.0,
    v0: jax.Array | None = None,
) -> Window:
    """Run LIF neurons over a window of external currents, with optional lateral inhibition.

    The inhibition a neuron receives at step ``t`` comes from the others' spikes at step ``t - 1`` (one step of
    synaptic delay), added to ``currents[t]``. The first spike of a neuron at step ``k`` is timed within the
    step by linear interpolation of its potential from the start value ``v`` (time ``k - 1``) to ``potential``
    (time ``k``): ``k - 1 + (threshold - v) / (potential - v)``, in (k - 1, k]. For a constant input this is
    strictly decreasing in the input, so a stronger-driven neuron fires first even within one step.

    Args:
      currents: (T, n) external input current per step.
      beta: membrane decay per step, see :func:`lif_step`.
      threshold: spike threshold, see :func:`lif_step`.
      reset: reset rule, see :func:`lif_step`.
      inhibition: lateral inhibition strength (0 disables it).
      v0: (n,) initial potentials (zeros by default).
    Returns:
      :class:`Window`.
    """
    n = currents.shape[-1]
    dtype = currents.dtype
    v = jnp.zeros((n,), dtype) if v0 is None else v0
    tiny = jnp.finfo(dtype).tiny

    def body(carry, inputs):
        v, last_spikes, first = carry
        t, current = inputs
        out = lif_step(
            v,
            current + lateral_inhibition(last_spikes, inhibition),
            beta=beta,
            threshold=threshold,
            reset=reset,
        )
        frac = jnp.clip((threshold - v) / jnp.maximum(out.potential - v, tiny), 0.0, 1.0)
        first = jnp.where((out.spike > 0) & jnp.isinf(first), t - 1.0 + frac, first)
        return (out.v, out.spike, first), (out.spike, out.potential)

    steps = jnp.arange(currents.shape[0], dtype=dtype)
    init = (v, jnp.zeros((n,), dtype), jnp.full((n,), jnp.inf, dtype))
    (v_final, _, first), (spikes, potentials) = jax.lax.scan(body, init, (steps, currents), unroll=True)
    return Window(spikes, potentials, v_final, first)


def first_spike_time(window: Window) -> jax.Array:
    """(n,) time of each neuron's first spike in ``window``, resolved within the step (``inf``: no spike)."""
    return window.first_spike


def spike_count_winner(window: Window) -> jax.Array:
    """The winning neuron of a window: most spikes, ties to the first spike.

    Ties in the count go to the earliest first spike (:func:`first_spike_time`, resolved within the step); if
    the tied neurons did not spike at all, to the highest final membrane potential (the one closest to firing);
    any tie left goes to the lowest index.

    Args:
      window: a :class:`Window` of (T, n).
    Returns:
      int32 scalar in [0, n).
    """
    counts = jnp.sum(window.spikes, axis=0)
    tied = counts == jnp.max(counts)
    t_first = jnp.where(tied, window.first_spike, jnp.inf)
    tied = tied & (t_first == jnp.min(t_first))
    return jnp.argmax(jnp.where(tied, window.v_final, -jnp.inf)).astype(jnp.int32)
