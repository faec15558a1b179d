"""The config of tabular Q-learning on Taxi (:mod:`synjax.tabular.qlearning`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from synjax.envs import taxi
from synjax.experiment import RunConfig, require

Exploration = Literal["epsilon", "softmax"]


@dataclasses.dataclass(frozen=True)
class TabularQConfig(RunConfig):
    """Tabular Q-learning on Taxi-v4. Defaults = the original script (preset ``notebook``).

    Attributes:
      alpha: learning rate in (0, 1].
      gamma: discount in [0, 1].
      exploration: ``"epsilon"`` (epsilon-greedy) or ``"softmax"`` (Boltzmann over Q / temperature).
      epsilon_start, epsilon_decay, epsilon_end: episode e explores with
        ``max(epsilon_end, epsilon_start * epsilon_decay**e)`` (epsilon-greedy only).
      temperature_start, temperature_decay, temperature_end: the same schedule for the softmax temperature
        (in reward units; softmax only).
      num_episodes: training episodes per seed (over all ``num_envs`` environments together).
      max_steps: an episode is cut after this many steps (a truncation: it still bootstraps).
      num_envs: environments per seed played in lockstep, one episode each per round, sharing the table.
      q_init: initial value of every table entry.
      eval_every: episodes between evaluation points (curves and episodes-to-solve are on this grid).
      eval_max_steps: step cap of the greedy evaluation episodes (Taxi's own limit is 200).
      is_rainy, rainy_probability: Taxi-v4's rainy variant (a move goes the intended way with that probability).
      sampled_eval_episodes: rainy only: greedy episodes sampled at the end for ``greedy_return_sampled``.
      chunk_steps: environment steps per seed between checks of the episode quota (a speed knob: a larger
        chunk leaves an env idle for up to that many steps at the end of each evaluation stretch, a smaller
        one checks more often; it changes the random stream, not the algorithm).
      solve_margin: a seed is solved at the first evaluation point whose greedy return is at least the
        value-iteration optimum minus this margin (dry Taxi: 7.93 - 0.5 = 7.43, i.e. no start fails, since a
        failing start costs >= 0.69, and at most half a wasted step per start on average).
    """

    num_seeds: int = 8
    alpha: float = 0.9
    gamma: float = 0.95
    exploration: Exploration = "epsilon"
    epsilon_start: float = 1.0
    epsilon_decay: float = 0.9995
    epsilon_end: float = 0.01
    temperature_start: float = 1.0
    temperature_decay: float = 0.995
    temperature_end: float = 0.05
    num_episodes: int = 10_000
    max_steps: int = 100
    num_envs: int = 1
    q_init: float = 0.0
    eval_every: int = 100
    eval_max_steps: int = 200
    is_rainy: bool = False
    rainy_probability: float = 0.8
    sampled_eval_episodes: int = 1000
    chunk_steps: int = 64
    solve_margin: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0.0 < self.alpha <= 1.0, "alpha", self.alpha, "in (0, 1]")
        require(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "in [0, 1]")
        require(
            self.exploration in ("epsilon", "softmax"),
            "exploration",
            self.exploration,
            "'epsilon' or 'softmax'",
        )
        for name in ("epsilon_start", "epsilon_end"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, value, "a probability in [0, 1]")
        for name in ("epsilon_decay", "temperature_decay"):
            value = getattr(self, name)
            require(0.0 < value <= 1.0, name, value, "in (0, 1]")
        for name in ("temperature_start", "temperature_end"):
            value = getattr(self, name)
            require(value > 0.0 and math.isfinite(value), name, value, "a finite number > 0")
        require(self.max_steps >= 1, "max_steps", self.max_steps, "an integer >= 1")
        require(self.num_envs >= 1, "num_envs", self.num_envs, "an integer >= 1")
        require(math.isfinite(self.q_init), "q_init", self.q_init, "a finite number")
        require(
            self.eval_every >= 1 and self.eval_every % self.num_envs == 0,
            "eval_every",
            self.eval_every,
            f"a positive multiple of num_envs={self.num_envs}",
        )
        require(
            self.num_episodes >= self.eval_every and self.num_episodes % self.eval_every == 0,
            "num_episodes",
            self.num_episodes,
            f"a positive multiple of eval_every={self.eval_every}",
        )
        require(self.eval_max_steps >= 1, "eval_max_steps", self.eval_max_steps, "an integer >= 1")
        require(
            0.0 <= self.rainy_probability <= 1.0, "rainy_probability", self.rainy_probability, "in [0, 1]"
        )
        require(
            self.sampled_eval_episodes >= 1,
            "sampled_eval_episodes",
            self.sampled_eval_episodes,
            "an integer >= 1",
        )
        require(self.chunk_steps >= 1, "chunk_steps", self.chunk_steps, "an integer >= 1")
        require(self.solve_margin >= 0.0, "solve_margin", self.solve_margin, "a number >= 0")

    @property
    def env_params(self) -> taxi.EnvParams:
        """The Taxi params of this config (the env keeps its own 200-step truncation)."""
        return taxi.make_params(is_rainy=self.is_rainy, rainy_probability=self.rainy_probability)

    @property
    def schedule(self) -> tuple[str, tuple[float, float, float]]:
        """(metric name, (start, decay, end)) of the exploration schedule: epsilon or temperature."""
        if self.exploration == "epsilon":
            return "epsilon", (self.epsilon_start, self.epsilon_decay, self.epsilon_end)
        return "temperature", (self.temperature_start, self.temperature_decay, self.temperature_end)
