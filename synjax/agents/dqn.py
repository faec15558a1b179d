"""DQN (Mnih et al. 2015) as a pure ``train(key) -> TrainOutput``, jitted whole and vmapped over seeds.

The loop follows Stable-Baselines3's DQN step for step, so the ``notebook`` preset is the original's agent:
``num_envs`` environments are stepped ``train_freq`` times (a *chunk*: ``train_freq * num_envs`` transitions),
every transition goes into a uniform replay buffer, the target network is updated for every multiple of
``target_update_interval`` transitions passed, and then, once more than ``learning_starts`` transitions were
collected, ``gradient_steps`` Adam steps (after global-norm gradient clipping) minimize the TD loss (Huber or
squared). Before ``learning_starts`` actions are uniformly random; after it they are epsilon-greedy, epsilon
falling linearly over the first ``exploration_fraction`` of the budget. The target update is Polyak averaging
with ``tau`` (``tau = 1``: the hard copy of the original DQN).

Targets: ``y = r + gamma * (1 - terminated) * Q_target(s', a')`` with ``a' = argmax_a Q_target(s', a)``, or,
for Double DQN (van Hasselt et al. 2016), ``a' = argmax_a Q_online(s', a)``. ``s'`` is gymnax's
``info["final_observation"]``, the true next observation before any auto-reset: a truncated transition (time
limit) bootstraps from where the episode really was, a terminated one does not bootstrap at all.

Before training and every ``eval_every`` transitions the greedy policy plays ``eval_episodes`` episodes on
fresh environments inside the same jit (``eval_return``).
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

from synjax.agents import spike_raster
from synjax.agents.config import make_env
from synjax.agents.dqn_config import DQNConfig
from synjax.agents.evaluation import episode_returns
from synjax.agents.networks import obs_encoder
from synjax.agents.q_networks import Q_NETWORKS
from synjax.agents.replay import ReplayBuffer, ReplayItem
from synjax.agents.spiking import energy, spiking_core
from synjax.agents.td import crossings, target_update, td_loss, td_target
from synjax.envs.episodes import EpisodeStats
from synjax.envs.random_bits import uniform_from_bits
from synjax.runner import sweep
from synjax.runner.experiment import run_experiment
from synjax.runner.progress import report
from synjax.runs import episode_gif, results
from synjax.runs.saved_policy import Policy
from synjax.trainer import Trainer, TrainOutput

# ---------------------------------------------------------------------------------- the pieces (pure, tested)


def make_optimizer(config: DQNConfig) -> optax.GradientTransformation:
    """Global-norm clipping (off when ``max_grad_norm`` is 0) then Adam (SB3's DQN optimizer; torch's Adam eps
    1e-8 is optax's default), with the learning rate optionally falling linearly to 0 (``anneal_lr``).

    ``optax.flatten`` runs both on one flat vector instead of one array per layer: the same arithmetic with
    fewer, larger kernels (a gradient step of the 64x64 Q-network at batch 32 went from 144 to 88 us on the
    shared 2-core CPU).
    """
    max_norm = jnp.where(jnp.asarray(config.max_grad_norm) > 0, config.max_grad_norm, jnp.inf)
    lr = optax.linear_schedule(config.lr, 0.0, config.num_gradient_steps) if config.anneal_lr else config.lr
    return optax.flatten(optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(lr)))


@struct.dataclass
class ChunkRandomness:
    """Every random number one chunk uses (``F = train_freq``, ``n = num_envs``, ``G x B`` replay draws).

    Attributes:
      explore_u: (F, n) float32 uniform in [0, 1) (24-bit resolution); explore where it is below epsilon.
      action_bits: (F, n) uint32 random bits for the exploratory actions (taken modulo the action count).
      env_keys: (F, n) PRNG keys of the environment steps.
      sample_bits: (G, B) uint32 random bits for the replay indices.
    """

    explore_u: jax.Array
    action_bits: jax.Array
    env_keys: jax.Array
    sample_bits: jax.Array


def chunk_randomness(key: jax.Array, freq: int, n: int, g: int, b: int) -> tuple[jax.Array, ChunkRandomness]:
    """``(next key, ChunkRandomness)`` from one ``jax.random.bits`` call.

    Why one call: on CPU every threefry call lowers to a rolled while loop whose fixed cost dominates small
    draws (a 32-item ``randint``, two threefry calls, costs 3-4x a ``bits`` draw and about as much as the
    rest of a small gradient step). The words are sliced: keys are 64 fresh random bits each, as
    ``jax.random.split`` makes them; a uniform is the top 24 bits of a word.
    """
    impl = jax.random.key_impl(key)
    kw = jax.random.key_data(key).shape[-1]  # 32-bit words per key (2 for threefry)
    sizes = (kw, freq * n, freq * n, freq * n * kw, g * b)
    words = jax.random.bits(key, (sum(sizes),), jnp.uint32)
    parts = jnp.split(words, np.cumsum(sizes)[:-1])
    return jax.random.wrap_key_data(parts[0], impl=impl), ChunkRandomness(
        explore_u=uniform_from_bits(parts[1]).reshape(freq, n),
        action_bits=parts[2].reshape(freq, n),
        env_keys=jax.random.wrap_key_data(parts[3].reshape(freq, n, kw), impl=impl),
        sample_bits=parts[4].reshape(g, b),
    )


def collect(
    step: Callable, env_params: Any, env_state: Any, obs: jax.Array, action: jax.Array, keys: jax.Array
) -> tuple[ReplayItem, jax.Array, Any, jax.Array, jax.Array]:
    """Step a batch of environments and build the replay items.

    Args:
      step: the batched gymnax ``step`` (``vmap(env.step, in_axes=(0, 0, 0, None))``).
      env_state: (n, ...) current environment states.
      obs: (n, ...) current observations.
      action: (n,) int32 actions.
      keys: (n,) PRNG keys.
    Returns:
      ``(items, next obs (auto-reset where an episode ended), env_state, reward (n,) float32,
      done (n,) bool)``; ``items.next_obs`` is ``info["final_observation"]``, ``items.terminated`` ignores
      truncation.
    """
    next_obs, env_state, reward, terminated, truncated, info = step(keys, env_state, action, env_params)
    reward = reward.astype(jnp.float32)
    item = ReplayItem(obs, action, reward, terminated.astype(jnp.float32), info["final_observation"])
    return item, next_obs, env_state, reward, terminated | truncated


# ------------------------------------------------------------------------------------------------ training


def make_q_network(config: DQNConfig, env: Any = None, env_params: Any = None):
    """``(graphdef, init(key) -> params nnx.State, q(params, raw obs (..., *obs_shape)) -> (..., A))`` of the
    ``config.network`` Q-network (:data:`synjax.agents.q_networks.Q_NETWORKS`)."""
    if env is None:
        env, env_params = make_env(config)
    obs_dim, encode = obs_encoder(env, env_params)
    num_actions = int(env.action_space(env_params).n)

    def build(rngs: nnx.Rngs) -> nnx.Module:
        return Q_NETWORKS[config.network](obs_dim, num_actions, config, rngs)

    graphdef, _ = nnx.split(build(nnx.Rngs(0)))

    def init(key: jax.Array):
        return nnx.split(build(nnx.Rngs(params=key)))[1]

    def q(params, obs: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params)(encode(obs))

    return graphdef, init, q


@struct.dataclass
class TrainState:
    """What one seed's training carries from chunk to chunk."""

    params: Any
    target_params: Any
    opt_state: Any
    buffer: ReplayBuffer
    env_state: Any
    obs: jax.Array
    episodes: EpisodeStats
    key: jax.Array
    loss_sum: jax.Array
    loss_count: jax.Array


def report_blocks(chunks_per_eval: int, num_evals: int, target_reports: int = 100) -> int:
    """Progress reports per evaluation period: the largest divisor of ``chunks_per_eval`` that is at most
    ``ceil(target_reports / num_evals)``, so a run sends about ``target_reports`` or fewer."""
    want = max(1, -(-target_reports // num_evals))
    return max(d for d in range(1, min(want, chunks_per_eval) + 1) if chunks_per_eval % d == 0)


def make_train(config: DQNConfig) -> Trainer:
    """Build the :class:`Trainer` of one seed (``train(key) -> TrainOutput`` when called; pure: jit and vmap it);
    a step is one evaluation period.

    The output: ``params`` is the online Q-network's ``nnx.State``; ``steps`` (E+1,) transitions at each
    evaluation (0 first); ``metrics`` (E+1,) each: ``eval_return`` (mean greedy return of ``eval_episodes``
    fresh episodes), ``train_return`` (mean return of the training episodes that ended since the previous
    point, NaN if none), ``loss`` (mean TD loss of the gradient steps since then, NaN if none) and ``epsilon``
    (at the point); ``final``: the last ``eval_return`` and ``train_return``.
    """
    env, env_params = make_env(config)
    graphdef, init_params, q_fn = make_q_network(config, env, env_params)
    _, encode = obs_encoder(env, env_params)
    num_actions = int(env.action_space(env_params).n)
    optimizer = make_optimizer(config)
    n, freq = config.num_envs, config.train_freq
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    chunks_per_eval = config.eval_every // config.chunk_steps
    blocks = report_blocks(chunks_per_eval, config.num_evals)
    chunks_per_block = chunks_per_eval // blocks
    max_eval_steps = int(getattr(env_params, "max_steps_in_episode", 100_000))

    def loss_fn(params, target_params, batch: ReplayItem) -> jax.Array:
        q = q_fn(params, batch.obs)
        q_taken = jnp.take_along_axis(q, batch.action[:, None], axis=-1)[:, 0]
        next_q_target = q_fn(target_params, batch.next_obs)
        next_q_online = q_fn(params, batch.next_obs) if config.double_dqn else next_q_target
        y = td_target(
            batch.reward, batch.terminated, next_q_target, next_q_online, config.gamma, config.double_dqn
        )
        return td_loss(q_taken, y, config.loss, config.huber_delta)

    def gradient_step(carry, batch: ReplayItem):
        params, target_params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, target_params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), target_params, opt_state), loss

    def env_step(s: TrainState, x) -> tuple[TrainState, None]:
        """One step of every environment; ``x`` = (epsilon, explore_u (n,), random action (n,), keys (n,))."""
        eps, u, random_action, keys = x
        greedy = jnp.argmax(q_fn(s.params, s.obs), axis=-1)
        action = jnp.where(u < eps, random_action, greedy).astype(jnp.int32)
        item, obs, env_state, reward, done = collect(step_envs, env_params, s.env_state, s.obs, action, keys)
        return s.replace(
            buffer=s.buffer.add(item),
            env_state=env_state,
            obs=obs,
            episodes=s.episodes.update(reward, done),
        ), None

    def train_phase(s: TrainState, sample_bits: jax.Array) -> TrainState:
        batches = s.buffer.take(sample_bits)  # leaves (G, B, ...)
        carry = (s.params, s.target_params, s.opt_state)
        (params, _, opt_state), losses = jax.lax.scan(gradient_step, carry, batches)
        return s.replace(
            params=params,
            opt_state=opt_state,
            loss_sum=s.loss_sum + jnp.sum(losses),
            loss_count=s.loss_count + config.gradient_steps,
        )

    def chunk(s: TrainState, c: jax.Array) -> tuple[TrainState, None]:
        """Chunk ``c`` (a scan counter, the same for every seed, so the ``cond`` below stays a branch)."""
        before = c * config.chunk_steps
        after = before + config.chunk_steps
        key, r = chunk_randomness(s.key, freq, n, config.gradient_steps, config.batch_size)
        t = before + jnp.arange(freq) * n  # transitions collected before each vector step
        # SB3: uniformly random actions until learning_starts, then epsilon-greedy
        eps = jnp.where(t < config.learning_starts, 1.0, config.epsilon_at(t))
        random_action = (r.action_bits % jnp.uint32(num_actions)).astype(jnp.int32)
        xs = (eps, r.explore_u, random_action, r.env_keys)
        s, _ = jax.lax.scan(env_step, s.replace(key=key), xs)
        # SB3 order: the target updates fall inside the collection, so before this chunk's gradient steps.
        count = crossings(before, after, config.target_update_interval)
        s = s.replace(target_params=target_update(s.target_params, s.params, config.tau, count))
        s = jax.lax.cond(after > config.learning_starts, train_phase, lambda s, _: s, s, r.sample_bits)
        return s, None

    def block(s: TrainState, first_chunk: jax.Array) -> tuple[TrainState, None]:
        """``chunks_per_block`` chunks, then a progress report (cheaper than a ``cond`` in every chunk)."""
        s, _ = jax.lax.scan(chunk, s, first_chunk + jnp.arange(chunks_per_block))
        report((first_chunk + chunks_per_block) * config.chunk_steps, s.episodes.last_return.mean())
        return s, None

    def greedy_return(params, key: jax.Array) -> jax.Array:
        def act(obs, carry):
            return jnp.argmax(q_fn(params, obs), axis=-1), carry

        return episode_returns(env, env_params, act, key, config.eval_episodes, max_eval_steps).mean()

    def eval_period(s: TrainState, e: jax.Array):
        s, _ = jax.lax.scan(block, s, e * chunks_per_eval + jnp.arange(blocks) * chunks_per_block)
        key, eval_key = jax.random.split(s.key)
        point = {
            "eval_return": greedy_return(s.params, eval_key),
            "train_return": s.episodes.mean_return(),
            "loss": s.loss_sum / s.loss_count,
            "epsilon": config.epsilon_at((e + 1) * config.eval_every),
        }
        s = s.replace(
            key=key, episodes=s.episodes.drain(), loss_sum=jnp.float32(0.0), loss_count=jnp.int32(0)
        )
        return s, point

    def init(key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        """The state and the metrics of the evaluation point before training."""
        key, net_key, reset_key, eval_key = jax.random.split(key, 4)
        params = init_params(net_key)
        obs, env_state = reset(jax.random.split(reset_key, n), env_params)
        example = ReplayItem(obs[0], jnp.int32(0), jnp.float32(0.0), jnp.float32(0.0), obs[0])
        s = TrainState(
            params=params,
            target_params=params,
            opt_state=optimizer.init(params),
            buffer=ReplayBuffer.create(example, config.replay_capacity),
            env_state=env_state,
            obs=obs,
            episodes=EpisodeStats.zeros((n,)),
            key=key,
            loss_sum=jnp.float32(0.0),
            loss_count=jnp.int32(0),
        )
        start = {
            "eval_return": greedy_return(params, eval_key),
            "train_return": jnp.float32(jnp.nan),
            "loss": jnp.float32(jnp.nan),
            "epsilon": config.epsilon_at(0),
        }
        return s, {k: jnp.asarray(v, jnp.float32) for k, v in start.items()}

    def step(state, e: jax.Array):
        s, start = state
        s, point = eval_period(s, e)
        return (s, start), point

    def finish(state, points) -> TrainOutput:
        s, start = state
        metrics = {k: jnp.concatenate([start[k][None], v]) for k, v in points.items()}
        final = {"eval_return": metrics["eval_return"][-1], "train_return": metrics["train_return"][-1]}
        spiking = spiking_core(nnx.merge(graphdef, s.params))
        if spiking is not None:  # what the trained Q-network's spikes cost, on the last observations
            final.update(energy(spiking, encode(s.obs)))
        return TrainOutput(
            params=s.params,
            steps=(jnp.arange(config.num_evals + 1) * config.eval_every).astype(jnp.int32),
            metrics=metrics,
            final=final,
        )

    # point 0 is the evaluation made in init (kept in the state), point p >= 1 that of step p - 1
    return Trainer(init, step, finish, config.num_evals, point_ready=tuple(range(config.num_evals + 1)))


# ------------------------------------------------------------------------------------------ the experiment


def saved_policy(data: dict[str, Any]) -> Policy:
    """A saved DQN run's greedy policy (config.json's dict -> :class:`~synjax.runs.saved_policy.Policy`)."""
    config = results.config_from_dict(DQNConfig, data)
    config = sweep.first_point(config)
    env, env_params = make_env(config)
    graphdef, init, q = make_q_network(config, env, env_params)

    def act(params, obs, carry):
        return jnp.argmax(q(params, obs), axis=-1), carry

    return Policy(env, env_params, init(jax.random.key(0)), act, network=lambda params: nnx.merge(graphdef, params))


def run(config: DQNConfig):
    """Train every seed (and swept value) of ``config``; write the results folder; ``(path, SweepRun)``."""

    def pictures(stage, output: TrainOutput) -> None:  # episode.gif; a spiking Q-network's spikes (spikes.png)
        episode_gif.write_run_gif(stage, saved_policy)
        if config.network != "snn":
            return
        env, env_params = make_env(config)
        graphdef, init, _ = make_q_network(config, env, env_params)
        template = nnx.merge(graphdef, init(jax.random.key(0)))
        spike_raster.write_run_picture(stage, template, output.params, env, env_params, f"dqn {config.env}")

    return run_experiment(
        "dqn", config, make_train, progress_total=config.total_timesteps, progress_unit_metric="train return",
        steps_per_seed=config.total_timesteps, extra_summary=results.final_medians, extra_files=pictures,
    )  # fmt: skip


PRESETS = {
    # The original notebook: SB3 DQN defaults (buffer 1M, learning_starts 100, batch 32, tau 1, gamma 0.99,
    # train_freq 4, gradient_steps 1, target_update_interval 10k, exploration 1.0 -> 0.05 over 10%, grad clip
    # 10, net 64x64), model.learn(20_000) with learning_rate 1e-4. It did not learn.
    "notebook": DQNConfig(),
    # Starts from rejax's (keraJLi/rejax, configs/gymnax/cartpole.yaml, dqn): 10 envs, buffer 50000,
    # fill_buffer 5000, batch 100, max_grad_norm 10, learning_rate 1e-3, polyak 0.98 every step, epsilon
    # 1 -> 0.05, gamma 0.99, ddqn, squared loss (optax.l2_loss), 64x64 net, num_epochs 5 (gradient steps per
    # vector step). Changed here, measured on 8 seeds (docs/dqn.md): 300k steps instead of 100k, epsilon still
    # falling over the first 50k; the learning rate annealed to 0 (PureJaxRL's LR_LINEAR_DECAY option); tau
    # 0.005 (SB3's and TD3's soft-update default) instead of 0.02 and 2 gradient steps instead of 5: with them
    # all 8 seeds ended at 500, while rejax's tau left DQN's usual late collapses; a plain ReLU Q-network
    # instead of rejax's dueling swish one.
    "tuned": (_TUNED := DQNConfig(
        total_timesteps=300_000,
        num_envs=10,
        buffer_size=50_000,
        learning_starts=5_000,
        batch_size=100,
        max_grad_norm=10.0,
        lr=1e-3,
        anneal_lr=True,
        train_freq=1,
        gradient_steps=2,
        target_update_interval=10,
        tau=0.005,
        exploration_fraction=50_000 / 300_000,
        exploration_final_eps=0.05,
        double_dqn=True,
        loss="mse",
        hidden=(64, 64),
        eval_every=15_000,
    )),
    # ShowerEnv (--env-params noise=true for the noisy variant): rejax's CartPole settings as above with its
    # own tau 0.02 and 5 gradient steps (tau 0.005 with 2 steps learns too slowly here: mean 13 over 16
    # seeds), 100k steps, epsilon falling over the first 50k, learning rate annealed. Not from a reference
    # for this environment: the notebook trained only PPO on it.
    "shower": dataclasses.replace(
        _TUNED, env="ShowerEnv", total_timesteps=100_000, gradient_steps=5, tau=0.02, exploration_fraction=0.5,
        eval_every=10_000,
    ),
}

#: ``--preset NAME --env ID`` picks these (:mod:`synjax.presets`); each PRESETS entry is made for its own env.
ENV_PRESETS = {
    "tuned": {
        "ShowerEnv": PRESETS["shower"],
        # rl-baselines3-zoo hyperparams/dqn.yml, MountainCar-v0 ("Tuned"): 120k steps, lr 4e-3, batch 128,
        # buffer 10k, learning_starts 1000, gamma 0.98, hard target update every 5000 steps, train_freq 16,
        # gradient_steps 8, epsilon 1 -> 0.07 over 20%, net 256x256; SB3's defaults for the rest (Huber loss,
        # grad norm 10, one environment).
        "MountainCar-v0": DQNConfig(
            num_seeds=8, env="MountainCar-v0", total_timesteps=120_000, lr=4e-3, batch_size=128, buffer_size=10_000,
            learning_starts=1_000, gamma=0.98, target_update_interval=5_000, tau=1.0, train_freq=16,
            gradient_steps=8, exploration_fraction=0.2, exploration_final_eps=0.07, hidden=(256, 256),
            eval_every=10_000,
        ),
    },
}

