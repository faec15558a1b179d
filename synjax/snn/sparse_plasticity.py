"""Reward-modulated STDP for one active pre neuron per window, with the eligibility of recent rows only.

:func:`sparse_reward_modulated_stdp` is :func:`synjax.snn.plasticity.reward_modulated_stdp` (same arguments,
same ``init``/``update`` signature, see :mod:`synjax.snn.plasticity`) for inputs in which one pre neuron, the
``signals.row`` of the modulation step, fires in each window (a one-hot state code). It keeps the eligibility of
the ``capacity`` most recently tagged rows only: O(capacity * n_post) per step instead of O(n_pre * n_post).
When one row is tagged per step, the row it evicts was last tagged at least ``capacity`` steps ago, so the
dropped eligibility is at most ``exp(-capacity/tau_e)`` times the largest one (see :func:`sparse_capacity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from synjax.snn.plasticity import (
    Bounds,
    Signals,
    Trace,
    TraceState,
    bounded_change,
    bounded_weights,
    check_stdp,
    check_three_factor,
    decay_factor,
    fold_tag,
    modulated_terms,
    tag_step,
    zero_traces,
)

_EMPTY_ROW = 2**30  # out of range of any weight matrix: gathers fill 0, scatters drop it
_EMPTY_LAST = -(2**30)


def sparse_capacity(tau_e: float, tol: float = 1e-6, max_rows: int | None = None) -> int:
    """Rows a sparse eligibility needs so that what it drops is below ``tol`` (times the largest eligibility):
    the smallest K with ``exp(-K/tau_e) <= tol``, at least 1, at most ``max_rows`` (e.g. the episode length
    when the trace is cleared at episode ends; then nothing is ever dropped)."""
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


class SparseRSTDPState(NamedTuple):
    """State of :func:`sparse_reward_modulated_stdp`: the window's ``traces`` (pre (1,), post (n_post,)) and
    ``tag`` (1, n_post) of the active row, and the ``eligibility`` cache."""

    traces: TraceState
    tag: jax.Array
    eligibility: SparseTraceState


class SparseRule(NamedTuple):
    """A :class:`~synjax.snn.plasticity.PlasticityRule` (``init``, ``update``) with the cache's own calls.

    fold(state, row) -> state: end a modulation step without computing a change: decay every cached row by
      ``exp(-1/tau_e)``, fold ``tag_scale * tag`` into ``row`` (a row not cached takes the slot of the least
      recently tagged one), clear the window.
    apply(state, modulator, weights) -> weights: ``weights + eta * modulator * eligibility`` within the bounds,
      touching only the cached rows (exactly inside the bounds; ``update`` = ``fold`` + this change as ``dw``).
    clear(state) -> state: empty window and cache (e.g. at the end of an episode).
    to_dense(state, n_pre) -> (n_pre, n_post) eligibility.
    """

    init: Callable[[jax.Array], SparseRSTDPState]
    update: Callable[..., tuple[jax.Array, SparseRSTDPState]]
    fold: Callable[[SparseRSTDPState, jax.Array], SparseRSTDPState]
    apply: Callable[[SparseRSTDPState, jax.Array, jax.Array], jax.Array]
    clear: Callable[[SparseRSTDPState], SparseRSTDPState]
    to_dense: Callable[[SparseRSTDPState, int], jax.Array]


def sparse_reward_modulated_stdp(
    eta: float,
    tau_e: float,
    capacity: int,
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
) -> SparseRule:
    """The arguments of :func:`~synjax.snn.plasticity.reward_modulated_stdp`, and ``capacity``: cached rows.

    ``update``: with spikes (``signals.pre`` (1,) of the active row, ``signals.post`` (n_post,)) a time step of
    the window; with ``signals.modulator`` and ``signals.row`` the end of a modulation step (:attr:`SparseRule.fold`,
    then ``dw`` gets the modulated change of the cached rows).
    """
    if capacity < 1:
        raise ValueError(f"capacity={capacity!r} is invalid: must be an integer >= 1")
    check_stdp(a_plus, a_minus, tau_plus, tau_minus, bounds, w_min, w_max)
    check_three_factor(eta, trace, eligibility_max)
    d_plus, d_minus, d_e = decay_factor(tau_plus), decay_factor(tau_minus), decay_factor(tau_e)

    def empty_cache(n_post: int, dtype, step) -> SparseTraceState:
        return SparseTraceState(
            jnp.full((capacity,), _EMPTY_ROW, jnp.int32),
            jnp.zeros((capacity, n_post), dtype),
            jnp.full((capacity,), _EMPTY_LAST, jnp.int32),
            step,
        )

    def empty_window(n_post: int, dtype) -> tuple[TraceState, jax.Array]:
        return zero_traces(1, n_post, dtype), jnp.zeros((1, n_post), dtype)

    def init(weights: jax.Array) -> SparseRSTDPState:
        n_post = weights.shape[-1]
        return SparseRSTDPState(
            *empty_window(n_post, weights.dtype), empty_cache(n_post, weights.dtype, jnp.int32(0))
        )

    def fold(state: SparseRSTDPState, row) -> SparseRSTDPState:
        c, tag = state.eligibility, tag_scale * state.tag[0]
        hit = c.rows == row
        slot = jnp.where(jnp.any(hit), jnp.argmax(hit), jnp.argmin(c.last))
        values = c.values * d_e
        old = jnp.where(jnp.any(hit), values[slot], 0.0)
        values = values.at[slot].set(fold_tag(old, tag, trace, eligibility_max))
        cache = SparseTraceState(c.rows.at[slot].set(row), values, c.last.at[slot].set(c.step), c.step + 1)
        return SparseRSTDPState(*empty_window(tag.shape[-1], tag.dtype), cache)

    def apply(state: SparseRSTDPState, modulator, weights):
        c = state.eligibility
        cached = weights.at[c.rows].get(mode="fill", fill_value=0.0)
        pot, dep = modulated_terms(modulator, c.values, cached, eta)
        new = bounded_weights(pot, dep, cached, bounds, w_min, w_max)
        return weights.at[c.rows].set(new, mode="drop")

    def update(dw, state: SparseRSTDPState, weights, signals: Signals):
        if signals.pre is not None:
            state = tag_step(state, signals, d_plus, d_minus, a_plus, a_minus)
        if signals.modulator is not None:
            if signals.row is None:
                raise ValueError("signals.row is None: a sparse rule's modulation step needs the active row")
            state = fold(state, signals.row)
            c = state.eligibility
            cached = weights.at[c.rows].get(mode="fill", fill_value=0.0)
            pot, dep = modulated_terms(signals.modulator, c.values, cached, eta)
            change = bounded_change(pot, dep, cached, bounds, w_min, w_max)
            dw = dw.at[c.rows].add(change, mode="drop")
        return dw, state

    def clear(state: SparseRSTDPState) -> SparseRSTDPState:
        c = state.eligibility
        window = empty_window(c.values.shape[-1], c.values.dtype)
        return SparseRSTDPState(*window, empty_cache(c.values.shape[-1], c.values.dtype, c.step))

    def to_dense(state: SparseRSTDPState, n_pre: int) -> jax.Array:
        c = state.eligibility
        dense = jnp.zeros((n_pre, c.values.shape[-1]), c.values.dtype)
        return dense.at[c.rows].add(c.values, mode="drop")

    return SparseRule(init, update, fold, apply, clear, to_dense)
