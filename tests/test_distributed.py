"""--distributed: two CPU processes on localhost run one sweep together (the seed axis split between them), give
the same per-seed numbers as one process, write one results folder, stop together and resume; a process that
cannot reach its coordinator fails in the stated time with the address named."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synjax.cli import main
from synjax.runner import checkpoint, distributed

TABULAR = ["tabular-q", "--num-seeds", "3", "--num-episodes", "300", "--no-progress"]
LONG = ["tabular-q", "--num-seeds", "3", "--seed", "2", "--num-episodes", "30000", "--num-chunks", "100",
        "--no-progress"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], cwd: Path, num_processes: int = 2, port: int | None = None) -> list[subprocess.Popen]:
    """``num_processes`` processes of ``synjax ARGS --distributed`` meeting at a free localhost port."""
    port = port or _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = []
    for i in range(num_processes):
        meet = ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(num_processes),
                "--process-id", str(i)]  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-m", "synjax.cli", *args, *meet], cwd=cwd, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    return procs


def _wait(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str]]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        outs.append((p.returncode, out + err))
    return outs


def _finals(folder: Path) -> dict:
    return {k: v["per_seed"] for k, v in json.loads((folder / "summary.json").read_text())["final"].items()}


def test_two_processes_split_the_seeds_and_match_one_process(tmp_path):
    t0 = time.perf_counter()
    outs = _wait(_start([*TABULAR, "--progress"], tmp_path))
    two_s = time.perf_counter() - t0
    for i, (rc, text) in enumerate(outs):
        assert rc == 0, text[-3000:]
        assert f"[process {i}/2]" in text  # each progress line says whose it is
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # process 0 wrote it
    summary = json.loads((folders[0] / "summary.json").read_text())
    assert summary["distributed"] == {"num_processes": 2, "runs_per_process": [[0, 1], [2]]}  # 3 seeds, padded to 4
    t0 = time.perf_counter()
    assert main([*TABULAR, "--out", str(tmp_path / "one")]) == 0
    print(f"tabular-q 3 seeds x 300 episodes: two processes {two_s:.1f}s (with start-up), one {time.perf_counter() - t0:.1f}s")
    assert _finals(folders[0]) == _finals(tmp_path / "one")
    assert (folders[0] / "metrics.csv").read_bytes() == (tmp_path / "one" / "metrics.csv").read_bytes()


def test_a_signal_to_one_process_stops_both_and_the_run_resumes(tmp_path):
    """SIGTERM to process 1 only: both save one checkpoint at the same step and exit 143; both resume with
    --resume DIR (the flags come from the checkpoint) and end bit for bit where one uninterrupted process does."""
    cut = tmp_path / "cut"
    procs = _start([*LONG, "--out", str(cut)], tmp_path)
    deadline = time.time() + 240
    while not (cut / checkpoint.FILE).exists() and procs[1].poll() is None and time.time() < deadline:
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGTERM)
    outs = _wait(procs)
    for rc, text in outs:
        assert rc == 128 + signal.SIGTERM, text[-3000:]
        assert f"continue with --resume {cut}" in text
    _, raw = checkpoint.read(cut)
    assert 0 < int(raw["done"]) < 30000
    for rc, text in _wait(_start(["tabular-q", "--resume", str(cut), "--no-progress"], tmp_path)):
        assert rc == 0, text[-3000:]
    assert main([*LONG, "--out", str(tmp_path / "whole")]) == 0
    for name in ("metrics.csv", "params.msgpack", "q_values.npy"):
        assert (cut / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert _finals(cut) == _finals(tmp_path / "whole")


def test_an_unreachable_coordinator_fails_in_the_stated_time_naming_it(tmp_path):
    port = _free_port()  # nobody listens there
    proc = subprocess.Popen([sys.executable, "-m", "synjax.cli", *TABULAR, "--distributed", "--coordinator",
                             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "1",
                             "--coordinator-timeout", "2"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        f"synjax tabular-q: error: --distributed: process 1 of 2 could not reach the coordinator at 127.0.0.1:{port} "
        "within 2s (Connection refused); start process 0 there, check the address and port, or raise "
        "--coordinator-timeout"
    )
    assert list(tmp_path.iterdir()) == []


def test_settings_come_from_flags_then_the_environment(monkeypatch):
    monkeypatch.setenv(distributed.ENV_COORDINATOR, "10.0.0.1:1234")
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "4")
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "2")
    assert distributed.settings() == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 2}
    assert distributed.settings("h:1", 2, 0) == {"coordinator_address": "h:1", "num_processes": 2, "process_id": 0}
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "two")
    with pytest.raises(ValueError, match=r"\$JAX_PROCESS_ID='two' is invalid: must be an integer"):
        distributed.settings()
    for name in (distributed.ENV_COORDINATOR, distributed.ENV_NUM_PROCESSES, distributed.ENV_PROCESS_ID):
        monkeypatch.delenv(name)
    assert distributed.settings() == {"coordinator_address": None, "num_processes": None, "process_id": None}


def test_the_meeting_flags_need_distributed(capsys):
    with pytest.raises(SystemExit) as stop:
        main([*TABULAR, "--num-processes", "2"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "synjax tabular-q: error: --num-processes=2 is invalid: must be left unset without --distributed "
        "(add --distributed for a multi-process run)"
    )


def test_the_host_loop_refuses_distributed():
    from synjax.host.config import HostConfig

    with pytest.raises(ValueError, match="distributed=True is invalid: must be False: the host loop"):
        HostConfig(distributed=True)


def test_the_single_process_experiments_are_the_ones_whose_configs_refuse_distributed():
    import dataclasses
    import importlib

    from synjax import cli

    for name, (module_name, _) in cli.EXPERIMENTS.items():
        config_type = type(next(iter(importlib.import_module(module_name).PRESETS.values())))
        multi = getattr(config_type, "multi_process", False) and "distributed" in {
            f.name for f in dataclasses.fields(config_type)
        }
        assert multi == (name not in cli.SINGLE_PROCESS), name


def test_one_process_holds_every_run():
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from synjax.runner.devices import seed_mesh

    sharding = NamedSharding(seed_mesh(), P("seeds"))
    n = len(jax.devices())
    assert distributed.runs_per_process(sharding, n, n) == [list(range(n))]
    assert distributed.agree_any(3) == 3 and distributed.from_process_0(7) == 7
