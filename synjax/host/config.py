"""The host-loop config: agent and loop settings of Atari and CarRacing runs, and the on-policy algorithms they
look up."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from synjax.agents import a2c, ppo
from synjax.agents.config import RolloutBudget, SpikingFields
from synjax.agents.spiking import NATURE_CONVS
from synjax.checks import above, at_least, finite, in_range, one_of, require
from synjax.runner.config import GifFlag, RunConfig

ALGOS = {a.name: a for a in (ppo.ALGORITHM, a2c.ALGORITHM)}


#: environments (all seeds together) one host-loop process may run
MAX_HOST_ENVS = 4096


@dataclasses.dataclass(frozen=True)
class HostConfig(SpikingFields, GifFlag, RunConfig, RolloutBudget):
    """Agent and loop settings of host-loop runs (names as :class:`synjax.agents.config.ActorCriticConfig`).

    Attributes:
      algo: ``"ppo"`` or ``"a2c"``.
      network: ``"cnn"`` (the Nature CNN) or ``"snn"`` (its spiking twin: LIF feature maps of the three
        convolutions and ``features`` LIF units, ``inner`` time mode, the ``snn_*`` settings of
        :class:`synjax.agents.config.SpikingFields`).
      total_timesteps: agent steps (actions) per seed; ``ceil(total / (num_envs * num_steps))`` updates.
      num_envs: environments per seed.
      num_steps: rollout length per environment per update.
      lr: learning rate of the optimizer.
      anneal_lr: decay ``lr`` linearly to 0 over the updates.
      gamma: discount factor in [0, 1].
      gae_lambda: GAE lambda in [0, 1] (1 = Monte Carlo returns bootstrapped at the rollout's end).
      ent_coef: weight of the entropy bonus in the loss (>= 0).
      vf_coef: weight of the value loss (>= 0).
      max_grad_norm: the gradient's global norm is clipped to this.
      norm_adv: normalize the advantages per minibatch (PPO) or per rollout (A2C).
      update_epochs: PPO only: passes over each rollout.
      num_minibatches: PPO only: minibatches per pass; must divide ``num_envs * num_steps``.
      clip_eps: PPO only: ratio clip range.
      anneal_clip: PPO only: decay ``clip_eps`` linearly to 0 over the updates.
      vf_clip: PPO only: clip range of the value update around the old value; 0 = no value clipping.
      optimizer: A2C only: ``"rmsprop"`` (torch-style eps, as SB3) or ``"adam"``.
      rms_alpha: A2C only: RMSprop smoothing constant (torch ``alpha``), in (0, 1).
      opt_eps: A2C only: epsilon of the optimizer.
      log_std_init: initial log std of a Gaussian head (continuous actions).
      features: width of the CNN's last layer.
      log_every: updates between learning-curve points.
      checkpoint_every: updates between checkpoints (also written on Ctrl-C and at the end); 0 = only those.
      eval_episodes: games per seed played by the trained policy at the end (true scores).
      eval_deterministic: evaluate the policy's mode instead of sampling from it.
      resume: a run folder whose checkpoint to continue (``out`` defaults to it).
    """

    multi_process: ClassVar[bool] = False
    #: the host loop's update takes flat minibatches of single frames: nothing to carry membranes along
    snn_time_modes: ClassVar[tuple[str, ...]] = ("inner",)

    num_seeds: int = 1
    algo: Annotated[str, one_of(*ALGOS)] = "a2c"
    network: Annotated[str, one_of("cnn", "snn")] = "cnn"
    total_timesteps: Annotated[int, at_least(1)] = 100_000
    num_envs: Annotated[int, at_least(1)] = 4
    num_steps: Annotated[int, at_least(1)] = 5
    lr: Annotated[float, above(0.0)] = 7e-4
    anneal_lr: bool = False
    gamma: Annotated[float, in_range(0.0, 1.0)] = 0.99
    gae_lambda: Annotated[float, in_range(0.0, 1.0)] = 1.0
    ent_coef: Annotated[float, at_least(0.0)] = 0.0
    vf_coef: Annotated[float, at_least(0.0)] = 0.5
    max_grad_norm: Annotated[float, above(0.0)] = 0.5
    norm_adv: bool = False
    update_epochs: Annotated[int, at_least(1)] = 4
    num_minibatches: int = 4
    clip_eps: Annotated[float, above(0.0)] = 0.1
    anneal_clip: bool = False
    vf_clip: Annotated[float, at_least(0.0)] = 0.0
    optimizer: Annotated[str, one_of(*a2c.OPTIMIZERS)] = "rmsprop"
    rms_alpha: Annotated[float, in_range(0.0, 1.0, low_open=True, high_open=True)] = 0.99
    opt_eps: Annotated[float, above(0.0)] = 1e-5
    log_std_init: Annotated[float, finite("a finite float")] = 0.0
    features: Annotated[int, at_least(1)] = 512
    log_every: Annotated[int, at_least(1)] = 100
    checkpoint_every: int = 1000
    eval_episodes: Annotated[int, at_least(0, "an integer >= 0 (0 = no evaluation)")] = 10
    eval_deterministic: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.multi_process or not self.distributed, "distributed", self.distributed,
                "False: the host loop runs its seeds in one process (the Gymnasium environments live on this "
                "host); to spread seeds over machines start one run per machine with its own --seed")  # fmt: skip
        require(self.num_seeds * self.num_envs <= MAX_HOST_ENVS, "num_envs", self.num_envs,
                f"at most {MAX_HOST_ENVS} // --num-seeds = {MAX_HOST_ENVS // self.num_seeds} (every environment "
                "is an emulator in this host process)")  # fmt: skip
        if self.network == "snn":
            require(self.snn_encoder == "direct", "snn_encoder", self.snn_encoder,
                    "'direct' for pixels (the first convolution reads the frames as a constant current)")  # fmt: skip
            self.check_spiking_layers(len(NATURE_CONVS) + 1)
        if self.algo == "ppo":
            require(
                self.num_minibatches >= 1 and self.batch_size % self.num_minibatches == 0,
                "num_minibatches", self.num_minibatches,
                f"a divisor of num_envs * num_steps = {self.num_envs} * {self.num_steps} = {self.batch_size}",
            )  # fmt: skip
