"""``synjax atari --game breakout --algo a2c|ppo``: A2C or PPO on an ALE game through the host loop.

Presets: ``a2c`` and ``ppo`` (standard preprocessing, rl-baselines3-zoo's Atari hyperparameters, 1M steps) and
``notebook`` (the original notebook's run: SB3's A2C defaults, 4 environments, 100k steps, and its doubled frame
skip: ALE/Breakout-v5 already repeats each action for 4 frames with sticky actions, and SB3's Atari wrapper
repeated that 4 more times, so an action lasts 16 frames; stepped with SB3's wrapper semantics,
:mod:`synjax.host.sb3_atari`).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from synjax.checks import at_least, in_range
from synjax.host import envs
from synjax.host.config import HostConfig
from synjax.host.experiment import run_host


@dataclasses.dataclass(frozen=True)
class AtariConfig(HostConfig):
    """Host-loop settings plus ALE preprocessing (see :mod:`synjax.host.envs`).

    Attributes:
      game: ALE game name in snake_case (``breakout``, ``pong``, ``ms_pacman``, ...).
      frame_skip: emulator frames per ALE step (max-pooled over the last two when ``action_repeat`` is 1); an
        action lasts ``frame_skip * action_repeat`` frames.
      sticky: probability that ALE repeats the previous action at each frame.
      noop_max: up to this many no-op actions at the start of a game.
      frame_stack: stacked 84x84 grayscale frames.
      episodic_life: a lost life ends the training episode (not the game).
      clip_reward: train on the sign of the reward (scores are reported unclipped).
      max_frames: a training game is cut after this many frames (108,000 = 30 minutes).
      eval_max_frames: the same for evaluation games.
      num_threads: ALE worker threads (0 = one per core).
      action_repeat: ALE steps per action, stepped from Python with Stable-Baselines3's ``AtariWrapper``
        semantics (:mod:`synjax.host.sb3_atari`); 1 = ALE's own vector environment.
    """

    game: str = "breakout"
    frame_skip: Annotated[int, at_least(1)] = 4
    sticky: Annotated[float, in_range(0.0, 1.0, high_open=True, allowed="a probability in [0, 1)")] = 0.0
    noop_max: Annotated[int, at_least(0)] = 30
    frame_stack: Annotated[int, at_least(1)] = 4
    episodic_life: bool = True
    clip_reward: bool = True
    max_frames: Annotated[int, at_least(1)] = 108_000
    eval_max_frames: Annotated[int, at_least(1)] = 108_000
    num_threads: Annotated[int, at_least(0, "an integer >= 0 (0 = one per core)")] = 0
    action_repeat: Annotated[int, at_least(1)] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        envs.check_game(self.game)


def settings(config: AtariConfig, evaluation: bool = False) -> envs.AtariSettings:
    """ALE settings of ``config``; evaluation plays whole games (no episodic life) up to ``eval_max_frames``."""
    return envs.AtariSettings(
        game=config.game, frame_skip=config.frame_skip, sticky=config.sticky, noop_max=config.noop_max,
        frame_stack=config.frame_stack, episodic_life=config.episodic_life and not evaluation,
        clip_reward=config.clip_reward, max_frames=config.eval_max_frames if evaluation else config.max_frames,
        action_repeat=config.action_repeat,
    )  # fmt: skip


def make_env(config: AtariConfig, num_envs: int, evaluation: bool) -> envs.HostEnv:
    """ALE's vector environment, or the Python-stepped one with SB3's semantics when ``action_repeat`` > 1."""
    if config.action_repeat > 1:
        from synjax.host.sb3_atari import SB3AtariEnv

        return SB3AtariEnv(settings(config, evaluation), num_envs)
    return envs.AtariEnv(settings(config, evaluation), num_envs, num_threads=config.num_threads)


def run(config: AtariConfig):
    """Train, evaluate and write the results folder: ``(path, info)`` (see :func:`run_host`)."""
    return run_host("atari", config, make_env)


PRESETS = {
    # rl-baselines3-zoo hyperparams/a2c.yml, atari: 16 envs, ent_coef 0.01, vf_coef 0.25, the rest SB3 A2C
    # defaults (n_steps 5, lr 7e-4, RMSprop alpha 0.99 eps 1e-5; the zoo's TF-style RMSprop is not used here).
    "a2c": AtariConfig(algo="a2c", num_seeds=2, total_timesteps=1_000_000, num_envs=16, ent_coef=0.01,
                       vf_coef=0.25, log_every=250, checkpoint_every=2500),
    # rl-baselines3-zoo hyperparams/ppo.yml, atari: 8 envs, n_steps 128, 4 epochs, batch 256, lr 2.5e-4 and
    # clip 0.1 annealed linearly, vf_coef 0.5, ent_coef 0.01.
    "ppo": AtariConfig(algo="ppo", num_seeds=2, total_timesteps=1_000_000, num_envs=8, num_steps=128,
                       update_epochs=4, num_minibatches=4, lr=2.5e-4, anneal_lr=True, clip_eps=0.1,
                       anneal_clip=True, gae_lambda=0.95, ent_coef=0.01, vf_coef=0.5, norm_adv=True,
                       log_every=10, checkpoint_every=100),
    # The original notebook: A2C("CnnPolicy") with SB3 defaults, 4 envs, learn(100_000), on ALE/Breakout-v5
    # (4 frames per ALE step, sticky actions 0.25) inside SB3's AtariWrapper (4 ALE steps per action, pooled
    # over the last two): 16 frames per action, stepped as SB3 does (synjax.host.sb3_atari).
    "notebook": AtariConfig(algo="a2c", num_seeds=4, total_timesteps=100_000, num_envs=4, frame_skip=4,
                            action_repeat=4, sticky=0.25, log_every=250, checkpoint_every=2500),
}  # fmt: skip
