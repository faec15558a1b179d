"""The on-policy loop's per-step learner slot (:class:`synjax.agents.on_policy.StepLearner`): a learner that
updates at every environment step, here an online TD(0) critic, learns a probe environment's values, sees every
step, and its state survives a checkpoint and ``--resume`` bit for bit."""

import dataclasses
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx, struct
from gymnax.environments import environment, spaces

from synjax.agents.networks import ActorCritic
from synjax.agents.on_policy import OnPolicyAlgorithm, StepData, StepLearner
from synjax.agents.ppo import PPOConfig
from synjax.runner import checkpoint
from synjax.runner.experiment import Interrupted, run_experiment
from synjax.trainer import Trainer


@struct.dataclass
class ProbeState(environment.EnvState):
    sign: jax.Array


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 1


class SignProbe(environment.Environment):
    """One-step episodes: the observation is +1 or -1 at random, the reward equals it, whatever the action. So
    ``V(+1) = 1`` and ``V(-1) = -1`` exactly (a critic that learns anything else is wrong)."""

    @property
    def default_params(self):
        return ProbeParams()

    def reset_env(self, key, params):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        return jnp.array([sign], jnp.float32), ProbeState(time=0, sign=sign)

    def step_env(self, key, state, action, params):
        obs, new = self.reset_env(key, params)
        return obs, new, state.sign, jnp.bool_(True), {"discount": jnp.float32(0.0)}

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.sign], jnp.float32)

    def is_terminal(self, state, params):
        return jnp.bool_(True)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)


ALPHA = 0.05


def td0_step(config, apply, tx, state, params, opt_state, data: StepData):
    """Semi-gradient TD(0) on the network's own critic: ``params += alpha * delta * dV(s)/dparams``."""
    tr = data.transition
    delta = tr.reward + config.gamma * (1.0 - tr.terminated) * data.next_value - data.value
    grad_v = jax.grad(lambda p: (jax.lax.stop_gradient(delta) * apply(p, data.carry, data.obs, tr.first)[1]).sum())
    params = jax.tree.map(lambda w, g: w + ALPHA / config.num_envs * g, params, grad_v(params))
    return {"steps": state["steps"] + 1}, params, opt_state, {"td_error": jnp.abs(delta).mean()}


TD0 = StepLearner(metrics=("td_error",), init=lambda config, params, n: {"steps": jnp.zeros((n,), jnp.int32)},
                  step=td0_step)  # fmt: skip
# Everything happens in the learner: the batch update leaves the parameters as they are.
ONLINE = OnPolicyAlgorithm(
    name="online-td0", metrics=(), make_optimizer=lambda config, num_updates: optax.identity(),
    update=lambda config, apply, tx, params, opt_state, batch, key, i: (params, opt_state, {}),
    minibatch_step=lambda *a: None, passes=lambda config: (1, 1), learner=TD0,
)  # fmt: skip
CONFIG = PPOConfig(num_seeds=2, seed=3, total_timesteps=8 * 16 * 12, num_envs=8, num_steps=16, eval_every=4,
                   eval_episodes=2, progress=False, num_chunks=4)  # fmt: skip
ENV = SignProbe()


def _make_train(config, kill_at: int | None = None) -> Trainer:
    trainer = ONLINE.make_train(config, env=ENV, env_params=ENV.default_params,
                                network=lambda rngs: ActorCritic(1, 2, (8,), rngs=rngs))  # fmt: skip
    if kill_at is None:
        return trainer

    def step(state, i):  # the process sends itself SIGTERM while step ``kill_at`` runs
        jax.lax.cond(i == kill_at, lambda: jax.debug.callback(lambda: os.kill(os.getpid(), signal.SIGTERM)),
                     lambda: None)  # fmt: skip
        return trainer.step(state, i)

    return Trainer(trainer.init, step, trainer.finish, trainer.num_steps, point_ready=trainer.point_ready)


def test_a_step_learner_sees_every_step_and_learns_the_probe_values():
    trainer = _make_train(CONFIG)
    state = jax.jit(trainer.init)(jax.random.key(0))
    step = jax.jit(trainer.step)
    metrics = []
    for i in range(trainer.num_steps):
        state, m = step(state, i)
        metrics.append(m)
    # every environment step of every rollout went through the learner, and its state carried across them
    np.testing.assert_array_equal(state.learner["steps"], CONFIG.num_updates * CONFIG.num_steps)
    network = nnx.merge(nnx.graphdef(ActorCritic(1, 2, (8,), rngs=nnx.Rngs(0))), state.params, state.stats)
    _, values, _ = network(jnp.array([[1.0], [-1.0]]), (), None)
    np.testing.assert_allclose(values, [1.0, -1.0], atol=0.05)
    out = trainer.finish(state, jax.tree.map(lambda *x: jnp.stack(x), *metrics))
    td = np.asarray(out.metrics["td_error"])
    assert np.isnan(td[0]) and td[-1] < 0.1 * td[1], td  # the learner's metric reaches the curves


def test_a_step_learner_state_survives_a_checkpoint_and_resume(tmp_path):
    _, whole = run_experiment("online-td0", dataclasses.replace(CONFIG, out=str(tmp_path / "whole")), _make_train,
                              progress_total=CONFIG.env_steps, steps_per_seed=CONFIG.env_steps)  # fmt: skip
    cut = tmp_path / "cut"
    config = dataclasses.replace(CONFIG, out=str(cut))
    with pytest.raises(Interrupted):
        run_experiment("online-td0", config, lambda c: _make_train(c, kill_at=5), progress_total=CONFIG.env_steps,
                       steps_per_seed=CONFIG.env_steps)  # fmt: skip
    _, raw = checkpoint.read(cut)
    done = int(raw["done"])  # steps (= updates here) before the stop; the learner counted each rollout's steps
    counters = [x for x in raw["train_state"].values() if np.asarray(x).shape == (2, 8) and x.dtype == np.int32]
    assert any(np.all(np.asarray(c) == done * CONFIG.num_steps) for c in counters), "the learner's state is not saved"
    resumed = dataclasses.replace(CONFIG, resume=str(cut))
    _, again = run_experiment("online-td0", resumed, _make_train, progress_total=CONFIG.env_steps,
                              steps_per_seed=CONFIG.env_steps)  # fmt: skip
    for a, b in zip(jax.tree.leaves(whole.output.params), jax.tree.leaves(again.output.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.output.metrics["td_error"], again.output.metrics["td_error"])
