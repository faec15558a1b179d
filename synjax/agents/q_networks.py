"""``--network NAME`` of the value-based agents (DQN, PQN): one registry of the action-value networks
``obs (..., obs_dim) -> Q (..., num_actions)``, and :class:`EpsilonGreedyQ`, which turns one into a policy that
keeps the policy contract (:mod:`synjax.agents.policy`) so PQN trains it in the on-policy loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from synjax.agents.cnn import ConvQNetwork
from synjax.agents.networks import QNetwork
from synjax.agents.policy import PolicyNetwork
from synjax.agents.spiking import SpikingQNetwork

#: ``--network`` name -> ``build(obs_dim, num_actions, config, rngs)``; ``config`` supplies hidden, layer_norm,
#: norm_obs and the ``snn_*`` settings.
Q_NETWORKS: dict[str, Callable[..., nnx.Module]] = {
    "mlp": lambda obs_dim, num_actions, config, rngs: QNetwork(
        obs_dim, num_actions, tuple(config.hidden), layer_norm=config.layer_norm, normalize_obs=config.norm_obs,
        rngs=rngs),
    "cnn": lambda obs_dim, num_actions, config, rngs: ConvQNetwork(
        config.image_shape(), num_actions, features=config.hidden[-1], layer_norm=config.layer_norm,
        rngs=rngs),
    "snn": lambda obs_dim, num_actions, config, rngs: SpikingQNetwork(
        obs_dim, num_actions, tuple(config.hidden), normalize_obs=config.norm_obs, rngs=rngs,
        **config.spiking_kwargs()),
}  # fmt: skip


class Exploration(nnx.Variable):
    """The exploration rate of an :class:`EpsilonGreedyQ`: set by the training loop, not trained."""


class EpsilonGreedyQ(PolicyNetwork):
    """A Q-network as a policy: epsilon-greedy over ``Q(s, .)``, value ``max_a Q(s, a)``, no carry.

    ``dist.preferences`` are the action values (PQN's loss reads them), ``dist.mode()`` is the greedy action
    (evaluation). ``epsilon`` is set by the loop before each rollout (:meth:`explore`).

    Args:
      q: the action-value network (``q.obs_norm`` is the policy's observation normalization, or None).
    """

    def __init__(self, q: nnx.Module):
        self.q = q
        self.epsilon = Exploration(jnp.float32(1.0))

    @property
    def obs_norm(self):
        return self.q.obs_norm

    def explore(self, epsilon: jax.Array) -> None:
        """Set the exploration rate (in place on the module)."""
        self.epsilon[...] = jnp.asarray(epsilon, jnp.float32)

    def energy(self, obs: jax.Array, carry: Any) -> dict[str, jax.Array]:
        """The energy of the Q-network it wraps (a spiking one's; ``{}`` for the others)."""
        return self.q.energy(obs, carry) if isinstance(self.q, PolicyNetwork) else {}

    def __call__(self, obs: jax.Array, carry: Any = (), reset: Any = None):
        """``obs (..., obs_dim)`` -> (epsilon-greedy distribution over actions, ``max_a Q (...)``, carry)."""
        q = self.q(obs)
        return distrax.EpsilonGreedy(q, self.epsilon[...]), q.max(-1), carry
