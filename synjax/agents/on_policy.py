"""The on-policy actor-critic loop that PPO and A2C share, as a :class:`synjax.trainer.Trainer`.

An iteration is the same for both algorithms (collect ``num_steps`` x ``num_envs`` transitions with the current
policy, compute advantages, update); only the update differs, so :func:`make_actor_critic_train` takes the
algorithm's optimizer and update as arguments. It also takes an environment and a network of the caller's own
(any gymnax-style environment; any NNX module keeping :mod:`synjax.agents.policy`'s contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from synjax.agents import spike_raster
from synjax.agents.config import RolloutConfig, make_env
from synjax.agents.evaluation import deterministic_action, episode_returns
from synjax.agents.networks import action_spec, obs_encoder
from synjax.agents.policy import PolicyApply
from synjax.agents.rollout import ReturnNorm, Transition, rollout_batch
from synjax.agents.spiking import energy, spiking_core
from synjax.envs.episodes import EpisodeStats
from synjax.runner import sweep
from synjax.runner.experiment import run_experiment
from synjax.runner.progress import report
from synjax.runs import episode_gif, results
from synjax.runs.saved_policy import Builder, Policy
from synjax.trainer import Trainer, TrainOutput

#: ``network(rngs) -> nnx.Module`` keeping the policy contract: builds the network to train.
NetworkBuilder = Callable[[nnx.Rngs], nnx.Module]


def run_actor_critic(name: str, config: RolloutConfig, make_train: Callable[[Any], Trainer]):
    """Train every seed (and every swept value) of ``config``; write the results folder; ``(path, SweepRun)``."""
    def pictures(stage, output: TrainOutput) -> None:  # episode.gif; a spiking policy's spikes (spikes.png)
        episode_gif.write_run_gif(stage, saved_policy_builder(type(config)))
        if config.network != "snn":
            return
        first = sweep.at(config, **{k: v[0] for k, v in sweep.swept(config).items()})  # the structure is shared
        env, env_params = make_env(first)
        template = make_network(first, env, env_params, nnx.Rngs(0))
        spike_raster.write_run_picture(stage, template, output.params, env, env_params, f"{name} {config.env}")

    return run_experiment(
        name, config, make_train, progress_total=config.env_steps, progress_unit_metric="train return",
        steps_per_seed=config.env_steps, extra_summary=results.final_medians, extra_files=pictures,
    )  # fmt: skip


def saved_policy_builder(config_type: type) -> Builder:
    """The builder of a saved run's :class:`~synjax.runs.saved_policy.Policy` for runs of ``config_type`` (an on-policy
    algorithm's config): the network rebuilt from config.json, its deterministic action, its carry."""

    def build(data: dict[str, Any]) -> Policy:
        config = results.config_from_dict(config_type, data)
        # swept fields do not change the network's structure: build it with the first value of each
        config = sweep.at(config, **{k: v[0] for k, v in sweep.swept(config).items()})
        env, env_params = make_env(config)
        _, encode = obs_encoder(env, env_params)
        _, _, bounds = action_spec(env, env_params)
        graphdef, template = nnx.split(make_network(config, env, env_params, nnx.Rngs(0)))

        def act(state, obs, carry):
            reset = jnp.zeros(obs.shape[:1], bool)
            dist, _, carry = nnx.merge(graphdef, state)(encode(obs), carry, reset)
            return deterministic_action(dist, bounds), carry

        def initial_carry(state, batch_shape):
            return nnx.merge(graphdef, state).initial_carry(batch_shape)

        return Policy(env, env_params, template, act, initial_carry=initial_carry)

    return build


def make_network(config: RolloutConfig, env: Any, env_params: Any, rngs: nnx.Rngs) -> nnx.Module:
    """The policy network that ``config`` trains on ``env`` (:meth:`RolloutConfig.policy_network`; also rebuilds
    saved runs)."""
    obs_dim, _ = obs_encoder(env, env_params)
    continuous, action_dim, _ = action_spec(env, env_params)
    return config.policy_network(obs_dim, action_dim, continuous, rngs)


#: ``make_tx(config, num_updates) -> optax optimizer``.
MakeTx = Callable[[Any, int], optax.GradientTransformation]
#: ``update(config, apply, tx, params, opt_state, batch, key, update_index) -> (params, opt_state, metrics)``.
Update = Callable[..., tuple[Any, Any, dict[str, jax.Array]]]


@struct.dataclass
class TrainState:
    """One seed's on-policy training state between steps.

    Attributes:
      params: the network's ``nnx.Param`` state.
      stats: its other variables (observation statistics).
      opt_state: the optimizer's state.
      env_state: (N, ...) the environments.
      obs: (N, ...) their current observations.
      return_norm: reward scaling.
      episodes: episode bookkeeping.
      key: the rollouts' PRNG key; loop_key: the evaluations' and updates' key.
      policy_carry: the policy's carry (leaves (N, ...); ``()`` for a feedforward network).
      first: (N,) bool, ``obs`` starts an episode.
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


def eval_points(num_updates: int, eval_every: int) -> np.ndarray:
    """0-based indices of the updates after which training evaluates: every ``eval_every``-th and the last."""
    idx = np.arange(eval_every - 1, num_updates, eval_every)
    if idx.size == 0 or idx[-1] != num_updates - 1:
        idx = np.append(idx, num_updates - 1)
    return idx


def make_actor_critic_train(
    config: RolloutConfig,
    make_tx: MakeTx,
    update: Update,
    metric_names: tuple[str, ...],
    env: Any = None,
    env_params: Any = None,
    network: NetworkBuilder | None = None,
) -> Trainer:
    """Build the :class:`Trainer` (``train(key) -> TrainOutput`` when called) of an on-policy actor-critic.

    Each of ``config.num_updates`` iterations collects ``num_steps`` x ``num_envs`` transitions, computes GAE
    advantages, calls ``update``, then folds the rollout's observations into the observation statistics (kept
    frozen while collecting and updating so the stored log-probabilities stay exact). Before training and after
    every ``eval_every``-th update (and the last) the deterministic policy plays ``eval_episodes`` episodes on
    fresh environments.

    The ``TrainOutput``: ``params`` is the network's full ``nnx.State`` (parameters and observation
    statistics); ``steps`` (P,) env steps at the evaluation points (the first is 0); ``metrics`` (P,) each:
    ``eval_return`` (mean deterministic return), ``train_return`` (mean return of the training episodes that
    ended since the previous point; NaN at 0) and the means of ``metric_names`` over those updates;
    ``final``: last ``eval_return`` and the last finite ``train_return`` (environments whose episodes all last
    the same number of steps, as Pendulum's 200, end them in step with each other, so the last stretch between
    two points can hold no episode end).
    """
    if env is None:
        env, env_params = make_env(config)
    build = network or (lambda rngs: make_network(config, env, env_params, rngs))
    _, encode = obs_encoder(env, env_params)
    continuous, _, bounds = action_spec(env, env_params)
    n, t, b = config.num_envs, config.num_steps, config.batch_size
    num_updates = config.num_updates
    eval_idx = eval_points(num_updates, config.eval_every)
    # evaluate before update i (i = num_updates: after the last one)
    eval_before = np.zeros(num_updates + 1, bool)
    eval_before[0] = True
    eval_before[eval_idx + 1] = True
    segment = np.searchsorted(eval_idx, np.arange(num_updates))  # which evaluation point an update precedes
    max_eval_steps = int(getattr(env_params, "max_steps_in_episode", 100_000))
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    gamma = config.gamma
    report_every = b * max(1, num_updates // 200)

    abstract = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
    graphdef = nnx.split(abstract, nnx.Param, ...)[0]
    normalizes = getattr(abstract, "obs_norm", None) is not None  # norm_obs, or a network that needs it
    explores = hasattr(abstract, "explore")  # sets its own exploration rate (config.epsilon_at(steps))
    tx = make_tx(config, num_updates)

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

    def collect(params, apply, carry):
        """``num_steps`` steps of every environment with the current policy: (carry, Transition (T, N, ...))."""

        def rollout_step(carry, _):
            env_state, obs, rnorm, episodes, key, policy_carry, first = carry
            keys = jax.random.split(key, n + 2)  # one split a step: each random call costs compile time
            key, k_act, k_env = keys[0], keys[1], keys[2:]
            dist, _, policy_carry = apply(params, policy_carry, encode(obs), first)  # values come later, batched
            action = dist.sample(seed=k_act)
            log_prob = dist.log_prob(action)
            env_action = jnp.clip(action, *bounds) if continuous else action
            next_obs, env_state, reward, terminated, truncated, info = env_step(
                k_env, env_state, env_action, env_params
            )
            reward = reward.astype(jnp.float32)
            done = jnp.logical_or(terminated, truncated)
            episodes = episodes.update(reward, done)
            if config.reward_scale != 1.0:
                reward = reward * config.reward_scale
            if config.norm_reward:
                reward, rnorm = rnorm(reward, done, gamma)
            tr = Transition(obs, action, log_prob, reward, terminated, truncated, info["final_observation"], first)
            return (env_state, next_obs, rnorm, episodes, key, policy_carry, done), tr

        return jax.lax.scan(rollout_step, carry, length=t)

    def update_step(runner: TrainState, i, key):
        if explores:  # an epsilon-greedy policy (PQN): its exploration rate at the steps taken so far
            model = nnx.merge(graphdef, runner.params, runner.stats)
            model.explore(config.epsilon_at(i * b))
            runner = runner.replace(stats=nnx.split(model, nnx.Param, ...)[2])
        apply = applier(runner.stats)
        carry = (runner.env_state, runner.obs, runner.return_norm, runner.episodes, runner.key, runner.policy_carry,
                 runner.first)  # fmt: skip
        (env_state, obs, rnorm, episodes, rollout_key, policy_carry, first), traj = collect(runner.params, apply, carry)
        batch = rollout_batch(
            apply, runner.params, encode, traj, runner.policy_carry, obs, first, gamma, config.gae_lambda
        )
        params, opt_state, metrics = update(config, apply, tx, runner.params, runner.opt_state, batch, key, i)
        stats = runner.stats
        if normalizes:
            model = nnx.merge(graphdef, params, stats)
            model.obs_norm.update(batch.obs)
            stats = nnx.split(model, nnx.Param, ...)[2]
        done_sum, done_count = episodes.done_return_sum.sum(), episodes.done_count.sum()
        report((i + 1) * b, done_sum / done_count, every=report_every)
        runner = TrainState(
            params, opt_state, stats, env_state, obs, rnorm, episodes.drain(), rollout_key, runner.loop_key,
            policy_carry, first,
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
        return TrainState(
            params, tx.init(params), stats, env_state, obs, ReturnNorm.zeros(n), EpisodeStats.zeros((n,)), k_run,
            key, model.initial_carry((n,)), jnp.ones((n,), bool),
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
        spiking = spiking_core(model)
        if spiking is not None:  # what the trained policy's spikes cost, on the last observations
            states = tuple(runner.policy_carry) or None  # carried mode: from the membranes the rollout reached
            final.update(energy(spiking, encode(runner.obs), states))
        return TrainOutput(
            params=nnx.state(model),
            steps=jnp.asarray(np.concatenate([[0], (eval_idx + 1) * b]), jnp.int32),
            metrics=out_metrics,
            final=final,
        )

    # point 0 is the evaluation of step 0; point p >= 1 that of step eval_idx[p - 1] + 1, after its segment
    ready = (1, *(int(i) + 2 for i in eval_idx))
    return Trainer(init, step, finish, num_updates + 1, point_ready=ready)
