"""The configs of the Taxi agents: the fields both share (:class:`TaxiAgentConfig`) and tabular Q-learning's
(:class:`TabularQConfig`, :mod:`synjax.tabular.qlearning`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from synjax.checks import above, at_least, finite, in_range, require
from synjax.envs import taxi
from synjax.runner.config import GifFlag, RunConfig

Exploration = Literal["epsilon", "softmax"]

#: The allowed ranges both Taxi agents use, with their messages.
PROBABILITY = in_range(0.0, 1.0, allowed="a probability in [0, 1]")
UNIT = in_range(0.0, 1.0, allowed="in [0, 1]")
DECAY = in_range(0.0, 1.0, low_open=True, allowed="in (0, 1]")
POSITIVE = above(0.0, "a finite number > 0")


@dataclasses.dataclass(frozen=True)
class TaxiAgentConfig(GifFlag, RunConfig):
    """What both Taxi agents have (tabular Q-learning, the STDP + Q hybrid); defaults = tabular Q-learning's.

    Attributes:
      gamma: discount in [0, 1].
      exploration: ``"epsilon"`` (epsilon-greedy) or the agent's other schedule (:attr:`schedules`).
      epsilon_start: epsilon of episode 0; episode e explores with
        ``max(epsilon_end, epsilon_start * epsilon_decay**e)`` (epsilon-greedy only).
      epsilon_decay: factor per episode of the epsilon schedule, in (0, 1].
      epsilon_end: the epsilon schedule's floor.
      num_episodes: training episodes per seed.
      max_steps: an episode is cut after this many steps (a truncation: it still bootstraps).
      eval_every: episodes between evaluation points (curves and episodes-to-solve are on this grid).
      eval_max_steps: step cap of the greedy evaluation episodes (Taxi's own limit is 200).
      is_rainy: Taxi-v4's rainy variant (a move goes the intended way with probability ``rainy_probability``).
      rainy_probability: rainy only: the probability that a move goes the intended way.
      sampled_eval_episodes: rainy only: greedy episodes sampled at the end for ``greedy_return_sampled``.
      solve_margin: a seed is solved at the first evaluation point whose greedy return is at least the
        value-iteration optimum minus this margin.
    """

    #: exploration -> (metric name, field prefix of its ``_start``, ``_decay``, ``_end`` schedule).
    schedules: ClassVar[dict[str, tuple[str, str]]] = {"epsilon": ("epsilon", "epsilon")}

    gamma: Annotated[float, UNIT] = 0.95
    exploration: str = "epsilon"  # a key of schedules
    epsilon_start: Annotated[float, PROBABILITY] = 1.0
    epsilon_decay: Annotated[float, DECAY] = 0.9995
    epsilon_end: Annotated[float, PROBABILITY] = 0.01
    num_episodes: Annotated[int, at_least(1)] = 10_000
    max_steps: Annotated[int, at_least(1)] = 100
    eval_every: int = 100
    eval_max_steps: Annotated[int, at_least(1)] = 200
    is_rainy: bool = False
    rainy_probability: Annotated[float, UNIT] = 0.8
    sampled_eval_episodes: Annotated[int, at_least(1)] = 1000
    solve_margin: Annotated[float, at_least(0.0, "a number >= 0")] = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        names = self.schedules
        require(self.exploration in names, "exploration", self.exploration, f"one of {', '.join(names)}")

    @property
    def schedule(self) -> tuple[str, tuple[float, float, float]]:
        """(metric name, (start, decay, end)) of the exploration schedule (:attr:`schedules`)."""
        name, prefix = self.schedules[self.exploration]
        return name, tuple(getattr(self, f"{prefix}_{part}") for part in ("start", "decay", "end"))


@dataclasses.dataclass(frozen=True)
class TabularQConfig(TaxiAgentConfig):
    """Tabular Q-learning on Taxi-v4. Defaults = the original script (preset ``notebook``); the fields shared
    with the STDP hybrid are documented on :class:`TaxiAgentConfig`.

    Attributes:
      alpha: learning rate in (0, 1].
      exploration: ``"epsilon"`` (epsilon-greedy) or ``"softmax"`` (Boltzmann over Q / temperature).
      temperature_start: softmax only: temperature of episode 0 (reward units), decayed like epsilon.
      temperature_decay: softmax only: factor per episode of the temperature schedule, in (0, 1].
      temperature_end: softmax only: the temperature schedule's floor.
      num_episodes: training episodes per seed (over all ``num_envs`` environments together).
      num_envs: environments per seed played in lockstep, one episode each per round, sharing the table.
      q_init: initial value of every table entry.
      chunk_steps: environment steps per seed between checks of the episode quota (a speed knob: a larger
        chunk leaves an env idle for up to that many steps at the end of each evaluation stretch, a smaller
        one checks more often; it changes the random stream, not the algorithm).
      solve_margin: dry Taxi: 7.93 - 0.5 = 7.43, i.e. no start fails, since a failing start costs >= 0.69, and
        at most half a wasted step per start on average.
    """

    schedules: ClassVar[dict[str, tuple[str, str]]] = {
        "epsilon": ("epsilon", "epsilon"),
        "softmax": ("temperature", "temperature"),
    }

    num_seeds: int = 8
    alpha: Annotated[float, DECAY] = 0.9
    exploration: Exploration = "epsilon"
    temperature_start: Annotated[float, POSITIVE] = 1.0
    temperature_decay: Annotated[float, DECAY] = 0.995
    temperature_end: Annotated[float, POSITIVE] = 0.05
    num_envs: Annotated[int, at_least(1)] = 1
    q_init: Annotated[float, finite()] = 0.0
    chunk_steps: Annotated[int, at_least(1)] = 64

    def __post_init__(self) -> None:
        super().__post_init__()
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

    @property
    def env_params(self) -> taxi.EnvParams:
        """The Taxi params of this config (the env keeps its own 200-step truncation)."""
        return taxi.make_params(is_rainy=self.is_rainy, rainy_probability=self.rainy_probability)
