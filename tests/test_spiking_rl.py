"""--network snn: the spiking actor-critic keeps the policy contract, its surrogate gradients reach every layer,
its encoders and decoders do what they say, its energy accounting counts what it claims, and PPO and A2C train it
end to end in one jit with the energy in the results."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax.agents import a2c, ppo
from synjax.agents.spiking import POPULATION_RANGE, SpikingActorCritic, energy
from synjax.experiment import run_seeds


def _net(**kw) -> SpikingActorCritic:
    args = {"time_steps": 4, "rngs": nnx.Rngs(0), **kw}
    return SpikingActorCritic(4, 2, (8, 8), **args)


@pytest.mark.parametrize("decoder", ["membrane", "rate"])
@pytest.mark.parametrize("encoder", ["direct", "population"])
def test_contract_shapes_for_every_encoder_and_decoder(encoder, decoder):
    net = _net(encoder=encoder, decoder=decoder)
    obs = jax.random.normal(jax.random.key(1), (3, 5, 4))
    dist, value, carry = net(obs, net.initial_carry((3, 5)), jnp.zeros((3, 5), bool))
    assert dist.sample(seed=jax.random.key(2)).shape == (3, 5) and value.shape == (3, 5) and carry == ()
    continuous = SpikingActorCritic(4, 3, (8,), continuous=True, time_steps=2, rngs=nnx.Rngs(0))
    dist, _, _ = continuous(obs)
    assert dist.sample(seed=jax.random.key(2)).shape == (3, 5, 3)


def test_surrogate_gradients_reach_every_layer():
    net = _net()
    obs = 3.0 * jax.random.normal(jax.random.key(1), (64, 4))
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)

    def loss(p):
        dist, value, _ = nnx.merge(graphdef, p, rest)(obs)
        return (value**2).mean() + dist.entropy().mean()

    grads = jax.grad(loss)(params)
    for i in range(2):
        assert float(jnp.abs(grads["linears"][i]["kernel"][...]).sum()) > 0, f"layer {i} gets no gradient"


def test_population_code_peaks_at_its_centers():
    net = _net(encoder="population", population=5)
    centers = np.linspace(-POPULATION_RANGE, POPULATION_RANGE, 5)
    obs = jnp.array([[centers[1], centers[3], 0.0, 100.0]])  # the running statistics start at mean 0, var 1
    code = np.asarray(net.encode(obs)).reshape(4, 5)
    assert code.shape == (4, 5) and np.all(code > 0) and np.all(code <= 1)
    assert code[0].argmax() == 1 and code[1].argmax() == 3 and code[2].argmax() == 2
    assert code[3].argmax() == 4  # clipped to the range


def test_energy_counts_spikes_times_fan_out():
    net = _net(neuron="IF")
    obs = 2.0 * jax.random.normal(jax.random.key(3), (32, 4))
    e = energy(net, obs)
    _, _, spikes = net.simulate(obs)
    per_decision = [float(s.sum((0, 2)).mean()) for s in spikes]
    assert float(e["ann_macs"]) == 4 * 8 + 8 * 8 + 8 * (2 + 1)  # input, hidden, actor + critic read-outs
    np.testing.assert_allclose(float(e["synops"]), 4 * 8 + per_decision[0] * 8 + per_decision[1] * 3, rtol=1e-6)
    for i, s in enumerate(spikes):
        assert float(e[f"firing_rate_{i}"]) == pytest.approx(float(s.mean()))
    assert 0 < float(e["firing_rate_0"]) < 1
    silent = energy(net, jnp.zeros((4, 4)))  # zero current, zero biases: no spikes, only the input layer's MACs
    assert float(silent["synops"]) == 4 * 8 and float(silent["firing_rate_0"]) == 0


SMALL = {"env": "CartPole-v1", "network": "snn", "total_timesteps": 2048, "num_envs": 4, "num_steps": 32,
         "hidden": (16,), "snn_time_steps": 2, "eval_every": 8, "eval_episodes": 2, "progress": False}  # fmt: skip


@pytest.mark.parametrize("algo", [ppo, a2c])
def test_ppo_and_a2c_train_a_spiking_policy_in_one_jit_with_its_energy(algo):
    config = algo.PRESETS["tuned"].__class__(**SMALL, num_seeds=2)
    out = run_seeds(algo.make_train(config), 2).output
    for name in ("eval_return", "synops", "ann_macs", "firing_rate_0"):
        assert np.all(np.isfinite(out.final[name])), name
    assert np.all(out.final["synops"] >= 4 * 16)  # at least the input layer's MACs
    assert "linears" in out.params


def test_population_encoder_trains_with_its_running_normalization():
    config = ppo.PPOConfig(**{**SMALL, "snn_encoder": "population", "snn_population": 4}, num_seeds=1)
    out = run_seeds(ppo.make_train(config), 1).output
    assert np.isfinite(out.final["eval_return"]).all()
    assert float(np.abs(out.params["obs_norm"]["var"]).sum()) != 4.0  # updated from the rollouts, not left at 1


def test_bad_spiking_settings_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"^snn_time_steps=0 is invalid: must be an integer >= 1"):
        ppo.PPOConfig(network="snn", snn_time_steps=0)
    with pytest.raises(ValueError, match=r"^snn_neuron='HH' is invalid: must be one of LIF, IF, ALIF"):
        ppo.PPOConfig(network="snn", snn_neuron="HH")
    with pytest.raises(ValueError, match=r"^hidden=\(\) is invalid: must be at least one layer width"):
        ppo.PPOConfig(network="snn", hidden=())
    from synjax.agents.dqn_config import DQNConfig

    with pytest.raises(ValueError, match=r"^network='snn' is invalid"):
        DQNConfig(network="snn")
