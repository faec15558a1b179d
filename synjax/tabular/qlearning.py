"""Tabular Q-learning on Taxi as pure functions and one jit-able :class:`synjax.trainer.Trainer`.

The pieces (all pure, vectorized over leading axes):

- :func:`init`: the (num_states, num_actions) table.
- :func:`select_action`: epsilon-greedy or softmax (Boltzmann) action from uniforms drawn in advance.
- :func:`synjax.tabular.taxi_agent.exploration_schedule`: the per-episode decay ``max(end, start * decay**e)``.
- :func:`update` (= :func:`td_error` + :func:`apply_td`): the Q-learning update with correct targets:
  ``r + gamma * max Q(s')`` after a non-terminal transition (truncation by a step limit included: the episode
  stops but the state has a future), ``r`` alone after a terminal one (the drop-off).
- :mod:`synjax.tabular.taxi_model`: Taxi's dynamics from its exact transition table with pre-drawn uniforms.

:func:`make_train` assembles them into the original script's loop (config: :mod:`synjax.tabular.config`):
episodes of at most ``max_steps`` steps, in ``num_envs`` environments per seed (they share the table; updates
that hit the same (s, a) in one step are averaged), exploration decayed per episode, and an exact greedy
evaluation every ``eval_every`` episodes.

Why it is built the way it is (CPU, hundreds of seeds vmapped): the environment is stepped through the packed
transition table rather than ``Taxi.step`` (same distribution; one gather and no PRNG call inside); episodes
run back to back (auto-reset) in chunks of ``chunk_steps`` steps rather than one ``while_loop`` per episode, so
no lane idles while the longest episode of the batch finishes; a step draws two 32-bit random words (threefry
dominates a step's cost); and the loop over chunks has its own vmap rule (``jax.custom_batching.custom_vmap``),
because vmap's rule for a ``while_loop`` with a per-seed condition selects between old and new carry, the whole
(seeds, 500, 6) table included, on every iteration.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from synjax.envs import taxi
from synjax.envs.random_bits import uniform_from_bits
from synjax.runner.progress import report
from synjax.tabular.config import Exploration, TabularQConfig
from synjax.tabular.taxi_agent import (
    epsilon_greedy,
    exploration_schedule,
    final_metrics,
    greedy_eval,
    stretch_metrics,
)
from synjax.tabular.taxi_model import dynamics_table, gather_rows, model_reset, model_step
from synjax.trainer import Trainer, TrainOutput

# ---------------------------------------------------------------------------------------------- pure pieces


def init(
    num_states: int = taxi.NUM_STATES, num_actions: int = taxi.NUM_ACTIONS, value: float = 0.0
) -> jax.Array:
    """The initial table: (num_states, num_actions) float32 filled with ``value``."""
    return jnp.full((num_states, num_actions), value, jnp.float32)


def select_action(u: jax.Array, q_s: jax.Array, param: jax.Array, exploration: Exploration) -> jax.Array:
    """Explore from pre-drawn uniforms (so that a stretch of steps draws its randomness in one call).

    Args:
      u: (..., 2) uniforms in [0, 1).
      q_s: (..., A) the action values of the current state(s).
      param: (...) or scalar: epsilon (epsilon-greedy) or temperature > 0 (softmax).
      exploration: ``"epsilon"``: with probability epsilon a uniform random action (``floor(u1 * A)``), else the
        argmax (ties to the lowest index); ``"softmax"``: action ``a`` with probability
        ``softmax(q_s / temperature)[a]``, by inverse CDF of ``u1``.
    Returns:
      (...) int32 actions.
    """
    num_actions = q_s.shape[-1]
    if exploration == "epsilon":
        return epsilon_greedy(u, jnp.argmax(q_s, axis=-1).astype(jnp.int32), param, num_actions)
    if exploration == "softmax":
        probs = jax.nn.softmax(q_s / jnp.expand_dims(param, -1), axis=-1)
        cdf = jnp.cumsum(probs, axis=-1)[..., :-1]
        return jnp.sum(cdf <= u[..., 1:2], axis=-1).astype(jnp.int32)
    raise ValueError(f"exploration={exploration!r} is invalid: must be 'epsilon' or 'softmax'")


def td_error(
    q_sa: jax.Array, reward: jax.Array, next_max: jax.Array, terminated: jax.Array, gamma: float
) -> jax.Array:
    """``reward + gamma * next_max * (1 - terminated) - q_sa``: a terminal transition does not bootstrap."""
    return reward + gamma * jnp.where(terminated, 0.0, next_max) - q_sa


def apply_td(
    q: jax.Array,
    obs: jax.Array,
    action: jax.Array,
    delta: jax.Array,
    alpha: float,
    mask: jax.Array | None = None,
) -> jax.Array:
    """``q[s, a] += alpha * delta`` for a batch (B,) of transitions, ``mask`` (B,) bool selecting the applied ones.

    Transitions of one batch that hit the same (s, a) apply the mean of their TD errors.
    """
    w = jnp.ones(obs.shape, q.dtype) if mask is None else mask.astype(q.dtype)
    if obs.shape[0] == 1:
        return q.at[obs, action].add(alpha * w * delta, mode="promise_in_bounds")
    same = (obs[:, None] == obs[None, :]) & (action[:, None] == action[None, :])
    count = jnp.maximum(same.astype(q.dtype) @ w, 1.0)
    return q.at[obs, action].add(alpha * w * delta / count, mode="promise_in_bounds")


def update(
    q: jax.Array,
    obs: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    next_obs: jax.Array,
    terminated: jax.Array,
    alpha: float,
    gamma: float,
    mask: jax.Array | None = None,
) -> jax.Array:
    """One Q-learning update for a batch of transitions; returns the new table.

    ``q[s, a] += alpha * (r + gamma * max_a' q[s', a'] * (1 - terminated) - q[s, a])``. A terminated transition
    does not bootstrap; a truncated one (step limit) does, so pass ``terminated`` only for real episode ends.

    Args:
      q: (S, A) table.
      obs: (B,) or scalar int state ids.
      action: (B,) or scalar int action ids.
      next_obs: (B,) or scalar int next-state ids.
      reward: (B,) or scalar float.
      terminated: (B,) or scalar bool.
      mask: (B,) bool, transitions to apply (others are ignored); default all.
    Several transitions of one batch on the same (s, a) apply the mean of their TD errors (a single transition
    is the usual sequential rule).
    """
    chex.assert_rank(q, 2)
    obs, action = jnp.atleast_1d(obs), jnp.atleast_1d(action)
    reward, next_obs, terminated = (
        jnp.atleast_1d(reward),
        jnp.atleast_1d(next_obs),
        jnp.atleast_1d(terminated),
    )
    delta = td_error(q[obs, action], reward, jnp.max(q[next_obs], axis=-1), terminated, gamma)
    return apply_td(q, obs, action, delta, alpha, None if mask is None else jnp.atleast_1d(mask))


# ---------------------------------------------------------------------------------------------- training


@struct.dataclass
class TrainState:
    """One seed's training state between steps; per-env fields have shape (num_envs,).

    q: (500, 6) table; obs: current states; q_obs: (num_envs, 6) = ``q[obs]`` (kept in step with q);
    episode: index of each env's running episode among its own (env j's k-th episode is global episode
    ``k * num_envs + j``, which sets its exploration); ep_return, ep_length: of the running episode;
    sum_return, sum_length, sum_success: over the episodes finished in the current evaluation stretch;
    agent_steps: int32 steps taken so far.
    """

    q: jax.Array
    obs: jax.Array
    q_obs: jax.Array
    episode: jax.Array
    ep_return: jax.Array
    ep_length: jax.Array
    sum_return: jax.Array
    sum_length: jax.Array
    sum_success: jax.Array
    agent_steps: jax.Array


def random_words(config: TabularQConfig) -> int:
    """32-bit random words one env step draws: 2 (dry) or 3 (rainy), see :func:`step_uniforms`."""
    return 3 if config.is_rainy else 2


def step_uniforms(bits: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Uniforms of one step from its random words ``bits`` (..., 2 or 3) uint32.

    Returns (u_select (..., 2), u_start (...), u_rain (...)): the exploration coin and the action pick are the
    two 16-bit halves of word 0 (probabilities resolved to 2^-16, which halves the random bits a step needs:
    drawing them is the largest cost of a step on CPU), the next start state and the rain use 24 bits of words
    1 and 2 (rain is 0 without a third word: dry moves ignore it).
    """
    w0 = bits[..., 0]
    u_select = jnp.stack([uniform_from_bits(w0, 16), uniform_from_bits(w0, 16, offset=0)], -1)
    u_start = uniform_from_bits(bits[..., 1])
    u_rain = uniform_from_bits(bits[..., 2]) if bits.shape[-1] > 2 else jnp.zeros_like(u_start)
    return u_select, u_start, u_rain


def make_chunk(config: TabularQConfig):
    """``chunk(learner, bits, quota) -> learner``: ``bits.shape[0]`` steps of every env of one seed.

    ``bits`` (T, num_envs, :func:`random_words`) uint32 holds each step's randomness (see :func:`step_uniforms`).
    An env whose episode index has reached ``quota`` sits idle (its lane is masked). Episodes end at the
    drop-off (terminal), at ``max_steps`` or at the env's own 200-step limit (both truncations, which
    bootstrap), and the env resets at once.
    """
    n = config.num_envs
    # NumPy constants: make_train may run inside an outer trace (the runner's), and jnp arrays built there
    # would be its tracers, which the custom_vmap loop of make_train cannot close over.
    table = dynamics_table(config.is_rainy, config.rainy_probability)
    limit = min(config.max_steps, int(config.env_params.max_steps_in_episode))
    _, sched = config.schedule
    env_ids = np.arange(n, dtype=np.int32)
    actions = np.arange(taxi.NUM_ACTIONS, dtype=np.int32)

    def step(c: TrainState, bits: jax.Array, quota: jax.Array) -> TrainState:
        u_select, u_start, u_rain = step_uniforms(bits)
        active = c.episode < quota
        param = exploration_schedule(c.episode * n + env_ids, *sched)
        a = select_action(u_select, c.q_obs, param, config.exploration)
        s2, r, term = model_step(table, c.obs, a, u_rain)
        ret, length = c.ep_return + r, c.ep_length + 1
        end = term | (length >= limit)
        nxt = jnp.where(end, model_reset(u_start), s2)
        hit = actions == a[:, None]
        q_sa = jnp.sum(jnp.where(hit, c.q_obs, 0.0), -1)
        if n == 1:  # one gather for both rows, and patch the one entry the update changed
            pre = gather_rows(c.q, jnp.concatenate([s2, nxt]))
            q_s2, q_nxt = pre[:1], pre[1:]
            delta = td_error(q_sa, r, q_s2.max(-1), term, config.gamma)
            q = apply_td(c.q, c.obs, a, delta, config.alpha, active)
            new_sa = q_sa + config.alpha * delta
            q_nxt = jnp.where(((nxt == c.obs) & active)[:, None] & hit, new_sa[:, None], q_nxt)
        else:
            delta = td_error(q_sa, r, gather_rows(c.q, s2).max(-1), term, config.gamma)
            q = apply_td(c.q, c.obs, a, delta, config.alpha, active)
            q_nxt = gather_rows(q, jnp.where(active, nxt, c.obs))
        finished = end & active
        f = finished.astype(jnp.float32)
        keep = lambda new, old: jnp.where(active, new, old)
        return TrainState(
            q=q,
            obs=keep(nxt, c.obs),
            q_obs=q_nxt if n > 1 else jnp.where(active[:, None], q_nxt, c.q_obs),
            episode=c.episode + finished.astype(jnp.int32),
            ep_return=keep(jnp.where(end, 0.0, ret), c.ep_return),
            ep_length=keep(jnp.where(end, 0, length), c.ep_length),
            sum_return=c.sum_return + f * ret,
            sum_length=c.sum_length + f * length,
            sum_success=c.sum_success + f * term,
            agent_steps=c.agent_steps + jnp.sum(active.astype(jnp.int32)),
        )

    def chunk(c: TrainState, bits: jax.Array, quota: jax.Array) -> TrainState:
        return jax.lax.scan(lambda c, b: (step(c, b, quota), None), c, bits)[0]

    return chunk


def make_train(config: TabularQConfig) -> Trainer:
    """The :class:`Trainer` of one seed (``train(key) -> TrainOutput`` when called; pure, so
    ``jax.jit(jax.vmap(train))`` trains many seeds); a step is one evaluation point.

    Loop: a step per evaluation point; in each, chunks of ``chunk_steps`` steps run (a
    ``lax.while_loop``) until every env has finished its ``eval_every / num_envs`` episodes of the stretch;
    then the greedy policy is evaluated exactly.

    Output:
      params: (500, 6) float32 Q table.
      steps: (P,) int32 training episodes done at each evaluation point, P = num_episodes / eval_every.
      metrics (P,): ``train_return`` (mean return of the stretch's training episodes), ``episode_length``,
        ``success_rate`` (fraction of them ending with the drop-off), ``epsilon`` or ``temperature`` (that of
        the stretch's last episode), ``greedy_return`` (exact greedy mean return over the 300 starts, see
        :func:`synjax.tabular.taxi_agent.greedy_eval`).
      final: :func:`synjax.tabular.taxi_agent.final_metrics` (``greedy_return``, ``greedy_success``,
        ``solved``, ``episodes_to_solve``, rainy: ``greedy_return_sampled``).
      extras: ``agent_steps`` (int32 scalar, environment steps taken).
    """
    n = config.num_envs
    per_env = config.eval_every // n
    num_points = config.num_episodes // config.eval_every
    chunk = make_chunk(config)
    words = random_words(config)
    param_name, sched = config.schedule
    # About 20 progress reports: each carries the (batched) greedy return, which pins it after the stretch's
    # work but costs one host callback per seed.
    report_every = max(1, num_points // 20) * config.eval_every

    def draw(key):
        key, sub = jax.random.split(key)
        return key, jax.random.bits(sub, (config.chunk_steps, n, words), jnp.uint32)

    @jax.custom_batching.custom_vmap
    def run_stretch(c: TrainState, key: jax.Array, quota: jax.Array) -> tuple[TrainState, jax.Array]:
        """Chunks of steps until every env has played its episodes up to ``quota``."""

        def body(ck):
            c, key = ck
            key, bits = draw(key)
            return chunk(c, bits, quota), key

        return jax.lax.while_loop(lambda ck: jnp.any(ck[0].episode < quota), body, (c, key))

    @run_stretch.def_vmap
    def _run_stretch_batched(axis_size, in_batched, c, key, quota):
        # vmap's own rule for a while_loop whose condition differs per seed would select between the old and
        # new carry, the whole (seeds, 500, 6) table included, after every chunk. Here the loop runs while any
        # seed is unfinished, and a finished seed's chunk is a no-op by construction (every env is idle, so
        # nothing changes) and its key is not advanced: each seed's numbers do not depend on its batch-mates.
        c, key, quota = jax.tree.map(
            lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))),
            (c, key, quota),
            tuple(in_batched),
        )

        def unfinished(c):
            return jnp.any(c.episode < quota[:, None], axis=1)

        impl = jax.random.key_impl(key)

        def body(ck):
            c, raw = ck
            live = unfinished(c)
            new_key, bits = jax.vmap(draw)(jax.random.wrap_key_data(raw, impl=impl))
            c = jax.vmap(chunk)(c, bits, quota)
            return c, jnp.where(live[:, None], jax.random.key_data(new_key), raw)

        c, raw = jax.lax.while_loop(
            lambda ck: jnp.any(unfinished(ck[0])), body, (c, jax.random.key_data(key))
        )
        out = (c, jax.random.wrap_key_data(raw, impl=impl))
        return out, jax.tree.map(lambda _: True, out)

    def init_state(key: jax.Array):
        """(learner, training key, evaluation key)."""
        key, reset_key, train_key, eval_key = jax.random.split(key, 4)
        q = init(value=config.q_init)
        obs = model_reset(jax.random.uniform(reset_key, (n,)))
        zf, zi = jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.int32)
        return TrainState(q, obs, q[obs], zi, zf, zi, zf, zf, zf, jnp.int32(0)), train_key, eval_key

    def step(state, p: jax.Array):
        """Evaluation point ``p``: the stretch of episodes up to it, then the exact greedy evaluation."""
        c, key, eval_key = state
        c, key = run_stretch(c, key, (p + 1) * per_env)
        greedy_ret, _ = greedy_eval(c.q, config)
        done = (p + 1) * config.eval_every
        report(done, greedy_ret, every=report_every)
        k = float(config.eval_every)
        metrics = stretch_metrics(
            c.sum_return.sum(), c.sum_length.sum(), c.sum_success.sum(), k,
            param_name, exploration_schedule(done - 1, *sched), greedy_ret,
        )  # fmt: skip
        zero = jnp.zeros(n, jnp.float32)
        return (c.replace(sum_return=zero, sum_length=zero, sum_success=zero), key, eval_key), metrics

    def finish(state, metrics) -> TrainOutput:
        c, _, eval_key = state
        steps = ((jnp.arange(num_points) + 1) * config.eval_every).astype(jnp.int32)
        final = final_metrics(eval_key, c.q, metrics["greedy_return"], steps, config)
        return TrainOutput(
            params=c.q, steps=steps, metrics=metrics, final=final, extras={"agent_steps": c.agent_steps}
        )

    return Trainer(init_state, step, finish, num_points)
