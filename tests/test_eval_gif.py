"""``synjax eval`` of the Taxi agents (tabular-q, stdp-q), ``--gif`` and the ``episode.gif`` of every run folder."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from synjax.agents import config as agent_config
from synjax.agents import on_policy, ppo
from synjax.cli import main
from synjax.runs import episode_gif, evaluate_run, results
from synjax.snn import experiment as stdp_experiment
from synjax.snn.stdp_q import StdpQConfig
from synjax.tabular import evaluate
from synjax.tabular import experiment as tabular_experiment
from synjax.tabular.qlearning import TabularQConfig
from synjax.tabular.taxi_agent import greedy_eval

TABULAR = TabularQConfig(num_seeds=2, num_episodes=1000, eval_every=100, chunk_steps=32, progress=False)
STDP = StdpQConfig(num_seeds=2, num_episodes=400, eval_every=100, epsilon_decay=0.99, progress=False)


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tabular-q"
    return tabular_experiment.run(dataclasses.replace(TABULAR, out=str(out)))[0]


@pytest.fixture(scope="module")
def stdp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "stdp-q"
    return stdp_experiment.run(dataclasses.replace(STDP, out=str(out)))[0]


def _frames(path) -> int:
    with Image.open(path) as image:
        assert image.format == "GIF" and image.is_animated
        return image.n_frames


def _fake_ppo_run(path, env_id: str):
    """A results folder of untrained PPO networks on ``env_id`` (no training compile)."""
    config = ppo.PPOConfig(env=env_id, hidden=(8,), num_envs=2, num_steps=4, num_minibatches=1, num_seeds=2)
    env, env_params = agent_config.make_env(config)
    states = [nnx.state(on_policy.make_network(config, env, env_params, nnx.Rngs(i))) for i in range(2)]
    results.write_run(
        path, experiment="ppo", config=config, steps=np.array([0]), metrics={"eval_return": np.zeros((2, 1))},
        final={"eval_return": np.zeros(2)}, params=jax.tree.map(lambda *x: np.stack(x), *states),
        wall_time_s=1.0, compile_time_s=1.0, total_steps=1,
    )  # fmt: skip
    return path


# ------------------------------------------------------------------------------- eval of the Taxi agents


@pytest.mark.parametrize("fixture", ["tabular_run", "stdp_run"])
def test_eval_recomputes_the_runs_own_final_greedy_return(fixture, request, capsys):
    path = request.getfixturevalue(fixture)
    saved = results.load_summary(path)["final"]["greedy_return"]["per_seed"]
    policy, params, data = evaluate_run.load_policy(path)
    np.testing.assert_array_equal(np.asarray(params), np.load(path / "q_values.npy"))  # the saved tables
    np.testing.assert_allclose(policy.final_eval(params)["greedy_return"], saved, rtol=0, atol=1e-6)
    assert not policy.env_params.is_rainy and policy.env_params.max_steps_in_episode == data["eval_max_steps"]
    assert main(["eval", "--run", str(path), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    for i, value in enumerate(saved):
        assert f"run {i}: mean return" in out and f"final greedy_return {value:.4g}" in out


def test_sampled_greedy_episodes_are_the_exact_ones_of_their_starts(tabular_run):
    """Dry Taxi is deterministic: every sampled episode's return is its start's exact greedy return, and many
    episodes average to the exact mean over the 300 starts."""
    policy, params, _ = evaluate_run.load_policy(tabular_run)
    returns = evaluate_run.evaluate_saved(policy, params, episodes=1500, seed=4)
    for q, sampled in zip(np.asarray(params), returns):
        exact = np.asarray(evaluate.greedy_returns_all_starts(q, 200))
        assert np.all(np.isin(sampled, exact))
        assert abs(sampled.mean() - exact.mean()) < 4 * exact.std() / np.sqrt(len(sampled)) + 1e-6


def test_a_rainy_run_is_evaluated_on_rainy_taxi(tabular_run, tmp_path):
    """The eval plays the variant the run trained on: rainy moves slip, and the sampled returns match the exact
    rainy expectation, not the dry one."""
    q = np.load(tabular_run / "q_values.npy")
    config = dataclasses.replace(TABULAR, is_rainy=True, rainy_probability=0.6)
    rainy = np.asarray(jax.vmap(lambda t: greedy_eval(t, config)[0])(q))
    dry = np.asarray(jax.vmap(lambda t: greedy_eval(t, TABULAR)[0])(q))
    results.write_run(
        tmp_path / "rainy", experiment="tabular-q", config=config, steps=np.array([0]),
        metrics={"greedy_return": rainy[:, None]}, final={"greedy_return": rainy}, params=q, wall_time_s=1.0,
        compile_time_s=1.0, total_steps=1,
    )  # fmt: skip
    policy, params, _ = evaluate_run.load_policy(tmp_path / "rainy")
    assert policy.env_params.is_rainy and policy.env_params.rainy_probability == pytest.approx(0.6)
    np.testing.assert_allclose(policy.final_eval(params)["greedy_return"], rainy, atol=1e-6)
    sampled = evaluate_run.evaluate_saved(policy, params, episodes=2000, seed=1)
    error = np.abs(sampled.mean(axis=1) - rainy)
    assert np.all(error < 4 * sampled.std(axis=1) / np.sqrt(2000)) and np.all(error < np.abs(dry - rainy) / 3)


# ------------------------------------------------------------------------------------------------ --gif


def test_gif_of_a_taxi_run_shows_its_greedy_episode(tabular_run, tmp_path, capsys):
    gif = tmp_path / "taxi.gif"
    assert (
        main(["eval", "--run", str(tabular_run), "--episodes", "1", "--gif", str(gif), "--seed-index", "1"])
        == 0
    )
    out = capsys.readouterr().out
    frames = int(out.split("frames")[0].split()[-1])  # "wrote PATH: run 1, N frames, return R"
    assert f"wrote {gif}: run 1," in out and 1 < frames == _frames(gif)
    policy, params, _ = evaluate_run.load_policy(tabular_run)
    episode = episode_gif.record_episode(policy, jax.tree.map(lambda x: x[1], params), seed=0)
    assert len(episode.states) == frames and f"return {episode.returns[-1]:g}" in out
    if episode.terminated:  # the last frame is the delivery, not the auto-reset
        assert int(episode.states[-1].pass_loc) == int(episode.states[-1].dest_idx)


@pytest.mark.parametrize("env_id", ["ShowerEnv", "CartPole-v1"])
def test_gif_of_shower_and_cartpole(env_id, tmp_path):
    run = _fake_ppo_run(tmp_path / env_id, env_id)
    gif = tmp_path / f"{env_id}.gif"
    assert (
        main(["eval", "--run", str(run), "--episodes", "1", "--gif", str(gif), "--max-render-steps", "30"])
        == 0
    )
    assert 1 < _frames(gif) <= 31
    with Image.open(gif) as image:
        assert image.size[0] <= 300 and image.size[1] <= 300  # small frames


def test_gif_is_refused_before_playing_without_pillow_or_a_renderer(
    tabular_run, tmp_path, monkeypatch, capsys
):
    with pytest.raises(ValueError, match=r"^gif=.* is invalid: must be a path in an existing folder"):
        evaluate_run.EvalConfig(run=str(tabular_run), gif=str(tmp_path / "no" / "such" / "x.gif"))
    from synjax.envs import registry

    assert "no renderer draws DeepSea-bsuite" in episode_gif.unavailable(registry.make("DeepSea-bsuite")[0])
    monkeypatch.setattr(episode_gif, "_installed", lambda module: module != "PIL")
    with pytest.raises(
        ValueError, match=r"^gif=.* is invalid: must be left unset: drawing a GIF needs Pillow"
    ):
        evaluate_run.EvalConfig(run=str(tabular_run), gif=str(tmp_path / "x.gif"))
    with pytest.raises(SystemExit) as exc:  # the config check, as one line
        main(["eval", "--run", str(tabular_run), "--gif", str(tmp_path / "x.gif")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("synjax eval: error: --gif=") and "Pillow" in err and err.count("\n") == 1
    assert not (tmp_path / "x.gif").exists()
    # the results folder's GIF is skipped quietly
    stage = tmp_path / "stage"
    stage.mkdir()
    for name in ("config.json", "params.msgpack"):
        (stage / name).write_bytes((tabular_run / name).read_bytes())
    build = tabular_experiment.saved_policy_builder(TabularQConfig)
    assert episode_gif.write_run_gif(stage, build) is None and not (stage / "episode.gif").exists()
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------- the run folder's GIF


def test_a_failed_drawing_costs_the_run_only_its_gif(tabular_run, tmp_path, capsys):
    (tmp_path / "config.json").write_bytes((tabular_run / "config.json").read_bytes())

    def build(data):
        raise RuntimeError("no such renderer today")

    assert episode_gif.write_run_gif(tmp_path, build) is None and not (tmp_path / "episode.gif").exists()
    assert (
        capsys.readouterr().err == "synjax: episode.gif not written (RuntimeError: no such renderer today)\n"
    )


@pytest.mark.parametrize("fixture", ["tabular_run", "stdp_run"])
def test_taxi_run_folders_hold_episode_gif(fixture, request):
    path = request.getfixturevalue(fixture)
    assert 1 < _frames(path / "episode.gif") <= episode_gif.RUN_GIF_FRAMES
    assert json.loads((path / "config.json").read_text())["experiment"] in ("tabular-q", "stdp-q")


def test_no_gif_skips_the_run_folders_episode_gif(tmp_path):
    out = tmp_path / "no-gif"
    flags = ["--num-seeds", "1", "--num-episodes", "200", "--eval-every", "100", "--no-progress", "--no-gif"]
    assert main(["tabular-q", *flags, "--out", str(out)]) == 0
    assert (out / "q_values.npy").exists() and not (out / "episode.gif").exists()
    assert json.loads((out / "config.json").read_text())["gif"] is False

