"""PQN (Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning") as a pure ``train(key)``;
``synjax pqn``.

Q-learning without a replay buffer and without a target network: ``num_envs`` parallel environments act
epsilon-greedily for ``num_steps`` steps, the rollout's Q(lambda) returns are computed once with the network
that collected it, and ``update_epochs`` shuffled passes of ``num_minibatches`` steps regress ``Q(s, a)`` on them.
LayerNorm in the Q-network (``layer_norm``) is what keeps this stable (the paper's analysis). Epsilon falls
linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over the first ``exploration_fraction``
of the steps (DQN's names and schedule).

The Q(lambda) return, ``G_t = r_t + gamma (1 - term_t) [(1 - lambda) max_a Q(s'_t, a) + lambda G_{t+1}]``, is
the GAE recursion with ``V(s) = max_a Q(s, a)`` plus ``V(s_t)``, so PQN runs in the on-policy loop of PPO and A2C
(:mod:`synjax.agents.on_policy`): the Q-network is wrapped as an epsilon-greedy policy
(:class:`synjax.agents.q_networks.EpsilonGreedyQ`) and the loop's GAE gives the returns, with time-limit
truncations bootstrapped from the true final observation (purejaxql treats them as terminal). Everything else is
the loop's: the in-jit greedy evaluation, observation normalization, the energy of a spiking Q-network
(``--network snn``), the results folder.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from synjax.agents import losses, on_policy_experiment
from synjax.agents.config import ExplorationFields, RolloutConfig, check_minibatches, make_env
from synjax.agents.on_policy import OnPolicyAlgorithm
from synjax.agents.policy import PolicyApply
from synjax.agents.q_networks import Q_NETWORKS, EpsilonGreedyQ
from synjax.agents.rollout import Batch, minibatches
from synjax.checks import at_least, require
from synjax.presets import per_game
from synjax.runner.sweep import Floats

METRICS = ("td_loss", "q_mean", "epsilon")


@dataclasses.dataclass(frozen=True)
class PQNConfig(ExplorationFields, RolloutConfig):
    """PQN settings (the loop's own are documented on :class:`synjax.agents.config.RolloutConfig`;
    ``gae_lambda`` is the lambda of the Q(lambda) returns; epsilon's schedule on
    :class:`synjax.agents.config.ExplorationFields`).

    Attributes:
      update_epochs: passes over each rollout.
      num_minibatches: minibatches per pass; must divide ``num_envs * num_steps``.
      layer_norm: LayerNorm before each hidden ReLU of the MLP Q-network (PQN's stabilizer; ``mlp`` only).
    """

    networks: ClassVar[tuple[str, ...]] = tuple(Q_NETWORKS)
    #: a carried spiking Q-network would need PQN's recurrent variant (sequences of Q(lambda) returns)
    snn_time_modes: ClassVar[tuple[str, ...]] = ("inner",)

    num_seeds: int = 16
    total_timesteps: int = 500_000
    num_envs: int = 32
    num_steps: int = 64
    lr: Floats = 1e-4
    anneal_lr: bool = True
    max_grad_norm: Floats = 10.0
    reward_scale: float = 0.1
    hidden: tuple[int, ...] = (128, 128)
    eval_every: int = 25
    update_epochs: Annotated[int, at_least(1)] = 4
    num_minibatches: int = 16
    exploration_fraction: Floats = 0.2
    layer_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_spiking(self.hidden)
        env, env_params = make_env(self)
        space = env.action_space(env_params)
        require(hasattr(space, "n"), "env", self.env,
                f"an environment with a discrete action space for PQN ({self.env} has {type(space).__name__})")  # fmt: skip
        check_minibatches(self)
        require(not (self.norm_reward and self.reward_scale != 1.0), "reward_scale", self.reward_scale,
                "1.0 with --norm-reward (the running-std scaling replaces it)")  # fmt: skip

    def policy_network(self, obs_dim: int, action_dim: int, continuous: bool, rngs: Any) -> EpsilonGreedyQ:
        return EpsilonGreedyQ(Q_NETWORKS[self.network](obs_dim, action_dim, self, rngs))



def pqn_loss(apply: PolicyApply, params: Any, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``0.5 * mean((Q(s, a) - G)^2)`` over a minibatch, ``G`` the Q(lambda) returns (``batch.returns``)."""
    dist, _ = losses.policy_outputs(apply, params, batch)
    q = dist.preferences
    q_taken = jnp.take_along_axis(q, batch.action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    loss = 0.5 * jnp.mean(jnp.square(q_taken - batch.returns))
    return loss, {"td_loss": loss, "q_mean": jax.lax.stop_gradient(q_taken.mean())}


def pqn_minibatch_step(apply, tx, params, opt_state, mb: Batch):
    """One optimizer step on :func:`pqn_loss` of minibatch ``mb``: ``(params, opt_state, metrics)``."""
    grads, metrics = jax.grad(lambda p: pqn_loss(apply, p, mb), has_aux=True)(params)
    params, opt_state = losses.apply_gradients(tx, params, opt_state, grads)
    return params, opt_state, metrics


def update_step(config: PQNConfig, apply, tx, params, opt_state, batch: Batch, key, i):
    """``update_epochs`` shuffled passes of ``num_minibatches`` steps over ``batch``; the ``Update`` of
    :func:`synjax.agents.on_policy.make_train`. Metrics: mean TD loss and Q(s, a), and epsilon."""

    def minibatch_step(carry, mb):
        params, opt_state, metrics = pqn_minibatch_step(apply, tx, *carry, mb)
        return (params, opt_state), metrics

    def epoch(carry, k):
        return jax.lax.scan(minibatch_step, carry, minibatches(batch, k, config.num_minibatches))

    (params, opt_state), metrics = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, config.update_epochs)
    )
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["epsilon"] = config.epsilon_at(i * config.batch_size)
    return params, opt_state, metrics


def make_optimizer(config: PQNConfig, num_updates: int) -> optax.GradientTransformation:
    """Global-norm clipping then RAdam (purejaxql's PQN optimizer), the learning rate optionally falling linearly
    to 0 over the updates; on the parameters flattened into one vector."""
    lr = losses.lr_schedule(config.lr, config.anneal_lr, num_updates, config.update_epochs * config.num_minibatches)
    return optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.radam(lr)))


ALGORITHM = OnPolicyAlgorithm(
    name="pqn", metrics=METRICS, make_optimizer=make_optimizer, update=update_step,
    minibatch_step=lambda config, apply, tx, params, opt_state, mb, i: pqn_minibatch_step(
        apply, tx, params, opt_state, mb),
    passes=lambda config: (config.update_epochs, config.num_minibatches),
    exploration=lambda config, steps: config.epsilon_at(steps),
)  # fmt: skip
make_train = ALGORITHM.make_train  # the documented API: make_train(config)(key) trains one seed
"""``make_train(config, env=None, env_params=None, network=None)``: the :class:`synjax.trainer.Trainer` of one
PQN seed for a :class:`PQNConfig` (see :meth:`synjax.agents.on_policy.OnPolicyAlgorithm.make_train`)."""
run = functools.partial(on_policy_experiment.run, ALGORITHM)
"""``run(config)``: train every seed (and swept value) of ``config`` and write the results folder."""

PRESETS = {
    # purejaxql config/alg/pqn_cartpole.yaml: 32 envs x 64 steps, 4 epochs x 16 minibatches, 2 hidden layers of
    # 256 with LayerNorm, lr 1e-4 decayed linearly, max_grad_norm 10, reward scale 0.1, gamma 0.99, lambda 0.95,
    # epsilon 1 -> 0.2 over the first 20% of 500k steps.
    "tuned": PQNConfig(num_seeds=16, env="CartPole-v1", hidden=(256, 256), exploration_final_eps=0.2),
    # The same loop with a spiking Q-network (ours: LIF layers of 128, T = 8 from rest each decision, membrane
    # read-out, running observation normalization: 4 seeds x 100k reached 393, 482, 70, 500 with it and 167-173
    # with a lower threshold and no normalization; no LayerNorm, the spikes are binary).
    "snn": PQNConfig(num_seeds=16, env="CartPole-v1", network="snn", hidden=(128, 128), norm_obs=True,
                     exploration_final_eps=0.2),
    # MinAtar (Breakout by default): purejaxql config/alg/pqn_minatar.yaml, 128 envs x 32 steps, 2 epochs x 32
    # minibatches, lr 5e-4 decayed, grad norm 10, gamma 0.99, lambda 0.65, epsilon 1 -> 0.05 over the first 10%,
    # LayerNorm, and its CNN (16 3x3 convolutions, 128 units). Differences: 2M steps (CPU; published 10M), the
    # 0/1 frames not divided by 255 (LayerNorm follows the convolution either way), reward scale 1.
    "minatar": PQNConfig(
        num_seeds=4, env="Breakout-MinAtar", network="cnn", hidden=(128,), total_timesteps=2_000_000, num_envs=128,
        num_steps=32, update_epochs=2, num_minibatches=32, lr=5e-4, anneal_lr=True, max_grad_norm=10.0,
        gamma=0.99, gae_lambda=0.65, exploration_fraction=0.1, exploration_final_eps=0.05, reward_scale=1.0,
        eval_every=24,
    ),
    # Its spiking twin: a LIF feature map of the convolution, 128 LIF units, T = 4, membrane read-out.
    "minatar-snn": PQNConfig(
        num_seeds=4, env="Breakout-MinAtar", network="snn", hidden=(128,), snn_time_steps=4,
        total_timesteps=2_000_000, num_envs=128, num_steps=32, update_epochs=2, num_minibatches=32, lr=5e-4,
        anneal_lr=True, max_grad_norm=10.0, gamma=0.99, gae_lambda=0.65, exploration_fraction=0.1,
        exploration_final_eps=0.05, reward_scale=1.0, eval_every=24,
    ),
}

#: ``--preset NAME --env ID`` picks these (:mod:`synjax.presets`): purejaxql's MinAtar settings for every game,
#: and Taxi-v4 (no published deep-RL settings; its observation, one of 500 states, enters the net one-hot).
ENV_PRESETS = {
    "tuned": {
        # The CartPole settings above with lr 1e-3, picked with `synjax pqn --env Taxi-v4 --num-seeds 8
        # --total-timesteps 500000 --lr 3e-4,1e-3` (greedy means 7.81 and 7.94; the optimum over Taxi's 300
        # starts is 7.89).
        "Taxi-v4": dataclasses.replace(PRESETS["tuned"], num_seeds=8, env="Taxi-v4", lr=1e-3, eval_every=10),
    },
    "minatar": per_game(PRESETS["minatar"]),
    "minatar-snn": per_game(PRESETS["minatar-snn"]),
}

