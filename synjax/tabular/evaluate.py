"""Greedy evaluation of any (500, 6) Taxi value table, jit-able and vmappable (tabular Q, STDP weights, ...).

- :func:`greedy_returns_all_starts`: dry Taxi, exact: the greedy policy's return from each of the 300 start states
  (each start once, at most ``max_steps`` steps). The dynamics are deterministic, so the episode from ``s`` is the
  orbit of one map ``f(s) = next state under argmax``; its H-step return is computed by pointer doubling
  (``log2 H`` gathers over 501 states, an absorbing state standing for "delivered") instead of H steps.
- :func:`expected_greedy_returns_all_starts`: any variant whose MDP is known (dry or rainy): the exact expected
  return by backward induction over the horizon (H gathers over 500 x 3 outcomes).
- :func:`sampled_greedy_return`: Monte Carlo through :class:`synjax.envs.taxi.Taxi` with any ``EnvParams``
  (rainy, fickle passenger), for variants without a known table.

The greedy action is ``argmax`` over the row, ties to the lowest action index (as ``numpy.argmax``).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from synjax.envs import taxi
from synjax.tabular.value_iteration import sparse_model

_ABSORB = taxi.NUM_STATES  # index of the "delivered" absorbing state in the doubling tables


def greedy_policy(q: jax.Array) -> jax.Array:
    """Greedy action of every state: (500, 6) -> (500,) int32 (ties to the lowest index)."""
    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def _check_table(q: jax.Array) -> None:
    chex.assert_shape(q, (taxi.NUM_STATES, taxi.NUM_ACTIONS))


def greedy_outcomes_all_starts(q: jax.Array, max_steps: int = 200) -> tuple[jax.Array, jax.Array]:
    """Exact greedy episodes of dry Taxi from every start state.

    Args:
      q: (500, 6) value table, any float dtype.
      max_steps: episode cap (Taxi truncates at 200), a Python int >= 1.
    Returns:
      (returns, delivered): (300,) float32 undiscounted episode returns and (300,) bool "the passenger was
      delivered within max_steps", for the starts in ``taxi.start_states()`` order.
    """
    _check_table(q)
    if int(max_steps) < 1:
        raise ValueError(f"max_steps={max_steps!r} is invalid: must be an integer >= 1")
    model = sparse_model(False)
    pi = greedy_policy(q)
    s = jnp.arange(taxi.NUM_STATES)
    nxt = jnp.asarray(model.next[..., 0])[s, pi]
    term = jnp.asarray(model.terminal)[s, pi]
    # Power tables of f: state after 2^k steps and the reward collected on the way; "delivered" absorbs with 0.
    step_to = jnp.append(jnp.where(term, _ABSORB, nxt), _ABSORB).astype(jnp.int32)
    step_ret = jnp.append(jnp.asarray(model.reward, jnp.float32)[s, pi], 0.0)
    cur = jnp.asarray(model.starts)
    ret = jnp.zeros(cur.shape, jnp.float32)
    h = int(max_steps)
    while h:
        if h & 1:
            ret = ret + step_ret[cur]
            cur = step_to[cur]
        h >>= 1
        if h:
            step_ret = step_ret + step_ret[step_to]
            step_to = step_to[step_to]
    return ret, cur == _ABSORB


def greedy_returns_all_starts(q: jax.Array, max_steps: int = 200) -> jax.Array:
    """Exact return of the greedy policy of ``q`` (500, 6) from each of the 300 dry-Taxi starts: (300,) float32."""
    return greedy_outcomes_all_starts(q, max_steps)[0]


def expected_greedy_outcomes_all_starts(
    q: jax.Array, max_steps: int = 200, is_rainy: bool = False, rainy_probability: float = 0.8
) -> tuple[jax.Array, jax.Array]:
    """Exact expected greedy return and delivery probability from every start, for a Taxi variant with a table.

    Args:
      q: (500, 6) value table.
      max_steps: episode cap, a Python int >= 1.
      is_rainy: the rainy variant (a Python bool; it selects a constant table).
      rainy_probability: rainy only: the probability that a move goes the intended way (a Python float).
    Returns:
      (returns, delivered): (300,) float32 expected undiscounted returns and delivery probabilities.
    """
    _check_table(q)
    if int(max_steps) < 1:
        raise ValueError(f"max_steps={max_steps!r} is invalid: must be an integer >= 1")
    model = sparse_model(bool(is_rainy), float(rainy_probability))
    pi = greedy_policy(q)
    s = jnp.arange(taxi.NUM_STATES)
    nxt = jnp.asarray(model.next)[s, pi]  # (500, 3)
    p = jnp.asarray(model.prob, jnp.float32)[s, pi]
    r = jnp.asarray(model.reward, jnp.float32)[s, pi]
    go_on = 1.0 - jnp.asarray(model.terminal, jnp.float32)[s, pi]
    done = 1.0 - go_on

    def backup(_, vd):
        v, d = vd
        return r + go_on * jnp.sum(p * v[nxt], -1), done + go_on * jnp.sum(p * d[nxt], -1)

    zeros = jnp.zeros(taxi.NUM_STATES, jnp.float32)
    v, d = jax.lax.fori_loop(0, int(max_steps), backup, (zeros, zeros))
    starts = jnp.asarray(model.starts)
    return v[starts], d[starts]


def expected_greedy_returns_all_starts(
    q: jax.Array, max_steps: int = 200, is_rainy: bool = False, rainy_probability: float = 0.8
) -> jax.Array:
    """Expected greedy return from each start (300,), see :func:`expected_greedy_outcomes_all_starts`."""
    return expected_greedy_outcomes_all_starts(q, max_steps, is_rainy, rainy_probability)[0]


def sampled_greedy_episodes(
    key: jax.Array, q: jax.Array, env_params: taxi.EnvParams, num_episodes: int
) -> tuple[jax.Array, jax.Array]:
    """Play ``num_episodes`` greedy episodes of :class:`~synjax.envs.taxi.Taxi` with ``env_params``.

    Each episode starts from ``env.reset`` (uniform over the 300 starts) and ends at the drop-off or at the
    env's truncation (``env_params.max_steps_in_episode``).
    Returns:
      (returns, delivered): (num_episodes,) float32 episode returns and bool deliveries.
    """
    _check_table(q)
    env = taxi.Taxi()
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), env_params)
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    n = int(num_episodes)

    def cond(c):
        return jnp.any(~c[4])

    def body(c):
        k, obs, state, ret, done, delivered = c
        k, sub = jax.random.split(k)
        obs2, state2, r, term, _ = step(jax.random.split(sub, n), state, greedy_policy(q[obs]), env_params)
        trunc = env.is_truncated(state2, env_params)
        live = ~done
        ret = ret + jnp.where(live, r, 0.0)
        delivered = delivered | (live & term)
        done = done | term | trunc
        keep = lambda new, old: jnp.where(live, new, old)
        return k, keep(obs2, obs), jax.tree.map(keep, state2, state), ret, done, delivered

    init = (run_key, obs, state, jnp.zeros(n, jnp.float32), jnp.zeros(n, bool), jnp.zeros(n, bool))
    *_, ret, _, delivered = jax.lax.while_loop(cond, body, init)
    return ret, delivered


def sampled_greedy_return(
    key: jax.Array, q: jax.Array, env_params: taxi.EnvParams, num_episodes: int
) -> jax.Array:
    """Mean greedy episode return over ``num_episodes`` sampled episodes (scalar float32); jit-able."""
    return sampled_greedy_episodes(key, q, env_params, num_episodes)[0].mean()


def start_states() -> np.ndarray:
    """The 300 start ids in the order the ``*_all_starts`` functions return them."""
    return taxi.start_states()
