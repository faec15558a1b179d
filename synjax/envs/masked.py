"""Partially observed environments: a wrapper that keeps only some observation dimensions.

``CartPole-masked-v1`` is gymnax's CartPole-v1 with the velocities hidden: the observation is the cart position
and the pole angle only, so a policy must remember the previous steps (infer the velocities) to balance the pole
well. It is the memory task of recurrent and spiking policies with a carried state.
"""

from __future__ import annotations

from typing import Any

import gymnax
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from synjax.envs.params import with_fields


class ObservationMask(environment.Environment):
    """``env`` with observations ``obs[..., keep]``; dynamics, rewards, time limit and params as ``env``'s. A
    gymnax ``Environment`` itself (its ``step`` auto-resets and reports ``info["final_observation"]``, masked).

    Args:
      env: a gymnax environment with a Box observation space of shape (D,).
      make_params: ``(**params) -> env_params`` of ``env`` (validates the fields).
      keep: the observation dimensions to keep.
      name: the environment id.
    """

    def __init__(self, env: environment.Environment, make_params: Any, keep: tuple[int, ...], name: str):
        super().__init__()
        self.env, self._make_params, self.keep, self._name = env, make_params, jnp.asarray(keep), name

    @property
    def name(self) -> str:
        return self._name

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    def make_params(self, **params: Any) -> Any:
        return self._make_params(**params)

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any):
        obs, state, reward, terminated, info = self.env.step_env(key, state, action, params)
        return obs[..., self.keep], state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: Any):
        obs, state = self.env.reset_env(key, params)
        return obs[..., self.keep], state

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        return self.env.is_truncated(state, params)

    def observation_space(self, params: Any) -> spaces.Box:
        space = self.env.observation_space(params)
        low = jnp.broadcast_to(jnp.asarray(space.low), space.shape)[self.keep]
        high = jnp.broadcast_to(jnp.asarray(space.high), space.shape)[self.keep]
        return spaces.Box(low, high, (len(self.keep),), space.dtype)

    def action_space(self, params: Any) -> Any:
        return self.env.action_space(params)


class MaskedCartPole(ObservationMask):
    """``CartPole-masked-v1``: gymnax CartPole-v1 observing (cart position, pole angle) only."""

    def __init__(self):
        env, default = gymnax.make("CartPole-v1")
        super().__init__(env, lambda **p: with_fields(default, "CartPole-masked-v1", **p), (0, 2), "CartPole-masked-v1")
