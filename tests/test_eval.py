"""``synjax eval --run DIR``: load saved policies, evaluate them, render episodes as text."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax.agents import a2c, on_policy, ppo
from synjax.agents import config as agent_config
from synjax.agents.policy import PolicyNetwork
from synjax.cli import main
from synjax.runs import evaluate_run, results
from synjax.runs.saved_network import load_network

SHOWER = a2c.A2CConfig(
    num_seeds=2, env="ShowerEnv", total_timesteps=8 * 8 * 100, num_envs=8, num_steps=8, lr=3e-3, optimizer="adam",
    hidden=(16, 16), norm_obs=True, eval_every=25, eval_episodes=4, progress=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def shower_run(tmp_path_factory):
    """A short real A2C run on ShowerEnv (observation normalization on): (folder, SweepRun)."""
    out = tmp_path_factory.mktemp("runs") / "a2c-shower"
    return a2c.run(dataclasses.replace(SHOWER, out=str(out)))


def test_a2c_learns_shower(shower_run):
    _, run = shower_run
    ev, train = run.output.metrics["eval_return"], run.output.metrics["train_return"]
    assert set(run.output.metrics) == {"eval_return", "train_return", *a2c.METRICS}
    assert np.all(ev[:, -1] >= 55)  # the optimum is 59.4; random play about -37
    assert np.all(train[:, 1] < 0) and np.all(train[:, -1] > 45)


def _fake_run(path, config, num_runs=2):
    """A results folder holding untrained networks of ``config`` (no training compile needed)."""
    env, env_params = agent_config.make_env(config)
    states = [nnx.state(on_policy.make_network(config, env, env_params, nnx.Rngs(i))) for i in range(num_runs)]
    stacked = jax.tree.map(lambda *x: np.stack(x), *states)
    results.write_run(
        path, experiment="ppo", config=config, steps=np.array([0]), metrics={"eval_return": np.zeros((num_runs, 1))},
        final={"eval_return": np.zeros(num_runs)}, params=stacked, wall_time_s=1.0, compile_time_s=1.0,
        total_steps=1,
    )  # fmt: skip
    return path


def test_loaded_params_are_the_trained_ones(shower_run):
    path, run = shower_run
    _, params, data = evaluate_run.load_policy(path)
    assert data["experiment"] == "a2c" and data["env"] == "ShowerEnv"
    trained = run.output.params
    assert jax.tree.structure(params) == jax.tree.structure(trained)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(trained)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert "obs_norm" in nnx.to_pure_dict(params)  # the normalizer's statistics travel with the parameters


def test_the_run_folder_holds_a_gif_of_run_0(shower_run):
    from PIL import Image

    path, _ = shower_run
    with Image.open(path / "episode.gif") as gif:
        assert gif.n_frames == 61  # ShowerEnv's 60 steps and the start


def test_evaluate_saved_gives_returns_per_run_and_episode(shower_run):
    path, _ = shower_run
    policy, params, _ = evaluate_run.load_policy(path)
    returns = evaluate_run.evaluate_saved(policy, params, episodes=3, seed=1)
    assert returns.shape == (2, 3)
    assert np.all(returns >= -60) and np.all(returns <= 60) and np.all(returns % 2 == 0)  # 60 steps of +-1
    np.testing.assert_array_equal(returns, evaluate_run.evaluate_saved(policy, params, episodes=3, seed=1))


def test_eval_cli_prints_every_run_and_renders_shower(shower_run, capsys):
    path, _ = shower_run
    assert main(["eval", "--run", str(path), "--episodes", "2", "--render", "--seed-index", "1"]) == 0
    out = capsys.readouterr().out
    assert "run 0: mean return" in out and "run 1: mean return" in out and "all runs: mean" in out
    assert "t=0 T=" in out  # the start state, drawn by ShowerEnv's render
    assert "step 60:" in out and "truncated=True" in out and "step 61:" not in out


def test_render_taxi_draws_the_map(tmp_path):
    config = ppo.PPOConfig(env="Taxi-v4", hidden=(8,), num_envs=2, num_steps=4, num_minibatches=1)
    path = _fake_run(tmp_path / "taxi", config)
    policy, params, _ = evaluate_run.load_policy(path)
    one = jax.tree.map(lambda x: jnp.asarray(x[0]), params)
    frames = evaluate_run.render_episode(policy, one, seed=0, max_steps=3)
    assert len(frames) == 4
    assert frames[0].startswith("+---------+") and "taxi (" in frames[0]
    assert frames[1].startswith("step 1: action=") and "+---------+" in frames[1]


def test_eval_of_a_sweep_run_covers_every_run(tmp_path):
    config = ppo.PPOConfig(env="CartPole-v1", hidden=(8,), lr=(1e-3, 3e-3), num_seeds=2)
    path = _fake_run(tmp_path / "sweep", config, num_runs=4)
    assert json.loads((path / "config.json").read_text())["lr"] == [1e-3, 3e-3]
    policy, params, _ = evaluate_run.load_policy(path)
    returns = evaluate_run.evaluate_saved(policy, params, episodes=2)
    assert returns.shape == (4, 2) and np.all(returns >= 1)


def test_other_experiments_plug_in_with_register(tmp_path):
    from synjax.envs import registry

    env, env_params = registry.make("CartPole-v1")
    results.write_run(
        tmp_path / "toy", experiment="toy-agent", config={"env": "CartPole-v1"}, steps=np.array([0]),
        metrics={"x": np.zeros((3, 1))}, final={"x": np.zeros(3)}, params={"bias": np.array([0, 1, 0])},
        wall_time_s=1.0, compile_time_s=1.0, total_steps=1,
    )  # fmt: skip

    def builder(data):
        assert data["env"] == "CartPole-v1"
        return evaluate_run.Policy(
            env, env_params, template={"bias": 0},
            act=lambda p, obs, c: (jnp.full(obs.shape[:1], p["bias"], jnp.int32), c),  # always push one way
            from_dict=lambda template, loaded: {"bias": jnp.asarray(loaded["bias"])},
        )  # fmt: skip

    evaluate_run.register("toy-agent", builder)
    try:
        policy, params, _ = evaluate_run.load_policy(tmp_path / "toy")
        returns = evaluate_run.evaluate_saved(policy, params, episodes=2)
        assert returns.shape == (3, 2) and np.all(returns < 30)  # a constant push topples the pole fast
    finally:
        del evaluate_run.BUILDERS["toy-agent"]


def test_eval_rejects_folders_that_are_not_policy_runs(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^run=.* is invalid: must be a synjax results folder"):
        evaluate_run.EvalConfig(run=str(tmp_path))
    results.write_run(
        tmp_path / "rollout", experiment="random-rollout", config={}, steps=np.array([0]),
        metrics={"x": np.zeros((1, 1))}, final={"x": np.zeros(1)}, params={}, wall_time_s=1.0,
        compile_time_s=1.0, total_steps=1,
    )  # fmt: skip
    with pytest.raises(
        ValueError, match=r"^run=.* is invalid: must be a run of an experiment with saved policies"
    ):
        evaluate_run.EvalConfig(run=str(tmp_path / "rollout"))
    with pytest.raises(ValueError, match=r"^episodes=0 is invalid"):
        evaluate_run.EvalConfig(episodes=0)
    with pytest.raises(SystemExit) as exc:  # the __post_init__ check, as one line
        main(["eval", "--run", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"synjax eval: error: --run='{tmp_path}' is invalid: must be a synjax results folder")
    assert err.count("\n") == 1
    assert main(["eval"]) == 2  # no --run
    assert "--run='' is invalid" in capsys.readouterr().err


def test_eval_loads_a_dqn_run(tmp_path):
    from synjax.agents import dqn

    config = dqn.DQNConfig(env="CartPole-v1", hidden=(8,), num_seeds=2)
    _, init, q = dqn.make_q_network(config)
    stacked = jax.vmap(init)(jax.random.split(jax.random.key(3), 2))
    results.write_run(
        tmp_path / "dqn", experiment="dqn", config=config, steps=np.array([0]),
        metrics={"eval_return": np.zeros((2, 1))}, final={"eval_return": np.zeros(2)}, params=stacked,
        wall_time_s=1.0, compile_time_s=1.0, total_steps=1,
    )  # fmt: skip
    policy, params, data = evaluate_run.load_policy(tmp_path / "dqn")
    assert data["experiment"] == "dqn"
    obs = jnp.ones((5, 4))
    for i in range(2):  # the loaded network is seed i's, and the policy is its greedy action
        one = jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), params)
        want = jnp.argmax(q(jax.tree.map(lambda x, i=i: x[i], stacked), obs), axis=-1)
        np.testing.assert_array_equal(policy.act(one, obs, ())[0], want)
    returns = evaluate_run.evaluate_saved(policy, params, episodes=2)
    assert returns.shape == (2, 2) and np.all(returns >= 1)


def test_a_saved_run_gives_back_its_trained_network(shower_run):
    path, run = shower_run
    network = load_network(path, seed_index=1)
    assert isinstance(network, PolicyNetwork)
    trained = jax.tree.leaves(jax.tree.map(lambda x: x[1], run.output.params))
    for a, b in zip(jax.tree.leaves(nnx.state(network)), trained):
        np.testing.assert_array_equal(a, b)
    dist, value, _ = network(jnp.zeros((3, 1)), (), None)
    assert value.shape == (3,) and dist.logits.shape == (3, 3)
    with pytest.raises(ValueError, match="seed_index=2 is invalid: must be an index below the 2 saved runs"):
        load_network(path, seed_index=2)
