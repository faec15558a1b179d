"""The on-policy loop that PPO, A2C and PQN share: the algorithm contract (:class:`OnPolicyAlgorithm`), the
per-step learner slot (:class:`StepLearner`) and the loop itself as a :class:`synjax.trainer.Trainer`.

One iteration of the loop, the same for every algorithm:

1. **collect**: ``num_steps`` steps of ``num_envs`` environments with the current policy (:func:`collect`); an
   algorithm that declares a :class:`StepLearner` sees every step there (the transition, ``V(s_t)``,
   ``V(s_{t+1})`` and the policy's carry before and after) and may change its own state, the parameters and the
   optimizer state at once;
2. **batch**: GAE advantages and returns of the rollout (:func:`synjax.agents.rollout.rollout_batch`);
3. **update**: the algorithm's ``update`` on the batch (an algorithm that learns only in its
   :class:`StepLearner` has none, and skips the batch too); then the rollout's observations are folded into the
   network's observation statistics (kept frozen while collecting and updating, so the stored
   log-probabilities stay exact).

What an algorithm needs besides its update is declared on :class:`OnPolicyAlgorithm` (``exploration``,
``learner``) or on the network (:class:`synjax.agents.policy.PolicyNetwork`: ``obs_norm``, ``energy``), never
looked up by name. The loop also takes an environment and a network of the caller's own (any gymnax-style
environment; any :class:`~synjax.agents.policy.PolicyNetwork`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from synjax.agents.config import RolloutConfig, make_env
from synjax.agents.evaluation import deterministic_action, episode_returns
from synjax.agents.networks import action_spec, obs_encoder
from synjax.agents.policy import PolicyApply, PolicyNetwork
from synjax.agents.rollout import ReturnNorm, Transition, rollout_batch
from synjax.envs.episodes import EpisodeStats
from synjax.runner.progress import report
from synjax.trainer import Trainer, TrainOutput

#: ``network(rngs) -> PolicyNetwork``: builds the network to train.
NetworkBuilder = Callable[[nnx.Rngs], nnx.Module]
#: ``update(config, apply, tx, params, opt_state, batch, key, update_index) -> (params, opt_state, metrics)``.
Update = Callable[..., tuple[Any, Any, dict[str, jax.Array]]]
#: ``minibatch_step(config, apply, tx, params, opt_state, minibatch, i) -> (params, opt_state, metrics)``.
MinibatchStep = Callable[..., tuple[Any, Any, dict[str, Any]]]


@struct.dataclass
class StepData:
    """What a :class:`StepLearner` sees of one environment step of every environment (leaves (N, ...)).

    Attributes:
      transition: the step as the rollout records it (:class:`synjax.agents.rollout.Transition`; its reward
        scaled as the update sees it).
      obs: the encoded observation the action was chosen from.
      value: ``V(s_t)``, the critic's value of ``obs`` under the acting parameters.
      next_value: ``V(s_{t+1})`` under the same parameters, from the observation the step reached (before any
        auto-reset: a cut episode bootstraps from it) and the carry after the step; multiply by ``1 -
        terminated``.
      carry: the policy's carry the action was chosen from (reset where ``transition.first``).
      next_carry: the policy's carry after the step.
      t: the step's index inside the rollout, ``0 .. num_steps - 1`` (a learner that applies its updates once
        per rollout does so at ``t == num_steps - 1``).
    """

    transition: Transition
    obs: jax.Array
    value: jax.Array
    next_value: jax.Array
    carry: Any
    next_carry: Any
    t: jax.Array


@dataclasses.dataclass(frozen=True)
class StepLearner:
    """A learner that updates at every environment step (eligibility traces, running signals, online critics).

    Its state lives in the loop's training state, so it is carried across steps, rollouts and chunks, saved in
    checkpoints and restored by ``--resume``. Acting at step ``t + 1`` uses the parameters that ``step`` returned
    at step ``t``.

    Attributes:
      metrics: names of the metrics ``step`` returns (each averaged over the rollout and reported with the
        update's).
      init: ``(config, params, num_envs) -> state``, a pytree of arrays.
      step: ``(config, apply, tx, state, params, opt_state, data: StepData) -> (state, params, opt_state,
        metrics)``; ``apply`` is the network as a function (:data:`synjax.agents.policy.PolicyApply`), ``tx`` the
        algorithm's optimizer.
    """

    metrics: tuple[str, ...]
    init: Callable[[Any, Any, int], Any]
    step: Callable[..., tuple[Any, Any, Any, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class OnPolicyAlgorithm:
    """One on-policy algorithm: what the JAX loop (:func:`make_train`) and the host loop look up.

    An update is ``passes`` shuffled passes of ``minibatches`` gradient steps over each rollout's batch (A2C: one
    pass of one minibatch, the whole batch; PPO: ``update_epochs`` x ``num_minibatches``), each a
    ``minibatch_step`` of its loss. The JAX loop runs the passes as a ``lax.scan`` (``update``); the host loop
    runs them from Python, one jitted call per minibatch (convolutions run faster outside loops on CPU).

    Attributes:
      name: ``"ppo"``, ``"a2c"``, ``"pqn"``.
      metrics: names of the update's metrics.
      make_optimizer: ``(config, num_updates) -> optax optimizer``.
      update: the whole update of one rollout (:data:`Update`); None: there is none (a :class:`StepLearner`
        does all the learning, and no batch, advantages or values of the rollout are computed).
      minibatch_step: one gradient step on a minibatch (:data:`MinibatchStep`).
      passes: ``config -> (passes over the batch, minibatches per pass)``.
      exploration: ``(config, env steps so far) -> rate`` for a policy that sets its own exploration
        (``network.explore(rate)`` before each rollout: PQN's epsilon-greedy Q); None: none.
      learner: the per-step learner (:class:`StepLearner`); None: the loop collects without one.
    """

    name: str
    metrics: tuple[str, ...]
    make_optimizer: Callable[[Any, int], optax.GradientTransformation]
    update: Update | None
    minibatch_step: MinibatchStep
    passes: Callable[[Any], tuple[int, int]]
    exploration: Callable[[Any, jax.Array], jax.Array] | None = None
    learner: StepLearner | None = None

    def make_train(self, config: Any, env: Any = None, env_params: Any = None, network: Any = None) -> Trainer:
        """The :class:`~synjax.trainer.Trainer` of one seed (``train(key) -> TrainOutput`` when called);
        ``env`` (with ``env_params``) and ``network`` (:data:`NetworkBuilder`) replace the config's own."""
        return make_train(self, config, env, env_params, network)


def make_network(config: RolloutConfig, env: Any, env_params: Any, rngs: nnx.Rngs) -> PolicyNetwork:
    """The policy network that ``config`` trains on ``env`` (:meth:`RolloutConfig.policy_network`): the one
    builder of the loop's networks, also for saved runs."""
    obs_dim, _ = obs_encoder(env, env_params)
    continuous, action_dim, _ = action_spec(env, env_params)
    return config.policy_network(obs_dim, action_dim, continuous, rngs)


@struct.dataclass
class TrainState:
    """One seed's on-policy training state between steps.

    Attributes:
      params: the network's ``nnx.Param`` state.
      stats: its other variables (observation statistics, the exploration rate).
      opt_state: the optimizer's state.
      env_state: (N, ...) the environments.
      obs: (N, ...) their current observations.
      return_norm: reward scaling.
      episodes: episode bookkeeping.
      key: the rollouts' PRNG key; loop_key: the evaluations' and updates' key.
      policy_carry: the policy's carry (leaves (N, ...); ``()`` for a feedforward network).
      first: (N,) bool, ``obs`` starts an episode.
      learner: the :class:`StepLearner`'s state (``()`` without one).
    """

    params: Any
    opt_state: Any
    stats: Any
    env_state: Any
    obs: jax.Array
    return_norm: ReturnNorm
    episodes: EpisodeStats
    key: jax.Array
    loop_key: jax.Array
    policy_carry: Any
    first: jax.Array
    learner: Any = ()


def eval_points(num_updates: int, eval_every: int) -> np.ndarray:
    """0-based indices of the updates after which training evaluates: every ``eval_every``-th and the last."""
    idx = np.arange(eval_every - 1, num_updates, eval_every)
    if idx.size == 0 or idx[-1] != num_updates - 1:
        idx = np.append(idx, num_updates - 1)
    return idx


def collect(
    config: RolloutConfig,
    env: Any,
    env_params: Any,
    apply: PolicyApply,
    encode: Callable[[jax.Array], jax.Array],
    continuous: bool,
    bounds: Any,
    learner: StepLearner | None = None,
    tx: optax.GradientTransformation | None = None,
) -> Callable[[tuple], tuple]:
    """The rollout of one iteration: ``run(carry) -> (carry, (Transition (T, N, ...), learner metrics (T,)))``,
    ``T = config.num_steps`` steps of ``N = config.num_envs`` environments; ``encode`` turns raw observations
    into the network's input, ``bounds`` clip a continuous action (``continuous``).

    ``carry`` is ``(env_state, obs, return_norm, episodes, key, policy_carry, first, params, opt_state,
    learner_state)``. Without a ``learner`` the parameters stay fixed and values are left to the batch (one
    batched forward pass instead of two small ones per step); with one, every step computes ``V(s_t)`` and
    ``V(s_{t+1})`` and hands :class:`StepData` to ``learner.step``.
    """
    n, gamma = config.num_envs, config.gamma
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout_step(carry, t):
        env_state, obs, rnorm, episodes, key, policy_carry, first, params, opt_state, learned = carry
        keys = jax.random.split(key, n + 2)  # one split a step: each random call costs compile time
        key, k_act, k_env = keys[0], keys[1], keys[2:]
        x = encode(obs)
        dist, value, next_carry = apply(params, policy_carry, x, first)  # without a learner values come later
        action = dist.sample(seed=k_act)
        log_prob = dist.log_prob(action)
        env_action = jnp.clip(action, *bounds) if continuous else action
        next_obs, env_state, reward, terminated, truncated, info = env_step(k_env, env_state, env_action, env_params)
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        episodes = episodes.update(reward, done)
        if config.reward_scale != 1.0:
            reward = reward * config.reward_scale
        if config.norm_reward:
            reward, rnorm = rnorm(reward, done, gamma)
        tr = Transition(obs, action, log_prob, reward, terminated, truncated, info["final_observation"], first)
        metrics = {}
        if learner is not None:
            no_reset = jnp.zeros((n,), bool)
            next_value = apply(params, next_carry, encode(info["final_observation"]), no_reset)[1]
            data = StepData(tr, x, value, next_value, policy_carry, next_carry, t)
            learned, params, opt_state, metrics = learner.step(config, apply, tx, learned, params, opt_state, data)
        carry = (env_state, next_obs, rnorm, episodes, key, next_carry, done, params, opt_state, learned)
        return carry, (tr, metrics)

    if learner is not None:
        return lambda carry: jax.lax.scan(rollout_step, carry, jnp.arange(config.num_steps))

    def run(carry):  # no learner: the parameters are constants of the scan, not part of its carry
        *state, params, opt_state, learned = carry

        def fixed(c, _):
            c, out = rollout_step((*c, params, opt_state, learned), None)
            return c[:7], out

        state, out = jax.lax.scan(fixed, tuple(state), length=config.num_steps)
        return (*state, params, opt_state, learned), out

    return run


def make_train(
    algorithm: OnPolicyAlgorithm,
    config: RolloutConfig,
    env: Any = None,
    env_params: Any = None,
    network: NetworkBuilder | None = None,
) -> Trainer:
    """Build the :class:`Trainer` (``train(key) -> TrainOutput`` when called) of ``algorithm`` with ``config``.

    Each of ``config.num_updates`` iterations collects, batches and updates (the module's docstring). Before
    training and after every ``eval_every``-th update (and the last) the deterministic policy plays
    ``eval_episodes`` episodes on fresh environments.

    The ``TrainOutput``: ``params`` is the network's full ``nnx.State`` (parameters and observation
    statistics); ``steps`` (P,) env steps at the evaluation points (the first is 0); ``metrics`` (P,) each:
    ``eval_return`` (mean deterministic return), ``train_return`` (mean return of the training episodes that
    ended since the previous point; NaN at 0) and the means of the algorithm's (and its learner's) metrics over
    those updates; ``final``: last ``eval_return``, the last finite ``train_return`` (environments whose
    episodes all last the same number of steps, as Pendulum's 200, end them in step with each other, so the
    last stretch between two points can hold no episode end) and the network's ``energy``.
    """
    if env is None:
        env, env_params = make_env(config)
    build = network or (lambda rngs: make_network(config, env, env_params, rngs))
    _, encode = obs_encoder(env, env_params)
    continuous, _, bounds = action_spec(env, env_params)
    n, b = config.num_envs, config.batch_size
    num_updates = config.num_updates
    eval_idx = eval_points(num_updates, config.eval_every)
    # evaluate before update i (i = num_updates: after the last one)
    eval_before = np.zeros(num_updates + 1, bool)
    eval_before[0] = True
    eval_before[eval_idx + 1] = True
    segment = np.searchsorted(eval_idx, np.arange(num_updates))  # which evaluation point an update precedes
    max_eval_steps = int(getattr(env_params, "max_steps_in_episode", 100_000))
    learner = algorithm.learner
    metric_names = algorithm.metrics + (learner.metrics if learner is not None else ())
    report_every = b * max(1, num_updates // 200)

    abstract = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
    if not isinstance(abstract, PolicyNetwork):
        raise TypeError(f"the network is a {type(abstract).__name__}: the on-policy loop trains a "
                        "synjax.agents.policy.PolicyNetwork (subclass it; it declares obs_norm, initial_carry "
                        "and energy)")  # fmt: skip
    graphdef = nnx.split(abstract, nnx.Param, ...)[0]
    normalizes = abstract.obs_norm is not None  # norm_obs, or a network that needs it
    tx = algorithm.make_optimizer(config, num_updates)

    def applier(stats) -> PolicyApply:
        return lambda p, c, o, r: nnx.merge(graphdef, p, stats)(o, c, r)

    def run_eval(params, stats, key):
        apply = applier(stats)
        no_reset = jnp.zeros((config.eval_episodes,), bool)

        def act(raw_obs, carry):
            dist, _, carry = apply(params, carry, encode(raw_obs), no_reset)
            return deterministic_action(dist, bounds), carry

        carry = nnx.merge(graphdef, params, stats).initial_carry((config.eval_episodes,))
        return episode_returns(env, env_params, act, key, config.eval_episodes, max_eval_steps, carry).mean()

    def update_step(runner: TrainState, i, key):
        if algorithm.exploration is not None:  # a policy that sets its own exploration rate (PQN's epsilon)
            model = nnx.merge(graphdef, runner.params, runner.stats)
            model.explore(algorithm.exploration(config, i * b))
            runner = runner.replace(stats=nnx.split(model, nnx.Param, ...)[2])
        apply = applier(runner.stats)
        run = collect(config, env, env_params, apply, encode, continuous, bounds, learner, tx)
        carry = (runner.env_state, runner.obs, runner.return_norm, runner.episodes, runner.key, runner.policy_carry,
                 runner.first, runner.params, runner.opt_state, runner.learner)  # fmt: skip
        carry, (traj, step_metrics) = run(carry)
        env_state, obs, rnorm, episodes, rollout_key, policy_carry, first, params, opt_state, learned = carry
        metrics, seen = {}, None
        if algorithm.update is not None:
            batch = rollout_batch(apply, params, encode, traj, runner.policy_carry, obs, first, config.gamma,
                                  config.gae_lambda)  # fmt: skip
            params, opt_state, metrics = algorithm.update(config, apply, tx, params, opt_state, batch, key, i)
            seen = batch.obs
        metrics = {**metrics, **jax.tree.map(jnp.mean, step_metrics)}
        stats = runner.stats
        if normalizes:
            model = nnx.merge(graphdef, params, stats)
            model.obs_norm.update(encode(traj.obs) if seen is None else seen)
            stats = nnx.split(model, nnx.Param, ...)[2]
        done_sum, done_count = episodes.done_return_sum.sum(), episodes.done_count.sum()
        report((i + 1) * b, done_sum / done_count, every=report_every)
        runner = TrainState(
            params, opt_state, stats, env_state, obs, rnorm, episodes.drain(), rollout_key, runner.loop_key,
            policy_carry, first, learned,
        )  # fmt: skip
        return runner, (done_sum, done_count.astype(jnp.float32), metrics)

    def init(key: jax.Array) -> TrainState:
        keys = jax.random.split(key, n + 2)
        key, k_init, k_reset = keys[0], keys[1], keys[2:]
        model = build(nnx.Rngs(params=k_init))
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(k_reset, env_params)
        if normalizes:  # start the statistics from the first observations
            model.obs_norm.update(encode(obs))
        _, params, stats = nnx.split(model, nnx.Param, ...)
        key, k_run = jax.random.split(key)
        learned = learner.init(config, params, n) if learner is not None else ()
        return TrainState(
            params, tx.init(params), stats, env_state, obs, ReturnNorm.zeros(n), EpisodeStats.zeros((n,)), k_run,
            key, model.initial_carry((n,)), jnp.ones((n,), bool), learned,
        )  # fmt: skip

    def step(runner: TrainState, i: jax.Array):
        """Iteration ``i``: evaluate the policy if an evaluation point falls before update i, then run update i
        (none in the extra last iteration, ``i = num_updates``): one copy of each in the compiled program."""
        loop_key, k_eval, k_update = jax.random.split(runner.loop_key, 3)
        runner = runner.replace(loop_key=loop_key)
        nan = jnp.float32(jnp.nan)
        eval_return = jax.lax.cond(
            jnp.asarray(eval_before)[i], run_eval, lambda *_: nan, runner.params, runner.stats, k_eval
        )
        zeros = (jnp.float32(0), jnp.float32(0), {m: nan for m in metric_names})
        runner, out = jax.lax.cond(
            i < num_updates, update_step, lambda r, *_: (r, zeros), runner, jnp.minimum(i, num_updates - 1), k_update,
        )  # fmt: skip
        return runner, (eval_return, out)

    def finish(runner: TrainState, history) -> TrainOutput:
        eval_all, (done_sum, done_count, metrics) = history
        num_points = len(eval_idx)
        seg = jnp.asarray(segment)
        seg_sum = lambda x: jax.ops.segment_sum(x[:num_updates], seg, num_segments=num_points)
        nan0 = jnp.full((1,), jnp.nan, jnp.float32)
        counts = seg_sum(jnp.ones(num_updates + 1))
        out_metrics = {
            "eval_return": eval_all[jnp.asarray(np.flatnonzero(eval_before))],
            "train_return": jnp.concatenate([nan0, seg_sum(done_sum) / seg_sum(done_count)]),
        }
        for name in metric_names:
            out_metrics[name] = jnp.concatenate([nan0, seg_sum(metrics[name]) / counts])
        model = nnx.merge(graphdef, runner.params, runner.stats)
        train = out_metrics["train_return"]
        last_finite = jnp.max(jnp.where(jnp.isfinite(train), jnp.arange(train.shape[0]), 0))  # 0 holds NaN
        final = {"eval_return": out_metrics["eval_return"][-1], "train_return": train[last_finite]}
        # what the trained policy's decisions cost on the last observations (carried: from the carry reached)
        final.update(model.energy(encode(runner.obs), runner.policy_carry))
        return TrainOutput(
            params=nnx.state(model),
            steps=jnp.asarray(np.concatenate([[0], (eval_idx + 1) * b]), jnp.int32),
            metrics=out_metrics,
            final=final,
        )

    # point 0 is the evaluation of step 0; point p >= 1 that of step eval_idx[p - 1] + 1, after its segment
    ready = (1, *(int(i) + 2 for i in eval_idx))
    return Trainer(init, step, finish, num_updates + 1, point_ready=ready)
