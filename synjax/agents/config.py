"""Configs of the JAX-environment agents: the fields every agent has (:class:`AgentConfig`: environment, budget,
network, evaluation) and those PPO and A2C share (:class:`ActorCriticConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar

import jax
import jax.numpy as jnp

from synjax.agents.actor_critics import ACTOR_CRITICS
from synjax.agents.networks import ACTIVATIONS, action_spec, obs_encoder
from synjax.agents.spiking import DECODERS, ENCODERS, MINATAR_CONVS, SPIKING_KINDS, TIME_MODES, min_time_steps
from synjax.checks import (
    above,
    at_least,
    each,
    finite,
    in_range,
    integer_in,
    one_of,
    require,
    require_defaults,
)
from synjax.envs import registry
from synjax.runner.config import GifFlag, RunConfig
from synjax.runner.sizes import MAX_STEPS
from synjax.runner.sweep import Floats
from synjax.snn.nir_neurons import NIR_KINDS
from synjax.snn.spyx_neurons import DISCRETIZATIONS, SURROGATES

ACTION_HEADS = ("auto", "discrete", "gaussian")


def parse_env_params(text: str) -> dict[str, Any]:
    """``"noise=true,max_steps_in_episode=60"`` -> ``{"noise": True, "max_steps_in_episode": 60}``.

    Values: ``true``/``false`` (any case) become bools, then int, then float; anything else stays a string.
    """
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ValueError(f"{item!r} is not name=value")
        name, raw = (s.strip() for s in item.split("=", 1))
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[name] = value
    return out


def make_env(config: AgentConfig) -> tuple[Any, Any]:
    """``(env, env_params)`` of ``config.env`` with ``config.env_params`` applied."""
    return registry.make(config.env, **parse_env_params(config.env_params))


#: agent steps per seed: the step counters inside the jitted loop are int32
BUDGET = integer_in(1, MAX_STEPS, f"at most {MAX_STEPS:,} steps per seed (the jitted loop counts in int32)")


@dataclasses.dataclass(frozen=True)
class BudgetFields:
    """The budget of every RL experiment (the JAX-environment agents and the host loop).

    Attributes:
      total_timesteps: environment steps (agent actions) per seed (see each algorithm for how the budget is
        rounded).
      num_envs: parallel environments per seed.
    """

    total_timesteps: Annotated[int, at_least(1), BUDGET] = 100_000
    num_envs: Annotated[int, at_least(1)] = 8


@dataclasses.dataclass(frozen=True)
class AgentConfig(BudgetFields, GifFlag, RunConfig):
    """What every JAX-environment agent has (DQN and the actor-critics alike), besides the budget
    (:class:`BudgetFields`).

    Attributes:
      env: environment id (``synjax.envs.registry.env_ids()``).
      env_params: environment params to change, ``"name=value,..."`` (e.g. ``"noise=true"`` for ShowerEnv).
      network: the network: ``"mlp"`` (feedforward), ``"gru"`` (recurrent: its state is carried across steps
        and reset where an episode ends), ``"cnn"`` (image observations: the MinAtar CNN) or ``"snn"``
        (spiking, :class:`SpikingFields`); each algorithm lists what it serves in ``networks``.
      eval_episodes: episodes per evaluation, on fresh environments.
    """

    networks: ClassVar[tuple[str, ...]] = ("mlp",)

    env: str = "CartPole-v1"
    env_params: str = ""
    network: str = "mlp"
    eval_episodes: Annotated[int, at_least(1)] = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        ids = registry.env_ids()
        require(self.env in ids, "env", self.env, f"one of {', '.join(ids)}")
        try:
            make_env(self)
        except ValueError as e:
            require(False, "env_params", self.env_params, f"valid params of {self.env} ({e})")
        require(self.network in self.networks, "network", self.network,
                f"one of {', '.join(self.networks)} for {type(self).__name__}")  # fmt: skip
        if self.network == "cnn":
            shape = self.image_shape()
            require(shape is not None, "network", self.network, f"a network for {self.env}'s observations "
                    "('cnn' needs (H, W, C) images of at least 3 x 3)")  # fmt: skip

    def image_shape(self) -> tuple[int, int, int] | None:
        """``(H, W, C)`` when ``env`` observes images of at least 3 x 3 (MinAtar: 10 x 10 x channels), else
        None: what ``--network cnn`` needs, and what makes a spiking network start with a convolution."""
        env, env_params = make_env(self)
        shape = tuple(getattr(env.observation_space(env_params), "shape", ()) or ())
        return shape if len(shape) == 3 and min(shape[:2]) >= 3 else None


@dataclasses.dataclass(frozen=True)
class RolloutFields:
    """What an on-policy loop learns with, and its budget arithmetic (per seed): shared by the JAX-environment
    loop (:class:`RolloutConfig`) and the host loop (:class:`synjax.host.config.HostConfig`), which also have
    ``total_timesteps`` and ``num_envs`` (:class:`BudgetFields`).

    Attributes:
      num_steps: rollout length per environment per update (SB3 ``n_steps``); training runs ``ceil(total /
        (num_envs * num_steps))`` updates (SB3 semantics: the last rollout is completed).
      lr: learning rate (sweepable).
      anneal_lr: decay the learning rate linearly to 0 over the updates.
      gamma: discount (sweepable).
      gae_lambda: the lambda of the returns (GAE for the actor-critics, Q(lambda) for PQN); 1.0 gives n-step
        returns (sweepable).
      max_grad_norm: global gradient-norm clip (sweepable).
    """

    num_steps: Annotated[int, at_least(1)] = 32
    lr: Annotated[Floats, above(0.0)] = 3e-4
    anneal_lr: bool = False
    gamma: Annotated[Floats, in_range(0.0, 1.0)] = 0.99
    gae_lambda: Annotated[Floats, in_range(0.0, 1.0)] = 0.95
    max_grad_norm: Annotated[Floats, above(0.0)] = 0.5

    @property
    def batch_size(self) -> int:
        """Transitions per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """``ceil(total_timesteps / batch_size)``."""
        return -(-self.total_timesteps // self.batch_size)

    @property
    def env_steps(self) -> int:
        """Environment steps one seed actually takes: ``num_updates * batch_size``."""
        return self.num_updates * self.batch_size


def check_minibatches(config: Any, whole_sequences: bool = False) -> None:
    """Refuse a ``num_minibatches`` that does not divide the batch ``num_envs * num_steps``, or, where a
    minibatch is a group of whole environment sequences (a stateful network), ``num_envs``."""
    b = config.batch_size
    require(config.num_minibatches >= 1 and b % config.num_minibatches == 0, "num_minibatches",
            config.num_minibatches, f"a divisor of num_envs * num_steps = {config.num_envs} * {config.num_steps} = "
            f"{b}")  # fmt: skip
    if whole_sequences:
        require(config.num_envs % config.num_minibatches == 0, "num_minibatches", config.num_minibatches,
                f"a divisor of num_envs = {config.num_envs} (network {config.network!r} trains on whole "
                "environment sequences)")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ExplorationFields:
    """Epsilon-greedy exploration of the value-based agents (DQN, PQN): Stable-Baselines3's linear schedule.

    Attributes:
      exploration_fraction: share of ``total_timesteps`` over which epsilon falls linearly, in (0, 1]
        (sweepable).
      exploration_initial_eps: epsilon at the start, in [0, 1] (sweepable).
      exploration_final_eps: epsilon after the fall, in [0, 1] (sweepable).
    """

    exploration_fraction: Annotated[Floats, in_range(0.0, 1.0, low_open=True)] = 0.1
    exploration_initial_eps: Annotated[Floats, in_range(0.0, 1.0)] = 1.0
    exploration_final_eps: Annotated[Floats, in_range(0.0, 1.0)] = 0.05

    def epsilon_at(self, steps: Any) -> jax.Array:
        """Epsilon after ``steps`` environment steps (transitions) of one seed, any shape: ``initial -> final``
        linearly over the first ``exploration_fraction * total_timesteps``, then flat; float32."""
        span = self.exploration_fraction * self.total_timesteps
        frac = jnp.minimum(1.0, jnp.asarray(steps, jnp.float32) / span)
        start, end = self.exploration_initial_eps, self.exploration_final_eps
        return jnp.asarray(start + frac * (end - start), jnp.float32)


@dataclasses.dataclass(frozen=True)
class ActorCriticLossFields:
    """The actor-critic loss settings shared by PPO, A2C and the host loop.

    Attributes:
      ent_coef: entropy bonus weight (sweepable).
      vf_coef: value loss weight (sweepable).
      norm_adv: standardize advantages (per minibatch; A2C: per rollout).
      log_std_init: initial log std of the Gaussian head (sweepable).
    """

    ent_coef: Annotated[Floats, at_least(0.0)] = 0.0
    vf_coef: Annotated[Floats, at_least(0.0)] = 0.5
    norm_adv: bool = True
    log_std_init: Annotated[Floats, finite("a finite float")] = 0.0


@dataclasses.dataclass(frozen=True)
class SpikingFields:
    """The ``--network snn`` settings (:mod:`synjax.agents.spiking`) of an experiment that can train a spiking
    network (the JAX-environment agents and the host loop); read only when ``network`` is ``snn``.

    Attributes:
      snn_time_steps: SNN steps per decision (``T``); in ``inner`` mode at least ``len(hidden) + 1`` (each
        spiking layer delays its input by one step).
      snn_time_mode: ``inner`` (membranes restart at rest each decision) or ``carried`` (the membranes are the
        policy's carry across environment steps, reset where an episode starts; PPO and A2C only).
      snn_neuron: spiking neuron of the hidden layers (spyx): ``LIF``, ``IF``, ``ALIF``, ``CuBaLIF`` or a
        recurrent form ``RLIF``, ``RIF``, ``RCuBaLIF``.
      snn_encoder: ``direct`` (the observation as a constant current), ``population`` (Gaussian receptive
        fields per observation dimension) or ``poisson`` (rate-coded input spikes, two neurons per dimension);
        the last two normalize the observation by running statistics.
      snn_population: receptive fields per observation dimension of the population encoder.
      snn_decoder: ``membrane`` (the membranes of non-spiking leaky read-outs) or ``rate`` (spike counts
        through dense read-outs).
      snn_surrogate: surrogate gradient of the spikes (spyx.axn).
      snn_beta: membrane decay per SNN step.
      snn_threshold: firing threshold.
      snn_discretization: ``spyx`` (a spike answers the membrane before the step's update: one SNN step of delay
        per layer) or ``nir`` (integrate, spike on the updated membrane, subtract reset: what an exported NIR
        graph computes exactly; neurons LIF, IF, RLIF, RIF).
    """

    #: the time modes this algorithm can train
    snn_time_modes: ClassVar[tuple[str, ...]] = TIME_MODES

    snn_time_steps: Annotated[int, at_least(1)] = 8
    snn_time_mode: Annotated[str, one_of(*TIME_MODES)] = "inner"
    snn_neuron: Annotated[str, one_of(*SPIKING_KINDS)] = "LIF"
    snn_encoder: Annotated[str, one_of(*ENCODERS)] = "direct"
    snn_population: Annotated[int, at_least(2)] = 8
    snn_decoder: Annotated[str, one_of(*DECODERS)] = "membrane"
    snn_surrogate: Annotated[str, one_of(*SURROGATES)] = "arctan"
    snn_beta: Annotated[float, in_range(0.0, 1.0)] = 0.9
    snn_threshold: Annotated[float, above(0.0)] = 1.0
    snn_discretization: Annotated[str, one_of(*DISCRETIZATIONS)] = "spyx"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.network != "snn":  # a flag that would change nothing is refused
            require_defaults(self, SpikingFields, f"with network {self.network!r}: the snn_* settings only mean "
                             "something with --network snn")  # fmt: skip
        elif self.snn_discretization == "nir":
            require(self.snn_neuron in NIR_KINDS, "snn_neuron", self.snn_neuron,
                    f"one of {', '.join(NIR_KINDS)} with --snn-discretization nir")  # fmt: skip

    def check_spiking_layers(self, layers: int) -> None:
        """Refuse a time mode this algorithm cannot train and a ``T`` below the floor of ``layers`` spiking
        layers (only when ``network`` is ``snn``)."""
        if self.network != "snn":
            return
        require(self.snn_time_mode in self.snn_time_modes, "snn_time_mode", self.snn_time_mode,
                f"one of {', '.join(self.snn_time_modes)} for {type(self).__name__}")  # fmt: skip
        fewest = min_time_steps(self.snn_time_mode, layers, self.snn_discretization)
        require(self.snn_time_steps >= fewest, "snn_time_steps", self.snn_time_steps,
                f"an integer >= {fewest} in {self.snn_time_mode} mode with {layers} spiking layers (a spyx "
                "neuron emits its spike one SNN step after the input that caused it; --snn-discretization nir "
                "needs 1)")  # fmt: skip

    def spiking_kwargs(self) -> dict[str, Any]:
        """The :class:`synjax.agents.spiking.SpikingNetwork` settings of these fields."""
        return {
            "time_steps": self.snn_time_steps, "time_mode": self.snn_time_mode, "neuron": self.snn_neuron,
            "encoder": self.snn_encoder, "population": self.snn_population, "decoder": self.snn_decoder,
            "surrogate": self.snn_surrogate, "beta": self.snn_beta, "threshold": self.snn_threshold,
            "discretization": self.snn_discretization,
        }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SpikingConfig(SpikingFields, AgentConfig):
    """A JAX-environment agent that can train a spiking network (:class:`SpikingFields`); on image
    observations the network starts with a spiking convolution (the MinAtar CNN's)."""

    def check_spiking(self, hidden: tuple[int, ...]) -> None:
        """Refuse ``snn_*`` settings that cannot work with spiking layers ``hidden`` (only when network is snn)."""
        if self.network != "snn":
            return
        require(bool(hidden), "hidden", hidden, "at least one layer width for --network snn")
        image = self.image_shape()
        if image is not None:
            require(self.snn_encoder == "direct", "snn_encoder", self.snn_encoder,
                    f"'direct' for {self.env}'s image observations (a spiking convolution reads the image)")  # fmt: skip
        self.check_spiking_layers(len(hidden) + (len(MINATAR_CONVS) if image is not None else 0))

    @property
    def stateful(self) -> bool:
        """Whether the network carries a state across environment steps (trained on whole sequences)."""
        return self.network == "gru" or (self.network == "snn" and self.snn_time_mode == "carried")

    def spiking_kwargs(self) -> dict[str, Any]:
        return {**super().spiking_kwargs(), "image": self.image_shape()}


@dataclasses.dataclass(frozen=True)
class RolloutConfig(RolloutFields, SpikingConfig):
    """What the on-policy loop (:mod:`synjax.agents.on_policy`) reads: PPO, A2C and PQN share these (the
    learning settings on :class:`RolloutFields`). Each algorithm's config adds ``policy_network(obs_dim,
    action_dim, continuous, rngs)``, the network it trains (a :class:`~synjax.agents.policy.PolicyNetwork`).

    Attributes:
      norm_obs: running observation normalization inside the network (saved with its parameters).
      norm_reward: scale rewards by the running std of the discounted return (SB3 VecNormalize).
      reward_scale: multiply rewards by this before learning (purejaxql's ``REW_SCALE``; episode returns are
        reported unscaled).
      hidden: hidden layer widths.
      eval_every: evaluate the deterministic policy every this many updates (and after the last one).
    """

    norm_obs: bool = False
    norm_reward: bool = False
    reward_scale: Annotated[float, above(0.0)] = 1.0
    hidden: Annotated[tuple[int, ...], each(at_least(1), "layer widths >= 1")] = (64, 64)
    eval_every: Annotated[int, at_least(1)] = 10


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(ActorCriticLossFields, RolloutConfig):
    """Settings PPO and A2C share (names follow Stable-Baselines3 where they exist; the loss's on
    :class:`ActorCriticLossFields`, the loop's on :class:`RolloutConfig`).

    Attributes:
      activation: ``"tanh"`` or ``"relu"``.
      shared_torso: one torso for actor and critic instead of two.
      action_head: ``"auto"`` (from the action space), ``"discrete"`` or ``"gaussian"`` (must match it).
    """

    networks: ClassVar[tuple[str, ...]] = tuple(ACTOR_CRITICS)

    activation: Annotated[str, one_of(*ACTIVATIONS)] = "tanh"
    shared_torso: bool = False
    action_head: Annotated[str, one_of(*ACTION_HEADS)] = "auto"

    def policy_network(self, obs_dim: int, action_dim: int, continuous: bool, rngs: Any) -> Any:
        return ACTOR_CRITICS[self.network](obs_dim, action_dim, continuous, self, rngs)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_spiking(self.hidden)
        env, env_params = make_env(self)
        space = env.action_space(env_params)
        continuous = action_spec(env, env_params)[0]
        if self.action_head == "gaussian":
            require(
                continuous,
                "action_head",
                self.action_head,
                f"'auto' or 'discrete' for {self.env}, whose action space is discrete ({space.n} actions)",
            )
        if self.action_head == "discrete":
            require(
                not continuous,
                "action_head",
                self.action_head,
                f"'auto' or 'gaussian' for {self.env}, whose action space is continuous (Box)",
            )
        obs_encoder(env, env_params)  # raises for unsupported observation spaces
