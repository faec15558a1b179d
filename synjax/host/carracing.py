"""``synjax carracing --algo ppo|a2c``: PPO or A2C on CarRacing-v3 (pixels) through the host loop.

Observations are grayscale, resized and stacked frames; actions are continuous (steer, gas, brake: a diagonal
Gaussian head, samples clipped to the action box) or, with ``--no-continuous``, the 5 discrete actions.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from synjax.checks import at_least, in_range, one_of
from synjax.host import envs
from synjax.host.config import HostConfig
from synjax.host.experiment import run_host

VECTORIZATION = ("async", "sync")


@dataclasses.dataclass(frozen=True)
class CarRacingConfig(HostConfig):
    """Host-loop settings plus CarRacing preprocessing.

    Attributes:
      continuous: Box(3) actions; False gives Discrete(5) (nothing, left, right, gas, brake).
      size: frames are resized to size x size (96 keeps them as they are; the CNN needs >= 36).
      frame_stack: stacked grayscale frames.
      vectorization: ``"async"`` (a worker process per environment) or ``"sync"`` (all in this process).
    """

    continuous: bool = True
    size: Annotated[int, in_range(36, 96, allowed="an integer in [36, 96]")] = 84
    frame_stack: Annotated[int, at_least(1)] = 4
    vectorization: Annotated[str, one_of(*VECTORIZATION)] = "async"


def make_env(config: CarRacingConfig, num_envs: int, evaluation: bool) -> envs.CarRacingEnv:
    settings = envs.CarRacingSettings(
        config.continuous, config.size, config.frame_stack, config.vectorization
    )
    return envs.CarRacingEnv(settings, num_envs)


def run(config: CarRacingConfig):
    """Train, evaluate and write the results folder: ``(path, info)`` (see :func:`run_host`)."""
    return run_host("carracing", config, make_env)


#: Stable-Baselines3's PPO defaults (n_steps 2048, batch 64, 10 epochs, lr 3e-4, clip 0.2, gae 0.95).
_SB3_PPO = {"algo": "ppo", "num_steps": 2048, "num_minibatches": 128, "update_epochs": 10, "lr": 3e-4,
            "clip_eps": 0.2, "gae_lambda": 0.95, "ent_coef": 0.0, "vf_coef": 0.5, "norm_adv": True}  # fmt: skip

PRESETS = {
    # The reference setting: SB3 PPO CnnPolicy defaults, 4 envs, frame stack 4, 100k steps; evaluated
    # with the deterministic policy (the Gaussian mean).
    "ppo": CarRacingConfig(num_seeds=2, total_timesteps=100_000, num_envs=4, eval_deterministic=True,
                           log_every=1, checkpoint_every=2, **_SB3_PPO),
    # SB3 A2C defaults with 4 envs (A2C is not in the original study for CarRacing).
    "a2c": CarRacingConfig(algo="a2c", num_seeds=2, total_timesteps=100_000, num_envs=4,
                           eval_deterministic=True, log_every=500, checkpoint_every=5000),
}  # fmt: skip
