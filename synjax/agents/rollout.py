"""On-policy rollouts: what acting records (:class:`Transition`), GAE and the training :class:`Batch`.

A batch comes in one of two layouts. Feedforward policies get a *flat* batch (leaves (B, ...), B = T * N), whose
minibatches are shuffled transitions; stateful policies get a *sequence* batch (leaves (T, N, ...) plus the
carry at the rollout's start, (N, ...)), whose minibatches are groups of environments replayed in time order
(:func:`synjax.agents.policy.unroll`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from synjax.agents.networks import combine_moments
from synjax.agents.policy import PolicyApply, is_stateful, unroll


@struct.dataclass
class Transition:
    """One rollout step of every environment (leaves (N, ...); a rollout stacks them to (T, N, ...)).

    Only what acting produces: values are computed afterwards for the whole rollout at once
    (:func:`rollout_batch`), which costs one batched forward pass instead of two small ones per step.

    Attributes:
      obs: (N, *obs_shape) raw observation the action was chosen from.
      action: (N,) int32 or (N, action_dim) float32 (the unclipped Gaussian sample).
      log_prob: (N,) log-probability of ``action`` under the collecting policy.
      reward: (N,) float32 reward (scaled if return normalization is on).
      terminated: (N,) bool, the episode ended in a terminal state at this step.
      truncated: (N,) bool, the episode was cut by a time limit at this step.
      final_obs: (N, *obs_shape) raw observation the step reached (before any auto-reset:
        ``info["final_observation"]``).
      first: (N,) bool, ``obs`` is the first of its episode (a stateful policy reset its carry before acting).
    """

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    first: jax.Array


@struct.dataclass
class Batch:
    """What the losses consume: flat (leaves (B, ...), ``carry = ()``) or sequences (leaves (T, N, ...), ``carry``
    the policy's carry at the rollout's start, leaves (N, ...)).

    Attributes:
      obs: encoded observations; action, log_prob: what the collecting policy did and its log-probability;
      value: V(s) under the collecting network; advantage, returns: GAE advantages and ``advantage + value``;
      first: bool, the step starts an episode (the carry is reset before it); carry: see above.
    """

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    returns: jax.Array
    first: jax.Array
    carry: Any = ()

    @property
    def is_sequence(self) -> bool:
        return is_stateful(self.carry)


def gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float | jax.Array,
    gae_lambda: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimation (Schulman et al. 2016) over a rollout.

    Args:
      rewards: (T, ...) rewards r_t (truncation bootstraps already added, see :func:`bootstrap_truncated`).
      values: (T, ...) V(s_t).
      dones: (T, ...) 1.0 where the episode ended at step t (no bootstrapping across it).
      last_value: (...) V(s_T), the observation after the rollout.
      gamma: discount.
      gae_lambda: GAE lambda; ``gae_lambda=1`` gives n-step returns minus V.
    Returns:
      ``(advantages, returns)``, both (T, ...), with ``returns = advantages + values``.
    """

    def step(carry, x):
        next_adv, next_value = carry
        r, v, d = x
        live = 1.0 - d
        delta = r + gamma * next_value * live - v
        adv = delta + gamma * gae_lambda * live * next_adv
        return (adv, v), adv

    init = (jnp.zeros_like(last_value), last_value)
    _, adv = jax.lax.scan(step, init, (rewards, values, dones.astype(rewards.dtype)), reverse=True)
    return adv, adv + values


def bootstrap_truncated(
    reward: jax.Array, final_value: jax.Array, terminated: jax.Array, truncated: jax.Array, gamma: Any
) -> jax.Array:
    """``reward + gamma * V(final obs)`` where the episode was truncated and not terminated, else ``reward``.

    With this, GAE may treat every episode end as terminal: a time limit still credits the value of the state
    it cut off (read from ``info["final_observation"]``), a true termination does not.
    """
    cut = jnp.logical_and(truncated, jnp.logical_not(terminated))
    return reward + gamma * final_value * cut.astype(reward.dtype)


def rollout_batch(
    apply: PolicyApply,
    params: Any,
    encode: Callable[[jax.Array], jax.Array],
    traj: Transition,
    carry: Any,
    last_obs: jax.Array,
    last_first: jax.Array,
    gamma: Any,
    gae_lambda: Any,
) -> Batch:
    """The training :class:`Batch` of a rollout ``traj`` (leaves (T, N, ...)) collected from policy ``carry``.

    Values: feedforward, one forward pass of the critic over every observation, every final observation and
    ``last_obs`` (N, ...); stateful, the rollout replayed from ``carry`` (the values of the final observations
    use the carry after their step, and V(s_T) the carry at the end, reset where ``last_first``). Truncated
    steps are bootstrapped (:func:`bootstrap_truncated`), then :func:`gae` gives advantages and returns.
    """
    t, n = traj.reward.shape
    if is_stateful(carry):
        obs = encode(traj.obs)
        _, values, carries = unroll(apply, params, carry, obs, traj.first)
        last_value = apply(params, carries[-1], encode(last_obs), last_first)[1]
        no_reset = jnp.zeros((n,), bool)
        final_values = jax.vmap(lambda c, o: apply(params, c, o, no_reset)[1])(carries, encode(traj.final_obs))
    else:
        raw = jnp.concatenate([traj.obs, last_obs[None], traj.final_obs])
        _, v, _ = apply(params, (), encode(raw), jnp.zeros(raw.shape[:2], bool))  # (2T + 1, N)
        values, last_value, final_values = v[:t], v[t], v[t + 1 :]
    reward = bootstrap_truncated(traj.reward, final_values, traj.terminated, traj.truncated, gamma)
    done = jnp.logical_or(traj.terminated, traj.truncated).astype(jnp.float32)
    adv, ret = gae(reward, values, done, last_value, gamma, gae_lambda)
    if is_stateful(carry):
        return Batch(obs, traj.action, traj.log_prob, values, adv, ret, traj.first, carry)
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])
    return Batch(
        encode(flat(traj.obs)), flat(traj.action), flat(traj.log_prob), flat(values), flat(adv), flat(ret),
        flat(traj.first),
    )  # fmt: skip


def minibatch_indices(key: jax.Array, size: int, num_minibatches: int) -> jax.Array:
    """Indices ``(num_minibatches, size // num_minibatches)`` of one shuffled pass over ``size`` items (in order
    when there is one minibatch: its order does not change the mean loss)."""
    if num_minibatches == 1:
        return jnp.arange(size).reshape(1, size)
    return jax.random.permutation(key, size).reshape(num_minibatches, size // num_minibatches)


def minibatches(batch: Batch, key: jax.Array, num_minibatches: int) -> Batch:
    """One shuffled pass over ``batch`` as ``num_minibatches`` minibatches stacked on a new leading axis.

    Flat: ``(M, B / M, ...)`` shuffled transitions (in order when M = 1: the order does not change the mean
    loss). Sequences: ``(M, T, N / M, ...)`` groups of environments (carry ``(M, N / M, ...)``), time kept.
    """
    if batch.is_sequence:
        n = batch.first.shape[1]
        if n % num_minibatches:
            raise ValueError(
                f"num_minibatches={num_minibatches} is invalid: must be a divisor of num_envs = {n} (a stateful "
                "network trains on whole environment sequences)"
            )
        idx = minibatch_indices(key, n, num_minibatches)
        seq = lambda x: jnp.moveaxis(x[:, idx], 1, 0)  # (T, M, size, ...) -> (M, T, size, ...)
        fields = {k: seq(getattr(batch, k)) for k in ("obs", "action", "log_prob", "value", "advantage",
                                                       "returns", "first")}  # fmt: skip
        return Batch(**fields, carry=jax.tree.map(lambda c: c[idx], batch.carry))
    idx = minibatch_indices(key, batch.obs.shape[0], num_minibatches)
    return jax.tree.map(lambda x: x[idx], batch)


@struct.dataclass
class ReturnNorm:
    """Reward scaling by the running std of the discounted return (SB3 ``VecNormalize(norm_reward=True)``).

    Attributes:
      ret: (N,) discounted return of each running episode.
      mean: running mean of ``ret`` (a scalar).
      var: running variance of ``ret`` (a scalar).
      count: how many values of ``ret`` the moments hold (a scalar).
    """

    ret: jax.Array
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def zeros(cls, num_envs: int) -> ReturnNorm:
        return cls(jnp.zeros((num_envs,)), jnp.zeros(()), jnp.ones(()), jnp.asarray(1e-4))

    def __call__(self, reward: jax.Array, done: jax.Array, gamma: Any, clip: float = 10.0):
        """Scale ``reward (N,)``; returns ``(scaled reward (N,), new state)``."""
        ret = self.ret * gamma + reward
        mean, var, count = combine_moments(self.mean, self.var, self.count, ret)
        scaled = jnp.clip(reward / jnp.sqrt(var + 1e-8), -clip, clip)
        return scaled, ReturnNorm(jnp.where(done, 0.0, ret), mean, var, count)
