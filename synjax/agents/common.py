"""What PPO and A2C share: the config base, rollout collection, GAE, loss pieces, evaluation and the train loop.

An on-policy actor-critic iteration is the same for both algorithms (collect ``num_steps`` x ``num_envs``
transitions with the current policy, compute advantages, update); only the update differs. So
:func:`make_actor_critic_train` builds the whole PureJaxRL-style ``train(key)`` (one closure, nested
``lax.scan``s) and takes the algorithm's optimizer and update as arguments.

Pieces that do not depend on JAX environments (the losses' parts, :func:`gae`, the optimizer helpers and the
algorithms' update functions) take an ``apply(params, obs) -> (distribution, value)`` function, so a host loop
over Gymnasium environments can reuse them with any network.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from synjax.agents.networks import ACTIVATIONS, ActorCritic, action_spec, combine_moments, obs_encoder
from synjax.envs import registry
from synjax.envs.episodes import EpisodeStats
from synjax.experiment import RunConfig, TrainOutput, require, run_experiment
from synjax.progress import report
from synjax.sweep import Floats, check
from synjax.trainer import Trainer

#: ``apply(params, obs (..., obs_dim)) -> (policy distribution, value (...,))``.
Apply = Callable[[Any, jax.Array], tuple[distrax.Distribution, jax.Array]]

ACTION_HEADS = ("auto", "discrete", "gaussian")


# --------------------------------------------------------------------------------------------------- config


def parse_env_params(text: str) -> dict[str, Any]:
    """``"noise=true,max_steps_in_episode=60"`` -> ``{"noise": True, "max_steps_in_episode": 60}``.

    Values: ``true``/``false`` (any case) become bools, then int, then float; anything else stays a string.
    """
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ValueError(f"{item!r} is not name=value")
        name, raw = (s.strip() for s in item.split("=", 1))
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[name] = value
    return out


def make_env(config: ActorCriticConfig) -> tuple[Any, Any]:
    """``(env, env_params)`` of ``config.env`` with ``config.env_params`` applied."""
    return registry.make(config.env, **parse_env_params(config.env_params))


class RolloutBudget:
    """Budget arithmetic of on-policy configs with ``total_timesteps``, ``num_envs`` and ``num_steps`` fields
    (per seed), shared by the JAX-environment agents and the host loop."""

    @property
    def batch_size(self) -> int:
        """Transitions per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """``ceil(total_timesteps / batch_size)``."""
        return -(-self.total_timesteps // self.batch_size)

    @property
    def env_steps(self) -> int:
        """Environment steps one seed actually takes: ``num_updates * batch_size``."""
        return self.num_updates * self.batch_size


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(RunConfig, RolloutBudget):
    """Settings PPO and A2C share (names follow Stable-Baselines3 where they exist).

    Attributes:
      env: environment id (``synjax.envs.registry.env_ids()``).
      env_params: environment params to change, ``"name=value,..."`` (e.g. ``"noise=true"`` for ShowerEnv).
      total_timesteps: environment steps per seed; training runs ``ceil(total / (num_envs * num_steps))``
        updates (SB3 semantics: the last rollout is completed).
      num_envs: parallel environments per seed.
      num_steps: rollout length per environment per update (SB3 ``n_steps``).
      lr: learning rate (sweepable).
      anneal_lr: decay the learning rate linearly to 0 over the updates.
      gamma: discount (sweepable).
      gae_lambda: GAE lambda; 1.0 gives n-step returns (sweepable).
      ent_coef: entropy bonus weight (sweepable).
      vf_coef: value loss weight (sweepable).
      max_grad_norm: global gradient-norm clip (sweepable).
      norm_adv: standardize advantages (per minibatch).
      norm_obs: running observation normalization inside the network (saved with its parameters).
      norm_reward: scale rewards by the running std of the discounted return (SB3 VecNormalize).
      hidden: hidden layer widths of actor and critic.
      activation: ``"tanh"`` or ``"relu"``.
      shared_torso: one torso for actor and critic instead of two.
      action_head: ``"auto"`` (from the action space), ``"discrete"`` or ``"gaussian"`` (must match it).
      log_std_init: initial log std of the Gaussian head (sweepable).
      eval_every: evaluate the deterministic policy every this many updates (and after the last one).
      eval_episodes: episodes per evaluation, on fresh environments.
    """

    env: str = "CartPole-v1"
    env_params: str = ""
    total_timesteps: int = 100_000
    num_envs: int = 8
    num_steps: int = 32
    lr: Floats = 3e-4
    anneal_lr: bool = False
    gamma: Floats = 0.99
    gae_lambda: Floats = 0.95
    ent_coef: Floats = 0.0
    vf_coef: Floats = 0.5
    max_grad_norm: Floats = 0.5
    norm_adv: bool = True
    norm_obs: bool = False
    norm_reward: bool = False
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False
    action_head: str = "auto"
    log_std_init: Floats = 0.0
    eval_every: int = 10
    eval_episodes: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        ids = registry.env_ids()
        require(self.env in ids, "env", self.env, f"one of {', '.join(ids)}")
        try:
            env, env_params = make_env(self)
        except ValueError as e:
            require(False, "env_params", self.env_params, f"valid params of {self.env} ({e})")
        require(self.total_timesteps >= 1, "total_timesteps", self.total_timesteps, "an integer >= 1")
        require(self.num_envs >= 1, "num_envs", self.num_envs, "an integer >= 1")
        require(self.num_steps >= 1, "num_steps", self.num_steps, "an integer >= 1")
        check("lr", self.lr, lambda v: v > 0, "a float > 0")
        check("gamma", self.gamma, lambda v: 0 <= v <= 1, "a float in [0, 1]")
        check("gae_lambda", self.gae_lambda, lambda v: 0 <= v <= 1, "a float in [0, 1]")
        check("ent_coef", self.ent_coef, lambda v: v >= 0, "a float >= 0")
        check("vf_coef", self.vf_coef, lambda v: v >= 0, "a float >= 0")
        check("max_grad_norm", self.max_grad_norm, lambda v: v > 0, "a float > 0")
        check("log_std_init", self.log_std_init, math.isfinite, "a finite float")
        require(all(h >= 1 for h in self.hidden), "hidden", self.hidden, "layer widths >= 1")
        require(
            self.activation in ACTIVATIONS, "activation", self.activation, f"one of {', '.join(ACTIVATIONS)}"
        )
        require(
            self.action_head in ACTION_HEADS,
            "action_head",
            self.action_head,
            f"one of {', '.join(ACTION_HEADS)}",
        )
        space = env.action_space(env_params)
        continuous = action_spec(env, env_params)[0]
        if self.action_head == "gaussian":
            require(
                continuous,
                "action_head",
                self.action_head,
                f"'auto' or 'discrete' for {self.env}, whose action space is discrete ({space.n} actions)",
            )
        if self.action_head == "discrete":
            require(
                not continuous,
                "action_head",
                self.action_head,
                f"'auto' or 'gaussian' for {self.env}, whose action space is continuous (Box)",
            )
        obs_encoder(env, env_params)  # raises for unsupported observation spaces
        require(self.eval_every >= 1, "eval_every", self.eval_every, "an integer >= 1")
        require(self.eval_episodes >= 1, "eval_episodes", self.eval_episodes, "an integer >= 1")


def run_actor_critic(name: str, config: ActorCriticConfig, make_train: Callable):
    """Train every seed (and every swept value) of ``config``; write the results folder; ``(path, SweepRun)``."""
    return run_experiment(
        name, config, make_train, progress_total=config.env_steps, progress_unit_metric="train return",
        steps_per_seed=config.env_steps, extra_summary=final_medians,
    )  # fmt: skip


def make_network(config: ActorCriticConfig, env: Any, env_params: Any, rngs: nnx.Rngs) -> ActorCritic:
    """The :class:`ActorCritic` that ``config`` trains on ``env`` (also rebuilds saved runs)."""
    obs_dim, _ = obs_encoder(env, env_params)
    continuous, action_dim, _ = action_spec(env, env_params)
    return ActorCritic(
        obs_dim,
        action_dim,
        config.hidden,
        continuous=continuous,
        shared_torso=config.shared_torso,
        activation=config.activation,
        log_std_init=config.log_std_init,
        normalize_obs=config.norm_obs,
        rngs=rngs,
    )


# ----------------------------------------------------------------------------------------------- data, GAE


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
    """

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array


@struct.dataclass
class Batch:
    """Flat training batch (leaves (B, ...)): what the losses consume."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    returns: jax.Array


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
      gamma, gae_lambda: discount and GAE lambda; ``gae_lambda=1`` gives n-step returns minus V.
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
    apply: Apply,
    params: Any,
    encode: Callable[[jax.Array], jax.Array],
    traj: Transition,
    last_obs: jax.Array,
    gamma: Any,
    gae_lambda: Any,
) -> Batch:
    """The flat training :class:`Batch` (B = T * N) of a rollout ``traj`` (leaves (T, N, ...)).

    One forward pass of the critic over every observation, every final observation and ``last_obs`` (N, ...)
    gives V(s_t), V(final obs) and V(s_T); truncated steps are bootstrapped (:func:`bootstrap_truncated`),
    then :func:`gae` gives advantages and returns.
    """
    t, n = traj.reward.shape
    raw = jnp.concatenate([traj.obs, last_obs[None], traj.final_obs])
    _, v = apply(params, encode(raw))  # (2T + 1, N)
    values, last_value, final_values = v[:t], v[t], v[t + 1 :]
    reward = bootstrap_truncated(traj.reward, final_values, traj.terminated, traj.truncated, gamma)
    done = jnp.logical_or(traj.terminated, traj.truncated).astype(jnp.float32)
    adv, ret = gae(reward, values, done, last_value, gamma, gae_lambda)
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])
    return Batch(
        encode(flat(traj.obs)), flat(traj.action), flat(traj.log_prob), flat(values), flat(adv), flat(ret)
    )


@struct.dataclass
class ReturnNorm:
    """Reward scaling by the running std of the discounted return (SB3 ``VecNormalize(norm_reward=True)``).

    Attributes:
      ret: (N,) discounted return of each running episode.
      mean, var, count: running moments of ``ret`` (scalars).
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


# ---------------------------------------------------------------------------------------------- loss pieces


def normalize(x: jax.Array) -> jax.Array:
    """``(x - mean) / (std + 1e-8)`` over all elements, with the population std (``jnp.std``, as PureJaxRL).
    SB3 and CleanRL divide by torch's sample std, ``sqrt(B / (B - 1))`` larger: 0.8% for a minibatch of 64, the
    one difference between the host loop's PPO update and SB3's (``tests/test_host.py``)."""
    return (x - x.mean()) / (x.std() + 1e-8)


def value_loss(value: jax.Array, old_value: jax.Array, returns: jax.Array, vf_clip: Any = 0.0) -> jax.Array:
    """Mean squared error of ``value`` to ``returns`` (SB3: no 1/2). With ``vf_clip > 0`` the PPO-style
    pessimistic clipped loss around ``old_value``: ``max((v - R)^2, (old + clip(v - old, +-c) - R)^2)``."""
    unclipped = (value - returns) ** 2
    c = jnp.maximum(vf_clip, 1e-12)
    clipped = (old_value + jnp.clip(value - old_value, -c, c) - returns) ** 2
    return jnp.where(vf_clip > 0, jnp.maximum(unclipped, clipped), unclipped).mean()


def policy_terms(apply: Apply, params: Any, obs: jax.Array, action: jax.Array):
    """``(log_prob (B,), entropy (B,), value (B,))`` of ``action`` under the current network."""
    dist, value = apply(params, obs)
    return dist.log_prob(action), dist.entropy(), value


def lr_schedule(lr: Any, anneal: bool, num_updates: int, steps_per_update: int):
    """Constant ``lr``, or (``anneal``) ``lr * (1 - u / num_updates)`` during update ``u`` (0-based), where
    each update makes ``steps_per_update`` optimizer steps (SB3's linear schedule, stepped per rollout)."""
    if not anneal:
        return lr
    return lambda count: lr * (1.0 - (count // steps_per_update) / num_updates)


def apply_gradients(tx: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any):
    """One optimizer step: ``(new params, new opt_state)``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


# ----------------------------------------------------------------------------------------------- evaluation


def evaluate(
    env: Any,
    env_params: Any,
    act: Callable[[jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int = 100_000,
) -> jax.Array:
    """Returns of ``num_episodes`` episodes of the policy ``act`` on fresh environments, run side by side.

    Args:
      act: raw batched observations ``(E, *obs_shape)`` -> actions ``(E, ...)`` (deterministic for evaluation).
      key: PRNG key for the resets and the environment's randomness.
      max_steps: safety cap on steps (environments truncate themselves well before).
    Returns:
      (num_episodes,) float32 undiscounted returns.
    """
    keys = jax.random.split(key, num_episodes + 1)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys[1:], env_params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    zeros = jnp.zeros((num_episodes,), jnp.float32)

    def cond(c):
        t, _, _, _, _, done = c
        return jnp.logical_and(t < max_steps, jnp.logical_not(jnp.all(done)))

    def body(c):
        t, key, obs, state, ret, done = c
        keys = jax.random.split(key, num_episodes + 1)
        obs, state, reward, terminated, truncated, _ = step(keys[1:], state, act(obs), env_params)
        ret = ret + jnp.where(done, 0.0, reward.astype(jnp.float32))
        done = done | terminated | truncated
        return t + 1, keys[0], obs, state, ret, done

    init = (jnp.int32(0), keys[0], obs, state, zeros, jnp.zeros((num_episodes,), bool))
    return jax.lax.while_loop(cond, body, init)[4]


def deterministic_action(dist: distrax.Distribution, bounds: tuple[jax.Array, jax.Array] | None) -> jax.Array:
    """The policy's mode (argmax logits, or the Gaussian mean clipped to the action ``bounds``)."""
    action = dist.mode()
    return action if bounds is None else jnp.clip(action, *bounds)


# ------------------------------------------------------------------------------------------- the train loop

#: ``make_tx(config, num_updates) -> optax optimizer``.
MakeTx = Callable[[Any, int], optax.GradientTransformation]
#: ``update(config, apply, tx, params, opt_state, batch, key, update_index) -> (params, opt_state, metrics)``.
Update = Callable[..., tuple[Any, Any, dict[str, jax.Array]]]


@struct.dataclass
class TrainState:
    """One seed's on-policy training state between steps.

    Attributes:
      params: the network's ``nnx.Param`` state; stats: its other variables (observation statistics).
      opt_state: the optimizer's state.
      env_state, obs: (N, ...) the environments and their current observations.
      return_norm, episodes: reward scaling and episode bookkeeping.
      key: the rollouts' PRNG key; loop_key: the evaluations' and updates' key.
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


def eval_points(num_updates: int, eval_every: int) -> np.ndarray:
    """0-based indices of the updates after which training evaluates: every ``eval_every``-th and the last."""
    idx = np.arange(eval_every - 1, num_updates, eval_every)
    if idx.size == 0 or idx[-1] != num_updates - 1:
        idx = np.append(idx, num_updates - 1)
    return idx


def make_actor_critic_train(
    config: ActorCriticConfig, make_tx: MakeTx, update: Update, metric_names: tuple[str, ...]
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
    ``final``: last ``eval_return`` and ``train_return``.
    """
    env, env_params = make_env(config)
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

    graphdef = nnx.split(
        nnx.eval_shape(lambda: make_network(config, env, env_params, nnx.Rngs(0))), nnx.Param, ...
    )[0]
    tx = make_tx(config, num_updates)

    def applier(stats):
        return lambda p, o: nnx.merge(graphdef, p, stats)(o)

    def run_eval(params, stats, key):
        apply = applier(stats)

        def act(raw_obs):
            return deterministic_action(apply(params, encode(raw_obs))[0], bounds)

        return evaluate(env, env_params, act, key, config.eval_episodes, max_eval_steps).mean()

    def collect(params, apply, carry):
        """``num_steps`` steps of every environment with the current policy: (carry, Transition (T, N, ...))."""

        def rollout_step(carry, _):
            env_state, obs, rnorm, episodes, key = carry
            keys = jax.random.split(key, n + 2)  # one split a step: each random call costs compile time
            key, k_act, k_env = keys[0], keys[1], keys[2:]
            dist, _ = apply(params, encode(obs))  # the actor only: values come later, batched
            action = dist.sample(seed=k_act)
            log_prob = dist.log_prob(action)
            env_action = jnp.clip(action, *bounds) if continuous else action
            next_obs, env_state, reward, terminated, truncated, info = env_step(
                k_env, env_state, env_action, env_params
            )
            reward = reward.astype(jnp.float32)
            done = jnp.logical_or(terminated, truncated)
            episodes = episodes.update(reward, done)
            if config.norm_reward:
                reward, rnorm = rnorm(reward, done, gamma)
            tr = Transition(obs, action, log_prob, reward, terminated, truncated, info["final_observation"])
            return (env_state, next_obs, rnorm, episodes, key), tr

        return jax.lax.scan(rollout_step, carry, length=t)

    def update_step(runner: TrainState, i, key):
        apply = applier(runner.stats)
        carry = (runner.env_state, runner.obs, runner.return_norm, runner.episodes, runner.key)
        (env_state, obs, rnorm, episodes, rollout_key), traj = collect(runner.params, apply, carry)
        batch = rollout_batch(apply, runner.params, encode, traj, obs, gamma, config.gae_lambda)
        params, opt_state, metrics = update(config, apply, tx, runner.params, runner.opt_state, batch, key, i)
        stats = runner.stats
        if config.norm_obs:
            model = nnx.merge(graphdef, params, stats)
            model.obs_norm.update(batch.obs)
            stats = nnx.split(model, nnx.Param, ...)[2]
        done_sum, done_count = episodes.done_return_sum.sum(), episodes.done_count.sum()
        report((i + 1) * b, done_sum / done_count, every=report_every)
        runner = TrainState(
            params, opt_state, stats, env_state, obs, rnorm, episodes.drain(), rollout_key, runner.loop_key
        )
        return runner, (done_sum, done_count.astype(jnp.float32), metrics)

    def init(key: jax.Array) -> TrainState:
        keys = jax.random.split(key, n + 2)
        key, k_init, k_reset = keys[0], keys[1], keys[2:]
        model = make_network(config, env, env_params, nnx.Rngs(params=k_init))
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(k_reset, env_params)
        if config.norm_obs:  # start the statistics from the first observations
            model.obs_norm.update(encode(obs))
        _, params, stats = nnx.split(model, nnx.Param, ...)
        key, k_run = jax.random.split(key)
        return TrainState(
            params, tx.init(params), stats, env_state, obs, ReturnNorm.zeros(n), EpisodeStats.zeros((n,)), k_run,
            key,
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
        return TrainOutput(
            params=nnx.state(model),
            steps=jnp.asarray(np.concatenate([[0], (eval_idx + 1) * b]), jnp.int32),
            metrics=out_metrics,
            final={
                "eval_return": out_metrics["eval_return"][-1],
                "train_return": out_metrics["train_return"][-1],
            },
        )

    return Trainer(init, step, finish, num_updates + 1)


def final_medians(o: TrainOutput) -> dict[str, Any]:
    """``{"final_median": {metric: median over seeds}}`` for summary.json (the issue's targets are medians)."""
    return {"final_median": {k: float(np.nanmedian(np.asarray(v))) for k, v in o.final.items()}}
