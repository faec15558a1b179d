"""The STDP + Q-learning hybrid on Taxi: Q-values are synaptic weights, learned by reward-modulated STDP.

The network (one agent per seed, one environment step at a time, as in the original notebook):

- 500 state neurons; in state ``s`` only neuron ``s`` fires, a regular or Poisson train of ``snn_steps`` time
  steps (:mod:`synjax.snn.encoders`). Its synapses ``W[s]`` (row of the 500 x 6 weight matrix) inject the current
  ``x(t) * W[s, a]`` into 6 leaky integrate-and-fire action neurons (:mod:`synjax.snn.neurons`), with optional
  lateral inhibition among them.
- **Decision window**: the action is read out from the action neurons' spikes (most spikes, ties to the first
  spike; see :func:`synjax.snn.neurons.spike_count_winner`). Exploration: epsilon-greedy on top of the read-out,
  or a Gaussian noise current into the action neurons. With both off the chosen action is ``argmax W[s]``.
- **Learning window** (rule ``"rstdp"``): the state neuron fires again while an efference copy of the taken
  action drives that action's neuron (current ``efference``); lateral inhibition keeps the others silent. The
  pair-STDP terms between the state neuron and the action neurons form a tag, scaled by
  ``1 / max_potentiation`` so a window adds at most 1 to the eligibility; the eligibility decays with ``tau_e``
  environment steps (:func:`synjax.snn.plasticity.reward_modulated_stdp`, in the form that keeps the recently
  tagged rows only: :func:`synjax.snn.sparse_plasticity.sparse_reward_modulated_stdp`), is cleared at the end of
  an episode, and is
  modulated by the TD error computed from the weights:
  ``delta = reward_scale * r + gamma * max W[s'] * (1 - terminated) - W[s, a]``, ``W += eta * delta * e``,
  kept in ``[w_min, w_max]``.

Reward scaling: Taxi's rewards (-1, -10, +20) are multiplied by ``reward_scale = 1/20``, so the drop-off is worth
1 = ``w_max`` and Q* (dry: -13.1 .. 20, rainy: -17.0 .. 20 in reward units) lies inside [-1, 1].

Ablations (``rule``), same code path otherwise:

- ``"td_only"``: no STDP, no eligibility: ``W[s, a] += eta * delta`` on the taken synapse only.
- ``"original"``: the original notebook's rule: the TD step on the taken synapse, then ``+original_lr`` on the
  greedy action's synapse (argmax of the row before the update) and ``-original_lr`` on the others, whatever
  the reward (with correct terminal handling and the weight bounds, which the notebook lacked).

The config is :class:`synjax.snn.stdp_q_config.StdpQConfig`; :func:`make_train` returns a
:class:`synjax.trainer.Trainer` whose step is one evaluation point.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from synjax.envs import taxi
from synjax.runner.progress import report
from synjax.snn import encoders, neurons, plasticity, sparse_plasticity
from synjax.snn.stdp_q_config import StdpQConfig
from synjax.tabular.taxi_agent import (
    epsilon_greedy,
    exploration_schedule,
    final_metrics,
    greedy_eval,
    stretch_metrics,
)
from synjax.trainer import Trainer, TrainOutput

# ---------------------------------------------------------------------------------------------- the network


def init_weights(key: jax.Array, config: StdpQConfig) -> jax.Array:
    """(500, 6) float32 weights, uniform in ``[w_init_low, w_init_high]``."""
    return jax.random.uniform(
        key, (taxi.NUM_STATES, taxi.NUM_ACTIONS), jnp.float32, config.w_init_low, config.w_init_high
    )


def input_train(key: jax.Array, config: StdpQConfig) -> jax.Array:
    """(snn_steps,) spike train of the active state neuron."""
    return encoders.spike_train(key, config.encoding, config.snn_steps, config.input_rate)


def simulate(current: jax.Array, config: StdpQConfig) -> neurons.Window:
    """One window of the action neurons driven by ``current`` (snn_steps, 6), with the config's leak, threshold,
    reset and lateral inhibition (:func:`synjax.snn.neurons.simulate`)."""
    return neurons.simulate(
        current,
        beta=config.beta,
        threshold=config.threshold,
        reset=config.reset,
        inhibition=config.inhibition,
    )


def decide(key: jax.Array, weights: jax.Array, s: jax.Array, noise_std: jax.Array, config: StdpQConfig):
    """Decision window: the action read out from the action neurons' spikes in state ``s``.

    Args:
      key: PRNG key (Poisson input and noise current).
      weights: (500, 6); s: int scalar state.
      noise_std: std of the Gaussian noise current per neuron and time step (0: none).
    Returns:
      (action int32 scalar, :class:`synjax.snn.neurons.Window` of (snn_steps, 6)).
    """
    k_in, k_noise = jax.random.split(key) if config.exploration == "noise" else (key, key)
    current = encoders.onehot_current(s, input_train(k_in, config), weights)
    if config.exploration == "noise":
        current = current + noise_std * jax.random.normal(k_noise, current.shape, current.dtype)
    window = simulate(current, config)
    return neurons.spike_count_winner(window), window


def greedy_action(weights: jax.Array, s: jax.Array, config: StdpQConfig) -> jax.Array:
    """The noise-free spiking read-out in state ``s`` (regular input; equals ``argmax weights[s]``)."""
    cfg = dataclasses.replace(config, encoding="regular", exploration="epsilon")
    return decide(jax.random.key(0), weights, s, jnp.float32(0.0), cfg)[0]


def three_factor_rule(config: StdpQConfig) -> sparse_plasticity.SparseRule:
    """The R-STDP rule of the hybrid (:func:`synjax.snn.sparse_plasticity.sparse_reward_modulated_stdp`), its tag
    normalized by :func:`synjax.snn.plasticity.max_potentiation`, with room for every row tagged within an episode
    or within ``tau_e * ln(1e6)`` steps (what it drops is < 1e-6 of the largest eligibility; nothing when the
    capacity reaches ``max_steps``, since it is cleared at every episode end)."""
    norm = plasticity.max_potentiation(config.a_plus, config.tau_plus, config.snn_steps)
    return sparse_plasticity.sparse_reward_modulated_stdp(
        eta=config.eta,
        tau_e=config.tau_e,
        capacity=sparse_plasticity.sparse_capacity(config.tau_e, 1e-6, max_rows=config.max_steps),
        a_plus=config.a_plus,
        a_minus=config.a_minus,
        tau_plus=config.tau_plus,
        tau_minus=config.tau_minus,
        tag_scale=1.0 / norm,
        trace=config.trace,
        eligibility_max=config.eligibility_max,
        bounds=config.bounds,
        w_min=config.w_min,
        w_max=config.w_max,
    )


def learning_window(key, rule, estate, weights, s, action, config: StdpQConfig):
    """Learning window in state ``s`` after taking ``action``: the state neuron fires, the efference copy drives
    the action's neuron, lateral inhibition acts, and ``rule`` (:func:`three_factor_rule`) collects the pair-STDP
    tag of row ``s`` into the window of ``estate``; returns the new ``estate``.
    """
    train = input_train(key, config)
    current = encoders.onehot_current(s, train, weights)
    current = current + config.efference * jax.nn.one_hot(action, taxi.NUM_ACTIONS, dtype=current.dtype)[None]
    window = simulate(current, config)
    unused = plasticity.no_change(weights)  # window steps make no weight change

    def body(state, spikes):
        pre, post = spikes
        return rule.update(unused, state, weights, plasticity.Signals(pre[None], post))[1], None

    return jax.lax.scan(body, estate, (train, window.spikes), unroll=True)[0]


def td_error(weights, s, a, reward, s_next, terminated, config: StdpQConfig) -> jax.Array:
    """``reward_scale * r + gamma * max W[s'] * (1 - terminated) - W[s, a]`` (float32 scalar)."""
    bootstrap = jnp.where(terminated, 0.0, jnp.max(weights[s_next]))
    return config.reward_scale * reward + config.gamma * bootstrap - weights[s, a]


def plasticity_step(
    key, rule, estate, weights, s, a, greedy, delta, episode_end, config: StdpQConfig, active=True
):
    """The weights after one environment step under ``config.rule``; returns (weights, rule state).

    ``rule``/``estate``: :func:`three_factor_rule` and its state (rule "rstdp"; ignored otherwise). ``greedy``:
    argmax of ``W[s]`` before the step (rule "original"). ``active=False``
    leaves the weights unchanged bit for bit (a frozen seed skipping a step; the caller keeps ``estate``).
    """
    delta = jnp.where(active, delta, 0.0)
    if config.rule == "rstdp":
        estate = rule.fold(learning_window(key, rule, estate, weights, s, a, config), s)
        weights = rule.apply(estate, delta, weights)  # the new weights of the cached rows, exactly in bounds
        estate = jax.tree.map(lambda c, e: jnp.where(episode_end, c, e), rule.clear(estate), estate)
        return weights, estate
    row = weights[s]
    change = config.eta * delta * jax.nn.one_hot(a, taxi.NUM_ACTIONS, dtype=row.dtype)
    if config.rule == "original":
        fixed = config.original_lr * (2.0 * jax.nn.one_hot(greedy, taxi.NUM_ACTIONS, dtype=row.dtype) - 1.0)
        change = change + jnp.where(active, fixed, 0.0)
    pot, dep = jnp.maximum(change, 0.0), jnp.maximum(-change, 0.0)
    new_row = plasticity.bounded_weights(pot, dep, row, config.bounds, config.w_min, config.w_max)
    return weights.at[s].set(new_row), estate


# ---------------------------------------------------------------------------------------------- training


class TrainState(NamedTuple):
    """Training state of one seed between environment steps (scalars unless said).

    key: PRNG key. env_state, obs: the Taxi state and its id. weights: (500, 6). estate: the state of
    :func:`three_factor_rule` (rule "rstdp") or None. episode: episodes finished. ret, length: running
    episode's return and steps.
    ret_sum, len_sum, successes, finished: sums over the episodes finished since the last evaluation point.
    agent_steps: environment steps taken.
    """

    key: jax.Array
    env_state: taxi.EnvState
    obs: jax.Array
    weights: jax.Array
    estate: sparse_plasticity.SparseRSTDPState | None
    episode: jax.Array
    ret: jax.Array
    length: jax.Array
    ret_sum: jax.Array
    len_sum: jax.Array
    successes: jax.Array
    finished: jax.Array
    agent_steps: jax.Array


#: Environment steps per block: seeds that reach an evaluation point inside a block idle to its end. Blocks keep
#: vmap's per-iteration select of the whole carry (a while loop with a per-seed condition) off the weights.
BLOCK_STEPS = 32


def make_train(config: StdpQConfig) -> Trainer:
    """The :class:`Trainer` of one seed (``train(key) -> TrainOutput`` when called; pure, so
    ``jax.jit(jax.vmap(train))`` trains many seeds); a step is one evaluation point.

    Output:
      params: (500, 6) float32 weights W.
      steps: (P,) int32 training episodes done at each evaluation point, P = num_episodes / eval_every.
      metrics (P,): ``train_return`` (mean return of the training episodes of the stretch), ``episode_length``,
        ``success_rate`` (fraction of them ending with the drop-off), ``epsilon`` or ``noise_std`` (that of the
        stretch's last episode), ``greedy_return`` (exact greedy mean return of ``argmax W`` over the 300 starts).
      final: :func:`synjax.tabular.taxi_agent.final_metrics` with ``reached_target`` (final greedy return >=
        target_return): ``greedy_return``, ``greedy_success``, ``solved``, ``episodes_to_solve``,
        ``reached_target``, rainy: ``greedy_return_sampled``.
      extras: ``agent_steps`` (int32 scalar, environment steps taken).
    """
    env = taxi.Taxi()
    env_params = config.env_params
    num_points = config.num_episodes // config.eval_every
    rule = three_factor_rule(config)
    param_name, sched = config.schedule

    def agent_step(c: TrainState, end_episode) -> TrainState:
        """One environment step; a seed that has reached ``end_episode`` episodes is left unchanged."""
        active = c.episode < end_episode
        key, k_decide, k_explore, k_env, k_learn = jax.random.split(c.key, 5)
        w, s = c.weights, c.obs
        explore = exploration_schedule(c.episode, *sched)
        if config.exploration == "epsilon":
            a_net, _ = decide(k_decide, w, s, jnp.float32(0.0), config)
            a = epsilon_greedy(jax.random.uniform(k_explore, (2,)), a_net, explore, taxi.NUM_ACTIONS)
        else:
            a, _ = decide(k_decide, w, s, explore, config)
        greedy = jnp.argmax(w[s]).astype(jnp.int32)
        s_next, env_state, reward, terminated, truncated, info = env.step(k_env, c.env_state, a, env_params)
        done = terminated | truncated
        delta = td_error(w, s, a, reward, info["final_observation"], terminated, config)
        w, estate = plasticity_step(k_learn, rule, c.estate, w, s, a, greedy, delta, done, config, active)
        ret, length = c.ret + reward, c.length + 1
        new = TrainState(
            key=key,
            env_state=env_state,
            obs=s_next,
            weights=w,
            estate=estate,
            episode=c.episode + done.astype(jnp.int32),
            ret=jnp.where(done, 0.0, ret),
            length=jnp.where(done, 0, length),
            ret_sum=c.ret_sum + jnp.where(done, ret, 0.0),
            len_sum=c.len_sum + jnp.where(done, length, 0),
            successes=c.successes + (done & terminated).astype(jnp.int32),
            finished=c.finished + done.astype(jnp.int32),
            agent_steps=c.agent_steps + 1,
        )
        # The weights are frozen by delta = 0 above; everything else (small) is selected here.
        keep = jax.tree.map(lambda n, o: jnp.where(active, n, o), new._replace(weights=c.weights), c)
        return keep._replace(weights=w)

    def block(c: TrainState, end_episode) -> TrainState:
        c, _ = jax.lax.scan(lambda c, _: (agent_step(c, end_episode), None), c, None, length=BLOCK_STEPS)
        return c

    def point(c: TrainState, p):
        end_episode = (p + 1) * config.eval_every
        zero_f, zero_i = jnp.float32(0.0), jnp.int32(0)
        c = c._replace(ret_sum=zero_f, len_sum=zero_i, successes=zero_i, finished=zero_i)
        c = jax.lax.while_loop(lambda c: c.episode < end_episode, lambda c: block(c, end_episode), c)
        greedy_ret, _ = greedy_eval(c.weights, config)
        report(end_episode)
        report(end_episode, greedy_ret, every=max(1, num_points // 10) * config.eval_every)
        metrics = stretch_metrics(
            c.ret_sum, c.len_sum, c.successes, c.finished.astype(jnp.float32),
            param_name, exploration_schedule(c.episode - 1, *sched), greedy_ret,
        )  # fmt: skip
        return c, metrics

    def init(key: jax.Array) -> tuple[TrainState, jax.Array]:
        """(carry, evaluation key)."""
        k_init, k_reset, k_train, k_eval = jax.random.split(key, 4)
        w = init_weights(k_init, config)
        s, env_state = env.reset(k_reset, env_params)
        zero_f, zero_i = jnp.float32(0.0), jnp.int32(0)
        c = TrainState(
            key=k_train,
            env_state=env_state,
            obs=s,
            weights=w,
            estate=rule.init(w) if config.rule == "rstdp" else None,
            episode=zero_i,
            ret=zero_f,
            length=zero_i,
            ret_sum=zero_f,
            len_sum=zero_i,
            successes=zero_i,
            finished=zero_i,
            agent_steps=zero_i,
        )
        return c, k_eval

    def step(state, p: jax.Array):
        c, k_eval = state
        c, metrics = point(c, p)
        return (c, k_eval), metrics

    def finish(state, metrics) -> TrainOutput:
        c, k_eval = state
        steps = ((jnp.arange(num_points) + 1) * config.eval_every).astype(jnp.int32)
        final = final_metrics(
            k_eval, c.weights, metrics["greedy_return"], steps, config, config.target_return
        )
        return TrainOutput(
            params=c.weights, steps=steps, metrics=metrics, final=final, extras={"agent_steps": c.agent_steps}
        )

    return Trainer(init, step, finish, num_points)
