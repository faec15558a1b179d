"""PQN: its returns are the Q(lambda) returns it claims, its epsilon follows the schedule, it learns CartPole in a
short budget with the MLP and trains a spiking Q-network end to end, its runs are evaluable, bad settings are
refused."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from synjax.agents import pqn
from synjax.agents.rollout import bootstrap_truncated, gae
from synjax.runner.experiment import run_seeds

SMALL = dataclasses.replace(
    pqn.PRESETS["tuned"], hidden=(32, 32), num_envs=8, num_steps=16, num_minibatches=4, update_epochs=2,
    total_timesteps=1024, eval_every=4, eval_episodes=2, num_seeds=1, progress=False,
)  # fmt: skip


def q_lambda_returns(reward, max_q_next, terminated, truncated, gamma, lam):
    """The Q(lambda) recursion written out: G_t = r_t + gamma (1 - term_t) [(1 - lam) maxQ(s'_t) + lam G_{t+1}],
    G_{t+1} replaced by maxQ(s'_t) where the episode ended (term or trunc) or the rollout does."""
    t_len = reward.shape[0]
    out = np.zeros_like(reward)
    nxt = None
    for t in reversed(range(t_len)):
        ended = (terminated[t] > 0) | truncated[t]
        follow = max_q_next[t] if (t == t_len - 1) else np.where(ended, max_q_next[t], nxt)
        out[t] = reward[t] + gamma * (1 - terminated[t]) * ((1 - lam) * max_q_next[t] + lam * follow)
        nxt = out[t]
    return out


def test_the_loops_gae_over_max_q_gives_the_q_lambda_returns():
    rng = np.random.default_rng(0)
    t_len, n = 12, 5
    max_q_obs = rng.normal(size=(t_len + 1, n)).astype(np.float32)  # maxQ(s_t), t = 0..T (s_T: after the rollout)
    terminated = rng.random((t_len, n)) < 0.15
    truncated = (rng.random((t_len, n)) < 0.15) & ~terminated
    ended = terminated | truncated
    # s'_t: the next observation, or the true final one where the episode ended (its own value)
    max_q_final = np.where(ended, rng.normal(size=(t_len, n)), max_q_obs[1:]).astype(np.float32)
    reward = rng.normal(size=(t_len, n)).astype(np.float32)
    gamma, lam = 0.9, 0.7
    # what rollout_batch does: bootstrap the truncations, then GAE with every episode end as terminal
    r = bootstrap_truncated(jnp.asarray(reward), jnp.asarray(max_q_final), terminated, truncated, gamma)
    _, returns = gae(r, jnp.asarray(max_q_obs[:-1]), jnp.asarray(ended), jnp.asarray(max_q_obs[-1]), gamma, lam)
    expected = q_lambda_returns(reward, max_q_final, terminated.astype(np.float32), truncated, gamma, lam)
    np.testing.assert_allclose(np.asarray(returns), expected, rtol=1e-5, atol=1e-5)


def test_epsilon_falls_linearly_then_stays():
    config = dataclasses.replace(SMALL, total_timesteps=1000, exploration_fraction=0.5, exploration_final_eps=0.1)
    eps = np.asarray(config.epsilon_at(jnp.array([0, 250, 500, 900])))
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_pqn_learns_cartpole_in_a_short_budget():
    config = dataclasses.replace(pqn.PRESETS["tuned"], total_timesteps=20_480, eval_every=5, eval_episodes=5,
                                 num_seeds=2, progress=False)  # fmt: skip
    out = run_seeds(pqn.make_train(config), 2).output
    first, last = np.asarray(out.metrics["eval_return"])[:, 0], np.asarray(out.final["eval_return"])
    assert np.all(first < 30) and np.all(last > 100), (first, last)  # random play is about 20
    eps = np.asarray(out.metrics["epsilon"])[0]
    assert eps[1] > eps[-1] == pytest.approx(0.2)  # the schedule reached its floor
    assert np.all(np.isfinite(np.asarray(out.metrics["td_loss"])[:, 1:]))


def test_spiking_pqn_trains_end_to_end_with_its_energy_and_obs_statistics():
    config = dataclasses.replace(SMALL, network="snn", hidden=(16,), snn_time_steps=2, norm_obs=True)
    out = run_seeds(pqn.make_train(config), 1).output
    for name in ("eval_return", "synops", "ann_macs", "firing_rate_0"):
        assert np.all(np.isfinite(out.final[name])), name
    assert float(out.final["ann_macs"][0]) == 4 * 16 + 16 * 2  # input layer, then 16 units x 2 action values
    assert float(np.abs(out.params["q"]["obs_norm"]["var"]).sum()) != 4.0  # updated from the rollouts
    assert np.asarray(out.params["epsilon"][...])[0] == pytest.approx(0.2)  # the exploration rate set by the loop is saved with the network


def test_a_saved_spiking_pqn_run_is_evaluable_and_holds_its_spike_raster(tmp_path):
    from synjax.runs import evaluate_run

    config = dataclasses.replace(SMALL, network="snn", hidden=(16,), snn_time_steps=2, num_seeds=2,
                                 out=str(tmp_path / "run"))  # fmt: skip
    path, _ = pqn.run(config)
    assert (path / "spikes.png").stat().st_size > 10_000
    assert (path / "episode.gif").stat().st_size > 0  # seed 0's greedy episode
    policy, params, _ = evaluate_run.load_policy(path)
    returns = evaluate_run.evaluate_saved(policy, params, episodes=2)
    assert returns.shape[0] == 2 and np.all(np.isfinite(returns))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env": "Pendulum-v1"}, r"^env='Pendulum-v1' is invalid: must be an environment with a discrete action"),
        ({"num_minibatches": 7}, r"^num_minibatches=7 is invalid: must be a divisor of num_envs \* num_steps"),
        ({"network": "gru"}, r"^network='gru' is invalid: must be one of mlp, cnn, snn for PQNConfig"),
        ({"network": "snn", "snn_time_mode": "carried", "snn_time_steps": 1},
         r"^snn_time_mode='carried' is invalid: must be one of inner for PQNConfig"),
        ({"network": "snn", "snn_time_steps": 2}, r"^snn_time_steps=2 is invalid: must be an integer >= 3"),
        ({"norm_reward": True}, r"^reward_scale=0.1 is invalid: must be 1.0 with --norm-reward"),
        ({"exploration_fraction": 0.0}, r"^exploration_fraction=0.0 is invalid"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(pqn.PRESETS["tuned"], **change)


@pytest.mark.parametrize("network", ["cnn", "snn"])
def test_minatar_trains_with_the_cnn_and_its_spiking_twin(network):
    spiking = {"snn_time_steps": 3} if network == "snn" else {}
    config = dataclasses.replace(SMALL, env="Breakout-MinAtar", network=network, hidden=(16,), reward_scale=1.0,
                                 **spiking)  # fmt: skip
    out = run_seeds(pqn.make_train(config), 1).output
    assert np.isfinite(out.final["eval_return"]).all()
    if network == "snn":  # a LIF map of 16 3x3 convolutions of the 10x10x4 frame, then 16 LIF units
        conv_macs, conv_units = 8 * 8 * 16 * 9 * 4, 8 * 8 * 16
        assert float(out.final["ann_macs"][0]) == conv_macs + conv_units * 16 + 16 * 3
        assert "firing_rate_1" in out.final


def test_cnn_and_spiking_image_settings_are_refused_where_they_cannot_work():
    with pytest.raises(ValueError, match=r"^network='cnn' is invalid: must be a network for CartPole-v1's observations"):
        dataclasses.replace(pqn.PRESETS["tuned"], network="cnn")
    with pytest.raises(ValueError, match=r"^snn_encoder='poisson' is invalid: must be 'direct' for Breakout-MinAtar"):
        dataclasses.replace(pqn.PRESETS["minatar-snn"], snn_encoder="poisson")
    with pytest.raises(ValueError, match=r"^snn_time_steps=2 is invalid: must be an integer >= 3 in inner mode with 2"):
        dataclasses.replace(pqn.PRESETS["minatar-snn"], snn_time_steps=2)
