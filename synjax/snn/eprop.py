"""e-prop (eligibility propagation; Bellec et al. 2020, Nature Communications) as pure functions.

A layer of ``H`` neurons driven by ``n_pre`` presynaptic activities ``p`` (inputs, or the layer's own spikes of
the previous step through recurrent weights), in discrete time (dt = 1), integrate then spike then subtract
(the ordering an exported NIR graph computes)::

    v_t = alpha v_{t-1} + I_t                       I_t = p_t @ W
    A_t = threshold + beta_a a_t                    (ALIF; LIF and IF: A_t = threshold)
    z_t = H(v_t - A_t)                              psi_t = dampening * max(0, 1 - |v_t - A_t| / threshold)
    v_t <- v_t - z_t threshold                      (the reset; its gradient path is detached)
    a_{t+1} = rho a_t + z_t

``psi`` is the pseudo-derivative of the spike (the surrogate gradient :func:`spike` gives ``jax.grad``). The
non-spiking twin (``kind="sigmoid"``; ``"adaptive-sigmoid"``, ALIF's) is the same neuron with the step replaced by
a smooth one: it emits a rate ``z_t = sigmoid(4 (v_t - A_t) / threshold)`` (``psi_t`` its derivative) and
subtracts ``z_t threshold``. Each synapse ``i -> j`` keeps, forward in time and from local quantities only, its eligibility trace::

    pbar_t = alpha pbar_{t-1} + p_t                 (the presynaptic activity filtered by the membrane)
    e_t = psi_t (pbar_t - beta_a eps_t)             (LIF, IF, sigmoid: eps = 0)
    eps_{t+1} = psi_t pbar_t + (rho - psi_t beta_a) eps_t

A leaky read-out ``y_t = kappa y_{t-1} + z_t @ W_out`` filters it: ``ebar_t = kappa ebar_{t-1} + e_t``; the
gradient of a loss ``E`` of the read-outs is ``dE/dW_ij = sum_t L_j^t ebar_ij^t`` with the learning signal
``L^t = dE/dy^t @ B^T`` (:func:`learning_signal`; ``B = W_out`` is symmetric feedback, exact for one layer
without recurrent weights; a fixed random ``B`` is random feedback). With recurrent weights e-prop drops the
paths through other neurons' later spikes: an approximation (``tests/test_eprop.py`` measures it).

The functions work on any leading batch axes; :func:`eprop` and :func:`td_eligibility` wrap them as
:class:`synjax.snn.plasticity.PlasticityRule` s (one weight matrix, no batch axis; compose with ``chain`` and
``scale``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from synjax.snn.plasticity import PlasticityRule, Signals

#: neuron kinds with an eligibility trace: leaky, non-leaky, adaptive-threshold spiking; the non-spiking twin
KINDS = ("LIF", "IF", "ALIF", "sigmoid", "adaptive-sigmoid")
#: slope of the non-spiking twin's rate at the threshold, in units of 1 / threshold
SIGMOID_GAIN = 4.0
#: where the learning signal's feedback weights come from
FEEDBACKS = ("symmetric", "random")


class Cell(NamedTuple):
    """The constants of a layer's neurons.

    kind: one of :data:`KINDS` (``adaptive-sigmoid``: ALIF's non-spiking twin). alpha: membrane decay per step in (0, 1] (IF: 1). threshold: firing threshold
    (> 0). rho: decay of the threshold adaptation per step (ALIF). beta_a: threshold increase per unit of
    adaptation (ALIF). dampening: height of the pseudo-derivative (0.3 in Bellec et al.).
    """

    kind: str = "LIF"
    alpha: float = 0.9
    threshold: float = 1.0
    rho: float = 0.95
    beta_a: float = 0.07
    dampening: float = 0.3

    @property
    def adaptive(self) -> bool:
        return self.kind in ("ALIF", "adaptive-sigmoid")

    @property
    def spiking(self) -> bool:
        return not self.kind.endswith("sigmoid")


def check_cell(cell: Cell) -> None:
    """Refuse constants a layer cannot have, one line naming the field and what is allowed."""
    if cell.kind not in KINDS:
        raise ValueError(f"kind={cell.kind!r} is invalid: must be one of {', '.join(KINDS)} (neurons with an "
                         "eligibility trace)")  # fmt: skip
    for name, value, ok, allowed in (
        ("alpha", cell.alpha, 0 < cell.alpha <= 1, "in (0, 1]"),
        ("threshold", cell.threshold, cell.threshold > 0, "> 0"),
        ("rho", cell.rho, 0 <= cell.rho <= 1, "in [0, 1]"),
        ("beta_a", cell.beta_a, cell.beta_a >= 0, ">= 0"),
        ("dampening", cell.dampening, cell.dampening > 0, "> 0"),
    ):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
            raise ValueError(f"{name}={value!r} is invalid: must be {allowed}")


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def spike(x: jax.Array, dampening: float, width: float) -> jax.Array:
    """``H(x)`` (1.0 where ``x > 0``) whose derivative is e-prop's pseudo-derivative
    ``dampening * max(0, 1 - |x| / width)``: so ``jax.grad`` (BPTT) and e-prop use the same surrogate."""
    return (x > 0).astype(x.dtype)


@spike.defjvp
def _spike_jvp(dampening, width, primals, tangents):
    (x,), (dx,) = primals, tangents
    return spike(x, dampening, width), pseudo_derivative(x, dampening, width) * dx


def pseudo_derivative(x: jax.Array, dampening: float, width: float) -> jax.Array:
    """``dampening * max(0, 1 - |x| / width)``: the triangle surrogate of ``dH(x)/dx``."""
    return dampening * jnp.maximum(0.0, 1.0 - jnp.abs(x) / width)


class NeuronState(NamedTuple):
    """A layer's state, each ``(..., H)``: membrane ``v``, adaptation ``a`` (ALIF; zeros otherwise), the last
    step's output ``z`` (what recurrent weights read)."""

    v: jax.Array
    a: jax.Array
    z: jax.Array


def rest(shape: tuple[int, ...]) -> NeuronState:
    """A layer at rest: zeros of ``shape`` (``(..., H)``)."""
    zeros = jnp.zeros(shape, jnp.float32)
    return NeuronState(zeros, zeros, zeros)


def neuron_step(
    cell: Cell, state: NeuronState, current: jax.Array
) -> tuple[jax.Array, jax.Array, NeuronState]:
    """One step on input ``current (..., H)``: ``(z, psi, new state)``: the outputs (spikes, or the twin's rates)
    and their pseudo-derivatives w.r.t. the membrane, each ``(..., H)``."""
    v = cell.alpha * state.v + current
    over = v - (cell.threshold + cell.beta_a * state.a if cell.adaptive else cell.threshold)
    if cell.spiking:
        z = spike(over, cell.dampening, cell.threshold)
        psi = pseudo_derivative(jax.lax.stop_gradient(over), cell.dampening, cell.threshold)
    else:
        gain = SIGMOID_GAIN / cell.threshold
        z = jax.nn.sigmoid(gain * over)
        rate = jax.lax.stop_gradient(z)
        psi = gain * rate * (1.0 - rate)
    v = v - jax.lax.stop_gradient(z) * cell.threshold
    a = cell.rho * state.a + z if cell.adaptive else state.a
    return z, psi, NeuronState(v, a, z)


class Eligibility(NamedTuple):
    """The forward traces of the synapses onto a layer: ``pbar (..., n_pre)``, the filtered presynaptic
    activity; ``eps (..., n_pre, H)``, the threshold-adaptation trace (ALIF; ``()`` otherwise)."""

    pbar: jax.Array
    eps: Any


def eligibility_init(cell: Cell, batch: tuple[int, ...], n_pre: int, n_post: int) -> Eligibility:
    """Zero traces for synapses ``n_pre -> n_post`` with leading axes ``batch``."""
    eps = jnp.zeros((*batch, n_pre, n_post), jnp.float32) if cell.adaptive else ()
    return Eligibility(jnp.zeros((*batch, n_pre), jnp.float32), eps)


def eligibility_step(
    cell: Cell, traces: Eligibility, pre: jax.Array, psi: jax.Array
) -> tuple[jax.Array, Eligibility]:
    """One step: ``pre (..., n_pre)`` the presynaptic activity that entered this step's current, ``psi (...,
    H)`` the layer's pseudo-derivatives -> ``(e (..., n_pre, H), new traces)``."""
    pbar = cell.alpha * traces.pbar + pre
    outer = pbar[..., :, None] * psi[..., None, :]
    if not cell.adaptive:
        return outer, Eligibility(pbar, ())
    e = outer - cell.beta_a * psi[..., None, :] * traces.eps
    eps = outer + (cell.rho - psi[..., None, :] * cell.beta_a) * traces.eps
    return e, Eligibility(pbar, eps)


def eligibility_window(
    cell: Cell, traces: Eligibility, pre: jax.Array, psi: jax.Array, kappa: float
) -> tuple[jax.Array, Eligibility]:
    """The read-out-filtered eligibility of a window of ``T`` steps whose read-out starts at zero: ``pre (T, ...,
    n_pre)`` and ``psi (T, ..., H)`` as :func:`eligibility_step` takes them -> ``(ebar_T (..., n_pre, H), traces
    after the window)``. The same numbers as stepping :func:`eligibility_step` and ``ebar <- kappa ebar + e``;
    without adaptation the sum ``sum_t kappa^(T-1-t) pbar_t psi_t`` is one contraction over the steps instead of
    ``T`` outer products."""
    steps = pre.shape[0]
    if cell.adaptive:

        def step(c, x):
            traces, ebar = c
            e, traces = eligibility_step(cell, traces, *x)
            return (traces, kappa * ebar + e), None

        ebar0 = jnp.zeros((*pre.shape[1:], psi.shape[-1]), jnp.float32)
        (traces, ebar), _ = jax.lax.scan(step, (traces, ebar0), (pre, psi))
        return ebar, traces

    def filter_pre(pbar, p):
        pbar = cell.alpha * pbar + p
        return pbar, pbar

    pbar, pbars = jax.lax.scan(filter_pre, traces.pbar, pre)
    weights = jnp.asarray([kappa ** (steps - 1 - t) for t in range(steps)], jnp.float32)
    weighted = pbars * weights.reshape(steps, *([1] * (pbars.ndim - 1)))
    return jnp.einsum("t...i,t...j->...ij", weighted, psi), Eligibility(pbar, ())


def learning_signal(output_error: jax.Array, feedback: jax.Array) -> jax.Array:
    """``L = output_error @ feedback^T``: ``output_error (..., K)`` (``dE/dy``), ``feedback (H, K)`` (the
    read-out weights for symmetric feedback, fixed random weights for random feedback) -> ``(..., H)``."""
    return output_error @ feedback.T


def weight_gradient(learning: jax.Array, filtered_eligibility: jax.Array) -> jax.Array:
    """e-prop's gradient of one step: ``L (..., H)`` times the filtered eligibility ``(..., n_pre, H)``."""
    return learning[..., None, :] * filtered_eligibility


def actor_critic_error(logits: jax.Array, action: jax.Array, value_coef: float, ent_coef: float):
    """The read-out errors of reward-based e-prop for a categorical actor and a value read-out, each ``(...,
    A + 1)`` (the logits' then the value's):

    - ``policy``: ``dE/dy`` of ``E = -log pi(a) - value_coef V``, the error the TD error multiplies (through the
      traced eligibility): ``[pi - onehot(a), -value_coef]``;
    - ``entropy``: ``dE/dy`` of ``E = -ent_coef H(pi)``, applied at once: ``[ent_coef pi (log pi + H), 0]``.
    """
    log_pi = jax.nn.log_softmax(logits)
    pi = jnp.exp(log_pi)
    onehot = jax.nn.one_hot(action, logits.shape[-1], dtype=logits.dtype)
    entropy = -(pi * log_pi).sum(-1, keepdims=True)
    value = jnp.full((*logits.shape[:-1], 1), -value_coef, logits.dtype)
    policy = jnp.concatenate([pi - onehot, value], -1)
    ent = jnp.concatenate([ent_coef * pi * (log_pi + entropy), jnp.zeros_like(value)], -1)
    return policy, ent


class EpropState(NamedTuple):
    """State of :func:`eprop`: the synapses' :class:`Eligibility` and the read-out-filtered eligibility
    ``ebar (n_pre, n_post)``."""

    traces: Eligibility
    ebar: jax.Array


def eprop(cell: Cell, kappa: float) -> PlasticityRule:
    """e-prop for one weight matrix ``(n_pre, n_post)`` as a :class:`~synjax.snn.plasticity.PlasticityRule`.

    Each update is one step of the layer: ``signals.pre`` the presynaptic activity ``(n_pre,)`` that entered its
    current, ``signals.post`` the postsynaptic pseudo-derivatives ``psi (n_post,)`` (:func:`neuron_step`), and
    optionally ``signals.learning`` the learning signal ``(n_post,)`` of this step (:func:`learning_signal`):
    then ``dw`` gets this step's gradient ``L ebar`` (summed over an unroll by the caller, or applied at once).
    ``kappa``: the read-out's decay (0: no read-out filter).
    """
    check_cell(cell)
    if not 0 <= kappa <= 1:
        raise ValueError(f"kappa={kappa!r} is invalid: must be in [0, 1] (the read-out's decay per step)")

    def init(weights: jax.Array) -> EpropState:
        n_pre, n_post = weights.shape
        return EpropState(eligibility_init(cell, (), n_pre, n_post), jnp.zeros_like(weights))

    def update(dw, state: EpropState, weights, signals: Signals):
        del weights
        e, traces = eligibility_step(cell, state.traces, signals.pre, signals.post)
        ebar = kappa * state.ebar + e
        if signals.learning is not None:
            dw = dw + weight_gradient(signals.learning, ebar)
        return dw, EpropState(traces, ebar)

    return PlasticityRule(init, update)


def td_trace(trace: Any, gradient: Any, decay: Any) -> Any:
    """``decay * trace + gradient``: the eligibility of reward-based e-prop across decisions (``decay = gamma
    lambda``, 0 where an episode starts; broadcast over the trailing axes of ``trace``)."""
    decay = jnp.asarray(decay)
    return decay.reshape(*decay.shape, *([1] * (jnp.ndim(trace) - decay.ndim))) * trace + gradient


def td_eligibility(decay: float) -> PlasticityRule:
    """Reward-based e-prop's third factor as a rule after :func:`eprop` in a ``chain``: the incoming ``dw`` (the
    step's pseudo-gradient) accumulates in a trace ``F <- decay F + dw``; at a step with ``signals.modulator``
    (the TD error) ``dw`` becomes ``modulator * F``, else zero. ``decay``: ``gamma * lambda`` (online GAE)."""
    if not 0 <= decay <= 1:
        raise ValueError(f"decay={decay!r} is invalid: must be in [0, 1] (gamma * lambda)")

    def update(dw, trace, weights, signals: Signals):
        del weights
        trace = td_trace(trace, dw, decay)
        out = jnp.zeros_like(dw) if signals.modulator is None else signals.modulator * trace
        return out, trace

    return PlasticityRule(jnp.zeros_like, update)
