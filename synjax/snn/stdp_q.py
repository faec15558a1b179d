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
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from synjax.envs import taxi
from synjax.experiment import RunConfig, TrainOutput, require
from synjax.progress import report
from synjax.snn import encoders, neurons, plasticity, sparse_plasticity
from synjax.tabular.taxi_agent import (
    epsilon_greedy,
    exploration_schedule,
    final_metrics,
    greedy_eval,
    stretch_metrics,
)
from synjax.trainer import Trainer

Rule = Literal["rstdp", "td_only", "original"]
Exploration = Literal["epsilon", "noise"]
RULES: tuple[str, ...] = ("rstdp", "td_only", "original")
EXPLORATIONS: tuple[str, ...] = ("epsilon", "noise")


@dataclasses.dataclass(frozen=True)
class StdpQConfig(RunConfig):
    """The spiking STDP + Q hybrid on Taxi-v4. Defaults = preset ``tuned``.

    Attributes:
      rule: "rstdp" (reward-modulated STDP), "td_only" or "original" (ablations, see the module docstring).
      num_episodes: training episodes per seed.
      max_steps: an episode is cut after this many steps (truncation: it still bootstraps).
      gamma: discount in [0, 1].
      reward_scale: factor on Taxi's rewards before they enter the TD error (> 0).
      is_rainy, rainy_probability: Taxi-v4's rainy variant.
      eta: learning rate of the modulated update (>= 0).
      tau_e: eligibility time constant in environment steps (>= 0; 0 = the current step only).
      trace: eligibility trace "accumulate" (Florian 2007) or "replace" (a tagged synapse takes the new tag).
      eligibility_max: the eligibility is clipped to [-eligibility_max, eligibility_max] (> 0).
      original_lr: the fixed +/- change of rule "original" (>= 0).
      a_plus, a_minus: STDP amplitudes of the tag (>= 0; only their ratio matters after normalization).
      tau_plus, tau_minus: STDP window time constants in SNN time steps (>= 0).
      w_min, w_max: weight bounds; w_init_low, w_init_high: initial weights uniform in this range.
      bounds: "hard" (clip) or "soft" (change scaled by the distance to the bound, then clipped).
      snn_steps: time steps of each window (>= 1).
      encoding: "regular" or "poisson"; input_rate: spikes per time step of the state neuron, in (0, 1].
      beta: membrane leak per time step in [0, 1]; threshold: firing threshold (> 0); reset: "subtract" or "zero".
      inhibition: lateral inhibition strength among action neurons (>= 0), both windows.
      efference: current into the taken action's neuron during the learning window (>= 0).
      exploration: "epsilon" (epsilon-greedy on the read-out) or "noise" (Gaussian current, std = the schedule).
      epsilon_start, epsilon_decay, epsilon_end: episode e explores with ``max(end, start * decay**e)``.
      noise_start, noise_decay, noise_end: the same schedule for the noise std (threshold units per step).
      eval_every: episodes between evaluation points (a divisor of num_episodes).
      eval_max_steps: step cap of the greedy evaluation episodes (Taxi's own limit is 200).
      sampled_eval_episodes: rainy only: greedy episodes sampled at the end for ``greedy_return_sampled``.
      solve_margin: solved = greedy return >= value-iteration optimum - solve_margin (as the tabular agent).
      target_return: ``reached_target`` = final greedy return >= this (the issue's 7.5).
    """

    num_seeds: int = 16
    rule: Rule = "rstdp"
    num_episodes: int = 10_000
    max_steps: int = 100
    gamma: float = 0.95
    reward_scale: float = 0.05
    is_rainy: bool = False
    rainy_probability: float = 0.8
    eta: float = 0.5
    tau_e: float = 0.5
    trace: plasticity.Trace = "accumulate"
    eligibility_max: float = 1.0
    original_lr: float = 0.002
    a_plus: float = 1.0
    a_minus: float = 0.5
    tau_plus: float = 5.0
    tau_minus: float = 5.0
    w_min: float = -1.0
    w_max: float = 1.0
    w_init_low: float = 0.0
    w_init_high: float = 0.01
    bounds: plasticity.Bounds = "hard"
    snn_steps: int = 10
    encoding: encoders.Encoding = "regular"
    input_rate: float = 1.0
    beta: float = 0.9
    threshold: float = 1.0
    reset: neurons.Reset = "subtract"
    inhibition: float = 2.0
    efference: float = 2.0
    exploration: Exploration = "epsilon"
    epsilon_start: float = 1.0
    epsilon_decay: float = 0.998
    epsilon_end: float = 0.01
    noise_start: float = 0.5
    noise_decay: float = 0.998
    noise_end: float = 0.0
    eval_every: int = 200
    eval_max_steps: int = 200
    sampled_eval_episodes: int = 1000
    solve_margin: float = 0.5
    target_return: float = 7.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.rule in RULES, "rule", self.rule, f"one of {', '.join(RULES)}")
        require(self.num_episodes >= 1, "num_episodes", self.num_episodes, "an integer >= 1")
        require(self.max_steps >= 1, "max_steps", self.max_steps, "an integer >= 1")
        require(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "in [0, 1]")
        require(
            self.reward_scale > 0 and math.isfinite(self.reward_scale),
            "reward_scale",
            self.reward_scale,
            "a finite number > 0",
        )
        require(
            0.0 <= self.rainy_probability <= 1.0, "rainy_probability", self.rainy_probability, "in [0, 1]"
        )
        for name in (
            "eta",
            "tau_e",
            "original_lr",
            "a_plus",
            "a_minus",
            "tau_plus",
            "tau_minus",
            "inhibition",
            "efference",
            "noise_start",
            "noise_end",
        ):
            value = getattr(self, name)
            require(value >= 0 and math.isfinite(value), name, value, "a finite number >= 0")
        require(self.a_plus > 0, "a_plus", self.a_plus, "a number > 0 (it normalizes the tag)")
        require(
            self.trace in plasticity.TRACES, "trace", self.trace, f"one of {', '.join(plasticity.TRACES)}"
        )
        require(self.eligibility_max > 0, "eligibility_max", self.eligibility_max, "a number > 0")
        require(math.isfinite(self.w_min), "w_min", self.w_min, "a finite number")
        require(math.isfinite(self.w_max), "w_max", self.w_max, "a finite number")
        require(self.w_min < self.w_max, "w_min", self.w_min, f"< w_max={self.w_max}")
        require(
            self.w_min <= self.w_init_low <= self.w_init_high <= self.w_max,
            "w_init_low",
            self.w_init_low,
            f"w_min <= w_init_low <= w_init_high={self.w_init_high} <= w_max (weights in [{self.w_min}, "
            f"{self.w_max}])",
        )
        require(self.bounds in ("hard", "soft"), "bounds", self.bounds, "'hard' or 'soft'")
        require(self.snn_steps >= 1, "snn_steps", self.snn_steps, "an integer >= 1")
        require(
            self.encoding in encoders.ENCODINGS,
            "encoding",
            self.encoding,
            f"one of {', '.join(encoders.ENCODINGS)}",
        )
        require(0.0 < self.input_rate <= 1.0, "input_rate", self.input_rate, "spikes per time step in (0, 1]")
        require(0.0 <= self.beta <= 1.0, "beta", self.beta, "in [0, 1]")
        require(
            self.threshold > 0 and math.isfinite(self.threshold),
            "threshold",
            self.threshold,
            "a finite number > 0",
        )
        require(self.reset in neurons.RESETS, "reset", self.reset, f"one of {', '.join(neurons.RESETS)}")
        require(
            self.exploration in EXPLORATIONS,
            "exploration",
            self.exploration,
            f"one of {', '.join(EXPLORATIONS)}",
        )
        for name in ("epsilon_start", "epsilon_end"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, value, "a probability in [0, 1]")
        for name in ("epsilon_decay", "noise_decay"):
            value = getattr(self, name)
            require(0.0 < value <= 1.0, name, value, "in (0, 1]")
        require(
            self.eval_every >= 1 and self.num_episodes % self.eval_every == 0,
            "eval_every",
            self.eval_every,
            f"a positive divisor of num_episodes={self.num_episodes}",
        )
        require(self.eval_max_steps >= 1, "eval_max_steps", self.eval_max_steps, "an integer >= 1")
        require(
            self.sampled_eval_episodes >= 1,
            "sampled_eval_episodes",
            self.sampled_eval_episodes,
            "an integer >= 1",
        )
        require(self.solve_margin >= 0.0, "solve_margin", self.solve_margin, "a number >= 0")

    @property
    def env_params(self) -> taxi.EnvParams:
        """Taxi params; training episodes are cut at ``max_steps`` by the env's own truncation."""
        return taxi.make_params(
            max_steps_in_episode=self.max_steps,
            is_rainy=self.is_rainy,
            rainy_probability=self.rainy_probability,
        )

    @property
    def schedule(self) -> tuple[str, tuple[float, float, float]]:
        """(metric name, (start, decay, end)) of the exploration schedule: epsilon or noise std."""
        if self.exploration == "epsilon":
            return "epsilon", (self.epsilon_start, self.epsilon_decay, self.epsilon_end)
        return "noise_std", (self.noise_start, self.noise_decay, self.noise_end)


# ---------------------------------------------------------------------------------------------- the network


def init_weights(key: jax.Array, config: StdpQConfig) -> jax.Array:
    """(500, 6) float32 weights, uniform in ``[w_init_low, w_init_high]``."""
    return jax.random.uniform(
        key, (taxi.NUM_STATES, taxi.NUM_ACTIONS), jnp.float32, config.w_init_low, config.w_init_high
    )


def input_train(key: jax.Array, config: StdpQConfig) -> jax.Array:
    """(snn_steps,) spike train of the active state neuron."""
    return encoders.spike_train(key, config.encoding, config.snn_steps, config.input_rate)


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
    window = neurons.simulate(
        current,
        beta=config.beta,
        threshold=config.threshold,
        reset=config.reset,
        inhibition=config.inhibition,
    )
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
    window = neurons.simulate(
        current,
        beta=config.beta,
        threshold=config.threshold,
        reset=config.reset,
        inhibition=config.inhibition,
    )
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


class Carry(NamedTuple):
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

    def agent_step(c: Carry, end_episode) -> Carry:
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
        new = Carry(
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

    def block(c: Carry, end_episode) -> Carry:
        c, _ = jax.lax.scan(lambda c, _: (agent_step(c, end_episode), None), c, None, length=BLOCK_STEPS)
        return c

    def point(c: Carry, p):
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

    def init(key: jax.Array) -> tuple[Carry, jax.Array]:
        """(carry, evaluation key)."""
        k_init, k_reset, k_train, k_eval = jax.random.split(key, 4)
        w = init_weights(k_init, config)
        s, env_state = env.reset(k_reset, env_params)
        zero_f, zero_i = jnp.float32(0.0), jnp.int32(0)
        c = Carry(
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
