"""Resumable runs: a SIGTERM or Ctrl-C saves a checkpoint; --resume continues bit for bit; bad checkpoints are
refused with the difference named."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from synjax.cli import main
from synjax.runner import checkpoint, experiment, sweep
from synjax.runner.config import RunConfig
from synjax.runner.experiment import Interrupted, chunk_length, run_experiment
from synjax.runner.progress import report
from synjax.trainer import Trainer, TrainOutput

NUM_STEPS = 12


def _make_train(config, kill_at: int | None = None) -> Trainer:
    """A random walk whose state holds a PRNG key and a float; ``kill_at``: the process sends itself SIGTERM when
    that step runs (the runner must finish the chunk, save and stop)."""

    def init(key):
        return {"x": jnp.zeros((3,)), "key": key}

    def step(state, i):
        key, sub = jax.random.split(state["key"])
        x = state["x"] + jax.random.normal(sub, (3,))
        if kill_at is not None:
            jax.lax.cond(i == kill_at, lambda: jax.debug.callback(lambda: os.kill(os.getpid(), signal.SIGTERM)),
                         lambda: None)  # fmt: skip
        report(i + 1, x[0])
        return {"x": x, "key": key}, {"x0": x[0]}

    def finish(state, metrics):
        return TrainOutput(params={"x": state["x"]}, steps=jnp.arange(NUM_STEPS), metrics=metrics,
                           final={"x0": state["x"][0]})  # fmt: skip

    return Trainer(init, step, finish, NUM_STEPS)


def _run(out, make_train=_make_train, **kw):
    config = RunConfig(num_seeds=3, seed=4, out=str(out) if out else "", progress=False, num_chunks=4, **kw)
    return run_experiment("walk", config, make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """An uninterrupted run and a run stopped by SIGTERM in its second chunk (steps 3..5)."""
    base = tmp_path_factory.mktemp("resume")
    _, whole = _run(base / "whole")
    with pytest.raises(Interrupted) as info:
        _run(base / "cut", lambda c: _make_train(c, kill_at=4))
    return base, whole, info.value


def test_sigterm_saves_a_checkpoint_at_the_end_of_the_chunk(interrupted):
    base, _, stop = interrupted
    assert stop.done == 6 and stop.total == NUM_STEPS and stop.signum == signal.SIGTERM
    assert sorted(p.name for p in (base / "cut").iterdir()) == [checkpoint.FILE]  # nothing half-written
    saved, raw = checkpoint.read(base / "cut")
    assert saved["experiment"] == "walk" and saved["num_seeds"] == 3 and int(raw["done"]) == 6


def test_resumed_run_equals_the_uninterrupted_one_bit_for_bit(interrupted, tmp_path):
    base, whole, _ = interrupted
    copy = tmp_path / "cut"
    copy.mkdir()
    (copy / checkpoint.FILE).write_bytes((base / "cut" / checkpoint.FILE).read_bytes())
    seen = {}

    class Bar(experiment.ProgressBar):
        def __init__(self, *a, **kw):
            seen["initial"] = kw.get("initial")
            super().__init__(*a, **kw)

    old = experiment.ProgressBar
    experiment.ProgressBar = Bar
    try:
        path, resumed = _run("", resume=str(copy))
    finally:
        experiment.ProgressBar = old
    assert path == copy and seen["initial"] == 6  # the bar continues from the resumed step
    for a, b in zip(jax.tree.leaves(whole.output), jax.tree.leaves(resumed.output)):
        np.testing.assert_array_equal(a, b)
    assert checkpoint.FILE not in os.listdir(copy)  # the finished folder holds results only


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 5}, r"another config; differences \(checkpoint -> now\): seed: 4 -> 5"),
        ({"num_seeds": 2}, "holds 3 seeds, not 2"),
    ],
)
def test_a_checkpoint_of_another_config_is_refused(interrupted, change, message):
    base, _, _ = interrupted
    config = RunConfig(**{"num_seeds": 3, "seed": 4, "progress": False, "num_chunks": 4,
                          "resume": str(base / "cut"), **change})  # fmt: skip
    with pytest.raises(ValueError, match=message):
        run_experiment("walk", config, _make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)


def test_another_experiment_or_version_or_a_corrupt_file_is_refused(interrupted, tmp_path):
    base, _, _ = interrupted
    config = RunConfig(num_seeds=3, seed=4, progress=False, num_chunks=4, resume=str(base / "cut"))
    with pytest.raises(ValueError, match="a checkpoint of 'walk', not 'other'"):
        run_experiment("other", config, _make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)
    payload = serialization.msgpack_restore((base / "cut" / checkpoint.FILE).read_bytes())
    saved = json.loads(payload["config"])
    saved["versions"]["synjax"] = "0.0.1"
    payload["config"] = json.dumps(saved)
    (tmp_path / checkpoint.FILE).write_bytes(serialization.msgpack_serialize(payload))
    config = RunConfig(num_seeds=3, seed=4, progress=False, num_chunks=4, resume=str(tmp_path))
    with pytest.raises(ValueError, match="made by synjax 0.0.1"):
        run_experiment("walk", config, _make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)
    (tmp_path / checkpoint.FILE).write_bytes(b"\x93\x01garbage")
    with pytest.raises(ValueError, match="corrupt or not a synjax checkpoint"):
        run_experiment("walk", config, _make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)


def test_chunk_length_prefers_equal_chunks():
    assert chunk_length(392, 20) == 28  # 14 equal chunks: one compilation
    assert chunk_length(12, 4) == 3
    assert chunk_length(13, 4) == 4  # 13 is prime: chunks of 4, 4, 4, 1
    assert chunk_length(5, 20) == 1


DQN = ["dqn", "--num-seeds", "2", "--seed", "3", "--total-timesteps", "60000", "--eval-every", "1000",
       "--num-chunks", "60", "--no-progress"]  # fmt: skip


def test_cli_run_killed_with_sigterm_resumes_to_the_same_numbers(tmp_path):
    """The real thing: `synjax dqn` (replay buffer, environments, optimizer and keys in the state) in a
    subprocess, SIGTERM once its first checkpoint exists, `synjax dqn --resume DIR`, and the uninterrupted run."""
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "synjax.cli", *DQN, "--out", str(cut)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 240
    while not (cut / checkpoint.FILE).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "continue with --resume" in err
    _, raw = checkpoint.read(cut)
    assert 0 < int(raw["done"]) < 60
    assert main(["dqn", "--resume", str(cut), "--no-progress"]) == 0  # its flags come from the checkpoint
    assert main([*DQN, "--out", str(tmp_path / "whole")]) == 0
    for name in ("metrics.csv", "params.msgpack"):
        assert (cut / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    a, b = (json.loads((p / "summary.json").read_text())["final"] for p in (cut, tmp_path / "whole"))
    assert a == b


@dataclasses.dataclass(frozen=True)
class _SweepConfig(RunConfig):
    scale: sweep.Floats = 1.0


def _scaled_train(config, kill_at=None):
    """The walk, its final position scaled by the swept ``scale`` (a tracer inside the runner)."""
    inner = _make_train(config, kill_at)
    return Trainer(inner.init, inner.step, lambda s, m: inner.finish({**s, "x": s["x"] * config.scale}, m), NUM_STEPS)


def test_a_sweep_resumes_every_point(tmp_path):
    def run(out, kill_at=None, resume=""):
        config = _SweepConfig(num_seeds=2, scale=(1.0, 3.0), out=str(out) if out else "", progress=False,
                              num_chunks=4, resume=resume)  # fmt: skip
        return run_experiment("walk", config, lambda c: _scaled_train(c, kill_at), progress_total=NUM_STEPS,
                              steps_per_seed=NUM_STEPS)  # fmt: skip

    _, whole = run(tmp_path / "whole")
    with pytest.raises(Interrupted):
        run(tmp_path / "cut", kill_at=7)
    _, resumed = run("", resume=str(tmp_path / "cut"))
    assert resumed.output.params["x"].shape == (4, 3)  # 2 points x 2 seeds
    for a, b in zip(jax.tree.leaves(whole.output), jax.tree.leaves(resumed.output)):
        np.testing.assert_array_equal(a, b)
