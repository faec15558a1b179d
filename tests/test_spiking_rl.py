"""--network snn: the spiking actor-critic keeps the policy contract, its surrogate gradients reach every layer,
its encoders and decoders do what they say, its energy accounting counts what it claims, and PPO and A2C train it
end to end in one jit with the energy in the results."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax.agents import a2c, ppo
from synjax.agents.spiking import POPULATION_RANGE, SpikingActorCritic, SpikingNetwork, energy
from synjax.runner.experiment import run_seeds


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
    with pytest.raises(ValueError, match=r"^snn_time_steps=2 is invalid: must be an integer >= 3 in inner mode"):
        ppo.PPOConfig(network="snn", hidden=(8, 8), snn_time_steps=2)
    with pytest.raises(ValueError, match=r"^snn_time_mode='forever' is invalid: must be one of inner, carried"):
        ppo.PPOConfig(network="snn", snn_time_mode="forever")
    with pytest.raises(ValueError, match=r"^num_minibatches=8 is invalid: must be a divisor of num_envs = 4"):
        ppo.PPOConfig(network="snn", snn_time_mode="carried", num_envs=4, num_steps=32, num_minibatches=8)
    from synjax.agents.dqn_config import DQNConfig

    with pytest.raises(ValueError, match=r"^snn_time_mode='carried' is invalid: must be one of inner for DQNConfig"):
        DQNConfig(network="snn", snn_time_mode="carried", snn_time_steps=1)
    with pytest.raises(ValueError, match=r"^snn_encoder='population' is invalid: must be 'direct' for DQN"):
        DQNConfig(network="snn", snn_encoder="population")
    with pytest.raises(ValueError, match=r"^network='gru' is invalid: must be 'mlp', 'cnn' or 'snn' for DQN"):
        DQNConfig(network="gru")


def test_inner_mode_needs_one_step_per_layer_to_see_the_observation():
    """A spyx neuron emits the spike of its membrane before the step's update: with T = len(hidden) the outputs
    are the same for every observation, with T = len(hidden) + 1 they are not (why the config refuses T < L + 1)."""
    obs = 3.0 * jax.random.normal(jax.random.key(1), (16, 4))
    values = {}
    for steps in (2, 3):
        net = SpikingNetwork(4, (("out", 2, 1.0),), (8, 8), time_steps=3, rngs=nnx.Rngs(0))
        net.time_steps = steps  # past the constructor's check, to show what it guards against
        values[steps] = np.asarray(net.run(obs)[0][0])
    assert np.ptp(values[2], axis=0).max() == 0
    assert np.ptp(values[3], axis=0).max() > 0


@pytest.mark.parametrize("neuron", ["CuBaLIF", "RLIF", "ALIF"])
def test_every_spiking_kind_builds_and_counts_recurrent_synapses(neuron):
    net = _net(neuron=neuron)
    e = energy(net, 3.0 * jax.random.normal(jax.random.key(3), (8, 4)))
    recurrent = 8 + 8 if neuron.startswith("R") else 0  # each layer's spikes also reach its own 8 units
    assert float(e["ann_macs"]) == 4 * 8 + 8 * 8 + 8 * 3 + recurrent * 8
    assert np.isfinite(float(e["synops"]))


def test_carried_mode_keeps_the_membranes_across_decisions_and_resets_them():
    net = _net(time_mode="carried", time_steps=1)
    obs = 3.0 * jax.random.normal(jax.random.key(1), (5, 4))
    carry = net.initial_carry((5,))
    assert [c.shape for c in carry] == [(5, 8), (5, 8)] and all(float(jnp.abs(c).sum()) == 0 for c in carry)
    no_reset = jnp.zeros((5,), bool)
    values = []
    for _ in range(4):  # the same observation: what changes is the carried membranes
        _, value, carry = net(obs, carry, no_reset)
        values.append(np.asarray(value))
    assert not np.allclose(values[0], values[3]), "the carried state never reached the output"
    _, value_after_reset, carry_reset = net(obs, carry, jnp.ones((5,), bool))
    np.testing.assert_array_equal(np.asarray(value_after_reset), values[0])  # the first decision from rest again
    fresh = net(obs, net.initial_carry((5,)), no_reset)[2]
    for a, b in zip(carry_reset, fresh):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_ppo_trains_a_carried_spiking_policy_on_sequences_with_its_energy():
    config = ppo.PPOConfig(**{**SMALL, "snn_time_mode": "carried", "snn_time_steps": 1, "num_minibatches": 2},
                           num_seeds=1)  # fmt: skip
    assert config.stateful
    out = run_seeds(ppo.make_train(config), 1).output
    for name in ("eval_return", "synops", "firing_rate_0"):
        assert np.all(np.isfinite(out.final[name])), name


def test_the_memory_preset_trains_recurrent_carried_units_on_normalized_observations():
    """``masked-snn`` (recurrent LIF, T = 4, running normalization, membranes carried), shrunk: the
    normalization statistics follow the masked CartPole's two observations, and the recurrent synapses count."""
    preset = ppo.PRESETS["masked-snn"]
    assert (preset.snn_neuron, preset.snn_time_mode, preset.norm_obs) == ("RLIF", "carried", True)
    config = dataclasses.replace(preset, num_seeds=1, hidden=(8,), total_timesteps=2048, num_envs=4, num_steps=32,
                                 num_minibatches=2, eval_every=8, eval_episodes=2, progress=False)  # fmt: skip
    out = run_seeds(ppo.make_train(config), 1).output
    norm = out.params["obs_norm"]
    assert np.asarray(norm["mean"]).shape[-1] == 2 and float(np.asarray(norm["count"]).ravel()[0]) >= 2048
    assert float(out.final["ann_macs"][0]) == 2 * 8 + 8 * 8 + 8 * 3  # input, recurrence, the two heads
    assert np.isfinite(out.final["synops"]).all() and np.isfinite(out.final["eval_return"]).all()


def test_dqn_trains_a_spiking_q_network_with_its_energy():
    from synjax.agents import dqn

    config = dataclasses.replace(dqn.PRESETS["tuned"], network="snn", hidden=(16,), snn_time_steps=2,
                                 total_timesteps=2000, learning_starts=500, eval_every=1000, eval_episodes=2, num_seeds=1,
                                 progress=False)  # fmt: skip
    out = run_seeds(dqn.make_train(config), 1).output
    assert np.isfinite(out.final["synops"]).all() and float(out.final["ann_macs"][0]) == 4 * 16 + 16 * 2
    assert "linears" in out.params and "q" in out.params


def test_the_spike_raster_records_one_greedy_episode(tmp_path):
    """(A run writing ``spikes.png`` is checked in tests/test_pqn.py, on a saved spiking PQN run.)"""
    from synjax.agents import spike_raster
    from synjax.agents.config import make_env

    config = ppo.PPOConfig(**SMALL)
    net = _net(time_steps=3)
    env, env_params = make_env(config)
    spikes, ret = spike_raster.record_episode(net, env, env_params, jax.random.key(0))
    assert [s.shape[1:] for s in spikes] == [(3, 8), (3, 8)]
    assert spikes[0].shape[0] == ret  # CartPole pays 1 a step: one decision per unit of return
    assert set(np.unique(spikes[0])) <= {0, 1}
    spike_raster.write_picture(tmp_path / "spikes.png", net, env, env_params, "test")
    assert (tmp_path / "spikes.png").stat().st_size > 10_000


def test_poisson_code_fires_at_its_rates_and_is_a_fixed_function_of_the_observation():
    net = _net(encoder="poisson", time_steps=64)
    obs = jnp.array([[0.0, 1.5, -1.5, 30.0]] * 256) + jnp.arange(256)[:, None] * 1e-6  # distinct observations
    spikes = np.asarray(net.encode(obs))  # (T, B, 2 D): positive parts, then negative parts
    assert spikes.shape == (64, 256, 8) and set(np.unique(spikes)) <= {0.0, 1.0}
    rates = spikes.mean((0, 1))
    np.testing.assert_allclose(rates, [0, 0.5, 0, 1, 0, 0, 0.5, 0], atol=0.02)  # |x| / 3, clipped to 1
    np.testing.assert_array_equal(spikes, np.asarray(net.encode(obs)))  # no hidden randomness: replays agree
    assert not np.array_equal(spikes[:, 0], spikes[:, 1])  # nearby observations get their own trains
    e = energy(net, obs)
    assert float(e["input_rate"]) == pytest.approx(spikes.mean())
    assert float(e["ann_macs"]) == 4 * 8 + 8 * 8 + 8 * 3  # the ANN twin reads the 4 observation values


def test_ppo_trains_a_poisson_coded_policy():
    config = ppo.PPOConfig(**{**SMALL, "snn_encoder": "poisson", "snn_time_steps": 4}, num_seeds=1)
    out = run_seeds(ppo.make_train(config), 1).output
    assert np.isfinite(out.final["eval_return"]).all() and 0 < float(out.final["input_rate"][0]) < 1
