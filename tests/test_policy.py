"""The stateful policy contract: GRU actor-critic, carry resets, sequence minibatches, the masked CartPole, and
research code's own environment and network passed to make_train."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax import envs
from synjax.agents import a2c, dqn, ppo, rollout
from synjax.agents.networks import ActorCritic, GRUActorCritic
from synjax.agents.policy import PolicyNetwork, is_stateful, unroll
from synjax.cli import main
from synjax.envs.masked import ObservationMask
from synjax.runs import results

GRU_TINY = ppo.PPOConfig(
    num_seeds=1, env="CartPole-masked-v1", network="gru", total_timesteps=512, num_envs=4, num_steps=32,
    num_minibatches=2, update_epochs=2, hidden=(16, 16), eval_every=4, eval_episodes=2, progress=False,
)  # fmt: skip


def _gru():
    net = GRUActorCritic(3, 2, (8, 8), rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(net)
    return net, lambda p, c, o, r: nnx.merge(graphdef, p)(o, c, r), params


def test_gru_carry_is_reset_where_an_episode_starts():
    net, apply, params = _gru()
    obs = jax.random.normal(jax.random.key(0), (4, 3))
    carry = jax.random.normal(jax.random.key(1), (4, 8))
    reset = jnp.array([True, False, True, False])
    _, value, new = apply(params, carry, obs, reset)
    _, fresh_value, fresh = apply(params, net.initial_carry((4,)), obs, jnp.zeros(4, bool))
    np.testing.assert_allclose(new[reset], fresh[reset], rtol=1e-6)  # reset rows start from zeros
    np.testing.assert_allclose(value[reset], fresh_value[reset], rtol=1e-6)
    assert not np.allclose(new[~reset], fresh[~reset])  # the others remember
    assert is_stateful(carry) and not is_stateful(ActorCritic(3, 2, rngs=nnx.Rngs(0)).initial_carry((4,)))


def test_unroll_equals_stepping_one_decision_at_a_time():
    net, apply, params = _gru()
    obs = jax.random.normal(jax.random.key(2), (5, 4, 3))
    reset = jnp.zeros((5, 4), bool).at[2, 1].set(True)
    dist, values, carries = unroll(apply, params, net.initial_carry((4,)), obs, reset)
    carry = net.initial_carry((4,))
    for t in range(5):
        d, v, carry = apply(params, carry, obs[t], reset[t])
        np.testing.assert_allclose(values[t], v, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dist.logits[t], d.logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(carries[t], carry, rtol=1e-5, atol=1e-6)


def test_sequence_minibatches_are_groups_of_whole_environments():
    t, n = 6, 8
    env_id = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32), (t, n))
    time = jnp.broadcast_to(jnp.arange(t, dtype=jnp.float32)[:, None], (t, n))
    batch = rollout.Batch(obs=env_id[..., None], action=env_id, log_prob=time, value=time, advantage=time,
                          returns=time, first=jnp.zeros((t, n), bool), carry=jnp.arange(n, dtype=jnp.float32)[:, None])  # fmt: skip
    assert batch.is_sequence
    mb = rollout.minibatches(batch, jax.random.key(0), 4)
    assert mb.action.shape == (4, t, 2) and mb.carry.shape == (4, 2, 1)
    for m in range(4):
        np.testing.assert_array_equal(mb.log_prob[m], time[:, :2])  # time order kept
        ids = np.asarray(mb.action[m, 0])
        np.testing.assert_array_equal(mb.action[m], np.broadcast_to(ids, (t, 2)))  # one env per column
        np.testing.assert_array_equal(mb.carry[m][:, 0], ids)  # each env's own starting carry
    assert sorted(np.asarray(mb.action[:, 0]).ravel().tolist()) == list(range(n))


def test_masked_cartpole_observes_position_and_angle_only():
    env, params = envs.make("CartPole-masked-v1")
    full, full_params = envs.make("CartPole-v1")
    key = jax.random.key(3)
    obs, state = env.reset(key, params)
    full_obs, full_state = full.reset(key, full_params)
    np.testing.assert_array_equal(obs, full_obs[jnp.array([0, 2])])
    assert env.observation_space(params).shape == (2,)
    obs, _, _, _, _, info = env.step(key, state, 1, params)
    full_obs, _, _, _, _, full_info = full.step(key, full_state, 1, full_params)
    np.testing.assert_array_equal(obs, full_obs[jnp.array([0, 2])])
    np.testing.assert_array_equal(info["final_observation"], full_info["final_observation"][jnp.array([0, 2])])


GRU_FLAGS = ["--env", "CartPole-masked-v1", "--network", "gru", "--num-seeds", "2", "--total-timesteps", "512",
             "--num-envs", "4", "--num-steps", "32", "--num-minibatches", "2", "--update-epochs", "2",
             "--hidden", "16", "16", "--eval-every", "4", "--eval-episodes", "2", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    """`synjax ppo --network gru` on the masked CartPole, tiny, through the CLI."""
    out = tmp_path_factory.mktemp("gru") / "run"
    assert main(["ppo", *GRU_FLAGS, "--out", str(out)]) == 0
    return out


def test_gru_ppo_runs_from_the_cli_and_synjax_eval_replays_its_memory(gru_run, capsys):
    metrics = results.read_metrics_csv(gru_run / "metrics.csv")
    assert np.isfinite(metrics["eval_return"]).all() and np.isfinite(metrics["value_loss"][:, 1:]).all()
    capsys.readouterr()
    assert main(["eval", "--run", str(gru_run), "--episodes", "2"]) == 0
    assert "run 1: mean return" in capsys.readouterr().out


def test_a2c_trains_a_gru_policy_on_sequences():
    config = a2c.A2CConfig(num_seeds=1, env="CartPole-masked-v1", network="gru", total_timesteps=256, num_envs=4,
                           hidden=(8,), eval_every=4, eval_episodes=2, progress=False)  # fmt: skip
    out = jax.jit(a2c.make_train(config))(jax.random.key(0))
    assert np.isfinite(np.asarray(out.metrics["policy_loss"][1:])).all()


def test_the_trained_gru_policy_remembers(gru_run):
    stacked = results.load_params(gru_run)
    template = nnx.state(GRUActorCritic(2, 2, (16, 16), rngs=nnx.Rngs(0)))
    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, jax.tree.map(lambda x: jnp.asarray(x[0]), stacked))
    net = nnx.merge(nnx.graphdef(GRUActorCritic(2, 2, (16, 16), rngs=nnx.Rngs(0))), state)
    obs = jnp.ones((1, 2))
    _, v1, c1 = net(obs, net.initial_carry((1,)), jnp.zeros(1, bool))
    _, v2, _ = net(obs, c1, jnp.zeros(1, bool))
    assert float(v1[0]) != float(v2[0])  # the same observation, another memory: another value


def test_stateful_networks_are_refused_where_they_cannot_be_served():
    with pytest.raises(ValueError, match="network='gru' is invalid: must be 'mlp', 'cnn' or 'snn' for DQN"):
        dqn.DQNConfig(network="gru")
    with pytest.raises(ValueError, match="num_minibatches=3 is invalid: must be a divisor of num_envs = 4"):
        dataclasses.replace(GRU_TINY, num_steps=24, num_minibatches=3)
    with pytest.raises(ValueError, match="network='cnn' is invalid: must be a network for CartPole-masked-v1's"):
        dataclasses.replace(GRU_TINY, network="cnn")  # images only
    with pytest.raises(ValueError, match="network='lstm' is invalid: must be one of mlp, gru, cnn, snn"):
        dataclasses.replace(GRU_TINY, network="lstm")


class TinyPolicy(PolicyNetwork):
    """Research code's own network: a linear policy and value on the raw observation, feedforward (the base
    class's carry ``()``, no observation statistics, no energy)."""

    def __init__(self, obs_dim: int, actions: int, rngs: nnx.Rngs):
        self.pi = nnx.Linear(obs_dim, actions, rngs=rngs)
        self.v = nnx.Linear(obs_dim, 1, rngs=rngs)

    def __call__(self, obs, carry=(), reset=None):
        import distrax

        return distrax.Categorical(logits=self.pi(obs)), self.v(obs)[..., 0], carry


def test_make_train_takes_your_own_environment_and_network():
    """No registration, no fork: a wrapped gymnax environment object and an NNX module passed in."""
    base, base_params = envs.make("CartPole-v1")
    env = ObservationMask(base, lambda **p: base_params, (0, 1, 2, 3), "my-cartpole")
    config = dataclasses.replace(GRU_TINY, network="mlp", env="CartPole-v1")
    train = ppo.make_train(config, env=env, env_params=base_params, network=lambda rngs: TinyPolicy(4, 2, rngs))
    out = jax.jit(train)(jax.random.key(1))
    assert set(out.params) >= {"pi", "v"} and np.isfinite(np.asarray(out.final["eval_return"]))


def test_a_network_outside_the_policy_contract_is_refused_with_what_to_subclass():
    class Plain(nnx.Module):  # an NNX module that does not declare the contract
        def __init__(self, rngs):
            self.pi = nnx.Linear(4, 2, rngs=rngs)

    config = dataclasses.replace(GRU_TINY, network="mlp", env="CartPole-v1")
    with pytest.raises(TypeError, match="the network is a Plain: .* synjax.agents.policy.PolicyNetwork"):
        ppo.make_train(config, network=Plain)
