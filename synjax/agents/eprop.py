"""An online spiking actor-critic: reward-based e-prop (Bellec et al. 2020) at every environment step, no
backpropagation through time anywhere; ``synjax eprop``.

The network (:class:`synjax.agents.eprop_network.EpropActorCritic`): the observation (optionally normalized) and a constant 1 drive one layer
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
from typing import Annotated, Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from synjax.agents import a2c, losses, on_policy_experiment
from synjax.agents.config import ActorCriticLossFields, AgentConfig, RolloutFields, make_env
from synjax.agents.eprop_network import LEARNINGS, TIME_MODES, EpropActorCritic
from synjax.agents.networks import action_spec, obs_encoder
from synjax.agents.on_policy import OnPolicyAlgorithm, StepData, StepLearner
from synjax.checks import at_least, in_range, one_of, require
from synjax.runner.sweep import Floats
from synjax.snn import eprop as rule

UPDATE_EVERY = ("unroll", "step")
METRICS = ("td_error", "entropy")


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
