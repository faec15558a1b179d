"""Flax NNX networks of the deep-RL agents: an MLP Q-network (optionally layer-normalized), MLP and GRU actor-critics (the Nature-CNN one for
pixels is in :mod:`synjax.agents.cnn`), plus observation encoding.

Every actor-critic keeps the stateful policy contract (:mod:`synjax.agents.policy`):
``network(obs, carry, reset) -> (distribution, value, carry)`` and ``network.initial_carry(batch_shape)``; a
feedforward network's carry is ``()``, which costs nothing.

Training code never holds these modules across a jit boundary: it splits them (``graphdef, state =
nnx.split(module)``), carries the ``nnx.State`` pytree through ``lax.scan``/``vmap`` and rebuilds the module with
``nnx.merge(graphdef, state)`` inside the loss, so every train function stays pure.

Initialization follows the usual PPO/A2C practice (Engstrom et al. 2020, "Implementation Matters"; SB3,
CleanRL, PureJaxRL): orthogonal weights with gain sqrt(2) in hidden layers, 0.01 on the policy output, 1.0 on the
value output, zero biases.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import distrax
import jax
import jax.numpy as jnp
from flax import nnx
from gymnax.environments import spaces

from synjax.agents.policy import PolicyNetwork

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"tanh": jnp.tanh, "relu": jax.nn.relu}


@functools.partial(jax.jit, static_argnums=1)
def _haar_orthonormal(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """Random ``shape`` matrix with orthonormal columns (rows if wider than tall), Haar-distributed."""
    rows, cols = shape
    n, m = max(rows, cols), min(rows, cols)
    a = jax.random.normal(key, (n, m), jnp.float32)

    def column(q, j):
        v = a[:, j]
        for _ in range(2):  # re-orthogonalize once: CGS2 is as accurate as Householder QR
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v)), None

    q, _ = jax.lax.scan(column, jnp.zeros((n, m), jnp.float32), jnp.arange(m))
    return q if rows >= cols else q.T


def orthogonal(gain: float = 1.0) -> Callable[..., jax.Array]:
    """Orthogonal initializer (Saxe et al. 2014) for 2-D kernels, computed without LAPACK.

    Same distribution as ``nnx.initializers.orthogonal`` (Haar-random orthonormal rows or columns, times
    ``gain``), but the orthonormalization is classical Gram-Schmidt applied twice (CGS2) in plain ``jnp`` ops:
    jaxlib's batched CPU QR (``lapack_sgeqrf`` with ``ParallelBatchMap``), which the Flax initializer calls,
    deadlocks when several seeds are initialized under ``vmap`` on a small CPU (seen with jax 0.10.2 on 2
    cores: 4 vmapped seeds hang forever inside ``BlockingCounter::Wait``).
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return (gain * _haar_orthonormal(key, tuple(shape))).astype(dtype)

    return init


def _linear(in_dim: int, out_dim: int, gain: float, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(
        in_dim,
        out_dim,
        kernel_init=orthogonal(gain),
        bias_init=nnx.initializers.zeros_init(),
        rngs=rngs,
    )


class MLP(nnx.Module):
    """``in_dim -> hidden... -> out_dim`` with orthogonal init; no activation after the last layer.

    Args:
      in_dim: input features.
      hidden: widths of the hidden layers (may be empty: one linear layer).
      out_dim: output features.
      activation: ``"tanh"`` or ``"relu"``.
      out_gain: orthogonal gain of the output layer.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        *,
        activation: str = "tanh",
        out_gain: float = 1.0,
        rngs: nnx.Rngs,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is invalid: must be one of {', '.join(ACTIVATIONS)}")
        dims = [in_dim, *hidden]
        self.hidden = nnx.List([_linear(a, b, math.sqrt(2.0), rngs) for a, b in itertools.pairwise(dims)])
        self.out = _linear(dims[-1], out_dim, out_gain, rngs)
        self.activation = activation

    def torso(self, x: jax.Array) -> jax.Array:
        """Hidden features ``(..., hidden[-1])`` (``x`` itself if there are no hidden layers)."""
        act = ACTIVATIONS[self.activation]
        for layer in self.hidden:
            x = act(layer(x))
        return x

    def __call__(self, x: jax.Array) -> jax.Array:
        """``(..., in_dim) -> (..., out_dim)``."""
        return self.out(self.torso(x))


def combine_moments(
    mean: jax.Array, var: jax.Array, count: jax.Array, batch: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Running mean/variance updated with ``batch (n, *mean.shape)`` (Chan et al.'s parallel formula, as SB3's
    ``RunningMeanStd``). Returns the new ``(mean, var, count)``."""
    b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
    delta = b_mean - mean
    total = count + b_count
    new_mean = mean + delta * b_count / total
    m2 = var * count + b_var * b_count + delta**2 * count * b_count / total
    return new_mean, m2 / total, total


class ObsStat(nnx.Variable):
    """Running observation statistics: state of the network, but not trained by gradients."""


class ObsNorm(nnx.Module):
    """``x -> clip((x - mean) / sqrt(var + 1e-8), -clip, clip)`` with running statistics (SB3 VecNormalize).

    Args:
      dim: feature size.
      clip: bound of the normalized features.
    """

    def __init__(self, dim: int, clip: float = 10.0):
        self.mean = ObsStat(jnp.zeros((dim,), jnp.float32))
        self.var = ObsStat(jnp.ones((dim,), jnp.float32))
        self.count = ObsStat(jnp.asarray(1e-4, jnp.float32))
        self.clip = clip

    def __call__(self, x: jax.Array) -> jax.Array:
        """``(..., dim) -> (..., dim)``."""
        return jnp.clip((x - self.mean[...]) / jnp.sqrt(self.var[...] + 1e-8), -self.clip, self.clip)

    def update(self, x: jax.Array) -> None:
        """Fold ``x (..., dim)`` into the statistics (in place on the module)."""
        batch = x.reshape(-1, x.shape[-1]).astype(jnp.float32)
        mean, var, count = combine_moments(self.mean[...], self.var[...], self.count[...], batch)
        self.mean[...], self.var[...], self.count[...] = mean, var, count


class QNetwork(nnx.Module):
    """Action values of a discrete-action agent: ``obs (..., obs_dim) -> Q (..., num_actions)``, ReLU MLP.

    Args:
      obs_dim: encoded observation size (see :func:`obs_encoder`).
      num_actions: number of discrete actions.
      hidden: hidden layer widths.
      layer_norm: LayerNorm before each hidden ReLU (``dense -> LayerNorm -> ReLU``, PQN's network: Gallici et
        al. 2024 show it keeps TD learning stable without a target network).
      normalize_obs: hold an :class:`ObsNorm` (updated by the training loop) and normalize observations with it.
    """

    def __init__(self, obs_dim: int, num_actions: int, hidden: Sequence[int] = (64, 64), *,
                 layer_norm: bool = False, normalize_obs: bool = False, rngs: nnx.Rngs):  # fmt: skip
        self.obs_norm = ObsNorm(obs_dim) if normalize_obs else None
        self.mlp = MLP(obs_dim, hidden, num_actions, activation="relu", out_gain=1.0, rngs=rngs)
        self.norms = nnx.List([nnx.LayerNorm(n, rngs=rngs) for n in hidden]) if layer_norm else None

    def __call__(self, obs: jax.Array) -> jax.Array:
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self.norms is None:
            return self.mlp(obs)
        x = obs
        for layer, norm in zip(self.mlp.hidden, self.norms):
            x = jax.nn.relu(norm(layer(x)))
        return self.mlp.out(x)


class ActorCritic(PolicyNetwork):
    """Policy and value MLPs with a categorical (discrete) or diagonal-Gaussian (continuous) policy head.

    Args:
      obs_dim: encoded observation size.
      action_dim: number of actions (discrete) or action dimensions (continuous).
      hidden: hidden layer widths of the actor and of the critic (or of their common torso).
      continuous: diagonal Gaussian head with a state-independent learned ``log_std`` instead of logits.
      shared_torso: one torso feeding both heads (the SB3 ``share_features_extractor`` style) instead of two
        separate MLPs (the SB3/CleanRL default for MLP policies).
      activation: ``"tanh"`` or ``"relu"``.
      log_std_init: initial log standard deviation of the Gaussian head.
      normalize_obs: hold an :class:`ObsNorm` (its statistics are :class:`ObsStat` variables, updated by the
        training loop with ``model.obs_norm.update``) and normalize observations with it.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        continuous: bool = False,
        shared_torso: bool = False,
        activation: str = "tanh",
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        rngs: nnx.Rngs,
    ):
        self.obs_norm = ObsNorm(obs_dim) if normalize_obs else None
        self.continuous = continuous
        self.shared_torso = shared_torso
        self.activation = activation
        feat = hidden[-1] if hidden else obs_dim
        if shared_torso:
            # obs -> hidden[:-1] -> hidden[-1], activated: the features both linear heads read.
            self.body = (
                MLP(obs_dim, hidden[:-1], feat, activation=activation, out_gain=math.sqrt(2.0), rngs=rngs)
                if hidden
                else None
            )
            self.actor = _linear(feat, action_dim, 0.01, rngs)
            self.critic = _linear(feat, 1, 1.0, rngs)
        else:
            self.actor = MLP(obs_dim, hidden, action_dim, activation=activation, out_gain=0.01, rngs=rngs)
            self.critic = MLP(obs_dim, hidden, 1, activation=activation, out_gain=1.0, rngs=rngs)
        if continuous:
            self.log_std = nnx.Param(jnp.full((action_dim,), log_std_init, jnp.float32))

    def __call__(self, obs: jax.Array, carry: Any = (), reset: Any = None):
        """``obs (..., obs_dim)`` -> (policy distribution over actions ``(..., )`` or ``(..., action_dim)``,
        value ``(...,)``, ``carry`` unchanged)."""
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self.shared_torso:
            h = obs if self.body is None else ACTIVATIONS[self.activation](self.body(obs))
            head, value = self.actor(h), self.critic(h)
        else:
            head, value = self.actor(obs), self.critic(obs)
        dist = policy_distribution(head, self.log_std[...] if self.continuous else None)
        return dist, value[..., 0], carry


class GRUActorCritic(PolicyNetwork):
    """A recurrent actor-critic: ``obs -> Linear(H) + activation -> GRU(H) -> actor and critic MLPs``, with
    ``H = hidden[0]`` and the heads' hidden layers ``hidden[1:]`` (PureJaxRL's ``ppo_rnn`` shape).

    The GRU state is the carry, ``(..., H)`` float32, zero at an episode's start: ``reset (...)`` bool zeroes it
    before the step. Args as :class:`ActorCritic` (no shared torso: the GRU is the shared part).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        continuous: bool = False,
        activation: str = "tanh",
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        rngs: nnx.Rngs,
    ):
        if not hidden:
            raise ValueError("hidden=() is invalid for a GRU network: must give at least the GRU width")
        size = hidden[0]
        self.obs_norm = ObsNorm(obs_dim) if normalize_obs else None
        self.embed = _linear(obs_dim, size, math.sqrt(2.0), rngs)
        self.gru = nnx.GRUCell(
            size, size, kernel_init=orthogonal(1.0), recurrent_kernel_init=orthogonal(1.0),
            bias_init=nnx.initializers.zeros_init(), rngs=rngs,
        )  # fmt: skip
        self.actor = MLP(size, hidden[1:], action_dim, activation=activation, out_gain=0.01, rngs=rngs)
        self.critic = MLP(size, hidden[1:], 1, activation=activation, out_gain=1.0, rngs=rngs)
        self.size, self.activation, self.continuous = size, activation, continuous
        if continuous:
            self.log_std = nnx.Param(jnp.full((action_dim,), log_std_init, jnp.float32))

    def initial_carry(self, batch_shape: tuple[int, ...]) -> jax.Array:
        """The GRU state at an episode's start: zeros ``(*batch_shape, H)``."""
        return jnp.zeros((*batch_shape, self.size), jnp.float32)

    def __call__(self, obs: jax.Array, carry: jax.Array, reset: jax.Array):
        """``obs (..., obs_dim)``, ``carry (..., H)``, ``reset (...)`` -> (distribution, value ``(...,)``, carry)."""
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        carry = jnp.where(reset[..., None], 0.0, carry)
        x = ACTIVATIONS[self.activation](self.embed(obs))
        lead = x.shape[:-1]  # GRUCell wants one batch axis
        carry, h = self.gru(carry.reshape(-1, self.size), x.reshape(-1, self.size))
        carry, h = carry.reshape(*lead, self.size), h.reshape(*lead, self.size)
        dist = policy_distribution(self.actor(h), self.log_std[...] if self.continuous else None)
        return dist, self.critic(h)[..., 0], carry


def policy_distribution(head: jax.Array, log_std: jax.Array | None) -> distrax.Distribution:
    """Categorical over ``head`` logits when ``log_std`` is None, else diagonal Gaussian (mean ``head``)."""
    if log_std is None:
        return distrax.Categorical(logits=head)
    return distrax.MultivariateNormalDiag(head, jnp.broadcast_to(jnp.exp(log_std), head.shape))


def obs_encoder(env: Any, env_params: Any) -> tuple[int, Callable[[jax.Array], jax.Array]]:
    """How observations of ``env`` enter a network.

    Box observations of shape ``s`` are flattened to ``prod(s)`` float32 features; Discrete(n) observations
    (Taxi's int state) become one-hot vectors of size n.

    Returns:
      ``(obs_dim, encode)`` where ``encode(obs (..., *s)) -> (..., obs_dim)`` float32 keeps any leading batch axes.
    Raises:
      ValueError: another observation space type (its name is in the message).
    """
    space = env.observation_space(env_params)
    if isinstance(space, spaces.Discrete):
        n = int(space.n)
        return n, lambda obs: jax.nn.one_hot(obs, n, dtype=jnp.float32)
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        dim = int(math.prod(shape))

        def encode(obs: jax.Array) -> jax.Array:
            obs = jnp.asarray(obs, jnp.float32)
            return obs.reshape(obs.shape[: obs.ndim - len(shape)] + (dim,))

        return dim, encode
    raise ValueError(
        f"observation space {type(space).__name__} is not supported: must be a gymnax Box or Discrete space"
    )


def action_spec(env: Any, env_params: Any) -> tuple[bool, int, tuple[jax.Array, jax.Array] | None]:
    """``(continuous, action_dim, (low, high) or None)`` of ``env``'s action space.

    Discrete(n) gives ``(False, n, None)``; Box of shape ``s`` gives ``(True, prod(s), (low, high))`` with
    float32 bounds of shape ``(prod(s),)`` (actions are clipped to them before stepping the environment).
    """
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        return False, int(space.n), None
    if isinstance(space, spaces.Box):
        dim = int(math.prod(space.shape)) if space.shape else 1
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (dim,))
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), (dim,))
        return True, dim, (low, high)
    raise ValueError(
        f"action space {type(space).__name__} is not supported: must be a gymnax Box or Discrete space"
    )
