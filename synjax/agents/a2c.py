"""Advantage Actor-Critic (synchronous A3C, Mnih et al. 2016) as a pure ``train(key)``; ``synjax a2c``.

One gradient step per rollout of ``num_steps`` x ``num_envs`` on n-step returns (``gae_lambda=1``, the default)
or GAE advantages, with RMSprop (torch-style: eps outside the square root, as SB3) or Adam. The rollout,
advantages, evaluation and loss pieces are shared with PPO (:mod:`synjax.agents.rollout`, :mod:`synjax.agents.losses`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any

import jax
import optax

from synjax.agents import losses, on_policy_experiment
from synjax.agents.config import ActorCriticConfig
from synjax.agents.on_policy import OnPolicyAlgorithm
from synjax.agents.policy import PolicyApply
from synjax.agents.rollout import Batch
from synjax.checks import above, in_range, one_of
from synjax.runner.sweep import Floats

METRICS = ("policy_loss", "value_loss", "entropy")
OPTIMIZERS = ("rmsprop", "adam")


@dataclasses.dataclass(frozen=True)
class A2CFields:
    """A2C's own settings (the JAX loop's :class:`A2CConfig` and the host loop's ``--algo a2c``).

    Attributes:
      optimizer: ``"rmsprop"`` (SB3/A3C; torch-style eps, outside the square root) or ``"adam"``.
      rms_alpha: RMSprop smoothing constant (torch ``alpha``), in (0, 1) (sweepable).
      opt_eps: epsilon of the optimizer (sweepable).
    """

    optimizer: Annotated[str, one_of(*OPTIMIZERS)] = "rmsprop"
    rms_alpha: Annotated[Floats, in_range(0.0, 1.0, low_open=True, high_open=True)] = 0.99
    opt_eps: Annotated[Floats, above(0.0)] = 1e-5


@dataclasses.dataclass(frozen=True)
class A2CConfig(A2CFields, ActorCriticConfig):
    """A2C settings: its own on :class:`A2CFields`, the shared ones on :class:`ActorCriticConfig`; defaults are
    Stable-Baselines3's A2C."""

    num_steps: int = 5
    lr: Floats = 7e-4
    gae_lambda: Floats = 1.0
    norm_adv: bool = False


def a2c_loss(
    apply: PolicyApply, params: Any, batch: Batch, *, ent_coef: Any, vf_coef: Any, norm_adv: bool
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``-mean(A log pi(a|s)) + vf_coef * mean((V - R)^2) - ent_coef * mean(entropy)`` over ``batch`` (B, ...).

    Returns ``(loss, {"policy_loss", "value_loss", "entropy"})``.
    """
    log_prob, entropy, value = losses.policy_terms(apply, params, batch)
    adv = losses.normalize(batch.advantage) if norm_adv else batch.advantage
    policy_loss = -(jax.lax.stop_gradient(adv) * log_prob).mean()
    v_loss = losses.value_loss(value, batch.value, batch.returns)
    ent = entropy.mean()
    loss = policy_loss + vf_coef * v_loss - ent_coef * ent
    return loss, {"policy_loss": policy_loss, "value_loss": v_loss, "entropy": ent}


def a2c_update(
    apply: PolicyApply,
    tx: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
    batch: Batch,
    *,
    ent_coef: Any,
    vf_coef: Any,
    norm_adv: bool,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """One gradient step on the whole rollout ``batch``: ``(params, opt_state, metrics)``."""
    grads, metrics = jax.grad(
        lambda p: a2c_loss(apply, p, batch, ent_coef=ent_coef, vf_coef=vf_coef, norm_adv=norm_adv),
        has_aux=True,
    )(params)
    params, opt_state = losses.apply_gradients(tx, params, opt_state, grads)
    return params, opt_state, metrics


def make_optimizer(config: A2CConfig, num_updates: int) -> optax.GradientTransformation:
    """Global-norm clipping then RMSprop (decay ``rms_alpha``, eps outside the sqrt like torch) or Adam, on the
    parameters flattened into one vector (the same arithmetic in fewer kernels)."""
    lr = losses.lr_schedule(config.lr, config.anneal_lr, num_updates, 1)
    if config.optimizer == "rmsprop":
        opt = optax.rmsprop(lr, decay=config.rms_alpha, eps=config.opt_eps, eps_in_sqrt=False)
    else:
        opt = optax.adam(lr, eps=config.opt_eps)
    return optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt))


def update_step(config: A2CConfig, apply, tx, params, opt_state, batch, key, i):
    """One A2C gradient step on ``batch`` with ``config``'s settings (``key`` and ``i`` unused); the ``Update``
    of :func:`synjax.agents.on_policy.make_train`, reused by the host loop."""
    del key, i
    return a2c_update(
        apply, tx, params, opt_state, batch,
        ent_coef=config.ent_coef, vf_coef=config.vf_coef, norm_adv=config.norm_adv,
    )  # fmt: skip


ALGORITHM = OnPolicyAlgorithm(
    name="a2c", metrics=METRICS, make_optimizer=make_optimizer, update=update_step,
    minibatch_step=lambda config, apply, tx, params, opt_state, mb, i: update_step(
        config, apply, tx, params, opt_state, mb, None, i),
    passes=lambda config: (1, 1),
)  # fmt: skip
make_train = ALGORITHM.make_train  # the documented API: make_train(config)(key) trains one seed
"""``make_train(config, env=None, env_params=None, network=None)``: the :class:`synjax.trainer.Trainer` of one
A2C seed for a :class:`A2CConfig` (see :meth:`synjax.agents.on_policy.OnPolicyAlgorithm.make_train`)."""
run = functools.partial(on_policy_experiment.run, ALGORITHM)
"""``run(config)``: train every seed (and swept value) of ``config`` and write the results folder."""

PRESETS = {
    # rl-baselines3-zoo hyperparams/a2c.yml, CartPole-v1: n_envs 8, n_timesteps 5e5, ent_coef 0.0, the rest
    # SB3 A2C defaults (n_steps 5, lr 7e-4, gamma 0.99, gae_lambda 1.0, RMSprop alpha 0.99 eps 1e-5).
    "tuned": A2CConfig(num_seeds=16, env="CartPole-v1", total_timesteps=500_000, num_envs=8, eval_every=500),
    # SB3 A2C defaults at the notebook's CartPole budget (20k steps) with the 4 environments its A2C run used.
    "notebook": A2CConfig(num_seeds=16, env="CartPole-v1", total_timesteps=20_000, num_envs=4, eval_every=50),
    # ShowerEnv (no published settings): SB3 A2C defaults plus observation normalization, 16 environments;
    # picked with `synjax a2c --preset shower-tuned --num-seeds 4 --lr 7e-4,2e-3` (both solve it).
    "shower-tuned": A2CConfig(num_seeds=16, env="ShowerEnv", total_timesteps=200_000, num_envs=16, norm_obs=True,
                              eval_every=250),
    # SB3 A2C defaults on ShowerEnv at the notebook's ShowerEnv budget (400k steps).
    "shower-notebook": A2CConfig(num_seeds=16, env="ShowerEnv", total_timesteps=400_000, num_envs=4,
                                 eval_every=1000),
}  # fmt: skip


#: ``--preset NAME --env ID`` picks these (:mod:`synjax.presets`). rl-baselines3-zoo hyperparams/a2c.yml, SB3's
#: A2C defaults otherwise (n_steps 5, lr 7e-4, RMSprop, gae_lambda 1, value weight 0.5, grad norm 0.5, tanh
#: 64x64); its ``normalize: true`` is SB3's VecNormalize, here ``norm_obs`` and ``norm_reward``.
ENV_PRESETS = {
    "tuned": {
        "ShowerEnv": PRESETS["shower-tuned"],
        # Acrobot-v1: normalize, 16 envs, 500k steps, ent_coef 0.
        "Acrobot-v1": A2CConfig(num_seeds=8, env="Acrobot-v1", total_timesteps=500_000, num_envs=16,
                                norm_obs=True, norm_reward=True, eval_every=500),
        # MountainCar-v0: normalize, 16 envs, 1M steps, ent_coef 0.
        "MountainCar-v0": A2CConfig(num_seeds=8, env="MountainCar-v0", total_timesteps=1_000_000, num_envs=16,
                                    norm_obs=True, norm_reward=True, eval_every=1000),
        # Pendulum ("Almost tuned", written for Pendulum-v0): normalize, 8 envs x 8 steps, 1M steps, gae_lambda 0.9,
        # value weight 0.4, lr 7e-4 annealed, no advantage normalization, log std -2 at the start. Difference: no
        # gSDE (SB3's state-dependent exploration); the Gaussian head's log std is state-independent.
        "Pendulum-v1": A2CConfig(num_seeds=8, env="Pendulum-v1", total_timesteps=1_000_000, num_envs=8, num_steps=8,
                                 gae_lambda=0.9, vf_coef=0.4, anneal_lr=True, log_std_init=-2.0, norm_obs=True,
                                 norm_reward=True, eval_every=1000),
    },
}  # fmt: skip
