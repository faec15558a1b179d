"""The config of the STDP + Q-learning hybrid on Taxi (:mod:`synjax.snn.stdp_q`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, ClassVar, Literal

from synjax.checks import above, at_least, finite, in_range, one_of, require
from synjax.envs import taxi
from synjax.snn import encoders, neurons, plasticity
from synjax.tabular.config import DECAY, POSITIVE, UNIT, TaxiAgentConfig

Rule = Literal["rstdp", "td_only", "original"]
Exploration = Literal["epsilon", "noise"]
RULES: tuple[str, ...] = ("rstdp", "td_only", "original")
NONNEGATIVE = in_range(0.0, math.inf, high_open=True, allowed="a finite number >= 0")


@dataclasses.dataclass(frozen=True)
class StdpQConfig(TaxiAgentConfig):
    """The spiking STDP + Q hybrid on Taxi-v4. Defaults = preset ``tuned``.

    Attributes:
      rule: "rstdp" (reward-modulated STDP), "td_only" or "original" (ablations, see the module docstring).
      num_episodes: training episodes per seed.
      max_steps: an episode is cut after this many steps (truncation: it still bootstraps).
      gamma: discount in [0, 1].
      reward_scale: factor on Taxi's rewards before they enter the TD error (> 0).
      is_rainy: Taxi-v4's rainy variant (a move goes the intended way with probability ``rainy_probability``).
      rainy_probability: rainy only: the probability that a move goes the intended way.
      eta: learning rate of the modulated update (>= 0).
      tau_e: eligibility time constant in environment steps (>= 0; 0 = the current step only).
      trace: eligibility trace "accumulate" (Florian 2007) or "replace" (a tagged synapse takes the new tag).
      eligibility_max: the eligibility is clipped to [-eligibility_max, eligibility_max] (> 0).
      original_lr: the fixed +/- change of rule "original" (>= 0).
      a_plus: STDP amplitude of pre-before-post pairs in the tag (> 0; only a_minus / a_plus matters after
        normalization).
      a_minus: STDP amplitude of post-before-pre pairs in the tag (>= 0).
      tau_plus: time constant of the pre-before-post window, in SNN time steps (>= 0).
      tau_minus: time constant of the post-before-pre window, in SNN time steps (>= 0).
      w_min: lower weight bound.
      w_max: upper weight bound.
      w_init_low: initial weights are uniform in [w_init_low, w_init_high].
      w_init_high: upper end of the initial weights' range.
      bounds: "hard" (clip) or "soft" (change scaled by the distance to the bound, then clipped).
      snn_steps: time steps of each window (>= 1).
      encoding: "regular" or "poisson" spikes of the state neuron.
      input_rate: spikes per time step of the state neuron, in (0, 1].
      beta: membrane leak per time step in [0, 1].
      threshold: firing threshold (> 0).
      reset: "subtract" (the threshold) or "zero" after a spike.
      inhibition: lateral inhibition strength among action neurons (>= 0), both windows.
      efference: current into the taken action's neuron during the learning window (>= 0).
      exploration: "epsilon" (epsilon-greedy on the read-out) or "noise" (Gaussian current, std = the schedule).
      epsilon_start: epsilon of episode 0; episode e explores with ``max(end, start * decay**e)``.
      epsilon_decay: factor per episode of the epsilon schedule, in (0, 1].
      epsilon_end: the epsilon schedule's floor.
      noise_start: exploration "noise": noise std of episode 0 (threshold units per step), decayed like epsilon.
      noise_decay: factor per episode of the noise schedule, in (0, 1].
      noise_end: the noise schedule's floor.
      eval_every: episodes between evaluation points (a divisor of num_episodes).
      eval_max_steps: step cap of the greedy evaluation episodes (Taxi's own limit is 200).
      sampled_eval_episodes: rainy only: greedy episodes sampled at the end for ``greedy_return_sampled``.
      solve_margin: solved = greedy return >= value-iteration optimum - solve_margin (as the tabular agent).
      target_return: ``reached_target`` = final greedy return >= this (the issue's 7.5).
    """

    schedules: ClassVar[dict[str, tuple[str, str]]] = {
        "epsilon": ("epsilon", "epsilon"),
        "noise": ("noise_std", "noise"),
    }

    num_seeds: int = 16
    rule: Annotated[Rule, one_of(*RULES)] = "rstdp"
    reward_scale: Annotated[float, POSITIVE] = 0.05
    eta: Annotated[float, NONNEGATIVE] = 0.5
    tau_e: Annotated[float, NONNEGATIVE] = 0.5
    trace: Annotated[plasticity.Trace, one_of(*plasticity.TRACES)] = "accumulate"
    eligibility_max: Annotated[float, above(0.0, "a number > 0")] = 1.0
    original_lr: Annotated[float, NONNEGATIVE] = 0.002
    a_plus: Annotated[float, NONNEGATIVE, above(0.0, "a number > 0 (it normalizes the tag)")] = 1.0
    a_minus: Annotated[float, NONNEGATIVE] = 0.5
    tau_plus: Annotated[float, NONNEGATIVE] = 5.0
    tau_minus: Annotated[float, NONNEGATIVE] = 5.0
    w_min: Annotated[float, finite()] = -1.0
    w_max: Annotated[float, finite()] = 1.0
    w_init_low: float = 0.0
    w_init_high: float = 0.01
    bounds: Annotated[plasticity.Bounds, one_of("hard", "soft")] = "hard"
    snn_steps: Annotated[int, at_least(1)] = 10
    encoding: Annotated[encoders.Encoding, one_of(*encoders.ENCODINGS)] = "regular"
    input_rate: Annotated[
        float, in_range(0.0, 1.0, low_open=True, allowed="spikes per time step in (0, 1]")
    ] = 1.0
    beta: Annotated[float, UNIT] = 0.9
    threshold: Annotated[float, POSITIVE] = 1.0
    reset: Annotated[neurons.Reset, one_of(*neurons.RESETS)] = "subtract"
    inhibition: Annotated[float, NONNEGATIVE] = 2.0
    efference: Annotated[float, NONNEGATIVE] = 2.0
    exploration: Exploration = "epsilon"
    epsilon_decay: float = 0.998
    noise_start: Annotated[float, NONNEGATIVE] = 0.5
    noise_decay: Annotated[float, DECAY] = 0.998
    noise_end: Annotated[float, NONNEGATIVE] = 0.0
    eval_every: int = 200
    target_return: float = 7.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.w_min < self.w_max, "w_min", self.w_min, f"< w_max={self.w_max}")
        require(
            self.w_min <= self.w_init_low <= self.w_init_high <= self.w_max,
            "w_init_low",
            self.w_init_low,
            f"w_min <= w_init_low <= w_init_high={self.w_init_high} <= w_max (weights in [{self.w_min}, "
            f"{self.w_max}])",
        )
        require(
            self.eval_every >= 1 and self.num_episodes % self.eval_every == 0,
            "eval_every",
            self.eval_every,
            f"a positive divisor of num_episodes={self.num_episodes}",
        )

    @property
    def env_params(self) -> taxi.EnvParams:
        """Taxi params; training episodes are cut at ``max_steps`` by the env's own truncation."""
        return taxi.make_params(
            max_steps_in_episode=self.max_steps,
            is_rainy=self.is_rainy,
            rainy_probability=self.rainy_probability,
        )
