"""Any JAX (gymnax-API) environment as a ``gymnasium.Env``, e.g. for Stable-Baselines3.

gymnax ships ``GymnaxToGymWrapper``, but it auto-resets inside ``step`` (hiding the final observation), returns
JAX arrays and JAX scalars, and so fails ``gymnasium.utils.env_checker.check_env``. This adapter steps with
``step_env`` (no auto-reset), truncates with the env's own ``is_truncated``, and returns numpy values of the
declared space's dtype. Each call is a jitted JAX call: use the JAX env directly when speed matters.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import numpy as np
from gymnax.environments import environment
from gymnax.environments.spaces import gymnax_space_to_gym_space


class GymnasiumEnv(gymnasium.Env):
    """``gymnasium.Env`` view of a JAX environment. ``render_mode="ansi"`` uses the env's text ``render``."""

    def __init__(self, env: environment.Environment, env_params: Any = None, render_mode: str | None = None):
        self._env = env
        self._params = env_params if env_params is not None else env.default_params
        has_render = hasattr(env, "render")
        self.metadata = {"render_modes": ["ansi"] if has_render else [], "render_fps": 4}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} not supported; allowed: {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.observation_space = gymnax_space_to_gym_space(env.observation_space(self._params))
        self.action_space = gymnax_space_to_gym_space(env.action_space(self._params))
        self._reset = jax.jit(env.reset_env)
        self._step = jax.jit(self._step_fn)
        self._key = jax.random.key(0)
        self._state = None

    def _step_fn(self, key, state, action, params):
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        truncated = self._env.is_truncated(state, params)
        return obs, state, reward, terminated, truncated, info

    def _obs(self, obs) -> Any:
        space = self.observation_space
        if isinstance(space, gymnasium.spaces.Discrete):
            return int(obs)
        return np.asarray(obs, dtype=space.dtype).reshape(space.shape)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.key(seed)
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset(key, self._params)
        return self._obs(obs), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)):
            raise ValueError(f"action {action!r} is outside the action space {self.action_space}")
        self._key, key = jax.random.split(self._key)
        obs, self._state, reward, terminated, truncated, info = self._step(
            key, self._state, np.asarray(action), self._params
        )
        info = {k: np.asarray(v) for k, v in info.items()}
        return self._obs(obs), float(reward), bool(terminated), bool(truncated), info

    def render(self):
        if self.render_mode == "ansi" and self._state is not None:
            return self._env.render(self._state)
        return None


def to_gymnasium(
    env: environment.Environment | str, env_params: Any = None, render_mode: str | None = None
) -> GymnasiumEnv:
    """Wrap ``env`` (with ``env_params``, default: the env's defaults) as a ``gymnasium.Env``.

    Args:
      env: a gymnax-style environment object, or a registered id (``synjax.envs.env_ids()``), made by
        ``synjax.envs.make``.
      env_params: the environment's params; None: its defaults (for an id, those ``make`` gives).
      render_mode: ``"ansi"`` (text frames of synjax's own environments) or None.
    """
    if isinstance(env, str):
        from synjax.envs.registry import env_ids, make

        if env not in env_ids():
            raise ValueError(f"env={env!r} is invalid: must be a JAX environment object or one of "
                             f"{', '.join(env_ids())}")  # fmt: skip
        env, made_params = make(env)
        env_params = made_params if env_params is None else env_params
    for needed in ("reset", "step", "observation_space", "action_space", "default_params"):
        if not hasattr(env, needed):  # the gymnax interface, checked before anything runs
            raise TypeError(f"env must be a gymnax-style environment (reset, step, observation_space, "
                            f"action_space, default_params) or a registered id, not {type(env).__name__}")  # fmt: skip
    return GymnasiumEnv(env, env_params, render_mode)
