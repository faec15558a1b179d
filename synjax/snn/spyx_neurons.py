"""spyx 1.0 (Flax NNX) neuron layers with surrogate gradients, for any network trained by backpropagation.

A spyx neuron layer is called once per SNN time step, ``out, state = layer(current, state)``, with
``state = layer.initial_state(batch)``; time is the caller's ``lax.scan``, time-major ``(T, B, ...)``. It emits
the spike of the membrane *before* this step's update (``s_t = H(V_{t-1} - thr)``, then
``V_t = beta V_{t-1} + I_t - s_t thr``), one step later than snntorch's ``Leaky``; currents and thresholds are
dimensionless (threshold 1 by default). :func:`make_neuron` builds any of them by name;
:func:`membrane_potential` reads the membrane out of a layer's state; :func:`trainable` is the nnx filter that
keeps the decays fixed.

    layer = make_neuron("LIF", 128, surrogate="arctan", beta=0.9, rngs=nnx.Rngs(params=key))
    state = layer.initial_state(batch)                  # (B, 128)
    spikes, state = layer(current, state)               # current, spikes: (B, 128)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import spyx
from flax import nnx

from synjax.checks import require
from synjax.snn.nir_neurons import NIR_KINDS, NirLIF

#: spiking neurons (spyx.nn class names); the ``R`` ones add a recurrent weight matrix (size, size).
NEURONS = ("LIF", "IF", "ALIF", "CuBaLIF", "RLIF", "RIF", "RCuBaLIF")
#: feedforward kind -> its recurrent form (what ``make_neuron(..., recurrent=True)`` builds).
RECURRENT = {"LIF": "RLIF", "IF": "RIF", "CuBaLIF": "RCuBaLIF"}
#: every kind :func:`make_neuron` builds: the spiking ones and the non-spiking leaky integrator (an output layer
#: whose membrane is read out).
KINDS = (*NEURONS, "LI")
#: surrogate gradients (spyx.axn); ``ste`` is the straight-through estimator (backward 1).
SURROGATES = ("arctan", "superspike", "tanh", "triangular", "boxcar", "ste")
#: sharpness ``k`` (boxcar: width) used when 0 is given. arctan's 1.0 gives the width of snntorch's ``atan()``
#: (alpha 2): spyx's arctan(k) backward is 1 / (pi (1 + (k pi x)^2)), snntorch's 1 / (1 + (pi x)^2).
SURROGATE_DEFAULT_K = {
    "arctan": 1.0,
    "superspike": 25.0,
    "tanh": 1.0,
    "triangular": 2.0,
    "boxcar": 2.0,
    "ste": 0.0,
}
#: parameter names of the neuron decays (fixed under the :func:`trainable` filter).
DECAY_NAMES = ("beta", "alpha", "gamma")
#: kinds whose state is ``concat([membrane, adaptation or synaptic current], -1)``, shape (..., 2 size).
TWO_PART_STATE = ("ALIF", "CuBaLIF", "RCuBaLIF")
#: when a neuron spikes within its step: ``spyx`` (on the membrane before the update, spyx's order) or ``nir``
#: (on the updated membrane, NIR's discretization: :mod:`synjax.snn.nir_neurons`)
DISCRETIZATIONS = ("spyx", "nir")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    require(value in allowed, name, value, f"one of {', '.join(allowed)}")


def surrogate(name: str, k: float = 0.0) -> Callable[[jax.Array], jax.Array]:
    """spyx spike function: Heaviside forward, surrogate ``name`` (:data:`SURROGATES`) backward.

    ``k`` is its sharpness (boxcar: width); 0 means :data:`SURROGATE_DEFAULT_K`.
    """
    _check("surrogate", name, SURROGATES)
    if name == "ste":  # spyx.axn.custom()'s default backward is g * x, not the straight-through g * 1
        return spyx.axn.custom(bwd=jnp.ones_like)
    return getattr(spyx.axn, name)(k or SURROGATE_DEFAULT_K[name])


def make_neuron(
    kind: str,
    size: int,
    *,
    surrogate: str | Callable[[jax.Array], jax.Array] = "arctan",
    surrogate_k: float = 0.0,
    beta: float = 0.95,
    alpha: float = 0.9,
    gamma: float = 0.9,
    threshold: float = 1.0,
    recurrent: bool = False,
    discretization: str = "spyx",
    rngs: nnx.Rngs,
) -> nnx.Module:
    """One spyx neuron layer of ``size`` units, state (B, size) or (B, 2 size) (:data:`TWO_PART_STATE`).

    Args:
      kind: one of :data:`KINDS`.
      size: units in the layer.
      surrogate: a :data:`SURROGATES` name, or a spike function made by :func:`surrogate`; unused by ``LI``.
      surrogate_k: the named surrogate's sharpness; 0 means its default.
      beta: membrane decay per step, in [0, 1] (not used by IF / RIF).
      alpha: synaptic current decay (CuBaLIF / RCuBaLIF); gamma: threshold adaptation decay (ALIF).
      threshold: firing threshold (> 0).
      recurrent: use the recurrent form of ``kind`` (:data:`RECURRENT`); ``kind`` may already be one.
      discretization: one of :data:`DISCRETIZATIONS`; ``nir`` builds a :class:`~synjax.snn.nir_neurons.NirLIF`
        (kinds :data:`~synjax.snn.nir_neurons.NIR_KINDS` and ``LI``, whose spyx form is already NIR's).
      rngs: draws the recurrent weights.
    Returns:
      the layer. Recurrent weights (size, size) are divided by sqrt(size), as the classifier always did. Note:
      spyx 1.0 draws them with flax's ``truncated_normal()`` (std 0.01 before truncation, about 0.0088), not
      std 1, so after the division the recurrent feedback starts near zero (about 0.0088 / sqrt(size)).
    Raises:
      ValueError: ``kind`` or ``surrogate`` unknown, or ``recurrent`` for a kind without a recurrent form.
    """
    _check("kind", kind, KINDS)
    if recurrent and kind not in RECURRENT.values():
        allowed = ", ".join((*RECURRENT, *RECURRENT.values()))
        require(kind in RECURRENT, "kind", kind, f"one of {allowed} with recurrent=True")
        kind = RECURRENT[kind]
    _check("discretization", discretization, DISCRETIZATIONS)
    shape, cls = (size,), getattr(spyx.nn, kind)
    if kind == "LI":
        return cls(shape, beta=beta, rngs=rngs)
    if discretization == "nir":
        require(kind in NIR_KINDS, "kind", kind, f"one of {', '.join(NIR_KINDS)} with discretization='nir'")
        return NirLIF(size, beta=None if kind in ("IF", "RIF") else beta, threshold=threshold,
                      activation=_spike_fn(surrogate, surrogate_k), recurrent=kind.startswith("R"), rngs=rngs)  # fmt: skip
    common = {"threshold": threshold, "activation": _spike_fn(surrogate, surrogate_k), "rngs": rngs}
    if kind in ("IF", "RIF"):
        layer = cls(shape, **common)
    elif kind == "ALIF":
        layer = cls(shape, beta=beta, gamma=gamma, **common)
    elif kind in ("CuBaLIF", "RCuBaLIF"):
        layer = cls(shape, alpha=alpha, beta=beta, **common)
    else:
        layer = cls(shape, beta=beta, **common)
    if hasattr(layer, "recurrent_w"):
        layer.recurrent_w = nnx.Param(layer.recurrent_w[...] / math.sqrt(size))
    return layer


def _spike_fn(spec: str | Callable, k: float) -> Callable[[jax.Array], jax.Array]:
    return surrogate(spec, k) if isinstance(spec, str) else spec


def membrane_potential(kind: str, state: jax.Array) -> jax.Array:
    """The membrane potential (..., size) in a ``kind`` layer's state (..., size) or (..., 2 size)."""
    return jnp.split(state, 2, axis=-1)[0] if kind in TWO_PART_STATE else state


def trainable(path, value) -> bool:
    """nnx filter of the parameters trained when the decays are fixed: every ``nnx.Param`` but :data:`DECAY_NAMES`."""
    return isinstance(value, nnx.Param) and path[-1] not in DECAY_NAMES
