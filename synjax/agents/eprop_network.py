"""The network of ``synjax eprop`` (:mod:`synjax.agents.eprop`): one layer of neurons from
:mod:`synjax.snn.eprop` and a leaky read-out, which carries, beside its membranes, what its learning rule
reads (the decision's filtered eligibility or STDP tag, the filtered outputs, the read-out)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from synjax.agents.networks import ObsNorm
from synjax.agents.policy import PolicyNetwork
from synjax.snn import eprop as rule
from synjax.snn import plasticity

LEARNINGS = ("eprop", "frozen", "rstdp", "bptt")
TIME_MODES = ("carried", "inner")
#: SNN steps unrolled in the compiled loop
UNROLL = 16


class EpropCarry(NamedTuple):
    """What the network carries between decisions (leaves (B, ...); ``()`` where unused).

    neuron: the layer's :class:`~synjax.snn.eprop.NeuronState` (B, H). pre_in, pre_rec: the forward traces of the
    input and recurrent synapses (e-prop's :class:`~synjax.snn.eprop.Eligibility`, or STDP's
    :class:`~synjax.snn.plasticity.TraceState`). tag_in (B, D + 1, H), tag_rec (B, H, H): this decision's
    read-out-filtered eligibility (e-prop) or STDP tag (rstdp). zbar (B, H): this decision's read-out-filtered
    outputs. outputs (B, A + 1): the read-out (logits, value) of this decision.
    """

    neuron: Any = ()
    pre_in: Any = ()
    pre_rec: Any = ()
    tag_in: Any = ()
    tag_rec: Any = ()
    zbar: Any = ()
    outputs: Any = ()


class EpropActorCritic(PolicyNetwork):
    """``[obs, 1] -> W_in -> H neurons (+ W_rec) x T steps -> leaky read-out W_out -> [logits, value]``.

    Args:
      obs_dim: observation size ``D``; action_dim: discrete actions ``A``; hidden: neurons ``H``.
      cell: the neurons' constants (:class:`synjax.snn.eprop.Cell`).
      recurrent: add recurrent weights ``W_rec (H, H)`` (no self-connections).
      time_steps: ``T`` SNN steps per decision; time_mode: ``carried`` or ``inner``.
      kappa: the read-out's decay per SNN step.
      learning: one of :data:`LEARNINGS` (which traces the forward pass keeps).
      feedback: ``symmetric`` or ``random`` (adds a fixed ``feedback (H, A + 1)`` parameter that no rule
        updates).
      normalize_obs: running observation normalization.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden: int, *, cell: rule.Cell, recurrent: bool,
                 time_steps: int, time_mode: str, kappa: float, learning: str, feedback: str, normalize_obs: bool,
                 rngs: nnx.Rngs):  # fmt: skip
        rule.check_cell(cell)
        self.cell, self.recurrent, self.time_steps, self.time_mode = cell, recurrent, time_steps, time_mode
        self.kappa, self.learning, self.feedback_mode = kappa, learning, feedback
        self.obs_dim, self.action_dim, self.hidden = obs_dim, action_dim, hidden
        self.obs_norm = ObsNorm(obs_dim) if normalize_obs else None
        k = jax.random.split(rngs.params(), 4)
        outputs = action_dim + 1
        self.w_in = nnx.Param(jax.random.normal(k[0], (obs_dim + 1, hidden)) * math.sqrt(2.0 / (obs_dim + 1)))
        if recurrent:
            w = jax.random.normal(k[1], (hidden, hidden)) / math.sqrt(hidden)
            self.w_rec = nnx.Param(w * (1.0 - jnp.eye(hidden)))
        self.w_out = nnx.Param(jax.random.normal(k[2], (hidden, outputs)) * 0.1 / math.sqrt(hidden))
        self.b_out = nnx.Param(jnp.zeros((outputs,)))
        if feedback == "random":
            self.feedback = nnx.Param(jax.random.normal(k[3], (hidden, outputs)) / math.sqrt(hidden))

    @property
    def traces(self) -> bool:
        """Whether the carry holds what a local rule learns from (every ``learning`` but ``bptt``)."""
        return self.learning != "bptt"

    def rest(self, batch: int) -> EpropCarry:
        """The carry at an episode's start, leaves ``(batch, ...)``."""
        h, d1 = self.hidden, self.obs_dim + 1
        zeros = lambda *shape: jnp.zeros((batch, *shape), jnp.float32)
        if not self.traces:
            return EpropCarry(rule.rest((batch, h)))
        if self.learning == "rstdp":
            pre_in = plasticity.TraceState(zeros(d1), zeros(h))
            pre_rec = plasticity.TraceState(zeros(h), zeros(h)) if self.recurrent else ()
        elif self.learning == "eprop":
            pre_in = rule.eligibility_init(self.cell, (batch,), d1, h)
            pre_rec = rule.eligibility_init(self.cell, (batch,), h, h) if self.recurrent else ()
        else:
            pre_in = pre_rec = ()
        hidden_tags = self.learning != "frozen"
        return EpropCarry(rule.rest((batch, h)), pre_in, pre_rec, zeros(d1, h) if hidden_tags else (),
                          zeros(h, h) if hidden_tags and self.recurrent else (), zeros(h),
                          zeros(self.action_dim + 1))  # fmt: skip

    def initial_carry(self, batch_shape: tuple[int, ...]) -> Any:
        """``()`` in inner mode without traces (feedforward); else :meth:`rest` with leading axes
        ``batch_shape``."""
        if self.time_mode == "inner" and not self.traces:
            return ()
        return jax.tree.map(
            lambda x: x.reshape(*batch_shape, *x.shape[1:]), self.rest(math.prod(batch_shape))
        )

    def decide(self, obs: jax.Array, carry: Any, reset: Any, record: bool = False) -> tuple[EpropCarry, jax.Array]:
        """One decision on ``obs (B, D)`` from ``carry`` (leaves (B, ...) or ``()``), restarting at rest where
        ``reset (B,)`` (every row in inner mode): (the carry after it, with ``outputs``; spikes per row (B,), or
        with ``record`` the layer's outputs at every SNN step (T, B, H))."""
        batch = obs.shape[0]
        x = obs.astype(jnp.float32)
        if self.obs_norm is not None:
            x = self.obs_norm(x)
        x = jnp.concatenate([x, jnp.ones((batch, 1), x.dtype)], -1)
        at_rest = self.rest(batch)
        if self.time_mode == "inner" or not jax.tree.leaves(carry):
            start = at_rest
        else:
            r = jnp.asarray(reset, bool).reshape(batch) if reset is not None else jnp.zeros((batch,), bool)
            start = jax.tree.map(lambda s0, s: jnp.where(r.reshape(-1, *([1] * (s.ndim - 1))), s0, s), at_rest,
                                 EpropCarry(*carry))  # fmt: skip
        # the per-decision quantities restart every decision (the read-out restarts)
        start = start._replace(tag_in=jax.tree.map(jnp.zeros_like, start.tag_in),
                               tag_rec=jax.tree.map(jnp.zeros_like, start.tag_rec))  # fmt: skip
        w_in, w_out, b_out = self.w_in[...], self.w_out[...], self.b_out[...]
        w_rec = self.w_rec[...] if self.recurrent else None
        drive = x @ w_in  # constant over the T steps
        cell, kappa, learning = self.cell, self.kappa, self.learning
        d_stdp = plasticity.decay_factor(1.0 / max(1e-6, 1.0 - cell.alpha)) if cell.alpha < 1 else 1.0
        pair = jax.vmap(plasticity.pair_terms, in_axes=(0, 0, 0, None, None, None, None))

        def step(c, _):
            state, pre_in, pre_rec, tag_in, tag_rec, zbar, y, count = c
            last = state.z
            current = drive if w_rec is None else drive + last @ w_rec
            z, psi, state = rule.neuron_step(cell, state, current)
            if learning == "rstdp":
                pot, dep, pre_in = pair(pre_in, x, z, d_stdp, d_stdp, 1.0, 1.0)
                tag_in = tag_in + pot - dep
                if w_rec is not None:
                    pot, dep, pre_rec = pair(pre_rec, last, z, d_stdp, d_stdp, 1.0, 1.0)
                    tag_rec = tag_rec + pot - dep
            if self.traces:
                zbar = kappa * zbar + z
            y = kappa * y + z @ w_out + b_out
            # e-prop's eligibility is computed after the steps from what they saw (rule.eligibility_window)
            seen = ((psi, last) if learning == "eprop" else (), z if record else ())
            return (state, pre_in, pre_rec, tag_in, tag_rec, zbar, y, count + z.sum(-1)), seen

        zbar0 = jnp.zeros((batch, self.hidden)) if self.traces else ()
        c0 = (start.neuron, start.pre_in, start.pre_rec, start.tag_in, start.tag_rec, zbar0,
              jnp.zeros((batch, self.action_dim + 1)), jnp.zeros((batch,)))  # fmt: skip
        c, (seen, trains) = jax.lax.scan(step, c0, length=self.time_steps, unroll=min(UNROLL, self.time_steps))
        state, pre_in, pre_rec, tag_in, tag_rec, zbar, y, count = c
        if record:
            count = trains
        if not self.traces:
            return EpropCarry(state, outputs=y), count
        if learning == "eprop":
            psi, last = seen
            inputs = jnp.broadcast_to(x, (self.time_steps, *x.shape))
            tag_in, pre_in = rule.eligibility_window(cell, pre_in, inputs, psi, kappa)
            if w_rec is not None:
                tag_rec, pre_rec = rule.eligibility_window(cell, pre_rec, last, psi, kappa)
        return EpropCarry(state, pre_in, pre_rec, tag_in, tag_rec, zbar, y), count

    def __call__(self, obs: jax.Array, carry: Any = (), reset: Any = None):
        """``obs (..., D)`` -> (categorical distribution over the logits, value ``(...)``, carry)."""
        lead = obs.shape[:-1]
        flat = obs.reshape(-1, obs.shape[-1])
        flat_carry = jax.tree.map(lambda x: x.reshape(flat.shape[0], *x.shape[len(lead) :]), carry)
        flat_reset = None if reset is None else jnp.asarray(reset).reshape(-1)
        new, _ = self.decide(flat, flat_carry, flat_reset)
        y = new.outputs.reshape(*lead, -1)
        if self.time_mode == "inner" and not self.traces:
            out_carry = ()
        else:
            if not self.traces:
                new = EpropCarry(new.neuron)
            out_carry = jax.tree.map(lambda x: x.reshape(*lead, *x.shape[1:]), new)
        return distrax.Categorical(logits=y[..., :-1]), y[..., -1], out_carry

    def spike_trains(self, obs: jax.Array, carry: Any) -> tuple[jax.Array]:
        """The layer's spikes at every SNN step of one decision on ``obs (B, D)`` from ``carry``: ``((T, B, H),)``
        (what ``spikes.png`` draws, :mod:`synjax.agents.spike_raster`)."""
        return (self.decide(obs, carry if jax.tree.leaves(carry) else (), None, record=True)[1],)

    def energy(self, obs: jax.Array, carry: Any) -> dict[str, jax.Array]:
        """Per decision on ``obs (B, D)`` from ``carry``: ``firing_rate_0`` (spikes per neuron per SNN step),
        ``synops`` (the input's multiply-accumulates, computed once, plus each spike times its fan-out: the read-out
        and, with recurrent weights, the layer), ``ann_macs`` (one pass of the same widths); ``{}`` for the
        sigmoid twin."""
        if not self.cell.spiking:
            return {}
        _, count = self.decide(obs, carry if jax.tree.leaves(carry) else (), None)
        h, k, d1 = self.hidden, self.action_dim + 1, self.obs_dim + 1
        fan_out = k + (h if self.recurrent else 0)
        macs = d1 * h + h * k + (h * h if self.recurrent else 0)
        return {"firing_rate_0": count.mean() / (h * self.time_steps), "synops": d1 * h + count.mean() * fan_out,
                "ann_macs": jnp.float32(macs)}  # fmt: skip
