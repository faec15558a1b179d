"""Gymnasium-side vector environments of the host loop: Atari through ALE's C++ vector env, CarRacing-v3 through
``gymnasium.make_vec``, behind one small interface (:class:`HostEnv`).

Observations are uint8 frame stacks ``(N, C, H, W)`` (the layout both libraries produce). Each step returns what
training needs (clipped reward, terminal flag that may include a life loss, the final observation where a time
limit cut an episode) and, apart, what reporting needs: the true, unclipped score of every *game* that ended.

Atari semantics (Machado et al. 2018 / the SB3 ``AtariWrapper`` conventions): ``frame_skip`` frames per action with
the max over the last two, 84x84 grayscale, a stack of ``frame_stack``, up to ``noop_max`` no-ops and FIRE at reset,
sticky actions with ``sticky`` probability (per frame, inside ALE), episodic life (a lost life is a terminal
transition for training while the game goes on) and rewards clipped to their sign for training.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, NamedTuple

import numpy as np


class MissingDependency(ImportError):
    """An optional dependency of the host loop is not installed (the message has the install command)."""


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(
            f"{module} is not installed; it is needed here: pip install {extra!r}  (or pip install -e '.[host]')"
        ) from e


class HostStep(NamedTuple):
    """One vector step (N = all environments of all seeds).

    Attributes:
      obs: (N, C, H, W) uint8, the observation to act on next (the new episode's first one after an end).
      reward: (N,) float32 training reward (clipped for Atari when configured).
      terminated: (N,) bool, terminal for training (a lost life counts with episodic life).
      truncated: (N,) bool, a time limit cut the episode (bootstrap from ``final_obs``).
      final_obs: (N, C, H, W) uint8, the observation an ending episode reached (rows valid where an episode ended).
      game_over: (N,) bool, a whole game ended here (its true score is in ``score``).
      score: (N,) float32, the true, unclipped score of the game that ended (0 where none ended).
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    game_over: np.ndarray
    score: np.ndarray


class HostEnv:
    """Interface of the host loop's vector environments (``num_envs`` copies, stepped together).

    Attributes:
      num_envs: N.
      obs_shape: (C, H, W) of one observation.
      continuous: Box actions (Gaussian head) instead of Discrete.
      action_dim: number of discrete actions, or the size of a continuous action.
      action_bounds: ``(low, high)`` float32 arrays (continuous) or None.
    """

    num_envs: int
    obs_shape: tuple[int, int, int]
    continuous: bool
    action_dim: int
    action_bounds: tuple[np.ndarray, np.ndarray] | None = None

    def __init__(self) -> None:
        self._score = np.zeros(self.num_envs, np.float64)

    def reset(self, seed: int) -> np.ndarray:
        """Start every environment (environment i seeded ``seed + i``): obs (N, C, H, W)."""
        self._score[:] = 0.0
        return self._reset(seed)

    def step(self, actions: np.ndarray) -> HostStep:
        obs, raw, terminated, truncated, final_obs, game_over = self._step(actions)
        self._score += raw
        score = np.where(game_over, self._score, 0.0).astype(np.float32)
        self._score[game_over] = 0.0
        return HostStep(obs, self._train_reward(raw), terminated, truncated, final_obs, game_over, score)

    def _train_reward(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float32)

    def close(self) -> None:
        pass


def atari_games() -> list[str]:
    """Names ALE ships ROMs for (snake_case, e.g. ``"breakout"``, ``"ms_pacman"``)."""
    roms = _require("ale_py.roms", "ale-py")
    return sorted(roms.get_all_rom_ids())


def check_game(game: str) -> str:
    """``game`` as ALE names it; ValueError naming close matches for an unknown one."""
    games = atari_games()
    if game in games:
        return game
    close = difflib.get_close_matches(game.lower().replace("-", "_"), games, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ValueError(
        f"game={game!r} is invalid: must be an ALE game name in snake_case{hint}; "
        f"{len(games)} games: {', '.join(games[:8])}, ..."
    )


@dataclasses.dataclass(frozen=True)
class AtariSettings:
    """ALE preprocessing (see the module docstring). ``max_frames``: emulator frames after which an episode is
    truncated (108,000 = 30 minutes of play). ``action_repeat`` > 1: each action lasts that many ALE steps of
    ``frame_skip`` frames, with Stable-Baselines3's wrapper semantics (:mod:`synjax.host.sb3_atari`)."""

    game: str = "breakout"
    frame_skip: int = 4
    sticky: float = 0.0
    noop_max: int = 30
    frame_stack: int = 4
    episodic_life: bool = True
    clip_reward: bool = True
    max_frames: int = 108_000
    action_repeat: int = 1


class AtariEnv(HostEnv):
    """ALE's ``AtariVectorEnv`` (C++ threads) with the true score tracked per game."""

    def __init__(self, settings: AtariSettings, num_envs: int, num_threads: int = 0):
        vector_env = _require("ale_py.vector_env", "ale-py")
        check_game(settings.game)
        self.settings = settings
        self.num_envs = num_envs
        self.env = vector_env.AtariVectorEnv(
            settings.game,
            num_envs,
            num_threads=num_threads,
            frameskip=settings.frame_skip,
            repeat_action_probability=settings.sticky,
            noop_max=settings.noop_max,
            stack_num=settings.frame_stack,
            max_num_frames_per_episode=settings.max_frames,
            # ALE's own episodic_life restarts the whole game at a life loss; life_loss_info marks the life loss
            # as terminal while the game goes on (the usual EpisodicLifeEnv semantics).
            episodic_life=False,
            life_loss_info=settings.episodic_life,
            reward_clipping=False,  # clipped here, so that the true score stays visible
            autoreset_mode="SameStep",
        )
        self.obs_shape = tuple(self.env.single_observation_space.shape)
        self.continuous = False
        self.action_dim = int(self.env.single_action_space.n)
        self._lives = np.zeros(num_envs, np.int64)
        super().__init__()

    def _reset(self, seed: int) -> np.ndarray:
        obs, info = self.env.reset(seed=np.arange(seed, seed + self.num_envs))
        self._lives = np.asarray(info["lives"]).copy()
        return obs

    def _step(self, actions: np.ndarray):
        obs, raw, terminated, truncated, info = self.env.step(np.asarray(actions, np.int64))
        lives = np.asarray(info["lives"])
        # With same-step auto-reset a finished game reports the new game's lives (more than before); a lost life
        # that leaves the game running reports fewer.
        life_lost = terminated & (lives < self._lives)
        game_over = truncated | (terminated & ~life_lost)
        self._lives = lives.copy()
        final_obs = info.get("final_obs", obs)
        return obs, raw.astype(np.float64), terminated, truncated, final_obs, game_over

    def _train_reward(self, raw: np.ndarray) -> np.ndarray:
        return (np.sign(raw) if self.settings.clip_reward else raw).astype(np.float32)

    def close(self) -> None:
        self.env.close()


@dataclasses.dataclass(frozen=True)
class CarRacingSettings:
    """CarRacing-v3 preprocessing: grayscale, resize to ``size`` x ``size`` (96 keeps the frame), stack of
    ``frame_stack``; ``continuous`` Box(3) actions (steer, gas, brake) or the 5 discrete ones; ``vectorization``
    ``"async"`` (one worker process per environment) or ``"sync"``."""

    continuous: bool = True
    size: int = 84
    frame_stack: int = 4
    vectorization: str = "async"


def _gray_resize(size: int):
    """``(96, 96, 3) uint8 RGB -> (size, size) uint8`` luminance, bilinear (Pillow; no OpenCV needed)."""
    from PIL import Image

    def transform(frame: np.ndarray) -> np.ndarray:
        image = Image.fromarray(frame).convert("L")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, np.uint8)

    return transform


def _carracing_env(settings: CarRacingSettings, **kwargs: Any):
    import gymnasium as gym
    from gymnasium.wrappers import FrameStackObservation, TransformObservation

    env = gym.make("CarRacing-v3", continuous=settings.continuous, **kwargs)
    space = gym.spaces.Box(0, 255, (settings.size, settings.size), np.uint8)
    env = TransformObservation(env, _gray_resize(settings.size), space)
    return FrameStackObservation(env, settings.frame_stack)


class CarRacingEnv(HostEnv):
    """``gymnasium.make_vec`` of preprocessed CarRacing-v3 environments (same-step auto-reset)."""

    def __init__(self, settings: CarRacingSettings, num_envs: int):
        import functools

        _require("Box2D", "gymnasium[box2d]")
        from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

        make = functools.partial(_carracing_env, settings)
        if settings.vectorization == "async" and num_envs > 1:
            # spawned workers: forking a process that runs JAX's threads can deadlock the child
            self.env = AsyncVectorEnv(
                [make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP, context="spawn"
            )
        else:
            self.env = SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        self.settings = settings
        self.num_envs = num_envs
        self.obs_shape = tuple(self.env.single_observation_space.shape)
        space = self.env.single_action_space
        self.continuous = settings.continuous
        if self.continuous:
            self.action_dim = int(space.shape[0])
            self.action_bounds = (space.low.astype(np.float32), space.high.astype(np.float32))
        else:
            self.action_dim = int(space.n)
        super().__init__()

    def _reset(self, seed: int) -> np.ndarray:
        return self.env.reset(seed=seed)[0]

    def _step(self, actions: np.ndarray):
        actions = np.asarray(actions, np.float32 if self.continuous else np.int64)
        obs, raw, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        final_obs = obs
        if done.any() and "final_obs" in info:
            final_obs = obs.copy()
            for i in np.flatnonzero(done):
                final_obs[i] = info["final_obs"][i]
        return obs, np.asarray(raw, np.float64), terminated, truncated, final_obs, done

    def close(self) -> None:
        self.env.close()
