"""The host-loop config: agent and loop settings of Atari and CarRacing runs, and the on-policy algorithms they
look up."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from synjax.agents import a2c, ppo
from synjax.agents.a2c import A2CFields
from synjax.agents.config import (
    ActorCriticLossFields,
    BudgetFields,
    RolloutFields,
    SpikingFields,
    check_minibatches,
)
from synjax.agents.ppo import PPOFields
from synjax.agents.spiking import NATURE_CONVS
from synjax.checks import at_least, one_of, require, require_defaults
from synjax.runner import sweep
from synjax.runner.config import GifFlag, RunConfig
from synjax.runner.sweep import Floats

ALGOS = {a.name: a for a in (ppo.ALGORITHM, a2c.ALGORITHM)}


#: environments (all seeds together) one host-loop process may run
MAX_HOST_ENVS = 4096


@dataclasses.dataclass(frozen=True)
class HostConfig(PPOFields, A2CFields, ActorCriticLossFields, RolloutFields, SpikingFields, BudgetFields, GifFlag,
                 RunConfig):  # fmt: skip
    """Agent and loop settings of host-loop runs. The agents' field sets, declared once: the budget
    (:class:`~synjax.agents.config.BudgetFields`), the loop's learning settings
    (:class:`~synjax.agents.config.RolloutFields`), the loss (:class:`~synjax.agents.config.ActorCriticLossFields`),
    PPO's (:class:`~synjax.agents.ppo.PPOFields`, only with ``--algo ppo``) and A2C's
    (:class:`~synjax.agents.a2c.A2CFields`, only with ``--algo a2c``), and the spiking settings
    (:class:`~synjax.agents.config.SpikingFields`, only with ``--network snn``); one value each (no sweeps).
    The defaults are SB3's A2C.

    Attributes:
      algo: ``"ppo"`` or ``"a2c"``.
      network: ``"cnn"`` (the Nature CNN) or ``"snn"`` (its spiking twin: LIF feature maps of the three
        convolutions and ``features`` LIF units, ``inner`` time mode).
      features: width of the CNN's last layer.
      log_every: updates between learning-curve points.
      checkpoint_every: updates between checkpoints (also written on Ctrl-C and at the end); 0 = only those.
      eval_episodes: games per seed played by the trained policy at the end (true scores).
      eval_deterministic: evaluate the policy's mode instead of sampling from it.
    """

    multi_process: ClassVar[bool] = False
    #: the host loop's update takes flat minibatches of single frames: nothing to carry membranes along
    snn_time_modes: ClassVar[tuple[str, ...]] = ("inner",)

    num_seeds: int = 1
    algo: Annotated[str, one_of(*ALGOS)] = "a2c"
    network: Annotated[str, one_of("cnn", "snn")] = "cnn"
    num_envs: int = 4
    num_steps: int = 5
    lr: Floats = 7e-4
    gae_lambda: Floats = 1.0
    norm_adv: bool = False
    update_epochs: int = 4
    clip_eps: Floats = 0.1
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
        for name, values in sweep.swept(self).items():
            require(False, name, values, "one value: the host loop trains one setting per run (start one run "
                    "per value)")  # fmt: skip
        require(self.num_seeds * self.num_envs <= MAX_HOST_ENVS, "num_envs", self.num_envs,
                f"at most {MAX_HOST_ENVS} // --num-seeds = {MAX_HOST_ENVS // self.num_seeds} (every environment "
                "is an emulator in this host process)")  # fmt: skip
        if self.network == "snn":
            require(self.snn_encoder == "direct", "snn_encoder", self.snn_encoder,
                    "'direct' for pixels (the first convolution reads the frames as a constant current)")  # fmt: skip
            self.check_spiking_layers(len(NATURE_CONVS) + 1)
        if self.algo == "ppo":
            check_minibatches(self)
            require_defaults(self, A2CFields, "with algo 'ppo': A2C's settings only mean something with --algo a2c")
        else:
            require_defaults(self, PPOFields, "with algo 'a2c': PPO's settings only mean something with --algo ppo")
