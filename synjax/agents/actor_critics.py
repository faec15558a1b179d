"""``--network NAME`` of the actor-critic agents (PPO, A2C, the host loop): one registry of the networks that
keep the policy contract (:mod:`synjax.agents.policy`)."""

from __future__ import annotations

from collections.abc import Callable

from flax import nnx

from synjax.agents.cnn import ConvActorCritic
from synjax.agents.networks import ActorCritic, GRUActorCritic
from synjax.agents.spiking import SpikingActorCritic

#: ``--network`` name -> ``build(obs_dim, action_dim, continuous, config, rngs)``; ``config`` supplies hidden,
#: activation, log_std_init, norm_obs, shared_torso, the action head and the ``snn_*`` settings. A new network is
#: one class and one entry here.
ACTOR_CRITICS: dict[str, Callable[..., nnx.Module]] = {
    "mlp": lambda obs_dim, action_dim, continuous, config, rngs: ActorCritic(
        obs_dim, action_dim, config.hidden, continuous=continuous, shared_torso=config.shared_torso,
        activation=config.activation, log_std_init=config.log_std_init, normalize_obs=config.norm_obs, rngs=rngs),
    "gru": lambda obs_dim, action_dim, continuous, config, rngs: GRUActorCritic(
        obs_dim, action_dim, config.hidden, continuous=continuous, activation=config.activation,
        log_std_init=config.log_std_init, normalize_obs=config.norm_obs, rngs=rngs),
    "cnn": lambda obs_dim, action_dim, continuous, config, rngs: ConvActorCritic(
        config.image_shape(), action_dim, continuous=continuous, log_std_init=config.log_std_init,
        features=config.hidden[-1] if config.hidden else 128, torso="minatar", rngs=rngs),
    "snn": lambda obs_dim, action_dim, continuous, config, rngs: SpikingActorCritic(
        obs_dim, action_dim, config.hidden, continuous=continuous, log_std_init=config.log_std_init,
        normalize_obs=config.norm_obs, rngs=rngs, **config.spiking_kwargs()),
}  # fmt: skip
