"""ShowerEnv in JAX, behind the gymnax 1.0 interface: keep the water between 37 and 39 degrees for 60 steps.

The environment of the original notebook with its defects fixed: the temperature stays in [0, 100], the 60-step
limit is a truncation (never a termination), the start comes from the PRNG key, the reward is a float32, and
``render`` shows the state.

Dynamics of one step: ``T <- clip(T + (action - 1) + noise, 0, 100)`` with ``noise`` uniform in {-1, 0, 1} when
``params.noise`` else 0; then reward +1.0 if ``37 <= T <= 39`` else -1.0, judged on the new temperature (the
original judged the temperature after the action and before its noise; without noise the two agree).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from synjax.envs.params import check_flag, check_positive_int, make_validated

T_MIN = 0
T_MAX = 100
START_CENTER = 38
START_SPREAD = 3  # start uniform in 38 + {-3, ..., 3}
COMFORT_LOW = 37
COMFORT_HIGH = 39
EPISODE_STEPS = 60
#: Best expected return without noise: 60 from starts 36..40 (one step reaches 37..39 and is rewarded),
#: 58 from 35 or 41 (one step at 36/40 costs -1): (5 * 60 + 2 * 58) / 7 = 416 / 7 = 59.43.
OPTIMAL_RETURN_NO_NOISE = 416.0 / 7.0


@struct.dataclass
class EnvState(environment.EnvState):
    """``temperature``: int32 scalar in [0, 100], degrees; ``time``: steps taken this episode."""

    temperature: jax.Array


@struct.dataclass
class EnvParams(environment.EnvParams):
    """ShowerEnv params (may be traced). Construction with concrete values checks them (ValueError)."""

    max_steps_in_episode: int = EPISODE_STEPS
    noise: bool = False

    def __post_init__(self):
        check_positive_int("max_steps_in_episode", self.max_steps_in_episode)
        check_flag("noise", self.noise)


PARAM_FIELDS = tuple(EnvParams.__dataclass_fields__)


def make_params(**kwargs: Any) -> EnvParams:
    """Validated :class:`EnvParams`; ValueError on an unknown field (lists the allowed ones) or a bad value."""
    return make_validated(EnvParams, "ShowerEnv", **kwargs)


def _reward(temperature: jax.Array) -> jax.Array:
    comfy = jnp.logical_and(temperature >= COMFORT_LOW, temperature <= COMFORT_HIGH)
    return jnp.where(comfy, 1.0, -1.0).astype(jnp.float32)


class Shower(environment.Environment[EnvState, EnvParams]):
    """ShowerEnv. Observation: float32 (1,) temperature in degrees. Actions: 0 cooler, 1 keep, 2 warmer.

    Reward float32 +1/-1 per step; never terminates; truncates after ``params.max_steps_in_episode`` (60).
    """

    make_params = staticmethod(make_params)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def name(self) -> str:
        return "ShowerEnv"

    @property
    def num_actions(self) -> int:
        return 3

    def step_env(
        self, key: jax.Array, state: EnvState, action: int | jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """One step without reset; all outputs scalars except obs (1,)."""
        change = jnp.asarray(action, jnp.int32) - 1
        noise = jnp.where(jnp.asarray(params.noise, bool), jax.random.randint(key, (), -1, 2), 0)
        temperature = jnp.clip(state.temperature + change + noise, T_MIN, T_MAX).astype(jnp.int32)
        next_state = EnvState(time=state.time + 1, temperature=temperature)
        obs = self.observe(key, next_state, action, params)
        return obs, next_state, _reward(temperature), jnp.array(False), {}

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Start at 38 + uniform integer in [-3, 3] drawn from ``key``."""
        offset = jax.random.randint(key, (), -START_SPREAD, START_SPREAD + 1)
        state = EnvState(time=jnp.int32(0), temperature=(START_CENTER + offset).astype(jnp.int32))
        return self.observe(key, state, None, params), state

    def observe(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams) -> jax.Array:
        """float32 (1,): the temperature."""
        del key, action, params
        return jnp.reshape(state.temperature, (1,)).astype(jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Never: the shower only ends by the time limit (truncation)."""
        del state, params
        return jnp.array(False)

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(3)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(float(T_MIN), float(T_MAX), (1,), jnp.float32)

    def state_space(self, params: EnvParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "temperature": spaces.Discrete(T_MAX + 1),
                "time": spaces.Discrete(int(params.max_steps_in_episode) + 1),
            }
        )

    def render(self, state: EnvState) -> str:
        """One line, e.g. ``t=12 T=38 (comfortable)``."""
        return render(state)


def render(state: EnvState) -> str:
    """One-line text of an unbatched state, e.g. ``t=12 T=38 (comfortable)``."""
    temperature = int(state.temperature)
    comfy = COMFORT_LOW <= temperature <= COMFORT_HIGH
    word = "comfortable" if comfy else ("too cold" if temperature < COMFORT_LOW else "too hot")
    return f"t={int(state.time)} T={temperature} ({word})"
