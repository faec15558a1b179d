"""Proximal Policy Optimization (Schulman et al. 2017) as a pure ``train(key)``; ``synjax ppo``.

``make_train(config)`` returns a :class:`synjax.trainer.Trainer` (``train(key) -> TrainOutput`` when called),
jittable and vmappable over seeds (the runner does both). The loss and the epochs x minibatches update are plain
functions of an ``apply(params, carry, obs, reset)`` network function (:mod:`synjax.agents.policy`), importable
without the JAX-environment rollout (the Gymnasium host loop reuses them).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import optax

from synjax.agents import losses, on_policy_experiment
from synjax.agents.config import ActorCriticConfig, check_minibatches
from synjax.agents.on_policy import OnPolicyAlgorithm
from synjax.agents.policy import PolicyApply
from synjax.agents.rollout import Batch, minibatches
from synjax.checks import above, at_least
from synjax.presets import per_game
from synjax.runner.sweep import Floats

METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")


@dataclasses.dataclass(frozen=True)
class PPOFields:
    """PPO's own settings (the JAX loop's :class:`PPOConfig` and the host loop's ``--algo ppo``).

    Attributes:
      update_epochs: passes over each rollout (SB3 ``n_epochs``).
      num_minibatches: minibatches per pass; must divide ``num_envs * num_steps`` (SB3 ``batch_size`` =
        ``num_envs * num_steps / num_minibatches``); with a stateful network (gru, or snn in carried mode) a
        minibatch is a group of whole environment sequences, so it must divide ``num_envs``.
      clip_eps: ratio clip range (sweepable).
      anneal_clip: decay ``clip_eps`` linearly to 0 over the updates (rl-zoo ``lin_0.2``).
      vf_clip: clip range of the value update around the old value; 0 turns value clipping off (sweepable).
    """

    update_epochs: Annotated[int, at_least(1)] = 10
    num_minibatches: int = 4
    clip_eps: Annotated[Floats, above(0.0)] = 0.2
    anneal_clip: bool = False
    vf_clip: Annotated[Floats, at_least(0.0, "a float >= 0 (0 = no value clipping)")] = 0.0


@dataclasses.dataclass(frozen=True)
class PPOConfig(PPOFields, ActorCriticConfig):
    """PPO settings: its own on :class:`PPOFields`, the shared ones on :class:`ActorCriticConfig`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_minibatches(self, whole_sequences=self.stateful)


def ppo_loss(
    apply: PolicyApply,
    params: Any,
    batch: Batch,
    *,
    clip_eps: Any,
    vf_clip: Any,
    ent_coef: Any,
    vf_coef: Any,
    norm_adv: bool,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped-surrogate PPO loss of one minibatch ``batch`` (leaves (B, ...)).

    ``loss = -mean(min(r A, clip(r, 1 +- clip_eps) A)) + vf_coef * value_loss - ent_coef * mean(entropy)``
    with ``r = exp(log_prob - old log_prob)``. Returns ``(loss, metrics)``; metrics are ``policy_loss``,
    ``value_loss``, ``entropy``, ``approx_kl`` (``mean((r - 1) - log r)``, Schulman's estimator) and
    ``clip_frac``.
    """
    log_prob, entropy, value = losses.policy_terms(apply, params, batch)
    adv = losses.normalize(batch.advantage) if norm_adv else batch.advantage
    log_ratio = log_prob - batch.log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)
    policy_loss = -surrogate.mean()
    v_loss = losses.value_loss(value, batch.value, batch.returns, vf_clip)
    ent = entropy.mean()
    loss = policy_loss + vf_coef * v_loss - ent_coef * ent
    metrics = {
        "policy_loss": policy_loss,
        "value_loss": v_loss,
        "entropy": ent,
        "approx_kl": jax.lax.stop_gradient(((ratio - 1.0) - log_ratio).mean()),
        "clip_frac": jax.lax.stop_gradient((jnp.abs(ratio - 1.0) > clip_eps).mean()),
    }
    return loss, metrics


def ppo_minibatch_step(
    apply: PolicyApply, tx: optax.GradientTransformation, params: Any, opt_state: Any, mb: Batch, **loss_kw: Any
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """One optimizer step on :func:`ppo_loss` of minibatch ``mb``: ``(params, opt_state, metrics)``."""
    grads, metrics = jax.grad(lambda p: ppo_loss(apply, p, mb, **loss_kw), has_aux=True)(params)
    params, opt_state = losses.apply_gradients(tx, params, opt_state, grads)
    return params, opt_state, metrics


def ppo_update(
    apply: PolicyApply,
    tx: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
    batch: Batch,
    key: jax.Array,
    *,
    update_epochs: int,
    num_minibatches: int,
    clip_eps: Any,
    vf_clip: Any,
    ent_coef: Any,
    vf_coef: Any,
    norm_adv: bool,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """``update_epochs`` shuffled passes of ``num_minibatches`` gradient steps over ``batch`` (flat or sequences,
    see :func:`synjax.agents.rollout.minibatches`).

    Returns ``(params, opt_state, metrics)`` with each :func:`ppo_loss` metric averaged over all steps.
    """
    loss_kw = {"clip_eps": clip_eps, "vf_clip": vf_clip, "ent_coef": ent_coef, "vf_coef": vf_coef,
               "norm_adv": norm_adv}  # fmt: skip

    def minibatch_step(carry, mb):
        params, opt_state, metrics = ppo_minibatch_step(apply, tx, *carry, mb, **loss_kw)
        return (params, opt_state), metrics

    def epoch(carry, k):
        return jax.lax.scan(minibatch_step, carry, minibatches(batch, k, num_minibatches))

    (params, opt_state), metrics = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, update_epochs)
    )
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


def make_optimizer(config: PPOConfig, num_updates: int) -> optax.GradientTransformation:
    """Global-norm clipping then Adam (eps 1e-5 as SB3's policies), learning rate optionally annealed; applied to
    the parameters flattened into one vector."""
    lr = losses.lr_schedule(
        config.lr, config.anneal_lr, num_updates, config.update_epochs * config.num_minibatches
    )
    # optax.flatten: one vector instead of a leaf per layer, the same arithmetic in fewer (faster) kernels
    return optax.flatten(
        optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))
    )


def loss_settings(config: PPOConfig, i: Any) -> dict[str, Any]:
    """:func:`ppo_loss` keywords of update ``i`` (the clip range annealed linearly to 0 if ``anneal_clip``)."""
    clip = config.clip_eps * (1.0 - i / config.num_updates) if config.anneal_clip else config.clip_eps
    return {"clip_eps": clip, "vf_clip": config.vf_clip, "ent_coef": config.ent_coef, "vf_coef": config.vf_coef,
            "norm_adv": config.norm_adv}  # fmt: skip


def update_step(config: PPOConfig, apply, tx, params, opt_state, batch, key, i):
    """One PPO update of ``batch`` with ``config``'s settings (update index ``i``); the ``Update`` of
    :func:`synjax.agents.on_policy.make_train`."""
    return ppo_update(
        apply, tx, params, opt_state, batch, key, update_epochs=config.update_epochs,
        num_minibatches=config.num_minibatches, **loss_settings(config, i),
    )  # fmt: skip


ALGORITHM = OnPolicyAlgorithm(
    name="ppo", metrics=METRICS, make_optimizer=make_optimizer, update=update_step,
    minibatch_step=lambda config, apply, tx, params, opt_state, mb, i: ppo_minibatch_step(
        apply, tx, params, opt_state, mb, **loss_settings(config, i)),
    passes=lambda config: (config.update_epochs, config.num_minibatches),
)  # fmt: skip
make_train = ALGORITHM.make_train  # the documented API: make_train(config)(key) trains one seed
"""``make_train(config, env=None, env_params=None, network=None)``: the :class:`synjax.trainer.Trainer` of one
PPO seed for a :class:`PPOConfig` (see :meth:`synjax.agents.on_policy.OnPolicyAlgorithm.make_train`)."""
run = functools.partial(on_policy_experiment.run, ALGORITHM)
"""``run(config)``: train every seed (and swept value) of ``config`` and write the results folder."""

_SB3 = {  # Stable-Baselines3 PPO defaults, the notebook's settings
    "num_envs": 1, "num_steps": 2048, "num_minibatches": 32, "update_epochs": 10, "lr": 3e-4, "gamma": 0.99,
    "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5, "norm_adv": True,
    "hidden": (64, 64), "activation": "tanh",
}  # fmt: skip

PRESETS = {
    # rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1: n_envs 8, n_timesteps 1e5, n_steps 32, batch_size 256,
    # gae_lambda 0.8, gamma 0.98, n_epochs 20, ent_coef 0.0, learning_rate lin_0.001, clip_range lin_0.2.
    "tuned": PPOConfig(
        num_seeds=16, env="CartPole-v1", total_timesteps=100_000, num_envs=8, num_steps=32, num_minibatches=1,
        update_epochs=20, lr=1e-3, anneal_lr=True, gamma=0.98, gae_lambda=0.8, clip_eps=0.2, anneal_clip=True,
        ent_coef=0.0, eval_every=20,
    ),
    # The notebook: SB3 PPO defaults on CartPole-v1, model.learn(20_000) (10 rollouts of 2048 = 20,480 steps).
    "notebook": PPOConfig(num_seeds=16, env="CartPole-v1", total_timesteps=20_000, eval_every=1, **_SB3),
    # ShowerEnv has no published settings (it is the notebook's own environment). Ours: observation normalization
    # (the raw temperature ~38 saturates tanh units), episodes of 60 steps per rollout, 4 epochs x 4 minibatches;
    # picked with `synjax ppo --preset shower-tuned --num-seeds 4 --lr 3e-4,1e-3,3e-3` (all three solve it).
    "shower-tuned": PPOConfig(
        num_seeds=16, env="ShowerEnv", total_timesteps=100_000, num_envs=16, num_steps=60, num_minibatches=4,
        update_epochs=4, lr=1e-3, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.0, norm_obs=True,
        eval_every=10,
    ),
    # The memory task: CartPole with the velocities hidden (CartPole-masked-v1), a GRU policy trained on whole
    # environment sequences. PureJaxRL's ppo_rnn CartPole settings (4 epochs x 4 minibatches, 128 steps, clip
    # 0.2, entropy 0.01, gamma 0.99, lambda 0.95, lr 2.5e-4 annealed) with 16 environments and 1M steps, and
    # rewards scaled by the return's running std: the GRU torso is shared by actor and critic, and without the
    # scaling the value loss (~50) swamps the policy gradient (measured: 16 seeds stayed at random play, median
    # 9.7 after 1M steps; with it 2 seeds solve full-state CartPole in 100k steps).
    "masked-gru": PPOConfig(
        num_seeds=16, env="CartPole-masked-v1", network="gru", total_timesteps=1_000_000, num_envs=16,
        num_steps=128, num_minibatches=4, update_epochs=4, lr=2.5e-4, anneal_lr=True, gamma=0.99, gae_lambda=0.95,
        clip_eps=0.2, ent_coef=0.01, norm_reward=True, eval_every=25,
    ),
    # The same with the feedforward MLP: the baseline that cannot remember.
    "masked-mlp": PPOConfig(
        num_seeds=16, env="CartPole-masked-v1", network="mlp", total_timesteps=1_000_000, num_envs=16,
        num_steps=128, num_minibatches=4, update_epochs=4, lr=2.5e-4, anneal_lr=True, gamma=0.99, gae_lambda=0.95,
        clip_eps=0.2, ent_coef=0.01, norm_reward=True, eval_every=25,
    ),
    # Spiking PPO, carried time mode (the membranes are the policy's memory across steps, reset at episode
    # starts): the masked-gru settings above on full-state CartPole, one spiking layer of 128 LIF units, T = 2
    # SNN steps per decision (ours; 4 seeds x 200k: median 322 and rising, vs 263 with two layers of 64).
    "snn-carried": PPOConfig(
        num_seeds=16, env="CartPole-v1", network="snn", snn_time_mode="carried", snn_time_steps=2, hidden=(128,),
        total_timesteps=500_000, num_envs=16, num_steps=128, num_minibatches=4, update_epochs=4, lr=2.5e-4,
        anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, norm_reward=True, eval_every=25,
    ),
    # The memory task with the carried spiking policy: the settings above on CartPole-masked-v1, 1M, with recurrent
    # LIF units, T = 4 and running observation normalization (ours, 2026-12-02: median 500 on 16 seeds x 1M, 15 of
    # them >= 450; medians of the alternatives: LIF at T = 2 as above 53.9 on 16 seeds, RLIF at T = 2 72.6 raw and
    # 426.4 normalized on 4; docs/spiking_rl.md has the probes).
    "masked-snn": PPOConfig(
        num_seeds=16, env="CartPole-masked-v1", network="snn", snn_time_mode="carried", snn_time_steps=4,
        snn_neuron="RLIF", norm_obs=True, hidden=(128,), total_timesteps=1_000_000, num_envs=16, num_steps=128,
        num_minibatches=4, update_epochs=4, lr=2.5e-4, anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
        ent_coef=0.01, norm_reward=True, eval_every=25,
    ),
    # MinAtar (gymnax; Breakout by default, --env for the others): purejaxql config/alg/ppo_minatar.yaml, 64 envs x
    # 128 steps, 4 epochs x 8 minibatches, lr 5e-3 annealed, gamma 0.99, lambda 0.95, clip 0.2 (the value clipped
    # by it too), entropy 1e-4, value weight 0.5, grad norm 0.5, ReLU, and its CNN (16 3x3 convolutions, 128
    # units). Differences: one torso shared by actor and critic (purejaxql: two), 2M steps (CPU; published 10M).
    "minatar": PPOConfig(
        num_seeds=4, env="Breakout-MinAtar", network="cnn", hidden=(128,), total_timesteps=2_000_000, num_envs=64,
        num_steps=128, update_epochs=4, num_minibatches=8, lr=5e-3, anneal_lr=True, gamma=0.99, gae_lambda=0.95,
        clip_eps=0.2, vf_clip=0.2, ent_coef=1e-4, vf_coef=0.5, max_grad_norm=0.5, activation="relu", eval_every=12,
    ),
    # Its spiking twin: the same settings, the convolution's 1,024 outputs a LIF feature map, then 128 LIF units,
    # T = 4 SNN steps per decision (the fewest above the 3 two spiking layers need), membrane read-outs.
    "minatar-snn": PPOConfig(
        num_seeds=4, env="Breakout-MinAtar", network="snn", hidden=(128,), snn_time_steps=4,
        total_timesteps=2_000_000, num_envs=64, num_steps=128, update_epochs=4, num_minibatches=8, lr=5e-3,
        anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, vf_clip=0.2, ent_coef=1e-4, vf_coef=0.5,
        max_grad_norm=0.5, eval_every=12,
    ),
    # The notebook's ShowerEnv run: SB3 PPO defaults, 400k steps.
    "shower-notebook": PPOConfig(num_seeds=16, env="ShowerEnv", total_timesteps=400_000, eval_every=10, **_SB3),
}  # fmt: skip

def _gymnax_blines(env: str, total: int, num_envs: int, num_steps: int, **changes) -> PPOConfig:
    """gymnax-blines' PPO settings (agents/<env>/ppo.yaml): 4 minibatches, gamma 0.99, lambda 0.95, clip 0.2,
    entropy 0.01, value weight 0.5, grad norm 1.0, two separate 64-unit ReLU MLPs, lr 5e-4 (its 5% warm-up is
    not reproduced). Their Gaussian head learns a state-dependent scale, ours a state-independent log std."""
    settings = {
        "num_seeds": 8, "env": env, "total_timesteps": total, "num_envs": num_envs, "num_steps": num_steps,
        "num_minibatches": 4, "update_epochs": 4, "lr": 5e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2,
        "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 1.0, "hidden": (64, 64), "activation": "relu",
        "eval_every": 50,
    }  # fmt: skip
    return PPOConfig(**{**settings, **changes})


#: ``--preset NAME --env ID`` picks these (:mod:`synjax.presets`); each PRESETS entry is made for its own env.
ENV_PRESETS = {
    "tuned": {
        "ShowerEnv": PRESETS["shower-tuned"],
        "Acrobot-v1": _gymnax_blines("Acrobot-v1", 500_000, 16, 32),
        # rl-baselines3-zoo hyperparams/ppo.yml, MountainCar-v0: VecNormalize (observations and rewards), 16 envs x
        # 16 steps, gae_lambda 0.98, gamma 0.99, 4 epochs, entropy 0, 1M steps; SB3 defaults otherwise (batch 64 =
        # 4 minibatches, lr 3e-4, clip 0.2, tanh 64x64). gymnax-blines' settings (64 epochs, lr 5e-3 annealed, no
        # normalization) left all 8 seeds at -200 after 500k steps here (2026-12-02).
        "MountainCar-v0": PPOConfig(
            num_seeds=8, env="MountainCar-v0", total_timesteps=1_000_000, num_envs=16, num_steps=16,
            num_minibatches=4, update_epochs=4, lr=3e-4, gamma=0.99, gae_lambda=0.98, clip_eps=0.2, ent_coef=0.0,
            vf_coef=0.5, max_grad_norm=0.5, norm_adv=True, norm_obs=True, norm_reward=True, hidden=(64, 64),
            activation="tanh", eval_every=100,
        ),
        # gymnax-blines' Pendulum settings with the learning rate annealed and no entropy bonus: as published (a
        # constant 5e-4, entropy 0.01) the final greedy return swung between seeds and evaluations (mean -413.6,
        # 8 seeds); picked with `synjax ppo --env Pendulum-v1 --anneal-lr --lr 5e-4,1e-3 --ent-coef 0.0,0.01`
        # (all four points' means between -188 and -219).
        "Pendulum-v1": _gymnax_blines("Pendulum-v1", 1_000_000, 32, 16, anneal_lr=True, ent_coef=0.0),
        "MountainCarContinuous-v0": _gymnax_blines("MountainCarContinuous-v0", 1_000_000, 32, 16),
        **per_game(PRESETS["minatar"]),
    },
    "minatar": per_game(PRESETS["minatar"]),
    "minatar-snn": per_game(PRESETS["minatar-snn"]),
}

