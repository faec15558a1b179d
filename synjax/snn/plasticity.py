"""Plasticity rules as optax-style ``(init, update)`` pairs of pure functions over explicit state pytrees.

Every rule is a :class:`PlasticityRule` (like ``optax.GradientTransformation``) with one signature:

    state = rule.init(weights)                             # weights (n_pre, n_post): the shapes and dtype
    dw, state = rule.update(dw, state, weights, signals)   # one step; dw (n_pre, n_post)
    weights = apply_updates(weights, dw, w_min, w_max)

``dw`` is the weight change made so far in this step (:func:`no_change` at the head, in a :func:`chain` what
the rules before made): a rule that makes a change adds its own (:func:`stdp`; the three-factor rules at a
modulation step), a rule that only keeps state passes it on (:func:`exponential_traces`; the three-factor rules
inside a window), a rule that transforms changes transforms it (:func:`scale`). :func:`chain` runs rules one
after the other on the same ``signals``, as ``optax.chain`` does. ``signals`` (:class:`Signals`) is what the
step observed; a rule reads the fields it needs and ignores the rest.

Nothing here knows about Taxi or Q-learning. Time is discrete: a *time step* is an update with spikes; the
spike-trace time constants ``tau_*`` are in time steps. The eligibility time constant ``tau_e`` of the
three-factor rules is in *modulation steps* (updates with a ``modulator``, e.g. environment steps), because the
modulating signal (reward, TD error) arrives once per such step. Spikes are 0/1 floats. Add batch axes with
``jax.vmap``.

- :func:`exponential_traces`: ``x <- x * exp(-1/tau) + spike``, so one spike at ``t0`` leaves
  ``exp(-(t - t0)/tau)`` at ``t >= t0``.
- :func:`stdp`: pair-based, all-to-all STDP. A pre spike at ``t_pre`` and a post spike at ``t_post`` change the
  weight by ``a_plus * exp(-dt/tau_plus)`` if ``dt = t_post - t_pre >= 0`` (simultaneous spikes count as causal)
  and by ``-a_minus * exp(dt/tau_minus)`` if ``dt < 0``; additive (no bounds), hard bounds (clip) or soft bounds
  (potentiation scaled by ``w_max - w``, depression by ``w - w_min``; van Rossum et al. 2000).
- :func:`reward_modulated_stdp`: the three-factor rule (Izhikevich 2007; Florian 2007 "MSTDPET"). The STDP pair
  terms of a window are not applied but collected in a *tag*; at each modulation step the eligibility trace decays
  and takes the tag, ``e <- exp(-1/tau_e) * e + tag_scale * tag``, and the weights move by
  ``eta * modulator * e`` within ``[w_min, w_max]``.
- :func:`synjax.snn.sparse_plasticity.sparse_reward_modulated_stdp`: the same for one active pre neuron per
  window, keeping the eligibility of the recently tagged rows only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

Bounds = Literal["none", "hard", "soft"]
BOUNDS: tuple[str, ...] = ("none", "hard", "soft")
Trace = Literal["accumulate", "replace"]
TRACES: tuple[str, ...] = ("accumulate", "replace")


class Signals(NamedTuple):
    """What a step observed (None: not observed this step).

    pre: (n_pre,) pre-synaptic spikes of this time step ((1,): those of ``row``, for the sparse rules).
    post: (n_post,) post-synaptic spikes of this time step (with ``pre``).
    modulator: scalar (reward, TD error): the step ends a modulation step.
    row: int32 scalar, the one active pre neuron of the window (sparse rules).
    learning: (n_post,) the learning signal of this time step (e-prop, :func:`synjax.snn.eprop.eprop`, whose
      ``post`` is the postsynaptic pseudo-derivatives rather than spikes).
    """

    pre: jax.Array | None = None
    post: jax.Array | None = None
    modulator: jax.Array | float | None = None
    row: jax.Array | int | None = None
    learning: jax.Array | None = None


class PlasticityRule(NamedTuple):
    """``init(weights) -> state``; ``update(dw, state, weights, signals) -> (dw, state)`` (module docstring)."""

    init: Callable[[jax.Array], Any]
    update: Callable[[jax.Array, Any, jax.Array, Signals], tuple[jax.Array, Any]]


def no_change(weights: jax.Array) -> jax.Array:
    """The ``dw`` a step starts from: zeros shaped like ``weights``."""
    return jnp.zeros_like(weights)


def chain(*rules: PlasticityRule) -> PlasticityRule:
    """Rules applied one after the other, like ``optax.chain``: each gets the ``dw`` of the one before and the
    same ``weights`` and ``signals``; the state is the tuple of their states. Any object with a rule's ``init``
    and ``update`` may take part."""

    def init(weights: jax.Array) -> tuple:
        return tuple(rule.init(weights) for rule in rules)

    def update(dw: jax.Array, state: tuple, weights: jax.Array, signals: Signals) -> tuple[jax.Array, tuple]:
        if len(state) != len(rules):
            raise ValueError(f"state has {len(state)} entries: must have one per rule ({len(rules)})")
        new = []
        for rule, s in zip(rules, state):
            dw, s = rule.update(dw, s, weights, signals)
            new.append(s)
        return dw, tuple(new)

    return PlasticityRule(init, update)


def scale(factor: float) -> PlasticityRule:
    """``dw <- factor * dw`` (stateless; e.g. a learning rate after the rules of a :func:`chain`)."""

    def update(dw, state, weights, signals):
        del weights, signals
        return factor * dw, state

    return PlasticityRule(lambda weights: (), update)


def decay_factor(tau: float) -> float:
    """Per-step decay ``exp(-1/tau)`` of an exponential trace; ``tau = 0`` gives 0 (no memory)."""
    if tau < 0:
        raise ValueError(f"tau={tau!r} is invalid: must be >= 0 (time steps)")
    return 0.0 if tau == 0 else math.exp(-1.0 / tau)


class TraceState(NamedTuple):
    """Pre- and post-synaptic spike traces: ``pre`` (n_pre,), ``post`` (n_post,)."""

    pre: jax.Array
    post: jax.Array


def zero_traces(n_pre: int, n_post: int, dtype) -> TraceState:
    """Traces of silent neurons: zeros (n_pre,), (n_post,)."""
    return TraceState(jnp.zeros((n_pre,), dtype), jnp.zeros((n_post,), dtype))


def exponential_traces(tau_pre: float, tau_post: float) -> PlasticityRule:
    """Exponential spike traces with time constants ``tau_pre`` and ``tau_post`` (time steps, >= 0); the state
    is the :class:`TraceState`, ``dw`` passes through."""
    d_pre, d_post = decay_factor(tau_pre), decay_factor(tau_post)

    def init(weights: jax.Array) -> TraceState:
        return zero_traces(*weights.shape, weights.dtype)

    def update(dw, state: TraceState, weights, signals: Signals):
        return dw, TraceState(state.pre * d_pre + signals.pre, state.post * d_post + signals.post)

    return PlasticityRule(init, update)


def bounded_weights(
    potentiation: jax.Array,
    depression: jax.Array,
    weights: jax.Array,
    bounds: Bounds,
    w_min: float,
    w_max: float,
) -> jax.Array:
    """The weights after the change ``potentiation - depression`` (both >= 0, shaped like ``weights``).

    "none": additive. "hard": ``weights + change`` clipped to ``[w_min, w_max]``. "soft": the change is
    ``potentiation * (w_max - w) - depression * (w - w_min)``, then clipped like "hard" so that the bounds hold
    even for changes larger than the distance to the bound.
    """
    if bounds == "none":
        return weights + potentiation - depression
    if bounds == "soft":
        change = potentiation * (w_max - weights) - depression * (weights - w_min)
    elif bounds == "hard":
        change = potentiation - depression
    else:
        raise ValueError(f"bounds={bounds!r} is invalid: must be one of {', '.join(BOUNDS)}")
    return jnp.clip(weights + change, w_min, w_max)


def bounded_change(
    potentiation: jax.Array,
    depression: jax.Array,
    weights: jax.Array,
    bounds: Bounds,
    w_min: float,
    w_max: float,
) -> jax.Array:
    """The weight change under ``bounds``: ``potentiation - depression`` for "none", else
    ``bounded_weights(...) - weights`` (see :func:`bounded_weights`).

    Adding it back can overshoot a bound by one float rounding; :func:`apply_updates` clips that away.
    """
    if bounds == "none":
        return potentiation - depression
    return bounded_weights(potentiation, depression, weights, bounds, w_min, w_max) - weights


def apply_updates(
    weights: jax.Array, dw: jax.Array, w_min: float | None = None, w_max: float | None = None
) -> jax.Array:
    """``weights + dw`` (like ``optax.apply_updates``), clipped to ``[w_min, w_max]`` when bounds are given so
    that a bounded rule's weights stay exactly inside them despite float rounding."""
    w = weights + dw
    if w_min is not None or w_max is not None:
        w = jnp.clip(w, w_min, w_max)
    return w


def check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max) -> None:
    """ValueError naming the STDP argument out of range."""
    for name, value in (
        ("a_plus", a_plus),
        ("a_minus", a_minus),
        ("tau_plus", tau_plus),
        ("tau_minus", tau_minus),
    ):
        if not value >= 0:
            raise ValueError(f"{name}={value!r} is invalid: must be >= 0")
    if bounds not in BOUNDS:
        raise ValueError(f"bounds={bounds!r} is invalid: must be one of {', '.join(BOUNDS)}")
    if bounds != "none" and not w_min < w_max:
        raise ValueError(f"w_min={w_min!r}, w_max={w_max!r} are invalid: must have w_min < w_max")


def check_three_factor(eta, trace, eligibility_max) -> None:
    """ValueError naming the three-factor argument out of range."""
    if not eta >= 0:
        raise ValueError(f"eta={eta!r} is invalid: must be >= 0")
    if trace not in TRACES:
        raise ValueError(f"trace={trace!r} is invalid: must be one of {', '.join(TRACES)}")
    if eligibility_max is not None and not eligibility_max > 0:
        raise ValueError(f"eligibility_max={eligibility_max!r} is invalid: must be > 0 or None")


def pair_terms(traces: TraceState, pre_spikes, post_spikes, d_plus, d_minus, a_plus, a_minus):
    """One step of all-to-all pair STDP: (potentiation, depression, new traces), each (n_pre, n_post) >= 0."""
    pre_trace = traces.pre * d_plus + pre_spikes  # includes this step's pre spikes: dt = 0 is causal
    post_trace_now = traces.post * d_minus  # only earlier post spikes depress
    potentiation = a_plus * pre_trace[:, None] * post_spikes[None, :]
    depression = a_minus * pre_spikes[:, None] * post_trace_now[None, :]
    return potentiation, depression, TraceState(pre_trace, post_trace_now + post_spikes)


def stdp(
    a_plus: float = 0.01,
    a_minus: float = 0.01,
    tau_plus: float = 20.0,
    tau_minus: float = 20.0,
    bounds: Bounds = "hard",
    w_min: float = 0.0,
    w_max: float = 1.0,
) -> PlasticityRule:
    """Pair-based all-to-all STDP; the state is the :class:`TraceState`; adds its change to ``dw``.

    Args:
      a_plus: potentiation amplitude (weight units; a fraction of the distance to the bound for "soft").
      a_minus: depression amplitude (same units).
      tau_plus: potentiation window time constant (time steps).
      tau_minus: depression window time constant (time steps).
      bounds: "none" (additive), "hard" or "soft", see :func:`bounded_change`.
      w_min: lower weight bound (ignored for "none").
      w_max: upper weight bound (ignored for "none").
    """
    check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max)
    d_plus, d_minus = decay_factor(tau_plus), decay_factor(tau_minus)

    def init(weights: jax.Array) -> TraceState:
        return zero_traces(*weights.shape, weights.dtype)

    def update(dw, state: TraceState, weights, signals: Signals):
        pot, dep, state = pair_terms(state, signals.pre, signals.post, d_plus, d_minus, a_plus, a_minus)
        return dw + bounded_change(pot, dep, weights, bounds, w_min, w_max), state

    return PlasticityRule(init, update)


def max_potentiation(a_plus: float, tau_plus: float, num_steps: int) -> float:
    """The tag of a synapse whose pre and post neurons both spike on every step of a ``num_steps`` window,
    potentiation only: ``a_plus * sum_{t < T} sum_{k <= t} exp(-k / tau_plus)``.

    Dividing a window's tag by it (``tag_scale = 1 / max_potentiation``) bounds the potentiation a window can
    add to the eligibility by 1.
    """
    d = decay_factor(tau_plus)
    return a_plus * sum(sum(d**k for k in range(t + 1)) for t in range(num_steps))


def modulated_terms(modulator: jax.Array, eligibility: jax.Array, weights: jax.Array, eta: float):
    """(potentiation, depression) of the three-factor change ``eta * modulator * eligibility``: its positive and
    negative parts, shaped like ``weights``, for :func:`bounded_change` or :func:`bounded_weights`."""
    change = eta * jnp.asarray(modulator, weights.dtype) * eligibility
    return jnp.maximum(change, 0.0), jnp.maximum(-change, 0.0)


def tag_step(state, signals: Signals, d_plus, d_minus, a_plus, a_minus):
    """A time step of an R-STDP window: ``state`` (any NamedTuple with ``traces`` and ``tag``) with the pair
    terms of ``signals.pre`` and ``signals.post`` (:func:`pair_terms`) added to its tag."""
    pot, dep, traces = pair_terms(state.traces, signals.pre, signals.post, d_plus, d_minus, a_plus, a_minus)
    return state._replace(traces=traces, tag=state.tag + pot - dep)


def fold_tag(e: jax.Array, tag: jax.Array, trace: Trace, eligibility_max: float | None) -> jax.Array:
    """Fold a (decayed-already) eligibility ``e`` and a tag: add, or replace where the tag is nonzero; clip."""
    e = e + tag if trace == "accumulate" else jnp.where(tag != 0, tag, e)
    if eligibility_max is not None:
        e = jnp.clip(e, -eligibility_max, eligibility_max)
    return e


class RSTDPState(NamedTuple):
    """State of :func:`reward_modulated_stdp`.

    traces: spike traces of the current window (pre (n_pre,), post (n_post,)).
    tag: (n_pre, n_post) pair-STDP change collected in the current window (not applied to the weights).
    eligibility: (n_pre, n_post) eligibility trace, decays by ``exp(-1/tau_e)`` per modulation step.
    """

    traces: TraceState
    tag: jax.Array
    eligibility: jax.Array


def reward_modulated_stdp(
    eta: float,
    tau_e: float,
    a_plus: float = 1.0,
    a_minus: float = 1.0,
    tau_plus: float = 20.0,
    tau_minus: float = 20.0,
    tag_scale: float = 1.0,
    trace: Trace = "accumulate",
    eligibility_max: float | None = None,
    bounds: Bounds = "hard",
    w_min: float = -1.0,
    w_max: float = 1.0,
) -> PlasticityRule:
    """Reward-modulated STDP with an eligibility trace (MSTDPET); the state is the :class:`RSTDPState`.

    An update with spikes (``signals.pre``, ``signals.post``) is a time step of the window: the pair terms go
    into the tag, ``dw`` passes through. An update with ``signals.modulator`` ends a modulation step (after the
    time step, when both are given): the eligibility decays and takes ``tag_scale * tag``, ``dw`` gets
    ``eta * modulator * eligibility`` within the bounds, and the window (traces, tag) is cleared.

    Args:
      eta: learning rate (weight units per unit of modulator and eligibility).
      tau_e: eligibility time constant in modulation steps (>= 0; 0 keeps only the current step's tag).
      a_plus: potentiation amplitude of the pair window that forms the tag.
      a_minus: its depression amplitude.
      tau_plus: its potentiation time constant (time steps).
      tau_minus: its depression time constant (time steps).
      tag_scale: factor on the tag before it enters the eligibility (e.g. ``1 / max_potentiation(...)``).
      trace: "accumulate" (``e <- d * e + tag``, Florian 2007) or "replace" (synapses with a nonzero tag take
        it, the others decay: replacing traces, Singh & Sutton 1996).
      eligibility_max: clip the eligibility to ``[-eligibility_max, eligibility_max]`` (None: no clip).
      bounds: bound rule of the modulated change, see :func:`bounded_change`.
      w_min: lower weight bound.
      w_max: upper weight bound.
    """
    check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max)
    check_three_factor(eta, trace, eligibility_max)
    d_plus, d_minus, d_e = decay_factor(tau_plus), decay_factor(tau_minus), decay_factor(tau_e)

    def init(weights: jax.Array) -> RSTDPState:
        zeros = jnp.zeros_like(weights)
        return RSTDPState(zero_traces(*weights.shape, weights.dtype), zeros, zeros)

    def update(dw, state: RSTDPState, weights, signals: Signals):
        if signals.pre is not None:
            state = tag_step(state, signals, d_plus, d_minus, a_plus, a_minus)
        if signals.modulator is not None:
            e = fold_tag(state.eligibility * d_e, tag_scale * state.tag, trace, eligibility_max)
            pot, dep = modulated_terms(signals.modulator, e, weights, eta)
            dw = dw + bounded_change(pot, dep, weights, bounds, w_min, w_max)
            state = RSTDPState(jax.tree.map(jnp.zeros_like, state.traces), jnp.zeros_like(state.tag), e)
        return dw, state

    return PlasticityRule(init, update)
