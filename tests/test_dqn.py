"""DQN: targets, schedules, target updates, replay, config validation, determinism, learning, CLI and eval."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax.agents import dqn, td
from synjax.agents.dqn import DQNConfig
from synjax.agents.replay import ReplayBuffer, ReplayItem
from synjax.cli import main
from synjax.envs import registry
from synjax.runs import evaluate_run, results
from synjax.runs.saved_network import load_network

# A small CartPole run that learns in about 20k steps on every seed we tried (PureJaxRL-style settings, MSE loss).
LEARN = DQNConfig(
    num_seeds=3,
    total_timesteps=20_000,
    num_envs=4,
    lr=1e-3,
    buffer_size=10_000,
    learning_starts=1_000,
    batch_size=64,
    train_freq=1,
    gradient_steps=1,
    target_update_interval=500,
    exploration_fraction=0.5,
    loss="mse",
    max_grad_norm=0.0,
    eval_every=5_000,
    eval_episodes=8,
    progress=False,
)


# --------------------------------------------------------------------------------------------- TD targets


def test_td_target_terminated_does_not_bootstrap_and_truncated_does():
    reward = jnp.array([1.0, 1.0, 0.5])
    terminated = jnp.array([0.0, 1.0, 0.0])  # row 2 is a truncation: it ends the episode but bootstraps
    next_q = jnp.array([[2.0, 3.0], [5.0, 4.0], [1.0, -1.0]])
    y = td.td_target(reward, terminated, next_q, next_q, 0.9, double_dqn=False)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 3.0, 1.0, 0.5 + 0.9 * 1.0], rtol=1e-6)


def test_double_dqn_takes_the_online_argmax_and_the_target_value():
    reward = jnp.array([1.0, 1.0, 0.5])
    terminated = jnp.array([0.0, 1.0, 0.0])
    next_q_target = jnp.array([[2.0, 3.0], [5.0, 4.0], [1.0, -1.0]])
    next_q_online = jnp.array([[9.0, 0.0], [0.0, 1.0], [0.0, 7.0]])  # argmax 0, 1, 1
    y = td.td_target(reward, terminated, next_q_target, next_q_online, 0.9, double_dqn=True)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 2.0, 1.0, 0.5 + 0.9 * -1.0], rtol=1e-6)
    plain = td.td_target(reward, terminated, next_q_target, next_q_online, 0.9, double_dqn=False)
    np.testing.assert_allclose(plain, [1.0 + 0.9 * 3.0, 1.0, 0.5 + 0.9 * 1.0], rtol=1e-6)


def test_td_loss_huber_and_mse():
    q, y = jnp.array([0.0, 0.0]), jnp.array([0.5, 3.0])
    np.testing.assert_allclose(td.td_loss(q, y, "huber", 1.0), (0.5 * 0.25 + (3.0 - 0.5)) / 2, rtol=1e-6)
    np.testing.assert_allclose(td.td_loss(q, y, "mse", 1.0), (0.25 + 9.0) / 2, rtol=1e-6)


def _steps(env_id, actions, **params):
    """Collect one transition per action with :func:`dqn.collect` on one environment (batch of 1)."""
    env, env_params = registry.make(env_id, **params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(3), 1), env_params)
    out = []
    for i, a in enumerate(actions):
        keys = jax.random.split(jax.random.key(100 + i), 1)
        item, next_obs, state, _, done = dqn.collect(step, env_params, state, obs, jnp.array([a]), keys)
        out.append((item, next_obs, bool(done[0])))
        obs = next_obs
    return out


def test_collected_truncation_keeps_the_final_observation_and_does_not_terminate():
    out = _steps("ShowerEnv", [2, 2, 2], max_steps_in_episode=3)  # warmer x3, then the time limit
    temps = [float(item.obs[0, 0]) for item, _, _ in out]
    assert temps[1] == temps[0] + 1 and temps[2] == temps[0] + 2
    last, reset_obs, done = out[-1]
    assert done
    assert float(last.next_obs[0, 0]) == temps[0] + 3  # where the episode was cut, not the reset temperature
    assert float(last.terminated[0]) == 0.0  # truncation: the target bootstraps from next_obs
    assert 35 <= float(reset_obs[0, 0]) <= 41


def test_collected_termination_is_flagged_with_its_true_final_observation():
    out = _steps("CartPole-v1", [1] * 30)  # always push right: the pole falls within 30 steps
    ends = [i for i, (_, _, done) in enumerate(out) if done]
    assert ends, "CartPole should terminate when always pushed one way"
    item, reset_obs, _ = out[ends[0]]
    assert float(item.terminated[0]) == 1.0
    theta = float(item.next_obs[0, 2])
    assert abs(theta) > 12 * 2 * np.pi / 360 or abs(float(item.next_obs[0, 0])) > 2.4  # out of bounds
    # the auto-reset start, not what the transition keeps
    assert np.all(np.abs(np.asarray(reset_obs)) <= 0.05)
    assert all(float(it.terminated[0]) == 0.0 for it, _, _ in out[: ends[0]])


# ------------------------------------------------------------------------------- schedules, target updates


def test_epsilon_schedule_is_linear_then_flat():
    c = DQNConfig(total_timesteps=1000, eval_every=100, exploration_fraction=0.5, exploration_initial_eps=1.0,
                  exploration_final_eps=0.1)  # fmt: skip
    eps = c.epsilon_at(jnp.array([0, 250, 500, 900]))
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_hard_and_polyak_target_updates():
    target, online = {"w": jnp.zeros(3)}, {"w": jnp.full(3, 2.0)}
    # nothing due: unchanged
    np.testing.assert_array_equal(td.target_update(target, online, 1.0, 0)["w"], 0.0)
    np.testing.assert_array_equal(td.target_update(target, online, 1.0, 1)["w"], 2.0)  # hard copy
    np.testing.assert_array_equal(td.target_update(target, online, 1.0, 3)["w"], 2.0)
    # 0.1 * 2 + 0.9 * 0
    np.testing.assert_allclose(td.target_update(target, online, 0.1, 1)["w"], 0.2, rtol=1e-6)
    two = td.target_update(td.target_update(target, online, 0.1, 1), online, 0.1, 1)
    np.testing.assert_allclose(td.target_update(target, online, 0.1, 2)["w"], two["w"], rtol=1e-6)


def test_crossings_count_target_updates_due():
    assert int(td.crossings(490, 500, 500)) == 1
    assert int(td.crossings(500, 510, 500)) == 0
    assert int(td.crossings(0, 256, 10)) == 25


# --------------------------------------------------------------------------------------------- replay


def _items(values):
    v = jnp.asarray(values, jnp.float32)
    k = v.shape[0]
    return ReplayItem(v[:, None], jnp.arange(k, dtype=jnp.int32), v, jnp.zeros(k), v[:, None] + 1)


def test_replay_buffer_is_a_ring_and_samples_only_valid_items():
    buf = ReplayBuffer.create(jax.tree.map(lambda x: x[0], _items([0.0])), capacity=5)
    buf = buf.add(_items([1, 2, 3]))
    assert int(buf.size) == 3 and int(buf.pos) == 3
    got = buf.take(jnp.arange(12, dtype=jnp.uint32))
    np.testing.assert_array_equal(got.reward, [1, 2, 3] * 4)  # indices modulo the 3 valid items
    buf = buf.add(_items([4, 5, 6, 7]))  # wraps: 6 and 7 overwrite 1 and 2
    assert int(buf.size) == 5 and int(buf.pos) == 2
    np.testing.assert_array_equal(buf.data.reward, [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(buf.data.next_obs[:, 0], [7, 8, 4, 5, 6])
    draws = buf.sample(jax.random.key(0), (4000,)).reward
    counts = np.array([(np.asarray(draws) == v).sum() for v in (3, 4, 5, 6, 7)])
    assert counts.sum() == 4000 and counts.min() > 700  # roughly uniform (800 each)


def test_chunk_randomness_shapes_ranges_and_independence():
    key = jax.random.key(0)
    nxt, r = dqn.chunk_randomness(key, freq=3, n=2, g=4, b=5)
    assert r.explore_u.shape == (3, 2) and r.action_bits.shape == (3, 2)
    assert r.env_keys.shape == (3, 2) and r.sample_bits.shape == (4, 5)
    _, big = dqn.chunk_randomness(key, freq=1000, n=1, g=1, b=1)
    u = np.asarray(big.explore_u)
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.05
    keys = np.asarray(jax.random.key_data(r.env_keys)).reshape(6, -1)
    assert len({tuple(k) for k in keys}) == 6
    assert not np.array_equal(jax.random.key_data(nxt), jax.random.key_data(key))


# ------------------------------------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    "field, value",
    [
        ("total_timesteps", 0),
        ("total_timesteps", 1500),  # not a multiple of eval_every=1000
        ("eval_every", 1002),  # not a multiple of train_freq * num_envs = 4
        ("num_envs", 0),
        ("train_freq", 0),
        ("gradient_steps", 0),
        ("buffer_size", 0),
        ("batch_size", 2_000_000),  # larger than the buffer
        ("learning_starts", 20_000),  # no training left
        ("exploration_initial_eps", 1.5),
        ("exploration_final_eps", -0.1),
        ("exploration_fraction", 0.0),
        ("tau", 0.0),
        ("gamma", 1.5),
        ("lr", 0.0),
        ("lr", (1e-3, -1.0)),  # every swept value is checked
        ("max_grad_norm", -1.0),
        ("huber_delta", 0.0),
        ("loss", "l1"),
        ("hidden", ()),
        ("eval_episodes", 0),
        ("target_update_interval", 0),
        ("env", "NoSuchEnv-v0"),
        ("env", "Pendulum-v1"),  # continuous actions
        ("env_params", "no_such_param=1"),
    ],
)
def test_bad_config_fails_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field}="):
        DQNConfig(**{field: value})


def test_presets_are_valid_and_notebook_is_sb3_defaults():
    nb = dqn.PRESETS["notebook"]
    assert next(iter(dqn.PRESETS)) == "notebook"
    assert (nb.total_timesteps, nb.lr, nb.buffer_size, nb.learning_starts, nb.batch_size) == (
        20_000, 1e-4, 1_000_000, 100, 32,
    )  # fmt: skip
    assert (nb.tau, nb.gamma, nb.train_freq, nb.gradient_steps, nb.target_update_interval) == (
        1.0, 0.99, 4, 1, 10_000,
    )  # fmt: skip
    assert (nb.exploration_fraction, nb.exploration_final_eps) == (0.1, 0.05)
    assert (nb.loss, nb.huber_delta, nb.max_grad_norm, nb.double_dqn) == ("huber", 1.0, 10.0, False)
    assert nb.replay_capacity == 20_000
    for preset in dqn.PRESETS.values():
        assert preset.total_timesteps <= 500_000


# --------------------------------------------------------------------- one compiled run: determinism, learning


@pytest.fixture(scope="module")
def learned():
    train = jax.jit(jax.vmap(dqn.make_train(LEARN)))
    keys = jax.random.split(jax.random.key(0), LEARN.num_seeds)
    first = jax.device_get(train(keys))
    second = jax.device_get(train(keys))
    return first, second


def test_train_output_shapes(learned):
    out, _ = learned
    p = LEARN.num_evals + 1
    assert out.steps.shape == (LEARN.num_seeds, p)
    np.testing.assert_array_equal(out.steps[0], np.arange(p) * LEARN.eval_every)
    assert set(out.metrics) == {"eval_return", "train_return", "loss", "epsilon"}
    for v in out.metrics.values():
        assert v.shape == (LEARN.num_seeds, p)
    assert np.isnan(out.metrics["loss"][:, 0]).all() and np.isfinite(out.metrics["loss"][:, 1:]).all()
    np.testing.assert_allclose(out.metrics["epsilon"][0, [0, 2, 4]], [1.0, 0.05, 0.05], rtol=1e-6)
    kernel = out.params["mlp"]["hidden"][0]["kernel"][...]
    assert kernel.shape == (LEARN.num_seeds, 4, 64)


def test_training_is_deterministic_and_seeds_differ(learned):
    """The same compiled run twice gives the same bits (the runner's key handling is tested in test_runner)."""
    a, b = learned
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    finals = a.metrics["loss"][:, -1]
    assert len(set(finals.tolist())) == LEARN.num_seeds


def test_tiny_cartpole_run_learns_beyond_random(learned):
    out, _ = learned
    start = out.metrics["eval_return"][:, 0]  # untrained greedy policy
    final = out.final["eval_return"]
    assert np.median(final) >= 150, final  # random play lasts ~22 steps, the untrained greedy policy ~10
    assert np.median(final) >= 2 * np.median(start)
    assert np.all(final > start)


# ------------------------------------------------------------------------------ CLI, sweep, saved policies


def test_cli_sweep_writes_results_and_saved_policies_evaluate(tmp_path):
    out = tmp_path / "run"
    args = ["dqn", "--env", "ShowerEnv", "--total-timesteps", "1200", "--eval-every", "600", "--num-envs", "2",
            "--learning-starts", "200", "--batch-size", "16", "--buffer-size", "500", "--hidden", "16",
            "--target-update-interval", "100", "--eval-episodes", "3", "--lr", "1e-3,3e-3", "--num-seeds", "2",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"] == "dqn" and summary["sweep"]["num_points"] == 2
    assert [p["values"]["lr"] for p in summary["sweep"]["points"]] == [1e-3, 3e-3]
    assert set(summary["final"]) == {"eval_return[lr=0.001]", "train_return[lr=0.001]", "eval_return[lr=0.003]",
                                     "train_return[lr=0.003]"}  # fmt: skip
    metrics = results.read_metrics_csv(out / "metrics.csv")
    assert metrics["eval_return"].shape == (4, 3)  # 2 lr values x 2 seeds, 3 points (0, 600, 1200)
    assert np.all(np.abs(metrics["eval_return"]) <= 60)  # ShowerEnv: 60 steps of +-1
    assert (out / "curves.png").is_file() and (out / "episode.gif").is_file()  # the GIF: run 0 of the sweep
    config = results.load_config(out)
    assert config["env"] == "ShowerEnv" and config["hidden"] == [16]

    evaluate_run.register("dqn", dqn.saved_policy)
    policy, params, _ = evaluate_run.load_policy(out)
    returns = evaluate_run.evaluate_saved(policy, params, episodes=2)
    assert returns.shape == (4, 2) and np.all(np.abs(returns) <= 60)
    q = load_network(out, seed_index=3)  # the Q-network of run 3 (lr 3e-3, seed 1), rebuilt by make_q_network
    for a, b in zip(jax.tree.leaves(nnx.state(q)), jax.tree.leaves(jax.tree.map(lambda x: x[3], params))):
        np.testing.assert_array_equal(a, b)
    assert q(jnp.zeros((5, 1))).shape == (5, 3)


def test_cli_rejects_bad_values_naming_the_field(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dqn", "--exploration-final-eps", "2.0"])
    assert exc.value.code == 2
    assert "--exploration-final-eps=2.0" in capsys.readouterr().err
