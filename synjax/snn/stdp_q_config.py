"""The config of the STDP + Q-learning hybrid on Taxi (:mod:`synjax.snn.stdp_q`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from synjax.envs import taxi
from synjax.experiment import RunConfig, require
from synjax.snn import encoders, neurons, plasticity

Rule = Literal["rstdp", "td_only", "original"]
Exploration = Literal["epsilon", "noise"]
RULES: tuple[str, ...] = ("rstdp", "td_only", "original")
EXPLORATIONS: tuple[str, ...] = ("epsilon", "noise")


@dataclasses.dataclass(frozen=True)
class StdpQConfig(RunConfig):
    """The spiking STDP + Q hybrid on Taxi-v4. Defaults = preset ``tuned``.

    Attributes:
      rule: "rstdp" (reward-modulated STDP), "td_only" or "original" (ablations, see the module docstring).
      num_episodes: training episodes per seed.
      max_steps: an episode is cut after this many steps (truncation: it still bootstraps).
      gamma: discount in [0, 1].
      reward_scale: factor on Taxi's rewards before they enter the TD error (> 0).
      is_rainy, rainy_probability: Taxi-v4's rainy variant.
      eta: learning rate of the modulated update (>= 0).
      tau_e: eligibility time constant in environment steps (>= 0; 0 = the current step only).
      trace: eligibility trace "accumulate" (Florian 2007) or "replace" (a tagged synapse takes the new tag).
      eligibility_max: the eligibility is clipped to [-eligibility_max, eligibility_max] (> 0).
      original_lr: the fixed +/- change of rule "original" (>= 0).
      a_plus, a_minus: STDP amplitudes of the tag (>= 0; only their ratio matters after normalization).
      tau_plus, tau_minus: STDP window time constants in SNN time steps (>= 0).
      w_min, w_max: weight bounds; w_init_low, w_init_high: initial weights uniform in this range.
      bounds: "hard" (clip) or "soft" (change scaled by the distance to the bound, then clipped).
      snn_steps: time steps of each window (>= 1).
      encoding: "regular" or "poisson"; input_rate: spikes per time step of the state neuron, in (0, 1].
      beta: membrane leak per time step in [0, 1]; threshold: firing threshold (> 0); reset: "subtract" or "zero".
      inhibition: lateral inhibition strength among action neurons (>= 0), both windows.
      efference: current into the taken action's neuron during the learning window (>= 0).
      exploration: "epsilon" (epsilon-greedy on the read-out) or "noise" (Gaussian current, std = the schedule).
      epsilon_start, epsilon_decay, epsilon_end: episode e explores with ``max(end, start * decay**e)``.
      noise_start, noise_decay, noise_end: the same schedule for the noise std (threshold units per step).
      eval_every: episodes between evaluation points (a divisor of num_episodes).
      eval_max_steps: step cap of the greedy evaluation episodes (Taxi's own limit is 200).
      sampled_eval_episodes: rainy only: greedy episodes sampled at the end for ``greedy_return_sampled``.
      solve_margin: solved = greedy return >= value-iteration optimum - solve_margin (as the tabular agent).
      target_return: ``reached_target`` = final greedy return >= this (the issue's 7.5).
    """

    num_seeds: int = 16
    rule: Rule = "rstdp"
    num_episodes: int = 10_000
    max_steps: int = 100
    gamma: float = 0.95
    reward_scale: float = 0.05
    is_rainy: bool = False
    rainy_probability: float = 0.8
    eta: float = 0.5
    tau_e: float = 0.5
    trace: plasticity.Trace = "accumulate"
    eligibility_max: float = 1.0
    original_lr: float = 0.002
    a_plus: float = 1.0
    a_minus: float = 0.5
    tau_plus: float = 5.0
    tau_minus: float = 5.0
    w_min: float = -1.0
    w_max: float = 1.0
    w_init_low: float = 0.0
    w_init_high: float = 0.01
    bounds: plasticity.Bounds = "hard"
    snn_steps: int = 10
    encoding: encoders.Encoding = "regular"
    input_rate: float = 1.0
    beta: float = 0.9
    threshold: float = 1.0
    reset: neurons.Reset = "subtract"
    inhibition: float = 2.0
    efference: float = 2.0
    exploration: Exploration = "epsilon"
    epsilon_start: float = 1.0
    epsilon_decay: float = 0.998
    epsilon_end: float = 0.01
    noise_start: float = 0.5
    noise_decay: float = 0.998
    noise_end: float = 0.0
    eval_every: int = 200
    eval_max_steps: int = 200
    sampled_eval_episodes: int = 1000
    solve_margin: float = 0.5
    target_return: float = 7.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.rule in RULES, "rule", self.rule, f"one of {', '.join(RULES)}")
        require(self.num_episodes >= 1, "num_episodes", self.num_episodes, "an integer >= 1")
        require(self.max_steps >= 1, "max_steps", self.max_steps, "an integer >= 1")
        require(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "in [0, 1]")
        require(
            self.reward_scale > 0 and math.isfinite(self.reward_scale),
            "reward_scale",
            self.reward_scale,
            "a finite number > 0",
        )
        require(
            0.0 <= self.rainy_probability <= 1.0, "rainy_probability", self.rainy_probability, "in [0, 1]"
        )
        for name in (
            "eta",
            "tau_e",
            "original_lr",
            "a_plus",
            "a_minus",
            "tau_plus",
            "tau_minus",
            "inhibition",
            "efference",
            "noise_start",
            "noise_end",
        ):
            value = getattr(self, name)
            require(value >= 0 and math.isfinite(value), name, value, "a finite number >= 0")
        require(self.a_plus > 0, "a_plus", self.a_plus, "a number > 0 (it normalizes the tag)")
        require(
            self.trace in plasticity.TRACES, "trace", self.trace, f"one of {', '.join(plasticity.TRACES)}"
        )
        require(self.eligibility_max > 0, "eligibility_max", self.eligibility_max, "a number > 0")
        require(math.isfinite(self.w_min), "w_min", self.w_min, "a finite number")
        require(math.isfinite(self.w_max), "w_max", self.w_max, "a finite number")
        require(self.w_min < self.w_max, "w_min", self.w_min, f"< w_max={self.w_max}")
        require(
            self.w_min <= self.w_init_low <= self.w_init_high <= self.w_max,
            "w_init_low",
            self.w_init_low,
            f"w_min <= w_init_low <= w_init_high={self.w_init_high} <= w_max (weights in [{self.w_min}, "
            f"{self.w_max}])",
        )
        require(self.bounds in ("hard", "soft"), "bounds", self.bounds, "'hard' or 'soft'")
        require(self.snn_steps >= 1, "snn_steps", self.snn_steps, "an integer >= 1")
        require(
            self.encoding in encoders.ENCODINGS,
            "encoding",
            self.encoding,
            f"one of {', '.join(encoders.ENCODINGS)}",
        )
        require(0.0 < self.input_rate <= 1.0, "input_rate", self.input_rate, "spikes per time step in (0, 1]")
        require(0.0 <= self.beta <= 1.0, "beta", self.beta, "in [0, 1]")
        require(
            self.threshold > 0 and math.isfinite(self.threshold),
            "threshold",
            self.threshold,
            "a finite number > 0",
        )
        require(self.reset in neurons.RESETS, "reset", self.reset, f"one of {', '.join(neurons.RESETS)}")
        require(
            self.exploration in EXPLORATIONS,
            "exploration",
            self.exploration,
            f"one of {', '.join(EXPLORATIONS)}",
        )
        for name in ("epsilon_start", "epsilon_end"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, value, "a probability in [0, 1]")
        for name in ("epsilon_decay", "noise_decay"):
            value = getattr(self, name)
            require(0.0 < value <= 1.0, name, value, "in (0, 1]")
        require(
            self.eval_every >= 1 and self.num_episodes % self.eval_every == 0,
            "eval_every",
            self.eval_every,
            f"a positive divisor of num_episodes={self.num_episodes}",
        )
        require(self.eval_max_steps >= 1, "eval_max_steps", self.eval_max_steps, "an integer >= 1")
        require(
            self.sampled_eval_episodes >= 1,
            "sampled_eval_episodes",
            self.sampled_eval_episodes,
            "an integer >= 1",
        )
        require(self.solve_margin >= 0.0, "solve_margin", self.solve_margin, "a number >= 0")

    @property
    def env_params(self) -> taxi.EnvParams:
        """Taxi params; training episodes are cut at ``max_steps`` by the env's own truncation."""
        return taxi.make_params(
            max_steps_in_episode=self.max_steps,
            is_rainy=self.is_rainy,
            rainy_probability=self.rainy_probability,
        )

    @property
    def schedule(self) -> tuple[str, tuple[float, float, float]]:
        """(metric name, (start, decay, end)) of the exploration schedule: epsilon or noise std."""
        if self.exploration == "epsilon":
            return "epsilon", (self.epsilon_start, self.epsilon_decay, self.epsilon_end)
        return "noise_std", (self.noise_start, self.noise_decay, self.noise_end)
