"""An online spiking actor-critic: reward-based e-prop (Bellec et al. 2020) at every environment step, no
backpropagation through time anywhere; ``synjax eprop``.

The network (:class:`EpropActorCritic`): the observation (optionally normalized) and a constant 1 drive one layer
of ``hidden`` neurons (:mod:`synjax.snn.eprop`: LIF, IF, ALIF or the non-spiking ``sigmoid`` twin; optionally with
recurrent weights) for ``time_steps`` SNN steps per decision; a leaky read-out (decay ``kappa``, restarted each
decision) of ``[logits, value]``. In ``carried`` mode the layer's state (and its synapses' eligibility traces)
continue from decision to decision and restart where an episode starts; in ``inner`` mode they restart at every
decision. The network computes, forward in time and beside its spikes, what its learning rule needs (its carry
holds it): e-prop's read-out-filtered eligibility of each synapse for this decision, or the pair-STDP tag of the
three-factor baseline.

The learner (a :class:`synjax.agents.on_policy.StepLearner`), at each environment step of each environment:

- read-out errors :func:`synjax.snn.eprop.actor_critic_error` of ``E = -log pi(a) - vf_coef V`` (traced) and
  ``E = -ent_coef H`` (applied at once); learning signals through the feedback weights (symmetric: the read-out
  weights; random: fixed random ones);
- the step's pseudo-gradient ``g`` (hidden weights: learning signal x filtered eligibility; read-out: its
  filtered input x the error) accumulates in a trace ``F <- gamma lambda F + g`` (cleared where an episode
  starts), and the TD error ``delta = r + gamma V(s') - V(s)`` multiplies it: the online form of GAE(lambda);
- the mean over the environments of ``delta F`` (plus the entropy term) goes to the optimizer, applied at every
  step or averaged over the rollout (``update_every``; ``optax.MultiSteps``).

``learning`` picks what trains the hidden weights: ``eprop``; ``frozen`` (none: only the read-out learns, the
control that shows whether hidden learning matters); ``rstdp`` (reward-modulated pair STDP, the Taxi hybrid's
rule: the hidden weights move by ``delta`` times their STDP eligibility); ``bptt`` (no learner: the same network
trained by A2C's gradient through time over each rollout, its twin).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from synjax.agents import a2c, losses
from synjax.agents.config import ActorCriticLossFields, AgentConfig, RolloutFields, make_env
from synjax.agents.networks import ObsNorm, action_spec, obs_encoder
from synjax.agents.on_policy import OnPolicyAlgorithm, StepData, StepLearner
from synjax.agents.policy import PolicyNetwork
from synjax.checks import at_least, in_range, one_of, require
from synjax.runner.sweep import Floats
from synjax.snn import eprop as rule
from synjax.snn import plasticity

LEARNINGS = ("eprop", "frozen", "rstdp", "bptt")
TIME_MODES = ("carried", "inner")
UPDATE_EVERY = ("unroll", "step")
METRICS = ("td_error", "entropy")
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
        import distrax

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


@dataclasses.dataclass(frozen=True)
class EpropFields:
    """The online spiking learner's settings.

    Attributes:
      learning: what trains the hidden weights: ``eprop``, ``frozen`` (nothing: only the read-out learns),
        ``rstdp`` (reward-modulated pair STDP), ``bptt`` (A2C's gradient through time over each rollout; no
        local rule).
      neuron: ``LIF``, ``IF``, ``ALIF`` (adaptive threshold) or the non-spiking twins ``sigmoid`` (LIF's) and
        ``adaptive-sigmoid`` (ALIF's): the same neurons emitting a sigmoid rate of the membrane instead of spikes.
      recurrent: recurrent weights within the layer.
      hidden: neurons in the layer.
      time_steps: SNN steps per decision (``T``).
      time_mode: ``carried`` (the layer's state and traces continue across decisions, reset where an episode
        starts) or ``inner`` (they restart each decision).
      feedback: the learning signal's feedback weights: ``symmetric`` (the read-out weights) or ``random``.
      update_every: ``unroll`` (the step gradients averaged over each rollout of ``num_steps``, then one optimizer
        step) or ``step`` (an optimizer step at every environment step).
      alpha: membrane decay per SNN step (IF: 1).
      kappa: the read-out's decay per SNN step (the read-out restarts each decision).
      threshold: firing threshold.
      adapt_decay: ALIF's adaptation decay per SNN step (``rho``).
      adapt_strength: ALIF's threshold increase per unit of adaptation (``beta_a``).
      dampening: height of the pseudo-derivative (triangle surrogate; BPTT uses the same).
      norm_obs: running observation normalization.
      norm_reward: scale rewards by the running std of the discounted return.
      reward_scale: multiply rewards by this before learning (episode returns are reported unscaled).
      eval_every: evaluate the deterministic policy every this many rollouts.
    """

    learning: Annotated[str, one_of(*LEARNINGS)] = "eprop"
    neuron: Annotated[str, one_of(*rule.KINDS)] = "LIF"
    recurrent: bool = False
    hidden: Annotated[int, at_least(1)] = 64
    time_steps: Annotated[int, at_least(1)] = 8
    time_mode: Annotated[str, one_of(*TIME_MODES)] = "carried"
    feedback: Annotated[str, one_of(*rule.FEEDBACKS)] = "symmetric"
    update_every: Annotated[str, one_of(*UPDATE_EVERY)] = "unroll"
    alpha: Annotated[float, in_range(0.0, 1.0, low_open=True)] = 0.9
    kappa: Annotated[float, in_range(0.0, 1.0)] = 0.9
    threshold: Annotated[float, in_range(0.0, math.inf, low_open=True)] = 1.0
    adapt_decay: Annotated[float, in_range(0.0, 1.0)] = 0.99
    adapt_strength: Annotated[float, in_range(0.0, math.inf)] = 0.2
    dampening: Annotated[float, in_range(0.0, math.inf, low_open=True)] = 0.3
    norm_obs: bool = True
    norm_reward: bool = False
    reward_scale: Annotated[float, in_range(0.0, math.inf, low_open=True)] = 0.1
    eval_every: Annotated[int, at_least(1)] = 20


@dataclasses.dataclass(frozen=True)
class EpropConfig(EpropFields, a2c.A2CFields, ActorCriticLossFields, RolloutFields, AgentConfig):
    """``synjax eprop``: the online spiking actor-critic (:class:`EpropFields`), the actor-critic loss weights
    (``vf_coef`` is the critic's weight in the traced error, ``ent_coef`` the entropy bonus's), the rollout and
    optimizer settings (``num_steps``: the unroll; Adam by default, global-norm clipping)."""

    networks: ClassVar[tuple[str, ...]] = ("snn",)

    network: str = "snn"
    num_envs: int = 32
    num_steps: int = 16
    lr: Floats = 1e-3
    gae_lambda: Floats = 0.95
    ent_coef: Floats = 0.01
    norm_adv: bool = False
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        super().__post_init__()
        env, env_params = make_env(self)
        continuous = action_spec(env, env_params)[0]
        require(not continuous, "env", self.env, "an environment with discrete actions (the online actor is "
                "categorical)")  # fmt: skip
        obs_encoder(env, env_params)
        if self.learning == "bptt":  # flags that would change nothing are refused
            require(self.feedback == "symmetric", "feedback", self.feedback, "'symmetric' (the default) with "
                    "--learning bptt: feedback weights only mean something to a local rule")  # fmt: skip
            require(self.update_every == "unroll", "update_every", self.update_every, "'unroll' (the default) "
                    "with --learning bptt: BPTT updates once per rollout")  # fmt: skip
        if self.learning == "rstdp":
            require(self.cell.spiking, "neuron", self.neuron, "a spiking neuron (LIF, IF, ALIF) with "
                    "--learning rstdp: STDP pairs spikes")  # fmt: skip
        if not self.cell.adaptive:
            for name in ("adapt_decay", "adapt_strength"):
                default = EpropFields.__dataclass_fields__[name].default
                require(getattr(self, name) == default, name, getattr(self, name), f"left at its default "
                        f"({default!r}) without --neuron ALIF or adaptive-sigmoid: only an adaptive threshold has it")  # fmt: skip

    @property
    def cell(self) -> rule.Cell:
        return rule.Cell(self.neuron, 1.0 if self.neuron == "IF" else self.alpha, self.threshold, self.adapt_decay,
                         self.adapt_strength, self.dampening)  # fmt: skip

    def policy_network(self, obs_dim: int, action_dim: int, continuous: bool, rngs: Any) -> EpropActorCritic:
        del continuous
        return EpropActorCritic(obs_dim, action_dim, self.hidden, cell=self.cell, recurrent=self.recurrent,
                                time_steps=self.time_steps, time_mode=self.time_mode, kappa=self.kappa,
                                learning=self.learning, feedback=self.feedback, normalize_obs=self.norm_obs,
                                rngs=rngs)  # fmt: skip


def _hidden_names(config: EpropConfig) -> tuple[str, ...]:
    return ("w_in", "w_rec") if config.recurrent else ("w_in",)


def learner_init(config: EpropConfig, params: Any, num_envs: int) -> dict[str, jax.Array]:
    """The traces ``F`` of every learned weight, per environment: ``{name: (num_envs, *shape)}``."""
    names = ["w_out", "b_out"] + ([] if config.learning == "frozen" else list(_hidden_names(config)))
    return {name: jnp.zeros((num_envs, *params[name][...].shape), jnp.float32) for name in names}


def learner_step(config: EpropConfig, apply, tx, traces, params, opt_state, data: StepData):
    """One environment step of reward-based e-prop (or its controls) for every environment (module docstring)."""
    del apply
    carry, tr = data.next_carry, data.transition
    logits = carry.outputs[:, :-1]
    err, err_ent = rule.actor_critic_error(logits, tr.action, config.vf_coef, config.ent_coef)
    kappa, steps = config.kappa, config.time_steps
    readout_gain = sum(kappa**k for k in range(steps))  # d y / d b_out: the bias enters every SNN step
    step_grad = {"w_out": carry.zbar[:, :, None] * err[:, None, :], "b_out": readout_gain * err}
    now = {"w_out": carry.zbar[:, :, None] * err_ent[:, None, :], "b_out": readout_gain * err_ent}
    hidden = dict(zip(_hidden_names(config), (carry.tag_in, carry.tag_rec)))
    if config.learning == "eprop":
        feedback = params["w_out" if config.feedback == "symmetric" else "feedback"][...]
        signal, signal_ent = rule.learning_signal(err, feedback), rule.learning_signal(err_ent, feedback)
        for name, tag in hidden.items():
            step_grad[name] = rule.weight_gradient(signal, tag)
            now[name] = rule.weight_gradient(signal_ent, tag)
    elif config.learning == "rstdp":  # -tag: a positive TD error potentiates what STDP tagged
        for name, tag in hidden.items():
            step_grad[name] = -tag / steps
    decay = config.gamma * config.gae_lambda * (1.0 - tr.first.astype(jnp.float32))
    traces = {name: rule.td_trace(traces[name], step_grad[name], decay) for name in traces}
    delta = (
        tr.reward + config.gamma * (1.0 - tr.terminated.astype(jnp.float32)) * data.next_value - data.value
    )
    grads = jax.tree.map(jnp.zeros_like, params)
    for name, trace in traces.items():
        g = (delta.reshape(-1, *([1] * (trace.ndim - 1))) * trace).mean(0)
        if name in now:
            g = g + now[name].mean(0)
        grads[name] = params[name].replace(g)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    entropy = -(jax.nn.softmax(logits) * jax.nn.log_softmax(logits)).sum(-1)
    return traces, params, opt_state, {"td_error": jnp.abs(delta).mean(), "entropy": entropy.mean()}


LEARNER = StepLearner(metrics=METRICS, init=learner_init, step=learner_step)


def make_optimizer(config: EpropConfig, num_updates: int) -> optax.GradientTransformation:
    """BPTT: A2C's (clip, then RMSprop or Adam, once per rollout). The local rules: the same clip and optimizer,
    stepped every environment step (``update_every=step``) or on the mean of each rollout's step gradients
    (``unroll``: ``optax.MultiSteps`` over ``num_steps``)."""
    if config.learning == "bptt":
        return a2c.make_optimizer(config, num_updates)
    per_step = config.update_every == "step"
    lr = losses.lr_schedule(config.lr, config.anneal_lr, num_updates, config.num_steps if per_step else 1)
    if config.optimizer == "rmsprop":
        opt = optax.rmsprop(lr, decay=config.rms_alpha, eps=config.opt_eps, eps_in_sqrt=False)
    else:
        opt = optax.adam(lr, eps=config.opt_eps)
    opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)
    if per_step:
        return opt
    return optax.MultiSteps(opt, every_k_schedule=config.num_steps).gradient_transformation()


def _algorithm(config_learning: str) -> OnPolicyAlgorithm:
    bptt = config_learning == "bptt"
    return OnPolicyAlgorithm(
        name="eprop", metrics=a2c.METRICS if bptt else (), make_optimizer=make_optimizer,
        update=a2c.update_step if bptt else None, minibatch_step=a2c.ALGORITHM.minibatch_step,
        passes=lambda config: (1, 1), learner=None if bptt else LEARNER,
    )  # fmt: skip


#: the online learner (every ``learning`` but ``bptt``); :data:`BPTT` is its twin
ALGORITHM = _algorithm("eprop")
BPTT = _algorithm("bptt")


def make_train(config: EpropConfig, env: Any = None, env_params: Any = None, network: Any = None):
    """The :class:`synjax.trainer.Trainer` of one seed of ``config`` (``train(key) -> TrainOutput``)."""
    algorithm = BPTT if config.learning == "bptt" else ALGORITHM
    return algorithm.make_train(config, env, env_params, network)


def run(config: EpropConfig):
    """Train every seed (and swept value) of ``config``; write the results folder; ``(path, SweepRun)``."""
    from synjax.agents import on_policy_experiment

    return on_policy_experiment.run(BPTT if config.learning == "bptt" else ALGORITHM, config)


PRESETS = {
    # CartPole-v1, the feasibility prototype's settings (one LIF layer of 64, T = 8, 32 envs, unrolls of 16,
    # Adam 1e-3, GAE(0.95) traces, rewards x 0.1, entropy 0.01): a regression guard, not evidence.
    "cartpole": EpropConfig(num_seeds=16, env="CartPole-v1", total_timesteps=200_000),
    # CartPole without velocities: the memory must live in the carried membranes (recurrent ALIF).
    "masked": EpropConfig(num_seeds=16, env="CartPole-masked-v1", total_timesteps=2_000_000, neuron="ALIF",
                          recurrent=True, time_steps=4, eval_every=100),
    "acrobot": EpropConfig(num_seeds=16, env="Acrobot-v1", total_timesteps=1_000_000, recurrent=True,
                           eval_every=100),
    "breakout": EpropConfig(num_seeds=4, env="Breakout-MinAtar", total_timesteps=2_000_000, hidden=128,
                            recurrent=True, time_steps=4, eval_every=200),
}  # fmt: skip
