"""Logging sinks (``--log tensorboard|wandb``): the rows of metrics.csv streamed while a run trains, one run
per seed, inside the results folder; resumed runs append; a missing package is refused before any work."""

import dataclasses
import json
import os
import signal
import struct
import sys
import types
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_host import TINY as HOST_TINY
from test_host import bandit_env

from synjax import cli
from synjax.agents import ppo
from synjax.checks import above
from synjax.host.experiment import run_host
from synjax.runner import log_sinks, sweep
from synjax.runner.config import RunConfig
from synjax.runner.experiment import Interrupted, run_experiment
from synjax.runs import results
from synjax.trainer import Trainer, TrainOutput

# --------------------------------------------------------------------------------------------- reading back


def tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of every event file in ``folder`` (TFRecord framing: length u64, its crc u32, the
    Event proto, its crc u32), each (tag, step) written once."""
    from tensorboardX.proto import event_pb2

    seen: dict[str, dict[int, float]] = {}
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    for path in files:
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                assert event.step not in seen.setdefault(value.tag, {}), f"{value.tag} at {event.step} twice"
                seen[value.tag][event.step] = value.simple_value
    return seen


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline run's ``run-<id>.wandb`` (a LevelDB log after W&B's 7-byte header:
    32 KiB blocks of chunks, each crc u32, length u16, type u8 (1 full, 2 first, 3 middle, 4 last))."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, part, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        part += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(pb.Record.FromString(part))
            part = b""
    return records


def csv_by_seed(out: Path, names: list[str]) -> list[dict[str, dict[int, float]]]:
    """metrics.csv as, per seed, metric -> {step: value} of its finite values, rounded to float32 as the sinks
    store them."""
    cols = results.read_metrics_csv(out / "metrics.csv")
    return [
        {n: {int(s): float(np.float32(v)) for s, v in zip(cols["step"][r], cols[n][r]) if np.isfinite(v)}
         for n in names}
        for r in range(cols["step"].shape[0])
    ]  # fmt: skip


def assert_tensorboard_matches_csv(out: Path, seed_folders: list[Path], names: list[str]) -> None:
    expected = csv_by_seed(out, names)
    assert len(seed_folders) == len(expected)
    for folder, want in zip(seed_folders, expected):
        got = tensorboard_scalars(folder)
        assert {n: got.get(n, {}) for n in names} == want
        assert set(got) <= set(names)


# ------------------------------------------------------------------------------- a cheap trainer to stream

NUM_STEPS = 12


def _walk(config, kill_at: int | None = None) -> Trainer:
    """A random walk, one metrics row per step (the default readiness: row p after step p + 1); ``mean`` is
    NaN at the first row (the sinks leave it out). ``kill_at``: SIGTERM to itself when that step runs."""

    def init(key):
        return {"x": jnp.zeros((2,)), "key": key}

    def step(state, i):
        key, sub = jax.random.split(state["key"])
        x = state["x"] + jax.random.normal(sub, (2,)) * getattr(config, "scale", 1.0)
        if kill_at is not None:
            kill = lambda: jax.debug.callback(lambda: os.kill(os.getpid(), signal.SIGTERM))
            jax.lax.cond(i == kill_at, kill, lambda: None)
        return {"x": x, "key": key}, {"x0": x[0], "mean": jnp.where(i == 0, jnp.nan, x.mean())}

    def finish(state, metrics):
        steps = (jnp.arange(NUM_STEPS) + 1) * 10
        final = {"x0": state["x"][0]}
        return TrainOutput(params={"x": state["x"]}, steps=steps, metrics=metrics, final=final)

    return Trainer(init, step, finish, NUM_STEPS)


def _run_walk(out, make_train=_walk, config_type=RunConfig, **kw):
    config = config_type(num_seeds=2, seed=3, out=str(out), progress=False, num_chunks=4, **kw)
    return run_experiment("walk", config, make_train, progress_total=NUM_STEPS * 10, steps_per_seed=NUM_STEPS)


# ----------------------------------------------------------------------------------------------------- tests


def test_tensorboard_streams_a_ppo_runs_metrics_csv_rows_per_seed_while_it_trains(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    written = []  # points handed to the sink after each chunk
    after_chunk = log_sinks.PointStream.after_chunk

    def spy(self, states, history, done):
        after_chunk(self, states, history, done)
        written.append((done, self.written))

    monkeypatch.setattr(log_sinks.PointStream, "after_chunk", spy)
    config = ppo.PPOConfig(
        num_seeds=2, env="CartPole-v1", total_timesteps=4 * 8 * 8, num_envs=4, num_steps=8, num_minibatches=1,
        update_epochs=1, hidden=(8,), eval_every=2, eval_episodes=1, progress=False, num_chunks=3,
        log="tensorboard", out=str(tmp_path / "ppo"),
    )  # fmt: skip
    out, _ = ppo.run(config)
    # 8 updates, evaluated before the first and after updates 2, 4, 6, 8: points final after steps 1, 3, 5, 7,
    # 9; 3 chunks of 3 steps
    assert written == [(3, 2), (6, 3), (9, 5)]
    assert sorted(p.name for p in (out / "tb").iterdir()) == ["seed_0", "seed_1"]
    names = [n for n in results.read_metrics_csv(out / "metrics.csv") if n != "step"]
    assert {"eval_return", "train_return", "value_loss"} <= set(names)
    assert_tensorboard_matches_csv(out, [out / "tb" / "seed_0", out / "tb" / "seed_1"], names)
    assert results.load_summary(out)["log_time_s"] > 0


def test_wandb_offline_writes_one_run_per_seed_grouped_by_the_results_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.chdir(tmp_path)
    out, _ = _run_walk(tmp_path / "walk-wb", log="wandb")
    assert not (tmp_path / "wandb").exists()  # nothing beside the results folder
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    expected = csv_by_seed(out, ["x0", "mean"])
    by_name = {}
    for run in runs:
        records = wandb_records(next(run.glob("run-*.wandb")))
        (info,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert info.run_group == "walk-wb" and info.job_type == "walk"
        config = {u.key: json.loads(u.value_json) for u in info.config.update}
        rows = {}
        for r in records:
            if r.WhichOneof("record_type") == "history":
                items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
                rows[items["_step"]] = items
        by_name[info.display_name] = (config, rows)
    assert sorted(by_name) == ["seed_0", "seed_1"]
    for s in range(2):
        config, rows = by_name[f"seed_{s}"]
        assert config["seed_index"] == s and config["experiment"] == "walk" and config["num_seeds"] == 2
        for metric in ("x0", "mean"):
            got = {step: float(np.float32(row[metric])) for step, row in rows.items() if metric in row}
            assert got == expected[s][metric]
    assert 10 not in expected[0]["mean"] and "mean" not in by_name["seed_0"][1][10]  # NaN is left out


def test_a_resumed_run_appends_to_its_tensorboard_folders(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    from tensorboardX import event_file_writer

    # the resume opens its files in the same second as the first process (CI once did this by chance)
    frozen = types.SimpleNamespace(time=lambda: 1_700_000_000.0)
    monkeypatch.setattr(event_file_writer, "time", frozen)
    with pytest.raises(Interrupted) as stop:
        _run_walk(tmp_path / "cut", lambda c: _walk(c, kill_at=4), log="tensorboard")
    assert stop.value.done == 6  # chunks of 3 steps: stopped after the second
    before = tensorboard_scalars(tmp_path / "cut" / "tb" / "seed_1")
    assert sorted(before["x0"]) == [10, 20, 30, 40, 50, 60]
    out, _ = _run_walk("", resume=str(tmp_path / "cut"), log="tensorboard")
    folders = [out / "tb" / "seed_0", out / "tb" / "seed_1"]
    assert all(len(list(f.glob("events.out.tfevents.*"))) == 2 for f in folders)  # one file per process
    assert_tensorboard_matches_csv(out, folders, ["x0", "mean"])


def test_a_sweep_has_a_tensorboard_folder_per_point_and_seed(tmp_path):
    pytest.importorskip("tensorboardX")
    @dataclasses.dataclass(frozen=True)
    class Scaled(RunConfig):
        scale: Annotated[sweep.Floats, above(0.0)] = 1.0

    out, _ = _run_walk(tmp_path / "sweep", config_type=Scaled, scale=(1.0, 3.0), log="tensorboard")
    folders = [out / "tb" / f"scale={v}" / f"seed_{s}" for v in (1, 3) for s in range(2)]
    assert_tensorboard_matches_csv(out, folders, ["x0", "mean"])


def test_the_host_loop_streams_its_curve_points_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    config = dataclasses.replace(
        HOST_TINY, total_timesteps=4 * 5 * 6, log_every=2, eval_episodes=0, log="tensorboard",
        out=str(tmp_path / "bandit"),
    )  # fmt: skip
    seen = []  # each point reaches the sink as the loop makes it
    write = log_sinks.TensorBoardSink.write

    def spy(self, steps, values):
        seen.append(int(steps))
        write(self, steps, values)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(log_sinks.TensorBoardSink, "write", spy)
        out, _ = run_host("bandit", config, bandit_env)
    assert seen == [40, 80, 120]
    names = [n for n in results.read_metrics_csv(out / "metrics.csv") if n != "step"]
    assert "train_score" in names
    assert_tensorboard_matches_csv(out, [out / "tb" / "seed_0", out / "tb" / "seed_1"], names)


@pytest.mark.parametrize("kind, module", [("tensorboard", "tensorboardX"), ("wandb", "wandb")])
def test_a_missing_package_is_refused_when_the_config_is_made(kind, module, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec gives None, import fails
    needs = rf'--log {kind} needs the {module} package.*pip install -e "\.\[log\]"'
    with pytest.raises(ImportError, match=needs):
        RunConfig(log=kind)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(["ppo", "--log", kind, "--num-seeds", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install -e ".[log]"' in err and module in err
    assert list(tmp_path.iterdir()) == []  # no results folder was started
    with pytest.raises(ValueError, match="log='mlflow' is invalid: must be one of none, tensorboard, wandb"):
        RunConfig(log="mlflow")
    RunConfig()  # no sink: nothing needed
