"""Plasticity rules as optax-like ``(init, update)`` pairs of pure functions over explicit state pytrees.

Nothing here knows about Taxi or Q-learning. Time is discrete: a *time step* is one SNN step (one call of
``update``); the spike-trace time constants ``tau_*`` are in time steps. The eligibility time constant ``tau_e`` of
the three-factor rule is in *modulation steps* (calls of ``apply``, e.g. environment steps), because the
modulating signal (reward, TD error) arrives once per such step.

Shapes: ``pre_spikes`` (n_pre,), ``post_spikes`` (n_post,), weights and weight changes (n_pre, n_post), all
floats with spikes as 0/1. Add batch axes with ``jax.vmap``.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

Bounds = Literal["none", "hard", "soft"]
BOUNDS: tuple[str, ...] = ("none", "hard", "soft")


def decay_factor(tau: float) -> float:
    """Per-step decay ``exp(-1/tau)`` of an exponential trace; ``tau = 0`` gives 0 (no memory)."""
    if tau < 0:
        raise ValueError(f"tau={tau!r} is invalid: must be >= 0 (time steps)")
    return 0.0 if tau == 0 else math.exp(-1.0 / tau)


class TraceState(NamedTuple):
    """Pre- and post-synaptic spike traces: ``pre`` (n_pre,), ``post`` (n_post,)."""

    pre: jax.Array
    post: jax.Array


class TraceRule(NamedTuple):
    """``init(n_pre, n_post, dtype) -> TraceState``; ``update(state, pre_spikes, post_spikes) -> TraceState``."""

    init: Callable[..., TraceState]
    update: Callable[[TraceState, jax.Array, jax.Array], TraceState]


def exponential_traces(tau_pre: float, tau_post: float) -> TraceRule:
    """Exponential spike traces with time constants ``tau_pre`` and ``tau_post`` (time steps, >= 0)."""
    d_pre, d_post = decay_factor(tau_pre), decay_factor(tau_post)

    def init(n_pre: int, n_post: int, dtype=jnp.float32) -> TraceState:
        return TraceState(jnp.zeros((n_pre,), dtype), jnp.zeros((n_post,), dtype))

    def update(state: TraceState, pre_spikes: jax.Array, post_spikes: jax.Array) -> TraceState:
        return TraceState(state.pre * d_pre + pre_spikes, state.post * d_post + post_spikes)

    return TraceRule(init, update)


class PlasticityRule(NamedTuple):
    """``init(n_pre, n_post, dtype) -> state``; ``update(state, pre_spikes, post_spikes, weights) -> (dw, state)``.

    ``dw`` is the weight change of this time step (add it with :func:`apply_updates`).
    """

    init: Callable[..., Any]
    update: Callable[..., tuple[jax.Array, Any]]


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
    """``bounded_weights(...) - weights``: the weight change under ``bounds`` (see :func:`bounded_weights`).

    Adding it back can overshoot a bound by one float rounding; :func:`apply_updates` clips that away.
    """
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


def _check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max) -> None:
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


def _pair_terms(traces: TraceState, pre_spikes, post_spikes, d_plus, d_minus, a_plus, a_minus):
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
    """Pair-based all-to-all STDP; the state is the :class:`TraceState`.

    Args:
      a_plus, a_minus: amplitudes (weight units; fractions of the distance to the bound for "soft").
      tau_plus, tau_minus: window time constants (time steps).
      bounds: "none" (additive), "hard" or "soft", see :func:`bounded_change`.
      w_min, w_max: weight bounds (ignored for "none").
    """
    _check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max)
    d_plus, d_minus = decay_factor(tau_plus), decay_factor(tau_minus)

    def init(n_pre: int, n_post: int, dtype=jnp.float32) -> TraceState:
        return TraceState(jnp.zeros((n_pre,), dtype), jnp.zeros((n_post,), dtype))

    def update(state: TraceState, pre_spikes, post_spikes, weights):
        pot, dep, state = _pair_terms(state, pre_spikes, post_spikes, d_plus, d_minus, a_plus, a_minus)
        return bounded_change(pot, dep, weights, bounds, w_min, w_max), state

    return PlasticityRule(init, update)


def max_potentiation(a_plus: float, tau_plus: float, num_steps: int) -> float:
    """The tag of a synapse whose pre and post neurons both spike on every step of a ``num_steps`` window,
    potentiation only: ``a_plus * sum_{t < T} sum_{k <= t} exp(-k / tau_plus)``.

    Dividing a window's tag by it (``tag_scale = 1 / max_potentiation``) bounds the potentiation a window can
    add to the eligibility by 1.
    """
    d = decay_factor(tau_plus)
    return a_plus * sum(sum(d**k for k in range(t + 1)) for t in range(num_steps))


Trace = Literal["accumulate", "replace"]
TRACES: tuple[str, ...] = ("accumulate", "replace")


def modulated_change(
    modulator: jax.Array,
    eligibility: jax.Array,
    weights: jax.Array,
    eta: float,
    bounds: Bounds = "hard",
    w_min: float = -1.0,
    w_max: float = 1.0,
) -> jax.Array:
    """The three-factor weight change ``eta * modulator * eligibility`` under ``bounds`` (shaped like weights)."""
    change = eta * jnp.asarray(modulator, weights.dtype) * eligibility
    return bounded_change(jnp.maximum(change, 0.0), jnp.maximum(-change, 0.0), weights, bounds, w_min, w_max)


def modulated_weights(
    modulator: jax.Array,
    eligibility: jax.Array,
    weights: jax.Array,
    eta: float,
    bounds: Bounds = "hard",
    w_min: float = -1.0,
    w_max: float = 1.0,
) -> jax.Array:
    """The weights after :func:`modulated_change` (exactly inside the bounds)."""
    change = eta * jnp.asarray(modulator, weights.dtype) * eligibility
    return bounded_weights(jnp.maximum(change, 0.0), jnp.maximum(-change, 0.0), weights, bounds, w_min, w_max)


def _fold_tag(e: jax.Array, tag: jax.Array, trace: Trace, eligibility_max: float | None) -> jax.Array:
    """Fold a (decayed-already) eligibility ``e`` and a tag: add, or replace where the tag is nonzero; clip."""
    e = e + tag if trace == "accumulate" else jnp.where(tag != 0, tag, e)
    if eligibility_max is not None:
        e = jnp.clip(e, -eligibility_max, eligibility_max)
    return e


class RSTDPState(NamedTuple):
    """State of :func:`reward_modulated_stdp`.

    traces: spike traces of the current window (pre (k,), post (n_post,)), where the window covers ``k`` pre
      neurons (all ``n_pre``, or the ``rows`` passed to ``apply``).
    tag: (k, n_post) pair-STDP change collected in the current window (not applied to the weights).
    eligibility: (n_pre, n_post) eligibility trace, decays by ``exp(-1/tau_e)`` per modulation step.
    """

    traces: TraceState
    tag: jax.Array
    eligibility: jax.Array


class ThreeFactorRule(NamedTuple):
    """The three calls of a reward-modulated rule.

    init(weights, window_pre=None) -> RSTDPState: zero state; ``window_pre`` = k, the number of pre neurons a
      window simulates (default all n_pre).
    update(state, pre_spikes (k,), post_spikes (n_post,)) -> RSTDPState: one time step of the window.
    apply(state, modulator, weights, rows=None) -> (dw (n_pre, n_post), RSTDPState): end of a modulation step:
      decay the eligibility, fold in the window's tag (into ``rows`` (k,) of it when given), return the weight
      change ``eta * modulator * eligibility`` within the bounds, and clear the window (traces, tag).
    window_tag(state) -> (k, n_post): the window's tag as it enters the eligibility (times ``tag_scale``).
    """

    init: Callable[..., RSTDPState]
    update: Callable[[RSTDPState, jax.Array, jax.Array], RSTDPState]
    apply: Callable[..., tuple[jax.Array, RSTDPState]]
    window_tag: Callable[[RSTDPState], jax.Array]


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
) -> ThreeFactorRule:
    """Reward-modulated STDP with an eligibility trace (MSTDPET).

    Args:
      eta: learning rate (weight units per unit of modulator and eligibility).
      tau_e: eligibility time constant in modulation steps (>= 0; 0 keeps only the current step's tag).
      a_plus, a_minus, tau_plus, tau_minus: the pair window that forms the tag (tau in time steps).
      tag_scale: factor on the tag before it enters the eligibility (e.g. ``1 / max_potentiation(...)``).
      trace: "accumulate" (``e <- d * e + tag``, Florian 2007) or "replace" (synapses with a nonzero tag take
        it, the others decay: replacing traces, Singh & Sutton 1996).
      eligibility_max: clip the eligibility to ``[-eligibility_max, eligibility_max]`` (None: no clip).
      bounds, w_min, w_max: weight bounds of the modulated change, see :func:`bounded_change`.
    """
    _check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max)
    if not eta >= 0:
        raise ValueError(f"eta={eta!r} is invalid: must be >= 0")
    if trace not in TRACES:
        raise ValueError(f"trace={trace!r} is invalid: must be one of {', '.join(TRACES)}")
    if eligibility_max is not None and not eligibility_max > 0:
        raise ValueError(f"eligibility_max={eligibility_max!r} is invalid: must be > 0 or None")
    d_plus, d_minus, d_e = decay_factor(tau_plus), decay_factor(tau_minus), decay_factor(tau_e)

    def init(weights: jax.Array, window_pre: int | None = None) -> RSTDPState:
        n_pre, n_post = weights.shape
        k = n_pre if window_pre is None else window_pre
        traces = TraceState(jnp.zeros((k,), weights.dtype), jnp.zeros((n_post,), weights.dtype))
        return RSTDPState(traces, jnp.zeros((k, n_post), weights.dtype), jnp.zeros_like(weights))

    def update(state: RSTDPState, pre_spikes, post_spikes) -> RSTDPState:
        pot, dep, traces = _pair_terms(
            state.traces, pre_spikes, post_spikes, d_plus, d_minus, a_plus, a_minus
        )
        return RSTDPState(traces, state.tag + pot - dep, state.eligibility)

    def window_tag(state: RSTDPState) -> jax.Array:
        return tag_scale * state.tag

    def apply(state: RSTDPState, modulator, weights, rows=None):
        tag = window_tag(state)
        e = state.eligibility * d_e
        if rows is None:
            e = _fold_tag(e, tag, trace, eligibility_max)
        else:
            e = e.at[rows].set(_fold_tag(e[rows], tag, trace, eligibility_max))
        dw = modulated_change(modulator, e, weights, eta, bounds, w_min, w_max)
        cleared = RSTDPState(
            TraceState(jnp.zeros_like(state.traces.pre), jnp.zeros_like(state.traces.post)),
            jnp.zeros_like(state.tag),
            e,
        )
        return dw, cleared

    return ThreeFactorRule(init, update, apply, window_tag)


# ---------------------------------------------------------------------------------------------- sparse traces


def sparse_capacity(tau_e: float, tol: float = 1e-6, max_rows: int | None = None) -> int:
    """Rows a :func:`sparse_eligibility` cache needs so that what it drops is below ``tol`` (times the largest
    eligibility): the smallest K with ``exp(-K/tau_e) <= tol``, at least 1, at most ``max_rows`` (e.g. the
    episode length when the trace is cleared at episode ends; then nothing is ever dropped)."""
    d = decay_factor(tau_e)
    k = 1 if d == 0.0 else max(1, math.ceil(math.log(tol) / math.log(d)))
    return k if max_rows is None else max(1, min(k, int(max_rows)))


class SparseTraceState(NamedTuple):
    """A per-row eligibility cache of K rows.

    rows: (K,) int32 pre-neuron ids, distinct; ``2**30`` marks an empty slot. values: (K, n_post) their eligibility.
    last: (K,) int32 modulation step at which each row was last tagged (very negative when empty).
    step: int32 scalar, modulation steps so far.
    """

    rows: jax.Array
    values: jax.Array
    last: jax.Array
    step: jax.Array


class SparseEligibility(NamedTuple):
    """The eligibility of :func:`reward_modulated_stdp` for inputs with one active pre neuron per step.

    init(n_post, dtype) -> SparseTraceState (empty).
    update(state, row, tag (n_post,)) -> state: decay every row by ``exp(-1/tau_e)`` and fold ``tag`` into
      ``row`` (a row not cached takes the slot of the least recently tagged one).
    apply(state, modulator, weights) -> weights: ``weights + eta * modulator * eligibility`` within the bounds,
      touching only the cached rows.
    clear(state) -> state: empty (e.g. at the end of an episode).
    to_dense(state, n_pre) -> (n_pre, n_post) eligibility.
    """

    init: Callable[..., SparseTraceState]
    update: Callable[[SparseTraceState, jax.Array, jax.Array], SparseTraceState]
    apply: Callable[[SparseTraceState, jax.Array, jax.Array], jax.Array]
    clear: Callable[[SparseTraceState], SparseTraceState]
    to_dense: Callable[[SparseTraceState, int], jax.Array]


_EMPTY_ROW = 2**30  # out of range of any weight matrix: gathers fill 0, scatters drop it
_EMPTY_LAST = -(2**30)


def sparse_eligibility(
    eta: float,
    tau_e: float,
    capacity: int,
    trace: Trace = "accumulate",
    eligibility_max: float | None = None,
    bounds: Bounds = "hard",
    w_min: float = -1.0,
    w_max: float = 1.0,
) -> SparseEligibility:
    """The same eligibility and modulated update as :func:`reward_modulated_stdp` (same arguments), kept for
    only the ``capacity`` most recently tagged rows: O(capacity * n_post) per step instead of O(n_pre * n_post).

    When one row is tagged per step, the row it evicts was last tagged at least ``capacity`` steps ago, so the
    dropped eligibility is at most ``exp(-capacity/tau_e)`` times the largest one (see :func:`sparse_capacity`).
    """
    if capacity < 1:
        raise ValueError(f"capacity={capacity!r} is invalid: must be an integer >= 1")
    if trace not in TRACES:
        raise ValueError(f"trace={trace!r} is invalid: must be one of {', '.join(TRACES)}")
    d_e = decay_factor(tau_e)

    def init(n_post: int, dtype=jnp.float32) -> SparseTraceState:
        return SparseTraceState(
            jnp.full((capacity,), _EMPTY_ROW, jnp.int32),
            jnp.zeros((capacity, n_post), dtype),
            jnp.full((capacity,), _EMPTY_LAST, jnp.int32),
            jnp.int32(0),
        )

    def update(state: SparseTraceState, row, tag) -> SparseTraceState:
        hit = state.rows == row
        slot = jnp.where(jnp.any(hit), jnp.argmax(hit), jnp.argmin(state.last))
        values = state.values * d_e
        old = jnp.where(jnp.any(hit), values[slot], 0.0)
        values = values.at[slot].set(_fold_tag(old, tag, trace, eligibility_max))
        return SparseTraceState(
            state.rows.at[slot].set(row), values, state.last.at[slot].set(state.step), state.step + 1
        )

    def apply(state: SparseTraceState, modulator, weights):
        cached = weights.at[state.rows].get(mode="fill", fill_value=0.0)
        new = modulated_weights(modulator, state.values, cached, eta, bounds, w_min, w_max)
        return weights.at[state.rows].set(new, mode="drop")

    def clear(state: SparseTraceState) -> SparseTraceState:
        return SparseTraceState(
            jnp.full_like(state.rows, _EMPTY_ROW),
            jnp.zeros_like(state.values),
            jnp.full_like(state.last, _EMPTY_LAST),
            state.step,
        )

    def to_dense(state: SparseTraceState, n_pre: int) -> jax.Array:
        dense = jnp.zeros((n_pre, state.values.shape[-1]), state.values.dtype)
        return dense.at[state.rows].add(state.values, mode="drop")

    return SparseEligibility(init, update, apply, clear, to_dense)
