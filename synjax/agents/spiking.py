"""A spiking actor-critic for the deep-RL agents (``--network snn``), and what its spikes cost.

Each decision the observation is encoded as an input current, ``T`` steps of spiking layers (spyx neurons,
surrogate gradients) run on it with every membrane starting at rest (the ``inner`` time mode of SpikingJelly's
spiking PPO, DSQN and PopSAN), and two read-outs turn the last spiking layer's activity into the policy's logits
(or Gaussian mean) and the value. Gradients flow through all ``T`` steps (backpropagation through time inside
the one jit). Seen from the policy contract it is a feedforward network: no carry.

Encoders: ``direct`` (the observation, normalized, through a dense layer as a constant current each step) and
``population`` (PopSAN: each observation dimension becomes ``P`` Gaussian receptive fields over the normalized
range, whose activations are the current). Decoders: ``membrane`` (a non-spiking leaky integrator; its membrane
after ``T`` steps is the output) and ``rate`` (the last layer's spike counts over ``T``, through a dense layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from synjax.agents.networks import ObsNorm, _linear, policy_distribution
from synjax.snn.spyx_neurons import make_neuron, membrane_potential

ENCODERS = ("direct", "population")
DECODERS = ("membrane", "rate")
#: feedforward spiking kinds the actor-critic builds its layers from
SPIKING_KINDS = ("LIF", "IF", "ALIF")
#: normalized observations are clipped to +-this before the population code's receptive fields
POPULATION_RANGE = 3.0
#: SNN steps unrolled in the compiled loop (a rolled loop costs a while-loop iteration per step on CPU)
UNROLL = 16


class SpikingActorCritic(nnx.Module):
    """``obs -> encoder -> [dense -> spiking layer] x len(hidden) -> actor and critic read-outs``, ``T`` steps.

    Args:
      obs_dim, action_dim: sizes of the observation vector and of the action (logits or Gaussian mean).
      hidden: widths of the spiking layers, shared by actor and critic.
      continuous: Gaussian head with a state-independent log std.
      time_steps: ``T``, SNN steps per decision (>= 1).
      neuron: one of :data:`SPIKING_KINDS`.
      encoder: one of :data:`ENCODERS`; population: ``population`` fields per observation dimension.
      decoder: one of :data:`DECODERS`.
      surrogate: spyx surrogate gradient name; beta: membrane decay per step; threshold: firing threshold.
      normalize_obs: running mean/std normalization of the observation (forced on for ``population``).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        continuous: bool = False,
        time_steps: int = 8,
        neuron: str = "LIF",
        encoder: str = "direct",
        population: int = 8,
        decoder: str = "membrane",
        surrogate: str = "arctan",
        beta: float = 0.9,
        threshold: float = 1.0,
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        rngs: nnx.Rngs,
    ):
        if not hidden:
            raise ValueError("hidden=() is invalid for a spiking network: must give at least one spiking layer")
        self.time_steps, self.encoder, self.decoder, self.continuous = time_steps, encoder, decoder, continuous
        self.neuron, self.population = neuron, population
        self.obs_norm = ObsNorm(obs_dim) if normalize_obs or encoder == "population" else None
        in_dim = obs_dim * population if encoder == "population" else obs_dim
        self.sizes = (in_dim, *hidden)
        self.linears = nnx.List([_linear(a, b, math.sqrt(2.0), rngs) for a, b in zip(self.sizes, self.sizes[1:])])
        kw = {"surrogate": surrogate, "beta": beta, "threshold": threshold, "rngs": rngs}
        self.neurons = nnx.List([make_neuron(neuron, n, **kw) for n in hidden])
        self.actor = _linear(hidden[-1], action_dim, 0.01, rngs)
        self.critic = _linear(hidden[-1], 1, 1.0, rngs)
        if decoder == "membrane":  # non-spiking leaky integrators whose membranes are the outputs
            self.actor_li = make_neuron("LI", action_dim, beta=beta, rngs=rngs)
            self.critic_li = make_neuron("LI", 1, beta=beta, rngs=rngs)
        if continuous:
            self.log_std = nnx.Param(jnp.full((action_dim,), log_std_init, jnp.float32))

    def encode(self, obs: jax.Array) -> jax.Array:
        """``obs (B, obs_dim)`` -> the input current of the first dense layer ``(B, sizes[0])``."""
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self.encoder == "direct":
            return obs
        x = jnp.clip(obs, -POPULATION_RANGE, POPULATION_RANGE)[..., None]  # (B, D, 1)
        centers = jnp.linspace(-POPULATION_RANGE, POPULATION_RANGE, self.population)
        width = 2 * POPULATION_RANGE / (self.population - 1)
        return jnp.exp(-0.5 * ((x - centers) / width) ** 2).reshape(obs.shape[0], -1)

    def simulate(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, tuple[jax.Array, ...]]:
        """``T`` steps on ``obs (B, obs_dim)`` -> (head ``(B, action_dim)``, value ``(B,)``, spikes per layer
        ``(T, B, width)``)."""
        batch = obs.shape[0]
        first = self.linears[0](self.encode(obs))  # constant over the T steps: computed once
        states = tuple(n.initial_state(batch) for n in self.neurons)
        readout = (self.actor_li.initial_state(batch), self.critic_li.initial_state(batch)) if self.decoder == "membrane" else ()  # fmt: skip

        def step(carry, _):
            states, readout = carry
            current, new_states, spikes = first, [], []
            for i, (neuron, state) in enumerate(zip(self.neurons, states)):
                if i > 0:
                    current = self.linears[i](spikes[-1])
                out, state = neuron(current, state)
                new_states.append(state)
                spikes.append(out)
            if self.decoder == "membrane":
                _, a = self.actor_li(self.actor(spikes[-1]), readout[0])
                _, c = self.critic_li(self.critic(spikes[-1]), readout[1])
                readout = (a, c)
            return (tuple(new_states), readout), tuple(spikes)

        (_, readout), spikes = jax.lax.scan(step, (states, readout), None, length=self.time_steps, unroll=UNROLL)
        if self.decoder == "membrane":
            head, value = membrane_potential("LI", readout[0]), membrane_potential("LI", readout[1])[:, 0]
        else:  # spike counts over T (as a rate), decoded by the dense read-outs
            rate = spikes[-1].mean(0)
            head, value = self.actor(rate), self.critic(rate)[:, 0]
        return head, value, spikes

    def initial_carry(self, batch_shape: tuple[int, ...]) -> tuple:
        """``inner`` time mode: the membranes restart every decision, so nothing is carried."""
        return ()

    def __call__(self, obs: jax.Array, carry: Any = (), reset: Any = None):
        """``obs (..., obs_dim)`` -> (distribution, value ``(...,)``, ``carry`` unchanged)."""
        lead = obs.shape[:-1]
        head, value, _ = self.simulate(obs.reshape(-1, obs.shape[-1]))
        head, value = head.reshape(*lead, -1), value.reshape(lead)
        return policy_distribution(head, self.log_std[...] if self.continuous else None), value, carry


def energy(network: SpikingActorCritic, obs: jax.Array) -> dict[str, jax.Array]:
    """What the spikes of ``network`` cost on ``obs (B, obs_dim)``, per decision.

    Returns:
      ``firing_rate_l`` for each spiking layer ``l`` (spikes per neuron per SNN step, averaged over the batch);
      ``synops``: synaptic operations per decision (each spike times its fan-out: the next dense layer's width,
      or the read-outs' widths for the last layer), plus the input layer's multiply-accumulates, computed once
      per decision from the analog current; ``ann_macs``: the multiply-accumulates per decision of the ANN twin
      (the same widths, one pass).
    """
    _, _, spikes = network.simulate(obs)
    sizes = network.sizes
    outputs = network.actor.out_features + network.critic.out_features
    fan_out = (*sizes[2:], outputs)
    counts = [s.sum((0, 2)).mean() for s in spikes]  # spikes per decision, per layer
    out = {f"firing_rate_{i}": s.mean() for i, s in enumerate(spikes)}
    input_macs = sizes[0] * sizes[1]
    out["synops"] = input_macs + sum(c * f for c, f in zip(counts, fan_out))
    ann = input_macs + sum(a * b for a, b in zip(sizes[1:], (*sizes[2:], outputs)))
    out["ann_macs"] = jnp.float32(ann)
    return out
