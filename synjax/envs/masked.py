"""Partially observed environments: a wrapper that keeps only some observation dimensions.

``CartPole-masked-v1`` is gymnax's CartPole-v1 with the velocities hidden: the observation is the cart position
and the pole angle only, so a policy must remember the previous steps (infer the velocities) to balance the pole
well. It is the memory task of recurrent and spiking policies with a carried state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces


class ObservationMask:
    """``env`` with observations ``obs[..., keep]`` (also ``info["final_observation"]``); everything else as
    ``env`` (gymnax 1.0 interface: auto-reset, six-value ``step``).

    Args:
      env: a gymnax-style environment with a Box observation space of shape (D,).
      make_params: ``(**params) -> env_params`` of ``env`` (validates the fields).
      keep: the observation dimensions to keep.
      name: the environment id.
    """

    def __init__(self, env: Any, make_params: Any, keep: tuple[int, ...], name: str):
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

    def reset(self, key: jax.Array, params: Any = None):
        obs, state = self.env.reset(key, params)
        return obs[..., self.keep], state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        info = dict(info)
        if "final_observation" in info:
            info["final_observation"] = info["final_observation"][..., self.keep]
        return obs[..., self.keep], state, reward, terminated, truncated, info

    def observation_space(self, params: Any) -> spaces.Box:
        space = self.env.observation_space(params)
        low = jnp.broadcast_to(jnp.asarray(space.low), space.shape)[self.keep]
        high = jnp.broadcast_to(jnp.asarray(space.high), space.shape)[self.keep]
        return spaces.Box(low, high, (len(self.keep),), space.dtype)

    def action_space(self, params: Any) -> Any:
        return self.env.action_space(params)


def masked_cartpole() -> ObservationMask:
    """``CartPole-masked-v1``: gymnax CartPole-v1 observing (cart position, pole angle) only."""
    from synjax.envs import registry

    env, _ = registry.make("CartPole-v1")
    return ObservationMask(env, lambda **p: registry.make("CartPole-v1", **p)[1], (0, 2), "CartPole-masked-v1")
