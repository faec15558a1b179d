"""The Gymnasium host loop: ALE and CarRacing wrappers, the CNN, training, checkpoints and resume, the CLI."""

from __future__ import annotations

import dataclasses
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax.agents.cnn import ConvActorCritic, NatureCNN
from synjax.cli import main
from synjax.host import atari, carracing, envs, loop, sb3_atari
from synjax.host.experiment import run_host
from synjax.host.sb3_atari import SB3AtariEnv
from synjax.runner import checkpoint
from synjax.runs import results
from synjax.runs.saved_network import load_network

# ------------------------------------------------------------------------------------------ a tiny fake env


class Bandit(envs.HostEnv):
    """A contextual bandit with pixel observations: each step shows an all-dark (64) or all-light (192) 36x36
    stack; action 1 is right on light and 0 on dark (reward 1, else 0). Episodes last ``length`` steps and end truncated."""

    def __init__(self, num_envs: int, length: int = 8):
        self.num_envs, self.obs_shape, self.continuous, self.action_dim = num_envs, (2, 36, 36), False, 2
        self.length = length
        super().__init__()

    def _frames(self) -> np.ndarray:
        return np.broadcast_to(
            (64 + self.white * 128).astype(np.uint8)[:, None, None, None], (self.num_envs, 2, 36, 36)
        )

    def _reset(self, seed: int) -> np.ndarray:
        self.rng = np.random.default_rng(seed)
        self.white = self.rng.integers(0, 2, self.num_envs)
        self.t = np.zeros(self.num_envs, int)
        return self._frames().copy()

    def _step(self, actions):
        reward = (np.asarray(actions) == self.white).astype(np.float64)
        self.t += 1
        truncated = self.t >= self.length
        final_obs = self._frames().copy()
        self.t[truncated] = 0
        self.white = self.rng.integers(0, 2, self.num_envs)
        terminated = np.zeros(self.num_envs, bool)
        return self._frames().copy(), reward, terminated, truncated, final_obs, truncated


@dataclasses.dataclass(frozen=True)
class BanditConfig(loop.HostConfig):
    pass


def bandit_env(config, num_envs, evaluation):
    return Bandit(num_envs)


TINY = BanditConfig(
    num_seeds=2, algo="ppo", total_timesteps=4 * 5 * 60, num_envs=4, num_steps=5, num_minibatches=1,
    update_epochs=4, gamma=0.0, lr=1e-3, features=32, log_every=20, checkpoint_every=0,
    eval_episodes=2, gif=False, progress=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def bandit_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("host") / "bandit"
    return run_host("bandit", dataclasses.replace(TINY, out=str(out)), bandit_env)


# -------------------------------------------------------------------------------------------------- network


def test_nature_cnn_shapes_and_pixel_scaling():
    cnn = NatureCNN(4, 84, 84, rngs=nnx.Rngs(0))
    assert cnn.dense.in_features == 7 * 7 * 64
    x = np.zeros((3, 5, 4, 84, 84), np.uint8)
    assert cnn(x).shape == (3, 5, 512)
    with pytest.raises(ValueError, match="too small for the Nature CNN"):
        NatureCNN(4, 30, 30, rngs=nnx.Rngs(0))


def test_conv_actor_critic_heads():
    obs = np.full((6, 4, 36, 36), 128, np.uint8)
    dist, value, _ = ConvActorCritic((4, 36, 36), 5, features=16, rngs=nnx.Rngs(0))(obs)
    assert dist.logits.shape == (6, 5) and value.shape == (6,)
    dist, value, _ = ConvActorCritic((4, 36, 36), 3, continuous=True, log_std_init=-1.0, rngs=nnx.Rngs(0))(obs)
    assert dist.event_shape == (3,)
    np.testing.assert_allclose(dist.stddev(), np.exp(-1.0), rtol=1e-6)


# ------------------------------------------------------------------------------------------- training loop


def test_host_ppo_learns_the_pixel_bandit(bandit_run):
    path, info = bandit_run
    score = info["history"].metrics["train_score"]  # per seed, sum of rewards of 8-step episodes
    assert score.shape == (2, 3)
    assert np.all(score[:, 0] < 5.5), score  # random play: 4 of 8
    assert np.all(score[:, -1] > score[:, 0] + 1.0), score
    assert info["eval_scores"].shape == (2, 2) and np.mean(info["eval_scores"]) > 5.5
    assert sorted(p.name for p in path.iterdir()) == [
        "checkpoint.msgpack", "config.json", "curves.png", "metrics.csv", "params.msgpack", "summary.json",
    ]  # fmt: skip
    summary = results.load_summary(path)
    assert (
        summary["experiment"] == "bandit" and summary["updates"] == 60 and summary["total_steps"] == 2 * 1200
    )
    assert set(summary["final"]) == {"eval_score", "train_score"}


def test_host_ppo_trains_the_spiking_nature_cnn_on_pixels_with_its_energy(tmp_path):
    config = dataclasses.replace(TINY, network="snn", snn_time_steps=5, lr=3e-4, out=str(tmp_path / "snn"))
    path, info = run_host("bandit", config, bandit_env)
    score = info["history"].metrics["train_score"]
    assert np.all(np.isfinite(score)) and info["eval_scores"].shape == (2, 2)
    final = results.load_summary(path)["final"]
    # conv1 on the 2 x 36 x 36 frames (once per decision), then spikes through conv2, conv3, the 32 units, heads
    conv1, conv2, conv3 = 8 * 8 * 32 * 8 * 8 * 2, 3 * 3 * 64 * 4 * 4 * 32, 1 * 1 * 64 * 3 * 3 * 64
    assert final["ann_macs"]["per_seed"] == [conv1 + conv2 + conv3 + 64 * 32 + 32 * 3] * 2
    assert all(0 <= r <= 1 for r in final["firing_rate_3"]["per_seed"])
    with pytest.raises(ValueError, match=r"^snn_time_steps=4 is invalid: must be an integer >= 5 in inner mode"):
        dataclasses.replace(TINY, network="snn", snn_time_steps=4)
    with pytest.raises(ValueError, match=r"^snn_time_mode='carried' is invalid: must be one of inner"):
        dataclasses.replace(TINY, network="snn", snn_time_mode="carried")


def test_same_config_and_seed_give_the_same_run(bandit_run, tmp_path):
    path, _ = bandit_run
    again, _ = run_host("bandit", dataclasses.replace(TINY, out=str(tmp_path / "again")), bandit_env)
    a, b = results.load_params(path), results.load_params(again)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_resume_continues_the_curve_and_refuses_other_configs(bandit_run, tmp_path):
    path, info = bandit_run
    branch = tmp_path / "branch"
    branch.mkdir()
    (branch / checkpoint.FILE).write_bytes((path / checkpoint.FILE).read_bytes())
    longer = dataclasses.replace(TINY, total_timesteps=4 * 5 * 80, resume=str(branch))
    out, more = run_host("bandit", longer, bandit_env)
    assert out == branch
    old, new = info["history"], more["history"]
    np.testing.assert_array_equal(new.steps, [400, 800, 1200, 1600])
    np.testing.assert_array_equal(new.metrics["train_score"][:, :3], old.metrics["train_score"])
    assert results.load_summary(out)["updates"] == 80
    with pytest.raises(ValueError, match=r"another config; differences .*lr: 0.001 -> 0.003"):
        run_host("bandit", dataclasses.replace(longer, lr=3e-3), bandit_env)


def test_resume_of_an_annealed_run_refuses_a_new_budget_but_evaluates_a_reached_one(tmp_path, capsys):
    annealed = dataclasses.replace(TINY, anneal_lr=True, total_timesteps=4 * 5 * 10, eval_episodes=0)
    first, info = run_host("bandit", dataclasses.replace(annealed, out=str(tmp_path / "run")), bandit_env)
    resumed = dataclasses.replace(annealed, resume=str(first), out=str(tmp_path / "eval"))
    with pytest.raises(ValueError, match=r"anneals \(anneal_lr\) over its budget of 10 updates .*"
                       r"--total-timesteps 200, or give at most 200"):  # fmt: skip
        run_host("bandit", dataclasses.replace(resumed, total_timesteps=400), bandit_env)
    assert not (tmp_path / "eval").exists()
    out, again = run_host("bandit", dataclasses.replace(resumed, total_timesteps=100), bandit_env)
    assert "already holds 10 updates (budget 5); evaluating it without training" in capsys.readouterr().err
    assert results.load_summary(out)["updates"] == 10
    np.testing.assert_array_equal(again["history"].steps, info["history"].steps)


def test_resume_from_missing_or_corrupt_checkpoints_fails_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        run_host("bandit", dataclasses.replace(TINY, resume=str(tmp_path / "nope")), bandit_env)
    with pytest.raises(FileNotFoundError, match="no checkpoint.msgpack"):
        run_host("bandit", dataclasses.replace(TINY, resume=str(tmp_path)), bandit_env)
    (tmp_path / checkpoint.FILE).write_bytes(b"\x93not a checkpoint")
    with pytest.raises(ValueError, match="corrupt or not a synjax checkpoint"):
        run_host("bandit", dataclasses.replace(TINY, resume=str(tmp_path)), bandit_env)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_that_resumes(tmp_path, how, capsys):
    import os
    import signal

    class Interrupting(Bandit):
        def _step(self, actions):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 5 * 7 + 2:  # inside the 8th rollout: 7 updates are done
                if how == "ctrl-c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)
            return super()._step(actions)

    out = tmp_path / "interrupted"
    config = dataclasses.replace(TINY, total_timesteps=4 * 5 * 10, eval_episodes=0, out=str(out))
    with pytest.raises(KeyboardInterrupt):
        run_host("bandit", config, lambda c, n, e: Interrupting(n))
    assert sorted(p.name for p in out.iterdir()) == [checkpoint.FILE]  # nothing half-written besides it
    saved, raw = checkpoint.read(out)
    assert raw["update"] == 7 and saved["experiment"] == "bandit"
    assert f"checkpoint of update 7 in {out}" in capsys.readouterr().err
    path, _ = run_host("bandit", dataclasses.replace(config, out="", resume=str(out)), bandit_env)
    assert results.load_summary(path)["updates"] == 10


def test_refuses_to_overwrite_results(bandit_run):
    path, _ = bandit_run
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_host("bandit", dataclasses.replace(TINY, out=str(path)), bandit_env)


def test_score_book_assigns_games_to_seeds():
    book = loop.ScoreBook(num_seeds=2, envs_per_seed=3)
    book.add(np.array([1, 0, 0, 0, 1, 1], bool), np.array([5, 0, 0, 0, 1, 3], np.float32))
    np.testing.assert_array_equal(book.point(), [5, 2])
    book.add(np.array([0, 1, 0, 0, 0, 0], bool), np.array([0, 7, 0, 0, 0, 0], np.float32))
    np.testing.assert_array_equal(book.point(), [7, 2])  # seed 1 played no game: its last value stays


def test_host_config_errors_name_the_field():
    with pytest.raises(
        ValueError, match=r"^num_minibatches=3 is invalid: must be a divisor of num_envs \* num_steps"
    ):
        loop.HostConfig(algo="ppo", num_envs=4, num_steps=8, num_minibatches=3)
    with pytest.raises(ValueError, match=r"^algo='dqn' is invalid: must be one of ppo, a2c"):
        loop.HostConfig(algo="dqn")
    with pytest.raises(ValueError, match=r"^total_timesteps=0 is invalid"):
        loop.HostConfig(total_timesteps=0)
    # the agents' field sets, reused: a setting of the other algorithm, or a sweep, would change nothing
    with pytest.raises(ValueError, match=r"^optimizer='adam' is invalid: must be left at its default \('rmsprop'\) "
                       "with algo 'ppo'"):  # fmt: skip
        loop.HostConfig(algo="ppo", num_minibatches=1, optimizer="adam")
    with pytest.raises(ValueError, match=r"^update_epochs=2 is invalid: .* with algo 'a2c'"):
        loop.HostConfig(algo="a2c", update_epochs=2)
    with pytest.raises(ValueError, match=r"^lr=\(0.001, 0.002\) is invalid: must be one value"):
        loop.HostConfig(lr=(1e-3, 2e-3))
    with pytest.raises(ValueError, match=r"^lr=-1.0 is invalid: must be a float > 0"):  # the agents' own check
        loop.HostConfig(lr=-1.0)


# --------------------------------------------------------------------------------------------------- Atari


def _play(env: envs.AtariEnv, steps: int, seed: int = 0):
    env.reset(seed)
    rng = np.random.default_rng(seed)
    return [env.step(rng.integers(0, env.action_dim, env.num_envs)) for _ in range(steps)]


def test_atari_episodic_life_and_true_scores():
    settings = envs.AtariSettings(game="breakout", clip_reward=False)
    trace = _play(envs.AtariEnv(settings, 2), 1500)
    for i in range(2):
        ends = [t for t, s in enumerate(trace) if s.game_over[i]]
        assert len(ends) >= 2
        start = 0
        for end in ends:  # Breakout has 5 lives: each game is 5 training episodes, its score the reward sum
            assert sum(s.terminated[i] for s in trace[start : end + 1]) == 5
            np.testing.assert_allclose(trace[end].score[i], sum(s.reward[i] for s in trace[start : end + 1]))
            start = end + 1
    assert trace[0].obs.shape == (2, 4, 84, 84) and trace[0].obs.dtype == np.uint8


def test_atari_clips_training_rewards_but_not_scores():
    trace = _play(envs.AtariEnv(envs.AtariSettings(game="breakout", frame_skip=8), 2), 600, seed=3)
    rewards = np.concatenate([s.reward for s in trace])
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    assert any(s.score.max() > 0 for s in trace)
    whole = envs.AtariEnv(envs.AtariSettings(game="breakout", episodic_life=False), 1)
    assert sum(s.terminated[0] for s in _play(whole, 400)) == sum(s.game_over[0] for s in _play(whole, 400))


def test_unknown_game_and_missing_dependency_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"game='breakot' is invalid: .*did you mean breakout"):
        atari.AtariConfig(game="breakot")
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name.startswith("ale_py"):
            raise ImportError("No module named 'ale_py'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(envs.MissingDependency, match="pip install 'ale-py'"):
        envs.atari_games()


def test_atari_run_writes_gif_and_evaluates_true_scores(tmp_path):
    config = dataclasses.replace(
        atari.PRESETS["notebook"], num_seeds=1, num_envs=2, total_timesteps=2 * 5 * 4, log_every=2,
        features=32, eval_episodes=1, eval_max_frames=3000, out=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    path, info = atari.run(config)
    assert (path / "episode.gif").stat().st_size > 1000
    assert info["eval_scores"].shape == (1, 1)
    data = json.loads((path / "config.json").read_text())
    assert data["experiment"] == "atari" and data["sticky"] == 0.25
    assert data["frame_skip"] * data["action_repeat"] == 16
    network = load_network(path, 0)  # rebuilt by host.loop.make_network, the saved parameters filled in
    assert isinstance(network, ConvActorCritic)
    saved = jax.tree.leaves(results.load_params(path))
    assert [np.shape(x)[1:] for x in saved] == [np.shape(x) for x in jax.tree.leaves(nnx.state(network))]
    _, value, _ = network(jnp.zeros((2, 4, 84, 84), jnp.uint8), (), None)
    assert value.shape == (2,)


def _sb3_style(episodic_life: bool = True, num_envs: int = 2) -> SB3AtariEnv:
    settings = envs.AtariSettings(
        game="breakout",
        frame_skip=4,
        action_repeat=4,
        sticky=0.25,
        clip_reward=False,
        episodic_life=episodic_life,
    )
    return SB3AtariEnv(settings, num_envs)


def test_sb3_style_atari_restarts_stacks_at_life_losses_and_scores_whole_games():
    trace = _play(_sb3_style(), 700)
    assert trace[0].obs.shape == (2, 4, 84, 84) and trace[0].obs.dtype == np.uint8
    for i in range(2):
        ends = [t for t, s in enumerate(trace) if s.game_over[i]]
        assert ends
        start = 0
        for end in ends:  # 5 lives: 5 terminal transitions per game; the score is the game's reward sum
            assert sum(s.terminated[i] for s in trace[start : end + 1]) == 5
            np.testing.assert_allclose(trace[end].score[i], sum(s.reward[i] for s in trace[start : end + 1]))
            start = end + 1
        lost = [t for t, s in enumerate(trace) if s.terminated[i] and not s.game_over[i]]
        assert lost
        for t in lost:  # a new life starts a new stack: three empty frames, then the first one
            assert not trace[t].obs[i, :3].any() and trace[t].obs[i, 3].any()
            assert trace[t].final_obs[i, :3].any()  # the stack the life ended on
    whole = _play(_sb3_style(episodic_life=False, num_envs=1), 300)
    assert [s.terminated[0] for s in whole] == [s.game_over[0] for s in whole]  # evaluation: whole games


def test_sb3_style_pseudo_reset_points_count_in_the_score_but_not_in_training():
    """SB3's resets after a lost life drop their rewards; its Monitor, below them, counts them in the score."""
    env = _sb3_style(num_envs=1)
    game = env.games[0]
    pseudo_reset = game.after_life_loss

    def scoring_pseudo_reset():  # pretend the FIRE after every lost life scores 5
        frame, reward, ended = pseudo_reset()
        return frame, reward + 5.0, ended

    game.after_life_loss = scoring_pseudo_reset
    trace = _play(env, 400)
    end = next(t for t, s in enumerate(trace) if s.game_over[0])
    lives_lost = sum(s.terminated[0] and not s.game_over[0] for s in trace[: end + 1])
    assert lives_lost == 4
    seen = sum(s.reward[0] for s in trace[: end + 1])
    assert trace[end].score[0] == seen + 5.0 * lives_lost


def test_sb3_style_action_calls_the_emulator_as_ale_py_step_does():
    """``_Game.act`` drives the emulator directly; the same seed and actions through ale_py's ``env.step`` give
    the same frames, rewards and game ends (sticky actions included)."""
    settings = _sb3_style().settings
    direct, reference = sb3_atari._Game(settings), sb3_atari._Game(settings)
    np.testing.assert_array_equal(direct.reset(3), reference.reset(3))
    rng = np.random.default_rng(1)
    ended = 0
    for action in rng.integers(4, size=600):
        frames, total, terminated, truncated = [], 0.0, False, False
        for _ in range(settings.action_repeat):  # the pooled repeat, spelled out over env.step
            obs, reward, terminated, truncated, _ = reference.env.step(int(action))
            frames.append(obs)
            total += reward
            if terminated or truncated:
                break
        pooled = frames[-2:] if len(frames) == settings.action_repeat else []
        frame, reward, term, trunc = direct.act(int(action))
        assert (reward, term, trunc) == (total, terminated, truncated)
        if pooled:
            np.testing.assert_array_equal(frame, sb3_atari.warp(np.maximum(*pooled)))
        if term or trunc:
            ended += 1
            np.testing.assert_array_equal(direct.reset(), reference.reset())
    assert ended >= 1


def test_area_resize_weights_average_the_covered_pixels():
    w = sb3_atari.area_weights(210, 84)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)  # each output pixel averages 2.5 input rows
    np.testing.assert_allclose(w[0, :3], [0.4, 0.4, 0.2], rtol=1e-6)
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[:, 80:] = 255
    out = sb3_atari.warp(frame)
    assert out.shape == (84, 84) and out[:, :42].max() == 0 and out[:, 42:].min() == 255


def test_sb3_style_atari_matches_stable_baselines3_step_for_step():
    """Same seed and actions as SB3's make_atari_env + VecFrameStack: same rewards and episode ends, frames
    within 1 (rounding). Needs the benchmark extras (stable-baselines3, opencv)."""
    pytest.importorskip("cv2")
    pytest.importorskip("stable_baselines3")
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    theirs = VecFrameStack(make_atari_env("ALE/Breakout-v5", n_envs=1, seed=7), n_stack=4)
    ours = _sb3_style(num_envs=1)
    obs = theirs.reset()
    np.testing.assert_allclose(ours.reset(7)[0], obs[0].transpose(2, 0, 1), atol=1)
    rng = np.random.default_rng(0)
    for _ in range(400):
        action = rng.integers(4, size=1)
        obs, reward, done, _ = theirs.step(action)
        step = ours.step(action)
        assert done[0] == (step.terminated[0] or step.truncated[0])
        assert reward[0] == np.sign(step.reward[0])
        np.testing.assert_allclose(step.obs[0], obs[0].transpose(2, 0, 1), atol=1)


def _params_from_sb3(policy, params):
    """SB3 ``ActorCriticCnnPolicy`` weights as the host agent's ``params`` (one seed): kernels to HWIO, and the
    dense layer's inputs reordered from torch's (C, H, W) flattening to our (H, W, C) one."""
    sd = {
        k: v.detach().numpy().copy() for k, v in policy.state_dict().items()
    }  # copies: torch updates in place
    dense = sd["features_extractor.linear.0.weight"]
    c, h, w = 64, 7, 7
    weights = {
        ("actor", "kernel"): sd["action_net.weight"].T,
        ("actor", "bias"): sd["action_net.bias"],
        ("critic", "kernel"): sd["value_net.weight"].T,
        ("critic", "bias"): sd["value_net.bias"],
        ("torso", "dense", "kernel"): dense.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(c * h * w, -1),
        ("torso", "dense", "bias"): sd["features_extractor.linear.0.bias"],
    }
    if "log_std" in sd:  # the Gaussian head's state-independent log standard deviation
        weights["log_std",] = sd["log_std"]
    for i, j in enumerate((0, 2, 4)):
        weights["torso", "convs", i, "kernel"] = sd[f"features_extractor.cnn.{j}.weight"].transpose(
            2, 3, 1, 0
        )
        weights["torso", "convs", i, "bias"] = sd[f"features_extractor.cnn.{j}.bias"]

    def leaf(path, x):
        key = tuple(getattr(p, "key", getattr(p, "idx", None)) for p in path if not hasattr(p, "name"))
        assert weights[key].shape == x.shape[1:], key
        return jax.numpy.asarray(weights[key], x.dtype)[None]

    return jax.tree_util.tree_map_with_path(leaf, params)


def _random_frames_vec_env(num_envs: int, action_space):
    """SB3 ``DummyVecEnv`` of ``num_envs`` games of random (4, 84, 84) frames and rewards in {-1, 0, 1}, episodes
    of 3 + index steps, with ``action_space``."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    class Frames(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)

        def __init__(self, index: int):
            self.action_space = action_space
            self.length, self.rng, self.t = 3 + index, np.random.default_rng(index), 0

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return self.rng.integers(0, 256, (4, 84, 84), dtype=np.uint8), {}

        def step(self, action):
            self.t += 1
            obs = self.rng.integers(0, 256, (4, 84, 84), dtype=np.uint8)
            return obs, float(self.rng.integers(-1, 2)), self.t >= self.length, False, {}

    return DummyVecEnv([lambda i=i: Frames(i) for i in range(num_envs)])


def _updates_match_sb3(model, config, spaces, updates: int, atol: float) -> None:
    """Run ``updates`` rollouts + updates of the SB3 ``model`` and, each time from SB3's weights before it, the
    host agent's update of ``config`` on SB3's rollout: same returns, same parameters after (``atol``). Each
    update starts from SB3's current weights, so that one update's difference is measured, not its growth (the
    first RMSprop step moves every weight by ~10 lr, and later steps amplify float rounding)."""
    agent = loop.make_agent(config, spaces)
    params, opt_state = agent.init(jax.random.split(jax.random.key(0), 1))
    t, e = config.num_steps, config.num_envs
    assert (e, t) == (model.n_envs, model.n_steps)
    time_major = lambda x: x.reshape(e, t, *x.shape[1:]).swapaxes(
        0, 1
    )  # SB3's buffer is (E*T) after training
    for update in range(updates):
        params = _params_from_sb3(model.policy, params)
        model.learn(t * e, reset_num_timesteps=update == 0)  # one rollout, one update
        buf = model.rollout_buffer
        ends = np.concatenate([buf.episode_starts[1:], model._last_episode_starts[None]])
        action = time_major(buf.actions)
        rollout = {
            "obs": time_major(buf.observations),
            "action": action if spaces.continuous else action[..., 0].astype(np.int32),
            "log_prob": time_major(buf.log_probs)[..., 0], "value": time_major(buf.values)[..., 0],
            "reward": buf.rewards, "done": ends.astype(np.float32),
        }  # fmt: skip
        rollout = {k: v[:, None] for k, v in rollout.items()}  # (T, S=1, E, ...)
        last_obs = model._last_obs[None]
        batch = agent.prepare(params, rollout, last_obs)
        np.testing.assert_allclose(batch.returns[0], time_major(buf.returns).reshape(-1), atol=1e-4)
        assert ends.any() and np.abs(batch.returns[0]).max() > 0.5
        keys = jax.random.split(jax.random.key(update), 1)
        exact = _update_in_float64(agent, params, opt_state, rollout, last_obs, keys, update)
        params, opt_state, _, _ = agent.update(params, opt_state, rollout, last_obs, keys, update)
        sb3_params = jax.tree.leaves(_params_from_sb3(model.policy, params))
        for ours, sb3, ours64 in zip(jax.tree.leaves(params), sb3_params, jax.tree.leaves(exact)):
            # float32 rounding, measured: how far our float32 update lies from the same update in float64, per
            # tensor. SB3's float32 update rounds as much again (other kernels, other summation orders), so
            # the two may lie twice that far apart, times a safety factor of 2, plus ``atol``.
            rounding = float(np.abs(np.asarray(ours, np.float64) - ours64).max())
            np.testing.assert_allclose(ours, sb3, atol=atol + 4 * rounding, rtol=0)


def _update_in_float64(agent, params, opt_state, rollout, last_obs, keys, update):
    """The parameters after ``agent.update`` computed in float64 (the same update without float32 rounding)."""
    wide = lambda tree: jax.tree.map(
        lambda x: np.asarray(x, np.float64) if np.issubdtype(np.asarray(x).dtype, np.floating) else x, tree
    )
    with jax.enable_x64(True):
        new, *_ = agent.update(wide(params), wide(opt_state), wide(rollout), wide(last_obs), keys, update)
        assert all(x.dtype == np.float64 for x in jax.tree.leaves(new))
        return jax.tree.map(lambda x: np.asarray(x, np.float64), new)


def test_a2c_update_matches_stable_baselines3_given_the_same_weights_and_rollout():
    """The notebook preset's A2C update (n-step returns across episode ends, loss, clipping, torch-style RMSprop
    and its running state) against SB3's ``A2C("CnnPolicy")`` on SB3's own rollouts, 4 updates. Needs the
    benchmark extras (stable-baselines3, torch). The tolerance comes from float32 rounding measured against our
    own update in float64 (:func:`_updates_match_sb3`): with a fixed 1e-5, 88 of 8,192 weights failed by up to
    2.4e-5, weights whose RMSprop step divides a gradient near 0 by its own root mean square, where the
    float64 update agrees with SB3's and our float32 one is off by the same 2.4e-5. Checked with
    stable-baselines3 2.9.2 and torch 2.14.1 (2026-12-02)."""
    pytest.importorskip("stable_baselines3")
    torch = pytest.importorskip("torch")
    import gymnasium as gym
    from stable_baselines3 import A2C

    torch.manual_seed(0)
    model = A2C("CnnPolicy", _random_frames_vec_env(4, gym.spaces.Discrete(4)), seed=0, device="cpu")
    config = dataclasses.replace(atari.PRESETS["notebook"], num_seeds=1)
    spaces = types.SimpleNamespace(obs_shape=(4, 84, 84), action_dim=4, continuous=False, action_bounds=None)
    _updates_match_sb3(model, config, spaces, updates=4, atol=1e-5)


def test_ppo_update_matches_stable_baselines3_given_the_same_weights_and_rollout(monkeypatch):
    """The CarRacing preset's PPO update (GAE, standardized advantages, clipped surrogate, Gaussian head with a
    free log std, Adam, 2 epochs) against SB3's ``PPO("CnnPolicy")`` with a Box action space, on SB3's rollouts,
    one minibatch per epoch (so that the shuffles agree), 3 updates. SB3 standardizes with the sample std, synjax
    with the population std (:func:`synjax.agents.losses.normalize`): with SB3's, the updates agree to 1e-5;
    with ours they do not (2.6e-5 apart here, on 16 samples whose two stds are 3% apart). Checked with
    stable-baselines3 2.9.2 and torch 2.14.1 (2026-12-02)."""
    from synjax.agents import losses

    monkeypatch.setattr(losses, "normalize", lambda x: (x - x.mean()) / (x.std(ddof=1) + 1e-8))
    pytest.importorskip("stable_baselines3")
    torch = pytest.importorskip("torch")
    import gymnasium as gym
    from stable_baselines3 import PPO

    low, high = np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32)
    torch.manual_seed(0)
    env = _random_frames_vec_env(2, gym.spaces.Box(low, high))
    model = PPO("CnnPolicy", env, n_steps=8, batch_size=16, n_epochs=2, seed=0, device="cpu")
    config = dataclasses.replace(
        carracing.PRESETS["ppo"], num_seeds=1, num_envs=2, num_steps=8, num_minibatches=1, update_epochs=2
    )
    spaces = types.SimpleNamespace(
        obs_shape=(4, 84, 84), action_dim=3, continuous=True, action_bounds=(low, high)
    )
    _updates_match_sb3(model, config, spaces, updates=3, atol=1e-5)  # an Adam step: ~3e-4


# ----------------------------------------------------------------------------------------------- CarRacing


def test_carracing_preprocessing_and_continuous_actions():
    env = envs.CarRacingEnv(envs.CarRacingSettings(size=48, vectorization="sync"), 2)
    try:
        obs = env.reset(0)
        assert obs.shape == (2, 4, 48, 48) and obs.dtype == np.uint8 and env.action_dim == 3
        np.testing.assert_array_equal(env.action_bounds[0], [-1, 0, 0])
        clipped = loop.clip_actions(np.array([[-3.0, 2.0, -1.0]]), env)
        np.testing.assert_array_equal(clipped, [[-1.0, 1.0, 0.0]])
        step = env.step(np.tile(np.array([0.0, 1.0, 0.0], np.float32), (2, 1)))
        assert step.reward.shape == (2,) and not step.game_over.any()
    finally:
        env.close()
    with pytest.raises(ValueError, match=r"^size=20 is invalid"):
        carracing.CarRacingConfig(size=20)


# ----------------------------------------------------------------------------------------------------- CLI


def test_cli_algo_picks_the_preset_and_bad_input_fails(capsys):
    from synjax.cli import parse

    _, config = parse("atari", ["--algo", "ppo"])
    assert config == atari.PRESETS["ppo"]
    _, config = parse("carracing", ["--algo", "a2c", "--num-seeds", "1"])
    assert config.algo == "a2c" and config.num_seeds == 1
    with pytest.raises(SystemExit):
        main(["atari", "--game", "pongg"])
    assert "--game='pongg' is invalid" in capsys.readouterr().err


def test_unrolled_and_vmapped_seed_axes_agree():
    config = dataclasses.replace(TINY, num_seeds=2, num_envs=2, num_steps=3)
    env = Bandit(4)
    agents = [loop.make_agent(config, env, seed_axis) for seed_axis in ("unroll", "vmap")]
    keys = jax.random.split(jax.random.key(1), 2)
    obs = np.stack([env.reset(0)] * 3).reshape(3, 2, 2, *env.obs_shape)
    rollout = {
        "obs": obs, "action": np.array([[[0, 1], [1, 1]]] * 3, np.int32), "log_prob": np.full((3, 2, 2), -0.7),
        "value": np.zeros((3, 2, 2)), "reward": np.ones((3, 2, 2)), "done": np.zeros((3, 2, 2)),
    }  # fmt: skip
    outs = []
    for agent in agents:
        params, opt_state = agent.init(keys)
        action, log_prob, value, _ = agent.act(params, obs[0], keys)
        params, _, metrics, _ = agent.update(params, opt_state, rollout, obs[0], keys, 0)
        outs.append((action, log_prob, value, params, metrics))
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-5)
