"""Ground truth for Taxi: value iteration on the exact MDP (dry and rainy), Q*, and the optimal return.

Everything here is NumPy float64 on :func:`synjax.envs.taxi.transition_table`, written for exactness rather than
speed (a whole value iteration takes well under a second). Two kinds of optimum are computed:

- :func:`value_iteration`: the discounted (or, with ``gamma=1``, undiscounted stochastic-shortest-path) Q* of
  the infinite-horizon problem, iterated to a fixed point. Its row argmax is an optimal stationary policy.
- :func:`optimal_start_return`: the optimal **undiscounted expected return of a whole episode** (at most
  ``max_steps`` steps, Taxi's 200-step truncation by default) from the uniform distribution over the 300 start
  states, by backward induction over the horizon. This is the number learned policies are compared against
  (dry Taxi: 8.46..., the optimum that Gymnasium's docs quote).

:func:`policy_start_returns` evaluates any table's greedy policy exactly in the same terms.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from synjax.envs import taxi


class SparseModel(NamedTuple):
    """Taxi's MDP with at most ``K = 3`` outcomes per (state, action) (intended move and two lateral slips).

    next: (500, 6, 3) int32 next state ids (unused slots repeat a valid id with probability 0).
    prob: (500, 6, 3) float64 probabilities, summing to 1 over the last axis.
    reward: (500, 6) float64 reward of (s, a) (it does not depend on the next state in Taxi).
    terminal: (500, 6) bool, (s, a) ends the episode (the correct drop-off).
    starts: (300,) int32 start state ids (reset is uniform over them).
    """

    next: np.ndarray
    prob: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    starts: np.ndarray


@functools.lru_cache(maxsize=8)
def sparse_model(is_rainy: bool = False, rainy_probability: float = 0.8) -> SparseModel:
    """The exact Taxi MDP in :class:`SparseModel` form (cached; arrays are read-only).

    Args:
      is_rainy: Taxi-v4's rainy variant (moves slip sideways with probability ``1 - rainy_probability``).
      rainy_probability: probability that a rainy move goes the intended way, in [0, 1].
    """
    P, R, T = taxi.transition_table(bool(is_rainy), float(rainy_probability))
    k = 3
    order = np.argsort(-P, axis=-1, kind="stable")[..., :k]
    prob = np.take_along_axis(P, order, axis=-1)
    if not np.allclose(prob.sum(-1), 1.0, atol=1e-12):
        raise AssertionError("Taxi has more than 3 outcomes for some (state, action)")
    model = SparseModel(
        order.astype(np.int32), prob, R.astype(np.float64), T.astype(bool), taxi.start_states()
    )
    for a in model:
        a.setflags(write=False)
    return model


def _backup(model: SparseModel, v: np.ndarray, gamma: float) -> np.ndarray:
    """One Bellman backup: Q(s, a) = R(s, a) + gamma * (1 - T(s, a)) * E[v(s')]; shape (500, 6)."""
    return model.reward + gamma * (~model.terminal) * np.sum(model.prob * v[model.next], axis=-1)


class ValueIterationResult(NamedTuple):
    """q: (500, 6) Q*; v: (500,) V* = max_a Q*; iterations: sweeps done; residual: final max |change|."""

    q: np.ndarray
    v: np.ndarray
    iterations: int
    residual: float


def value_iteration(
    gamma: float = 0.95,
    is_rainy: bool = False,
    rainy_probability: float = 0.8,
    tol: float = 1e-10,
    max_iters: int = 100_000,
) -> ValueIterationResult:
    """Q* of Taxi by synchronous value iteration from V = 0.

    Args:
      gamma: discount in [0, 1]. ``gamma = 1`` solves the undiscounted stochastic shortest path problem (it
        converges on Taxi: every policy that never delivers has return -inf, and no step reward is positive).
      is_rainy: the rainy Taxi variant (see :func:`sparse_model`).
      rainy_probability: rainy only: the probability that a move goes the intended way.
      tol: stop when the largest change of V in a sweep is <= tol.
      max_iters: give up (RuntimeError) after this many sweeps.
    Returns:
      :class:`ValueIterationResult`. Terminal (s, a) pairs get Q = R (nothing after the drop-off).
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma={gamma!r} is invalid: must be in [0, 1]")
    model = sparse_model(is_rainy, rainy_probability)
    v = np.zeros(taxi.NUM_STATES)
    for it in range(1, max_iters + 1):
        q = _backup(model, v, gamma)
        v_new = q.max(axis=1)
        residual = float(np.max(np.abs(v_new - v)))
        v = v_new
        if residual <= tol:
            return ValueIterationResult(_backup(model, v, gamma), v, it, residual)
    raise RuntimeError(
        f"value iteration did not converge to {tol} in {max_iters} sweeps (last change {residual})"
    )


def bellman_residual(
    q: np.ndarray, gamma: float, is_rainy: bool = False, rainy_probability: float = 0.8
) -> float:
    """max |Q - T Q| of a (500, 6) table under the optimal Bellman operator (0 for Q*)."""
    model = sparse_model(is_rainy, rainy_probability)
    q = np.asarray(q, np.float64)
    return float(np.max(np.abs(q - _backup(model, q.max(axis=1), gamma))))


def optimal_finite_horizon_values(
    max_steps: int = 200, is_rainy: bool = False, rainy_probability: float = 0.8
) -> np.ndarray:
    """V*_H(s): the best undiscounted expected return of an episode of at most ``max_steps`` steps from s; (500,).

    Backward induction ``V_0 = 0``, ``V_k = max_a [R + (1 - T) E V_{k-1}(s')]``, exact for the truncated episode.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} is invalid: must be an integer >= 1")
    model = sparse_model(is_rainy, rainy_probability)
    v = np.zeros(taxi.NUM_STATES)
    for _ in range(max_steps):
        v = _backup(model, v, 1.0).max(axis=1)
    return v


def optimal_start_return(
    max_steps: int = 200, is_rainy: bool = False, rainy_probability: float = 0.8
) -> float:
    """The optimal undiscounted expected episode return from a uniform start (mean of V*_H over the 300 starts).

    Dry Taxi: 8.4633... (= 20 minus the mean shortest number of moves and pickups before the final drop-off).
    """
    model = sparse_model(is_rainy, rainy_probability)
    return float(optimal_finite_horizon_values(max_steps, is_rainy, rainy_probability)[model.starts].mean())


def policy_values(
    policy: np.ndarray, max_steps: int = 200, is_rainy: bool = False, rainy_probability: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Exact undiscounted expected return, and delivery probability, of a stationary policy over ``max_steps``.

    Args:
      policy: (500,) int action per state.
    Returns:
      (returns (500,), delivered (500,)): expected episode return from each state, and the probability that
      the passenger is delivered within ``max_steps`` steps.
    """
    model = sparse_model(is_rainy, rainy_probability)
    policy = np.asarray(policy, np.int64)
    s = np.arange(taxi.NUM_STATES)
    nxt, p = model.next[s, policy], model.prob[s, policy]
    r, t = model.reward[s, policy], model.terminal[s, policy]
    v = np.zeros(taxi.NUM_STATES)
    d = np.zeros(taxi.NUM_STATES)
    for _ in range(max_steps):
        v, d = r + ~t * np.sum(p * v[nxt], -1), t + ~t * np.sum(p * d[nxt], -1)
    return v, d


def policy_start_returns(
    q: np.ndarray, max_steps: int = 200, is_rainy: bool = False, rainy_probability: float = 0.8
) -> np.ndarray:
    """Exact expected return of the greedy policy of ``q`` (500, 6) from each of the 300 starts: (300,)."""
    model = sparse_model(is_rainy, rainy_probability)
    v, _ = policy_values(np.argmax(np.asarray(q), axis=1), max_steps, is_rainy, rainy_probability)
    return v[model.starts]
