"""The experiment runner: seeds, sharding, results folder, progress."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synjax.runner.config import RunConfig
from synjax.runner.experiment import run_experiment, run_seeds, seed_keys
from synjax.runner.progress import ProgressBar, report
from synjax.runs import results
from synjax.trainer import Trainer, TrainOutput

ROOT_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _toy_make_train(config=None) -> Trainer:
    """A random walk of 64 steps, reporting progress; final = last position."""

    def init(key):
        return jnp.float32(0.0), key

    def step(state, t):
        x, key = state
        x = x + jax.random.normal(jax.random.fold_in(key, t))
        report(t + 1, x, every=16)
        return (x, key), x

    def finish(state, xs):
        x, _ = state
        return TrainOutput(
            params={"w": jnp.full((2, 3), x), "b": {"c": xs[:4]}},
            steps=jnp.arange(8) * 8,
            metrics={"x": xs[::8], "x2": xs[::8] ** 2},
            final={"x": x},
        )

    return Trainer(init, step, finish, 64)


_toy_train = _toy_make_train()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "toy"
    path, run = run_experiment(
        "toy",
        RunConfig(num_seeds=5, out=str(out), progress=False),
        _toy_make_train,
        progress_total=64,
        steps_per_seed=64,
    )
    return path, run


def test_seed_keys_do_not_depend_on_sweep_size():
    a = jax.random.key_data(seed_keys(3, 4))
    b = jax.random.key_data(seed_keys(3, 9))[:4]
    np.testing.assert_array_equal(a, b)


def test_run_seeds_is_deterministic_and_seeds_differ():
    r1 = run_seeds(_toy_train, 3, seed=7)
    r2 = run_seeds(_toy_train, 3, seed=7)
    np.testing.assert_array_equal(r1.output.final["x"], r2.output.final["x"])
    assert r1.output.final["x"].shape == (3,)
    assert len(set(r1.output.final["x"].tolist())) == 3
    assert r1.compile_time_s > 0 and r1.wall_time_s > 0


def test_results_folder_contents(toy_run):
    path, run = toy_run
    assert sorted(os.listdir(path)) == [
        "config.json",
        "curves.png",
        "metrics.csv",
        "params.msgpack",
        "summary.json",
    ]
    summary = json.loads((path / "summary.json").read_text())
    for key in ("experiment", "num_seeds", "wall_time_s", "steps_per_s", "final"):
        assert key in summary
    assert summary["num_seeds"] == 5 and summary["total_steps"] == 5 * 64
    final = summary["final"]["x"]
    np.testing.assert_allclose(final["per_seed"], run.output.final["x"], rtol=1e-6)
    lo, hi = final["ci95"]
    assert lo < final["mean"] < hi
    config = json.loads((path / "config.json").read_text())
    assert config["experiment"] == "toy" and config["num_seeds"] == 5
    cols = results.read_metrics_csv(path / "metrics.csv")
    assert cols["x"].shape == (5, 8)
    np.testing.assert_allclose(cols["x"], run.output.metrics["x"], rtol=1e-6)
    np.testing.assert_array_equal(cols["step"][0], np.arange(8) * 8)


def test_params_load_back(toy_run):
    path, run = toy_run
    params = results.load_params(path)
    np.testing.assert_array_equal(params["w"], run.output.params["w"])
    np.testing.assert_array_equal(params["b"]["c"], run.output.params["b"]["c"])
    assert params["w"].shape == (5, 2, 3)


def test_existing_results_are_not_overwritten(toy_run):
    path, _ = toy_run
    before = (path / "summary.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_experiment(
            "toy",
            RunConfig(num_seeds=2, out=str(path), progress=False),
            _toy_make_train,
            progress_total=64,
            steps_per_seed=64,
        )
    assert (path / "summary.json").read_text() == before


def test_overwrite_replaces_and_failure_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    cfg = RunConfig(num_seeds=2, out=str(out), progress=False)
    run_experiment("toy", cfg, _toy_make_train, progress_total=64, steps_per_seed=64)

    def boom(stage, outputs):
        raise RuntimeError("disk full")

    cfg = RunConfig(num_seeds=3, out=str(out), overwrite=True, progress=False)
    with pytest.raises(RuntimeError, match="disk full"):
        run_experiment("toy", cfg, _toy_make_train, progress_total=64, steps_per_seed=64, extra_files=boom)
    assert json.loads((out / "summary.json").read_text())["num_seeds"] == 2  # old results intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left behind
    run_experiment("toy", cfg, _toy_make_train, progress_total=64, steps_per_seed=64)
    assert json.loads((out / "summary.json").read_text())["num_seeds"] == 3


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        results.check_out_dir(f, overwrite=True)


def test_stats_matches_student_t():
    s = results.stats(np.array([1.0, 2.0, 3.0, 4.0]))
    assert s["mean"] == 2.5
    np.testing.assert_allclose(s["std"], np.std([1, 2, 3, 4], ddof=1))
    half = 3.182446305284263 * s["std"] / 2.0  # t_{0.975, 3}
    np.testing.assert_allclose(s["ci95"], [2.5 - half, 2.5 + half])
    assert results.stats(np.array([5.0]))["ci95"] == [5.0, 5.0]


def test_invalid_run_config():
    with pytest.raises(ValueError, match="num_seeds"):
        RunConfig(num_seeds=0)
    with pytest.raises(ValueError, match="seed"):
        RunConfig(seed=-1)


def test_progress_bar_receives_reports_from_vmapped_jit():
    with ProgressBar(total=64, enabled=False) as bar:
        run_seeds(_toy_train, 2, seed=0)
        assert bar.done == 64
        assert bar.latest is not None and np.isfinite(bar.latest)


SHARDED = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    from jax.sharding import Mesh
    from synjax.runner.experiment import run_seeds
    from synjax.envs.random_rollout import RandomRolloutConfig, make_rollout
    assert len(jax.devices()) == 4
    train = make_rollout(RandomRolloutConfig(env="{env}", num_envs=8, steps=40, num_points=4, progress=False))
    sharded = run_seeds(train, 6, seed=1)  # 6 seeds padded to 8 over 4 devices
    single = run_seeds(train, 6, seed=1, mesh=Mesh(np.array(jax.devices()[:1]), ("seeds",)))
    for a, b in zip(jax.tree.leaves(sharded.output), jax.tree.leaves(single.output)):
        assert a.shape[0] == 6
        np.testing.assert_array_equal(a, b)
    print("OK")
    """
)


@pytest.mark.parametrize("env", ["Taxi-v4", "CartPole-v1"])
def test_sharded_run_equals_unsharded(env):
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED.format(env=env)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout


def test_compare_runs_tells_equal_runs_from_different_ones(tmp_path):
    """scripts/compare_runs.py: the tool that checks a behaviour-keeping change kept every per-seed number."""
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("compare_runs", ROOT_SCRIPTS / "compare_runs.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for name in ("before", "after"):
        cfg = RunConfig(num_seeds=2, seed=3, out=str(tmp_path / name / "toy"), progress=False)
        run_experiment("toy", cfg, _toy_make_train, progress_total=64, steps_per_seed=64)
    assert tool.main([str(tmp_path / "before"), str(tmp_path / "after")]) == 0
    shutil.rmtree(tmp_path / "after" / "toy")
    cfg = RunConfig(num_seeds=2, seed=4, out=str(tmp_path / "after" / "toy"), progress=False)
    run_experiment("toy", cfg, _toy_make_train, progress_total=64, steps_per_seed=64)
    assert tool.compare(tmp_path / "before" / "toy", tmp_path / "after" / "toy") == {
        "final": False, "metrics": False, "params": False,
    }
    assert tool.main([str(tmp_path / "before"), str(tmp_path / "after")]) == 1


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs a folder nobody can write (Linux /proc)")
def test_an_unwritable_results_folder_fails_before_any_training(tmp_path):
    def never(config):
        raise AssertionError("trained although the results could not be written")

    cfg = RunConfig(num_seeds=2, out="/proc/forbidden/run", progress=False)
    with pytest.raises(PermissionError, match=r"--out /proc/forbidden/run cannot be written"):
        run_experiment("toy", cfg, never, progress_total=64, steps_per_seed=64)
    assert not Path("/proc/forbidden").exists()
    nested = tmp_path / "a" / "b" / "run"  # missing parents are fine, and the probe leaves nothing behind
    assert results.check_out_dir(nested, overwrite=False) == nested
    assert not (tmp_path / "a").exists()
