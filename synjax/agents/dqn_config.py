"""DQN's config: Stable-Baselines3's DQN names and defaults (the ``notebook`` preset's base)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from synjax.agents.config import ExplorationFields, SpikingConfig, make_env
from synjax.agents.networks import obs_encoder
from synjax.checks import above, at_least, each, in_range, one_of, require
from synjax.runner.sweep import Floats

LOSSES = ("huber", "mse")


@dataclasses.dataclass(frozen=True)
class DQNConfig(ExplorationFields, SpikingConfig):
    """DQN settings; names and defaults are Stable-Baselines3's DQN (the ``notebook`` preset's base); epsilon's
    schedule on :class:`synjax.agents.config.ExplorationFields`.

    Fields typed ``Floats`` may be swept: ``--lr 1e-4,3e-4`` trains every value x every seed in one jit.

    Attributes:
      env: environment id (``synjax.envs.registry.env_ids()``) with a discrete action space (the fields of
        :class:`synjax.agents.config.AgentConfig`: env, env_params, network, eval_episodes).
      total_timesteps: transitions per seed (all ``num_envs`` together); a multiple of ``eval_every``.
      num_envs: environments stepped in parallel per seed.
      lr: Adam learning rate (sweepable).
      anneal_lr: decay the learning rate linearly to 0 over the gradient steps (PureJaxRL's LR_LINEAR_DECAY).
      buffer_size: replay capacity in transitions (``min(buffer_size, total_timesteps)`` is allocated: a
        larger buffer would never fill, so it behaves the same).
      learning_starts: transitions of uniformly random play before the first gradient step.
      batch_size: transitions per gradient step, drawn uniformly with replacement; at most ``buffer_size``.
      tau: Polyak coefficient of the target update, in (0, 1]; 1 copies the online network (sweepable).
      gamma: discount, in [0, 1] (sweepable).
      train_freq: vector-environment steps between training phases.
      gradient_steps: gradient steps per training phase.
      target_update_interval: transitions between target updates.
      max_grad_norm: global gradient-norm clip; 0 turns clipping off (sweepable).
      loss: ``"huber"`` (SB3's smooth L1 with threshold ``huber_delta``) or ``"mse"`` (squared TD error, as
        CleanRL and PureJaxRL).
      huber_delta: Huber loss threshold, > 0 (sweepable).
      double_dqn: bootstrap action chosen by the online network (Double DQN).
      network: ``mlp`` (ReLU MLP), ``cnn`` (the MinAtar CNN, for image observations) or ``snn`` (spiking Q-network, ``inner`` time mode, ``direct`` encoder: the
        ``snn_*`` fields of :class:`synjax.agents.config.SpikingConfig`).
      hidden: hidden layer widths of the Q-network.
      layer_norm: LayerNorm before each hidden ReLU of the MLP Q-network.
      eval_every: transitions between evaluations; a multiple of ``train_freq * num_envs``.
    """

    networks: ClassVar[tuple[str, ...]] = ("mlp", "cnn", "snn")
    #: replayed single transitions have no sequence to carry membranes along
    snn_time_modes: ClassVar[tuple[str, ...]] = ("inner",)
    #: DQN keeps no running observation statistics (the Q-networks' ``norm_obs``)
    norm_obs: ClassVar[bool] = False

    num_seeds: int = 16
    total_timesteps: int = 20_000
    num_envs: int = 1
    lr: Annotated[Floats, above(0.0)] = 1e-4
    anneal_lr: bool = False
    buffer_size: Annotated[int, at_least(1)] = 1_000_000
    learning_starts: int = 100
    batch_size: int = 32
    tau: Annotated[Floats, in_range(0.0, 1.0, low_open=True)] = 1.0
    gamma: Annotated[Floats, in_range(0.0, 1.0)] = 0.99
    train_freq: Annotated[int, at_least(1)] = 4
    gradient_steps: Annotated[int, at_least(1)] = 1
    target_update_interval: Annotated[int, at_least(1)] = 10_000
    max_grad_norm: Annotated[Floats, at_least(0.0, "a float >= 0 (0 = no clipping)")] = 10.0
    loss: Annotated[str, one_of(*LOSSES)] = "huber"
    huber_delta: Annotated[Floats, above(0.0)] = 1.0
    double_dqn: bool = False
    hidden: Annotated[tuple[int, ...], each(at_least(1), "one or more layer widths >= 1")] = (64, 64)
    layer_norm: bool = False
    eval_every: int = 1_000

    def __post_init__(self) -> None:
        if self.network == "gru":
            require(False, "network", self.network, "'mlp', 'cnn' or 'snn' for DQN: its replay samples single transitions, "
                    "so a recurrent network would need sequence replay with a burn-in (R2D2); use ppo or a2c")  # fmt: skip
        if self.network == "snn":
            require(self.snn_encoder == "direct", "snn_encoder", self.snn_encoder, "'direct' for DQN (the "
                    "population and poisson codes need running observation statistics, which DQN does not keep; "
                    "pqn does)")  # fmt: skip
        super().__post_init__()
        env, env_params = make_env(self)
        space = env.action_space(env_params)
        require(hasattr(space, "n"), "env", self.env, f"an environment with discrete actions, not {space}")
        try:
            obs_encoder(env, env_params)
        except ValueError as e:
            require(False, "env", self.env, f"an environment with Box or Discrete observations ({e})")
        chunk = self.train_freq * self.num_envs
        require(
            self.eval_every >= 1 and self.eval_every % chunk == 0,
            "eval_every",
            self.eval_every,
            f"a positive multiple of train_freq * num_envs = {chunk}",
        )
        require(
            self.total_timesteps >= 1 and self.total_timesteps % self.eval_every == 0,
            "total_timesteps",
            self.total_timesteps,
            f"a positive multiple of eval_every = {self.eval_every}",
        )
        require(
            1 <= self.batch_size <= self.buffer_size,
            "batch_size",
            self.batch_size,
            f"an integer in [1, buffer_size = {self.buffer_size}]",
        )
        require(
            0 <= self.learning_starts < self.total_timesteps,
            "learning_starts",
            self.learning_starts,
            f"an integer in [0, total_timesteps = {self.total_timesteps})",
        )
        require(len(self.hidden) >= 1, "hidden", self.hidden, "one or more layer widths >= 1")
        self.check_spiking(self.hidden)

    @property
    def chunk_steps(self) -> int:
        """Transitions between two training phases: ``train_freq * num_envs``."""
        return self.train_freq * self.num_envs

    @property
    def num_evals(self) -> int:
        """Evaluations after step 0: ``total_timesteps / eval_every``."""
        return self.total_timesteps // self.eval_every

    @property
    def num_gradient_steps(self) -> int:
        """Gradient steps of a run: ``gradient_steps`` in every chunk that ends after ``learning_starts``."""
        num_chunks = self.total_timesteps // self.chunk_steps
        return (num_chunks - self.learning_starts // self.chunk_steps) * self.gradient_steps

    @property
    def replay_capacity(self) -> int:
        """Transitions the replay buffer holds: ``min(buffer_size, total_timesteps)``."""
        return min(self.buffer_size, self.total_timesteps)
