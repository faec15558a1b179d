"""The stateful policy contract every actor-critic keeps, feedforward or recurrent: a policy network is a function
of ``(params, carry, obs, reset) -> (distribution, value, carry)``.

A policy network is a Flax NNX module, a :class:`PolicyNetwork`, with

- ``initial_carry(batch_shape) -> carry``: what it remembers at an episode's start (a pytree with leading axes
  ``batch_shape``; ``()`` for a feedforward network);
- ``__call__(obs (..., obs_dim), carry, reset (...) bool) -> (distribution, value (...), carry)``: one decision;
  where ``reset`` is True the episode has just started and the network forgets (GRU state, membranes).

and what the training loop asks of it, declared on :class:`PolicyNetwork` with defaults: ``obs_norm`` (the running
observation normalization the loop keeps up to date, or None) and ``energy(obs, carry)`` (what a decision costs
in spikes; ``{}`` for a network without them).

Training code works on its split state through :data:`PolicyApply`. A feedforward network's carry has no leaves,
so threading it through rollouts, updates and evaluation costs nothing; a stateful one makes the on-policy update
replay each rollout as sequences from the carry stored at its start (:func:`unroll`), minibatches taken over
environments instead of shuffled time steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import distrax
import jax
from flax import nnx

#: ``apply(params, carry, obs (..., obs_dim), reset (...)) -> (distribution, value (...), carry)``.
PolicyApply = Callable[[Any, Any, jax.Array, jax.Array], tuple[distrax.Distribution, jax.Array, Any]]


class PolicyNetwork(nnx.Module):
    """Base class of the policy networks: the contract's defaults, which a network overrides where it differs.

    Attributes:
      obs_norm: the running observation normalization (:class:`synjax.agents.networks.ObsNorm`) that the
        on-policy loop updates from each rollout, or None (the default: observations go in as they are).
    """

    obs_norm: Any = None

    def initial_carry(self, batch_shape: tuple[int, ...]) -> Any:
        """What the network remembers at an episode's start, leaves with leading axes ``batch_shape``; ``()``
        (the default) for a feedforward network."""
        return ()

    def energy(self, obs: jax.Array, carry: Any) -> dict[str, jax.Array]:
        """What one decision on encoded ``obs (B, obs_dim)`` costs from ``carry`` (leaves (B, ...)): a spiking
        network's firing rates and synaptic operations (:func:`synjax.agents.spiking.energy`); ``{}`` (the
        default) for a network without spikes."""
        return {}


def is_stateful(carry: Any) -> bool:
    """Whether a carry holds anything (a feedforward network's ``()`` does not)."""
    return bool(jax.tree.leaves(carry))


def unroll(apply: PolicyApply, params: Any, carry: Any, obs: jax.Array, reset: jax.Array):
    """The network over a sequence from ``carry``: ``obs (T, N, obs_dim)``, ``reset (T, N)`` ->
    ``(distribution parameters of every step, values (T, N), carries after each step (T, N, ...))``.

    Returns the per-step outputs of ``apply`` stacked by ``lax.scan``: the distribution comes back as a
    ``distrax`` distribution with leading axes (T, N).
    """

    def step(c, x):
        o, r = x
        dist, value, c = apply(params, c, o, r)
        return c, (dist, value, c)

    _, (dist, value, carries) = jax.lax.scan(step, carry, (obs, reset))
    return dist, value, carries
