"""The host loop: Gymnasium-side vector environments stepped in Python, acting and updating in jitted JAX.

N seeds x E environments form one vector environment of N*E copies (environment ``s * E + e`` belongs to seed
``s``). Every seed has its own network state, optimizer state and PRNG key; acting and updating are batched over
the seed axis inside one jitted call each (:func:`over_seeds`), so a seed sweep costs one loop. The losses, the optimizers and the update steps are those of
:mod:`synjax.agents.ppo` / :mod:`synjax.agents.a2c` (the JAX-environment agents), applied to a
:class:`synjax.agents.cnn.ConvActorCritic`.

One iteration: ``num_steps`` vector steps, each one jitted call ``act(params, obs, keys)`` and one environment
step; then one jitted call ``update`` that turns the rollout into GAE advantages and runs the algorithm's update.
A time limit's cut (``truncated``) is bootstrapped on the host with the critic's value of the final observation.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from synjax.agents.cnn import ConvActorCritic
from synjax.agents.evaluation import deterministic_action
from synjax.agents.policy import PolicyNetwork
from synjax.agents.rollout import Batch, gae, minibatch_indices
from synjax.agents.spiking import NATURE_CONVS, SpikingActorCritic
from synjax.checks import require
from synjax.host.config import ALGOS, HostConfig
from synjax.host.envs import HostEnv


def make_network(config: HostConfig, env: HostEnv, rngs: nnx.Rngs) -> PolicyNetwork:
    """The host loop's one network builder (training, saved runs, benchmarks): the Nature CNN
    (:class:`~synjax.agents.cnn.ConvActorCritic`) or, with ``network="snn"``, its spiking twin (LIF feature maps
    of the three convolutions, ``features`` LIF units, the ``snn_*`` settings), reading ``env.obs_shape``
    ``(C, H, W)`` uint8 frames."""
    if config.network == "snn":
        c, h, w = env.obs_shape
        return SpikingActorCritic(
            c * h * w, env.action_dim, (config.features,), image=(h, w, c), convs=NATURE_CONVS, channels_first=True,
            pixel_scale=1 / 255, continuous=env.continuous, log_std_init=config.log_std_init, rngs=rngs,
            **config.spiking_kwargs(),
        )  # fmt: skip
    return ConvActorCritic(env.obs_shape, env.action_dim, continuous=env.continuous,
                           log_std_init=config.log_std_init, features=config.features, rngs=rngs)  # fmt: skip


class Agent:
    """The jitted functions of one config, each handling all S seeds in one call (:func:`over_seeds`).

    Attributes:
      init: ``keys (S,) -> (params, opt_state)``.
      act: ``(params, obs (S, E, C, H, W), keys (S,)) -> (action (S, E[, A]), log_prob (S, E), value (S, E), keys)``.
      mode: ``(params, obs (S, E, ...)) -> deterministic action``.
      value: ``(params, obs (S, E, ...)) -> (S, E)``.
      prepare: ``(params, rollout (T, S, E, ...) dict, last_obs (S, E, ...)) -> Batch`` (GAE advantages, leaves
        (S, T*E, ...)).
      step: A2C: ``(params, opt_state, batch, i) -> (params, opt_state, metrics)`` on the whole batch; PPO:
        ``(params, opt_state, batch, idx (S, size), i)`` on the minibatch ``idx``.
      order: PPO: ``keys -> (keys, idx (S, num_minibatches, size))``, one shuffled pass.
      energy: ``(params, obs (S, E, ...)) -> {firing_rate_l, synops, ann_macs}`` (S,) each, for a spiking
        network (``network="snn"``); None otherwise.

    The PPO epochs x minibatches loop runs in Python (:meth:`update`), one jitted call per minibatch, not as
    ``ppo.ppo_update``'s ``lax.scan``: XLA on CPU runs convolutions inside loops about 11x slower than at the top
    level of a computation (measured, Nature CNN, Adam step on 64 frames: 1,051 ms inside ``lax.scan``, 92 ms per
    jitted call from Python, 94 ms with the scan unrolled).
    """

    def __init__(self, config: HostConfig, env: HostEnv, seed_axis: str = "auto"):
        self.config = config
        algo = ALGOS[config.algo]
        self.algorithm = algo
        self.metric_names = algo.metrics
        bounds = None if env.action_bounds is None else tuple(jnp.asarray(b) for b in env.action_bounds)

        def build(key: jax.Array) -> nnx.Module:
            return make_network(config, env, nnx.Rngs(params=key))

        graphdef, _ = nnx.split(jax.eval_shape(lambda: build(jax.random.key(0))))
        tx = algo.make_optimizer(config, config.num_updates)

        def apply(params, carry, obs, reset):  # the policy contract; the CNN is feedforward (carry ())
            return nnx.merge(graphdef, params)(obs, carry, reset)

        def forward(params, obs):
            return apply(params, (), obs, None)[:2]

        def init(key):
            params = nnx.state(build(key))
            return params, tx.init(params)

        def act(params, obs, key):
            key, sample_key = jax.random.split(key)
            dist, value = forward(params, obs)
            action = dist.sample(seed=sample_key)
            return action, dist.log_prob(action), value, key

        def prepare(params, rollout, last_obs):
            last_value = forward(params, last_obs)[1]
            adv, ret = gae(
                rollout["reward"],
                rollout["value"],
                rollout["done"],
                last_value,
                config.gamma,
                config.gae_lambda,
            )
            t, n = rollout["reward"].shape
            flat = lambda x: x.reshape((t * n, *x.shape[2:]))
            return Batch(
                flat(rollout["obs"]), flat(rollout["action"]), flat(rollout["log_prob"]), flat(rollout["value"]),
                flat(adv), flat(ret), jnp.zeros((t * n,), bool),
            )  # fmt: skip

        self.passes, num_minibatches = algo.passes(config)

        def step(params, opt_state, batch, idx, i):
            mb = jax.tree.map(lambda x: x[idx], batch)
            return algo.minibatch_step(config, apply, tx, params, opt_state, mb, i)

        def order(key):
            key, shuffle_key = jax.random.split(key)
            return key, minibatch_indices(shuffle_key, config.batch_size, num_minibatches)

        seeds = over_seeds(config.num_seeds, seed_axis)
        self.init = jax.jit(jax.vmap(init))
        self.act = jax.jit(seeds(act))
        self.mode = jax.jit(seeds(lambda p, o: deterministic_action(forward(p, o)[0], bounds)))
        self.value = jax.jit(seeds(lambda p, o: forward(p, o)[1]))
        self.prepare = jax.jit(seeds(prepare, in_axes=(0, 1, 0)))  # rollouts are time-major: seed axis 1
        self.step = jax.jit(seeds(step, in_axes=(0, 0, 0, 0, None)))

        def spikes_cost(params, obs):  # obs (E, C, H, W): the spiking policy's energy per decision
            return nnx.merge(graphdef, params).energy(obs.reshape(obs.shape[0], -1), ())

        self.spiking = config.network == "snn"
        #: ``(params, obs (S, E, ...)) -> {firing_rate_l, synops, ann_macs}`` per seed (spiking networks only)
        self.energy = jax.jit(seeds(spikes_cost)) if self.spiking else None
        self.order = jax.jit(seeds(order))

    def update(self, params, opt_state, rollout, last_obs, keys, i):
        """One update of every seed from its rollout: ``(params, opt_state, metrics (name -> (S,)), keys)``."""
        batch = self.prepare(params, rollout, last_obs)
        history = []
        for _ in range(self.passes):
            keys, idx = self.order(keys)
            for m in range(idx.shape[1]):
                params, opt_state, metrics = self.step(params, opt_state, batch, idx[:, m], i)
                history.append(metrics)
        metrics = jax.tree.map(lambda *x: jnp.mean(jnp.stack(x), axis=0), *history)
        return params, opt_state, metrics, keys

    def compile(self, params, opt_state, rollout, last_obs, keys) -> None:
        """Compile ``prepare``, ``step`` and ``order`` ahead of time for these shapes without running an update
        (a PPO update of a big rollout takes minutes on CPU); they become the compiled executables."""
        batch = jax.eval_shape(self.prepare, params, rollout, last_obs)
        self.prepare = self.prepare.lower(params, rollout, last_obs).compile()
        idx = jax.eval_shape(self.order, keys)[1]
        self.order = self.order.lower(keys).compile()
        one = jax.ShapeDtypeStruct((idx.shape[0], idx.shape[2]), idx.dtype)  # idx[:, m]
        self.step = self.step.lower(params, opt_state, batch, one, 0).compile()


def make_agent(config: HostConfig, env: HostEnv, seed_axis: str = "auto") -> Agent:
    """Network, optimizer and jitted functions for ``config`` on ``env`` (see :class:`Agent`); ``seed_axis`` as
    :func:`over_seeds`."""
    return Agent(config, env, seed_axis)


def over_seeds(num_seeds: int, seed_axis: str = "auto") -> Callable[..., Callable]:
    """``seeds(f, in_axes=0)``: ``f`` applied to every seed's slice, outputs stacked on a leading seed axis.

    ``"vmap"`` batches the seeds with ``jax.vmap``; ``"unroll"`` traces one call per seed into the same jit. With
    per-seed convolution kernels ``vmap`` becomes a grouped convolution, which XLA runs slower on CPU than separate
    ones as the seeds grow (2-core CPU, Nature CNN, A2C update step of 20 frames per seed, XLA's convolutions
    (:mod:`synjax.cpu_flags`): 2 seeds 49 ms vmapped vs 55 ms unrolled, 4 seeds 139 vs 107 ms; with YNNPACK's
    convolutions 84 vs 44 and 176 vs 96 ms), so ``"auto"`` unrolls on CPU and vmaps on accelerators.
    """
    mode = seed_axis if seed_axis != "auto" else ("unroll" if jax.default_backend() == "cpu" else "vmap")
    require(mode in ("vmap", "unroll"), "seed_axis", seed_axis, "one of auto, vmap, unroll")

    def seeds(f: Callable, in_axes: Any = 0) -> Callable:
        if mode == "vmap":
            return jax.vmap(f, in_axes=in_axes)
        axes = in_axes if isinstance(in_axes, tuple) else None

        def unrolled(*args):
            def take(i):
                return [
                    a if (axes is not None and axes[j] is None)
                    else jax.tree.map(lambda x, ax=(0 if axes is None else axes[j]): jnp.take(x, i, axis=ax), a)
                    for j, a in enumerate(args)
                ]  # fmt: skip

            outs = [f(*take(i)) for i in range(num_seeds)]
            return jax.tree.map(lambda *x: jnp.stack(x), *outs)

        return unrolled

    return seeds


def clip_actions(action: np.ndarray, env: HostEnv) -> np.ndarray:
    """Actions as the environment takes them: Gaussian samples clipped to the action box."""
    if env.action_bounds is None:
        return action
    return np.clip(action, *env.action_bounds)


@dataclasses.dataclass
class History:
    """Learning curve so far: ``steps`` (P,) agent steps per seed; ``metrics`` name -> (S, P)."""

    steps: np.ndarray
    metrics: dict[str, np.ndarray]

    @classmethod
    def empty(cls, num_seeds: int, names: tuple[str, ...]) -> History:
        return cls(np.zeros((0,), np.int64), {n: np.zeros((num_seeds, 0), np.float32) for n in names})

    def append(self, step: int, values: dict[str, np.ndarray]) -> None:
        self.steps = np.append(self.steps, step)
        for name, v in values.items():
            self.metrics[name] = np.concatenate(
                [self.metrics[name], np.asarray(v, np.float32)[:, None]], axis=1
            )


class ScoreBook:
    """True game scores per seed: the games ended since the last curve point and the recent ones."""

    def __init__(self, num_seeds: int, envs_per_seed: int, recent: int = 20):
        self.num_seeds, self.envs_per_seed = num_seeds, envs_per_seed
        self.pending: list[list[float]] = [[] for _ in range(num_seeds)]
        self.last = np.full(num_seeds, np.nan, np.float32)
        self.recent: deque[float] = deque(maxlen=recent)

    def add(self, game_over: np.ndarray, score: np.ndarray) -> None:
        for i in np.flatnonzero(game_over):
            self.pending[i // self.envs_per_seed].append(float(score[i]))
            self.recent.append(float(score[i]))

    def point(self) -> np.ndarray:
        """Mean score per seed of the games ended since the last call (the previous value where none ended)."""
        for s, scores in enumerate(self.pending):
            if scores:
                self.last[s] = np.mean(scores)
        self.pending = [[] for _ in range(self.num_seeds)]
        return self.last.copy()


@dataclasses.dataclass
class TrainState:
    """What a checkpoint holds."""

    params: Any
    opt_state: Any
    keys: jax.Array
    update: int
    wall_time_s: float
    history: History

    def to_tree(self) -> dict[str, Any]:
        return {
            "params": nnx.to_pure_dict(self.params),
            "opt_state": self.opt_state,
            "keys": np.asarray(jax.random.key_data(self.keys)),
            "update": self.update,
            "wall_time_s": self.wall_time_s,
            "steps": self.history.steps,
            "metrics": self.history.metrics,
        }

    @classmethod
    def from_tree(cls, template: TrainState, tree: dict[str, Any]) -> TrainState:
        params = jax.tree.map(lambda x: x, template.params)
        nnx.replace_by_pure_dict(params, tree["params"])
        return cls(
            params=jax.tree.map(jnp.asarray, params),
            opt_state=jax.tree.map(jnp.asarray, tree["opt_state"]),
            keys=jax.random.wrap_key_data(jnp.asarray(tree["keys"], jnp.uint32)),
            update=int(tree["update"]),
            wall_time_s=float(tree["wall_time_s"]),
            history=History(
                np.asarray(tree["steps"]), {k: np.asarray(v) for k, v in tree["metrics"].items()}
            ),
        )


def env_seed(config: HostConfig, stream: int) -> int:
    """Seed of environment 0 for (config.seed, stream); stream = update index at (re)start, or -1 for evaluation."""
    return int(np.random.SeedSequence([config.seed, stream + 1]).generate_state(1)[0] % (2**31 - 2**20))


def train(
    config: HostConfig,
    env: HostEnv,
    agent: Agent,
    state: TrainState,
    *,
    on_checkpoint: Callable[[TrainState], None],
    progress: Any = None,
    on_point: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> TrainState:
    """Run updates ``state.update .. config.num_updates - 1`` on ``env`` (all seeds' environments).

    Writes a curve point every ``log_every`` updates (and after the last), calls ``on_checkpoint`` every
    ``checkpoint_every`` updates and, before re-raising, on KeyboardInterrupt. ``progress``: a tqdm-like bar
    (``update(n)``, ``set_postfix``) counting agent steps of all seeds, or None. ``on_point(step, values
    name -> (S,))``: called with each new curve point (a logging sink, :mod:`synjax.runner.log_sinks`), or None.
    """
    s, e, t = config.num_seeds, config.num_envs, config.num_steps
    obs = env.reset(env_seed(config, state.update))
    book = ScoreBook(s, e)
    shape = lambda x: x.reshape((s, e, *x.shape[1:]))
    params, opt_state, keys = state.params, state.opt_state, state.keys
    start = time.perf_counter() - state.wall_time_s
    u = state.update
    try:
        while u < config.num_updates:
            rollout = {k: [] for k in ("obs", "action", "log_prob", "value", "reward", "done")}
            for _ in range(t):
                action, log_prob, value, keys = agent.act(params, shape(obs), keys)
                action_np = np.asarray(action).reshape((s * e, *action.shape[2:]))
                step = env.step(clip_actions(action_np, env))
                reward = step.reward
                cut = step.truncated & ~step.terminated
                if cut.any():  # a time limit: credit the value of the state it cut off
                    final_value = np.asarray(agent.value(params, shape(step.final_obs))).reshape(-1)
                    reward = reward + config.gamma * np.where(cut, final_value, 0.0).astype(np.float32)
                done = step.terminated | step.truncated
                for k, v in (("obs", shape(obs)), ("action", action), ("log_prob", log_prob), ("value", value),
                             ("reward", shape(reward)), ("done", shape(done))):  # fmt: skip
                    rollout[k].append(np.asarray(v))
                book.add(step.game_over, step.score)
                obs = step.obs
            batch = {k: np.stack(v) for k, v in rollout.items()}  # (T, S, E, ...)
            batch["done"] = batch["done"].astype(np.float32)
            params, opt_state, metrics, keys = agent.update(params, opt_state, batch, shape(obs), keys, u)
            u += 1
            if progress is not None:
                progress.update(s * e * t)
                if book.recent:
                    progress.set_postfix({"score": f"{np.mean(book.recent):.3g}"}, refresh=False)
            if u % config.log_every == 0 or u == config.num_updates:
                point = {"train_score": book.point(), **{k: np.asarray(v) for k, v in metrics.items()}}
                state.history.append(u * config.batch_size, point)
                if on_point is not None:
                    on_point(u * config.batch_size, point)
            if config.checkpoint_every and u % config.checkpoint_every == 0 and u < config.num_updates:
                state = TrainState(params, opt_state, keys, u, time.perf_counter() - start, state.history)
                on_checkpoint(state)
    except KeyboardInterrupt:
        on_checkpoint(TrainState(params, opt_state, keys, u, time.perf_counter() - start, state.history))
        raise
    return TrainState(params, opt_state, keys, u, time.perf_counter() - start, state.history)


def evaluate(
    env: HostEnv,
    agent: Agent,
    params: Any,
    num_seeds: int,
    key: jax.Array,
    deterministic: bool,
    seed: int,
    record: bool = False,
    max_record: int = 3000,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One game per environment of ``env`` (``num_seeds`` x E of them, E = games per seed) with the trained
    policies: ``(scores (S, E) true game scores, frames)``; ``frames`` (when ``record``) are the last frame of each
    observation of environment 0 (seed 0) until its game ends, at most ``max_record``."""
    e = env.num_envs // num_seeds
    shape = lambda x: x.reshape((num_seeds, e, *x.shape[1:]))
    obs = env.reset(seed)
    keys = jax.random.split(key, num_seeds)
    scores = np.full(env.num_envs, np.nan, np.float32)
    frames = [obs[0, -1].copy()] if record else []
    recording = record
    while np.isnan(scores).any():
        if deterministic:
            action = agent.mode(params, shape(obs))
        else:
            action, _, _, keys = agent.act(params, shape(obs), keys)
        action = np.asarray(action).reshape((env.num_envs, *np.shape(action)[2:]))
        step = env.step(clip_actions(action, env))
        first = step.game_over & np.isnan(scores)
        scores[first] = step.score[first]
        obs = step.obs
        if recording:
            if step.game_over[0] or len(frames) >= max_record:
                recording = False
            else:
                frames.append(obs[0, -1].copy())
    return scores.reshape(num_seeds, e), frames


def checkpoint_tree_template(agent: Agent, config: HostConfig, keys: jax.Array) -> TrainState:
    """A fresh :class:`TrainState` (update 0, empty history): the start of a run and the template of a restore."""
    params, opt_state = agent.init(keys)
    names = ("train_score", *agent.metric_names)
    return TrainState(params, opt_state, keys, 0, 0.0, History.empty(config.num_seeds, names))
