"""Spiking networks for the deep-RL agents (``--network snn``), and what their spikes cost.

Each decision the observation is encoded as an input current and ``T`` steps of spiking layers (spyx neurons,
surrogate gradients) run on it; read-outs turn the last spiking layer's activity into the outputs (an
actor-critic's logits or Gaussian mean and value; a Q-network's action values). Gradients flow through all the
SNN steps (backpropagation through time inside the one jit). Two time modes:

- ``inner``: every membrane starts at rest at each decision (SpikingJelly's spiking PPO, DSQN, PopSAN). Seen
  from the policy contract the network is feedforward: no carry. A spyx neuron emits the spike of its membrane
  *before* the step's update, so an input reaches the read-outs after ``len(hidden) + 1`` steps: ``T`` must be
  at least that (:func:`min_time_steps`), or the outputs do not depend on the observation.
- ``carried``: the hidden membranes are the policy's carry: ``T`` steps per decision (1 or a few) continue from
  where the last decision left them, and restart at rest where an episode starts, so the network itself
  remembers (the stateful-policy contract, trained on sequences like the GRU). The read-outs restart each
  decision.

Encoders: ``direct`` (the observation, optionally normalized, through a dense layer as a constant current each
step) and ``population`` (PopSAN: each observation dimension becomes ``P`` Gaussian receptive fields over the
normalized range, whose activations are the current; the observation is always normalized by running
statistics); ``poisson`` (rate coding: each normalized observation dimension becomes two input neurons, its
positive and negative parts, firing with probability ``|x| / 3`` per SNN step, clipped to 1). The Poisson
spikes are drawn from a hash of the observation's bits (:func:`observation_uniforms`), not from a PRNG key: the
same observation always gives the same spike trains, so PPO's update re-evaluates exactly the policy that acted
and no key enters the policy contract. Decoders: ``membrane`` (a non-spiking leaky integrator per output; its membrane after the
decision's ``T`` steps is the output) and ``rate`` (the last layer's spike counts over ``T``, through a dense
layer).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from synjax.agents.cnn import _conv, conv3x3
from synjax.agents.networks import ObsNorm, _linear, policy_distribution
from synjax.agents.policy import PolicyNetwork
from synjax.envs.random_bits import uniform_from_bits
from synjax.snn.spyx_neurons import NEURONS, make_neuron, membrane_potential

ENCODERS = ("direct", "population", "poisson")
DECODERS = ("membrane", "rate")
TIME_MODES = ("inner", "carried")
#: spiking kinds the hidden layers are built from (spyx; the R kinds add recurrent weights within a layer)
SPIKING_KINDS = NEURONS
#: normalized observations are clipped to +-this before the population code's receptive fields
POPULATION_RANGE = 3.0
#: ``(filters, size, stride)`` of the convolutions in front of an image network's dense spiking layers: the
#: MinAtar CNN's one (JAX image environments) and the Nature CNN's three (Atari through the host loop)
MINATAR_CONVS = ((16, 3, 1),)
NATURE_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
#: murmur3's 32-bit finalizer constants and the golden-ratio increment (the Poisson encoder's hash)
_MIX = (0x85EBCA6B, 0xC2B2AE35, 0x9E3779B9)
#: SNN steps unrolled in the compiled loop (a rolled loop costs a while-loop iteration per step on CPU)
UNROLL = 16


def min_time_steps(time_mode: str, num_layers: int, discretization: str = "spyx") -> int:
    """Fewest SNN steps per decision whose outputs depend on the observation: ``num_layers + 1`` in ``inner``
    mode with spyx neurons (each spiking layer delays its input by one step), 1 in ``carried`` mode (the delay
    spans decisions) and with the ``nir`` discretization (a spike answers its step's input)."""
    return num_layers + 1 if time_mode == "inner" and discretization == "spyx" else 1


class FlatConv(nnx.Module):
    """A VALID convolution between flat layers: ``x (B, H * W * C)`` (NHWC order) -> ``(B, H' * W' * filters)``.

    Attributes:
      out_shape: ``(H', W', filters)``; in_features, out_features: the flat sizes; macs: multiply-accumulates of
        one pass (an input spike reaches ``macs / in_features`` units on average).
    """

    def __init__(self, in_shape: tuple[int, int, int], filters: int, size: int, stride: int, *, rngs: nnx.Rngs):
        h, w, c = in_shape
        oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"a {size}x{size}/{stride} convolution does not fit a {h}x{w} map")
        self.in_shape, self.out_shape = tuple(in_shape), (oh, ow, filters)
        self.size, self.stride = size, stride
        self.conv = _conv(c, filters, size, stride, rngs)
        self.in_features, self.out_features = h * w * c, oh * ow * filters
        self.macs = self.out_features * size * size * c

    def __call__(self, x: jax.Array) -> jax.Array:
        image = x.reshape(-1, *self.in_shape)
        y = conv3x3(self.conv, image) if (self.size, self.stride) == (3, 1) else self.conv(image)
        return y.reshape(x.shape[0], -1)


def _macs(layer: nnx.Module) -> int:
    """Multiply-accumulates of one pass of a connection (a dense layer or a :class:`FlatConv`)."""
    return getattr(layer, "macs", None) or layer.in_features * layer.out_features


class SpikingNetwork(PolicyNetwork):
    """``obs -> encoder -> [dense -> spiking layer] x len(hidden) -> one dense read-out per head``, ``T`` steps.

    Args:
      obs_dim: size of the observation vector.
      heads: ``(name, width, orthogonal gain)`` of each read-out; each becomes the attribute ``name`` (a dense
        layer; with the membrane decoder also ``name_li``, its leaky integrator).
      hidden: widths of the spiking layers, shared by the heads.
      time_steps: ``T``, SNN steps per decision (>= :func:`min_time_steps`).
      time_mode: one of :data:`TIME_MODES`.
      neuron: one of :data:`SPIKING_KINDS`.
      encoder: one of :data:`ENCODERS`; population: ``population`` fields per observation dimension.
      decoder: one of :data:`DECODERS`.
      surrogate: spyx surrogate gradient name; beta: membrane decay per step; threshold: firing threshold.
      discretization: ``spyx`` (a spike answers the membrane before the step's update) or ``nir`` (integrate,
        spike on the updated membrane, subtract reset: what an exported NIR graph computes exactly;
        :mod:`synjax.snn.nir_neurons`).
      normalize_obs: running mean/std normalization of the observation (forced on for ``population`` and
        ``poisson``).
      image: ``(H, W, C)`` of image observations: the first spiking layers are then feature maps of the
        convolutions ``convs`` (the first reads the image as a constant current), before ``hidden``.
      convs: ``(filters, size, stride)`` per convolution (:data:`MINATAR_CONVS`, :data:`NATURE_CONVS`).
      channels_first: observations arrive as ``(C, H, W)`` (frame stacks), not ``(H, W, C)``.
      pixel_scale: factor on the observations before the first convolution (1 / 255 for uint8 pixels).
    """

    def __init__(
        self,
        obs_dim: int,
        heads: Sequence[tuple[str, int, float]],
        hidden: Sequence[int] = (64, 64),
        *,
        time_steps: int = 8,
        time_mode: str = "inner",
        neuron: str = "LIF",
        encoder: str = "direct",
        population: int = 8,
        decoder: str = "membrane",
        surrogate: str = "arctan",
        beta: float = 0.9,
        threshold: float = 1.0,
        discretization: str = "spyx",
        normalize_obs: bool = False,
        image: tuple[int, int, int] | None = None,
        convs: Sequence[tuple[int, int, int]] = MINATAR_CONVS,
        channels_first: bool = False,
        pixel_scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        if not hidden:
            raise ValueError("hidden=() is invalid for a spiking network: must give at least one spiking layer")
        for name, value, allowed in (("time_mode", time_mode, TIME_MODES), ("encoder", encoder, ENCODERS),
                                     ("decoder", decoder, DECODERS), ("neuron", neuron, SPIKING_KINDS)):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is invalid: must be one of {', '.join(allowed)}")
        if image is not None and encoder != "direct":
            raise ValueError(f"encoder={encoder!r} is invalid for image observations: must be 'direct' (the "
                             "convolution reads the image itself)")  # fmt: skip
        layers = len(hidden) + (len(convs) if image is not None else 0)
        fewest = min_time_steps(time_mode, layers, discretization)
        if time_steps < fewest:
            raise ValueError(f"time_steps={time_steps} is invalid: must be >= {fewest} in {time_mode} mode with "
                             f"{layers} spiking layers (each delays its input by one SNN step)")  # fmt: skip
        self.time_steps, self.time_mode, self.encoder, self.decoder = time_steps, time_mode, encoder, decoder
        self.discretization, self.threshold = discretization, threshold
        self.neuron, self.population = neuron, population
        self.head_names = tuple(name for name, _, _ in heads)
        self.obs_norm = ObsNorm(obs_dim) if normalize_obs or encoder != "direct" else None
        in_dim = {"direct": obs_dim, "population": obs_dim * population, "poisson": 2 * obs_dim}[encoder]
        if image is None:
            self.sizes = (in_dim, *hidden)
            self.linears = nnx.List([_linear(a, b, math.sqrt(2.0), rngs) for a, b in itertools.pairwise(self.sizes)])
        else:  # spiking feature maps first: the first convolution of the image is a constant input current
            layers_in, shape = [], tuple(image)
            for filters, size, stride in convs:
                layers_in.append(FlatConv(shape, filters, size, stride, rngs=rngs))
                shape = layers_in[-1].out_shape
            self.sizes = (in_dim, *(c.out_features for c in layers_in), *hidden)
            dense = [_linear(a, b, math.sqrt(2.0), rngs) for a, b in itertools.pairwise(self.sizes[len(convs):])]
            self.linears = nnx.List([*layers_in, *dense])
        self.image, self.channels_first, self.pixel_scale = image, channels_first, pixel_scale
        kw = {"surrogate": surrogate, "beta": beta, "threshold": threshold, "discretization": discretization,
              "rngs": rngs}  # fmt: skip
        self.neurons = nnx.List([make_neuron(neuron, n, **kw) for n in self.sizes[1:]])
        for name, width, gain in heads:
            setattr(self, name, _linear(hidden[-1], width, gain, rngs))
        if decoder == "membrane":  # non-spiking leaky integrators whose membranes are the outputs
            for name, width, _ in heads:
                setattr(self, f"{name}_li", make_neuron("LI", width, beta=beta, rngs=rngs))

    @property
    def output_width(self) -> int:
        """Units the last spiking layer fans out to: the heads' widths together."""
        return sum(getattr(self, name).out_features for name in self.head_names)

    def encode(self, obs: jax.Array) -> jax.Array:
        """``obs (B, obs_dim)`` -> the input of the first dense layer: ``(B, sizes[0])``, the same every SNN step
        (direct, population), or ``(T, B, sizes[0])`` spikes (poisson)."""
        raw = obs
        if self.image is not None and (self.channels_first or self.pixel_scale != 1.0):  # to flat NHWC floats
            h, w, c = self.image
            x = obs.reshape(-1, c, h, w).transpose(0, 2, 3, 1) if self.channels_first else obs
            obs = x.reshape(obs.shape[0], -1).astype(jnp.float32) * self.pixel_scale
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self.encoder == "direct":
            return obs
        if self.encoder == "poisson":
            rate = jnp.clip(jnp.concatenate([obs, -obs], -1) / POPULATION_RANGE, 0.0, 1.0)  # (B, 2D)
            u = observation_uniforms(raw, self.time_steps, rate.shape[-1])
            return (u < rate).astype(jnp.float32)
        x = jnp.clip(obs, -POPULATION_RANGE, POPULATION_RANGE)[..., None]  # (B, D, 1)
        centers = jnp.linspace(-POPULATION_RANGE, POPULATION_RANGE, self.population)
        width = 2 * POPULATION_RANGE / (self.population - 1)
        return jnp.exp(-0.5 * ((x - centers) / width) ** 2).reshape(obs.shape[0], -1)

    def rest(self, batch: int) -> tuple[jax.Array, ...]:
        """The hidden layers' states at rest, each ``(batch, width)`` or ``(batch, 2 width)``."""
        return tuple(n.initial_state(batch) for n in self.neurons)

    def simulate(self, obs: jax.Array, states: tuple | None = None):
        """``T`` steps on ``obs (B, obs_dim)`` from hidden ``states`` (at rest if None) -> (outputs: one
        ``(B, width)`` per head, hidden states after the steps, spikes per layer ``(T, B, width)``)."""
        batch = obs.shape[0]
        encoded = self.encode(obs)
        spiking_input = self.encoder == "poisson"
        first = None if spiking_input else self.linears[0](encoded)  # constant over the T steps: computed once
        states = self.rest(batch) if states is None else states
        membrane = self.decoder == "membrane"
        readout = tuple(getattr(self, f"{h}_li").initial_state(batch) for h in self.head_names) if membrane else ()

        def step(carry, x):
            states, readout = carry
            current, new_states, spikes = (self.linears[0](x) if spiking_input else first), [], []
            for i, (neuron, state) in enumerate(zip(self.neurons, states)):
                if i > 0:
                    current = self.linears[i](spikes[-1])
                out, state = neuron(current, state)
                new_states.append(state)
                spikes.append(out)
            if membrane:
                readout = tuple(getattr(self, f"{h}_li")(getattr(self, h)(spikes[-1]), r)[1]
                                for h, r in zip(self.head_names, readout))  # fmt: skip
            return (tuple(new_states), readout), tuple(spikes)

        xs = encoded if spiking_input else None
        (states, readout), spikes = jax.lax.scan(step, (states, readout), xs, length=self.time_steps, unroll=UNROLL)
        if membrane:
            outputs = tuple(membrane_potential("LI", r) for r in readout)
        else:  # spike counts over T (as a rate), decoded by the dense read-outs
            rate = spikes[-1].mean(0)
            outputs = tuple(getattr(self, h)(rate) for h in self.head_names)
        return outputs, states, spikes

    def initial_carry(self, batch_shape: tuple[int, ...]) -> tuple:
        """``inner``: nothing is carried (``()``); ``carried``: the hidden states at rest, leaves
        ``(*batch_shape, width)``."""
        if self.time_mode == "inner":
            return ()
        size = math.prod(batch_shape)
        return tuple(s.reshape(*batch_shape, -1) for s in self.rest(size))

    def energy(self, obs: jax.Array, carry: Any) -> dict[str, jax.Array]:
        """:func:`energy` on ``obs (B, obs_dim)``: from rest in ``inner`` mode, from the membranes ``carry``
        (leaves (B, width)) in ``carried`` mode."""
        return energy(self, obs, tuple(carry) or None)

    def run(self, obs: jax.Array, carry: Any = (), reset: Any = None) -> tuple[tuple[jax.Array, ...], Any]:
        """One decision on ``obs (..., obs_dim)``: (outputs, each ``(..., width)``, the new carry). In
        ``carried`` mode the hidden states restart at rest where ``reset (...)`` is True."""
        if self.channels_first and obs.shape[-1] != self.sizes[0]:  # (..., C, H, W) frames: flatten each
            obs = obs.reshape(*obs.shape[:-3], -1)
        lead = obs.shape[:-1]
        flat = obs.reshape(-1, obs.shape[-1])
        states = None
        if self.time_mode == "carried":
            states = tuple(c.reshape(flat.shape[0], -1) for c in carry)
            if reset is not None:
                r = jnp.asarray(reset, bool).reshape(-1, 1)
                states = tuple(jnp.where(r, s0, s) for s0, s in zip(self.rest(flat.shape[0]), states))
        outputs, states, _ = self.simulate(flat, states)
        outputs = tuple(o.reshape(*lead, -1) for o in outputs)
        if self.time_mode == "carried":
            carry = tuple(s.reshape(*lead, -1) for s in states)
        return outputs, carry


def observation_uniforms(obs: jax.Array, steps: int, width: int) -> jax.Array:
    """``(steps, B, width)`` float32 uniforms in [0, 1) that are a fixed function of each observation's bits.

    The observation's float32 words are hashed into one 32-bit seed per row (murmur3's finalizer over the words,
    each offset by its position); each uniform is the finalizer of that seed mixed with its (step, unit) index.
    Distinct observations give unrelated streams, the same one the same stream.
    """

    def fmix(h):
        h = h ^ (h >> 16)
        h = h * jnp.uint32(_MIX[0])
        h = h ^ (h >> 13)
        h = h * jnp.uint32(_MIX[1])
        return h ^ (h >> 16)

    words = jax.lax.bitcast_convert_type(obs.astype(jnp.float32), jnp.uint32)  # (B, D)
    position = jnp.arange(words.shape[-1], dtype=jnp.uint32) * jnp.uint32(_MIX[2])
    seed = fmix(fmix(words + position).sum(-1, dtype=jnp.uint32) + jnp.uint32(_MIX[2]))  # (B,)
    index = jnp.arange(steps * width, dtype=jnp.uint32).reshape(steps, 1, width) + jnp.uint32(1)
    return uniform_from_bits(fmix(seed[None, :, None] ^ (index * jnp.uint32(_MIX[2]))))


class SpikingActorCritic(SpikingNetwork):
    """The spiking policy of PPO and A2C: heads ``actor`` (logits or Gaussian mean) and ``critic`` (value).

    Args:
      obs_dim: size of the observation vector.
      action_dim: size of the action head (logits or Gaussian mean).
      hidden: widths of the spiking layers, shared by actor and critic.
      continuous: Gaussian head with a state-independent log std (``log_std_init``).
      **kw: the settings of :class:`SpikingNetwork`.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (64, 64), *,
                 continuous: bool = False, log_std_init: float = 0.0, rngs: nnx.Rngs, **kw):  # fmt: skip
        super().__init__(obs_dim, (("actor", action_dim, 0.01), ("critic", 1, 1.0)), hidden, rngs=rngs, **kw)
        self.continuous = continuous
        if continuous:
            self.log_std = nnx.Param(jnp.full((action_dim,), log_std_init, jnp.float32))

    def __call__(self, obs: jax.Array, carry: Any = (), reset: Any = None):
        """``obs (..., obs_dim)`` -> (distribution, value ``(...,)``, carry)."""
        (head, value), carry = self.run(obs, carry, reset)
        return policy_distribution(head, self.log_std[...] if self.continuous else None), value[..., 0], carry


class SpikingQNetwork(SpikingNetwork):
    """Spiking action values of DQN and PQN (``inner`` mode): ``obs (..., obs_dim) -> Q (..., num_actions)``.

    Args:
      obs_dim: observation size.
      num_actions: number of discrete actions.
      hidden: widths of the spiking layers.
      **kw: the settings of :class:`SpikingNetwork` (``time_mode`` must be ``inner``: replayed or shuffled
        transitions have no sequence to carry membranes along).
    """

    def __init__(self, obs_dim: int, num_actions: int, hidden: Sequence[int] = (64, 64), *, rngs: nnx.Rngs, **kw):
        if kw.get("time_mode", "inner") != "inner":
            raise ValueError(f"time_mode={kw['time_mode']!r} is invalid for a spiking Q-network: must be 'inner'")
        super().__init__(obs_dim, (("q", num_actions, 1.0),), hidden, rngs=rngs, **kw)

    def __call__(self, obs: jax.Array) -> jax.Array:
        return self.run(obs)[0][0]


def spiking_core(model: nnx.Module) -> SpikingNetwork | None:
    """The :class:`SpikingNetwork` that ``model`` is, or wraps as ``model.q`` (an epsilon-greedy Q policy); None
    for a network without spikes."""
    for candidate in (model, getattr(model, "q", None)):
        if isinstance(candidate, SpikingNetwork):
            return candidate
    return None


def energy(network: SpikingNetwork, obs: jax.Array, states: tuple | None = None) -> dict[str, jax.Array]:
    """What the spikes of ``network`` cost on ``obs (B, obs_dim)``, per decision, from hidden ``states`` (at rest
    if None; a ``carried`` network's carry reshaped to ``(B, ...)``).

    Returns:
      ``firing_rate_l`` for each spiking layer ``l`` (spikes per neuron per SNN step, averaged over the batch);
      ``synops``: synaptic operations per decision (each spike times its fan-out: the next dense layer's width,
      or the read-outs' widths for the last layer, plus the layer's own width for a recurrent kind), plus the
      input layer's multiply-accumulates, computed once per decision from the analog current (with the poisson
      encoder: each input spike times the first layer's width, and ``input_rate``); ``ann_macs``: the
      multiply-accumulates per decision of the ANN twin (the same widths and recurrences, one pass).
    """
    _, _, spikes = network.simulate(obs, states)
    sizes = network.sizes
    recurrent = [n if hasattr(layer, "recurrent_w") else 0 for n, layer in zip(sizes[1:], network.neurons)]
    # a spike reaches the next connection's units (on average, for a convolution), or the read-outs
    reach = [_macs(layer) / layer.in_features for layer in network.linears[1:]]
    fan_out = [f + r for f, r in zip((*reach, network.output_width), recurrent)]
    counts = [s.sum((0, 2)).mean() for s in spikes]  # spikes per decision, per layer
    out = {f"firing_rate_{i}": s.mean() for i, s in enumerate(spikes)}
    hidden_ops = sum(c * f for c, f in zip(counts, fan_out))
    hidden_macs = sum(_macs(layer) for layer in network.linears[1:]) + sizes[-1] * network.output_width
    hidden_macs += sum(n * r for n, r in zip(sizes[1:], recurrent))
    if network.encoder == "poisson":  # spikes in too: each input spike reaches the first layer's units
        inputs = network.encode(obs)
        out["input_rate"] = inputs.mean()
        input_ops, ann_input = inputs.sum((0, 2)).mean() * sizes[1], (sizes[0] // 2) * sizes[1]
    else:  # an analog current, computed once per decision; the ANN twin reads the same input
        input_ops = ann_input = _macs(network.linears[0])
    out["synops"] = input_ops + hidden_ops
    out["ann_macs"] = jnp.float32(ann_input + hidden_macs)
    return out
