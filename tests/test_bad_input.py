"""Bad input never gets a traceback: for every experiment, generated bad values of every flag (wrong types,
out-of-range numbers, unknown names, empty strings, huge sizes, folders that cannot be written, a missing or
corrupt --resume folder) each end with exit status 2, one line naming the flag, and nothing left on disk.

The cases come from the configs themselves (each field's type and declared range), so a new flag is covered
the day it is added. Training must never start: the runners are replaced by tripwires for the test.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import typing
from pathlib import Path

import pytest

from synjax import cli
from synjax.checks import field_checks
from synjax.runner import checkpoint

HUGE = "1" + "0" * 12  # 10**12: seeds, environments, episodes no machine holds


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _out_of_range(checks, candidates) -> list:
    """The candidates some declared check refuses."""
    return [v for v in candidates if not all(c.ok(v) for c in checks)]


def _cases_of(name: str) -> list[tuple[list[str], str]]:
    """``(args, what the message must name)`` for experiment ``name``."""
    module = importlib.import_module(cli.EXPERIMENTS[name][0])
    config_type = type(next(iter(module.PRESETS.values())))
    hints = typing.get_type_hints(config_type)
    checks = {f: c for f, c, _ in field_checks(config_type)}
    cases: list[tuple[list[str], str]] = []
    for field in dataclasses.fields(config_type):
        flag, hint = _flag(field.name), hints[field.name]
        own = checks.get(field.name, ())
        if hint is int:
            cases += [([flag, "abc"], flag), ([flag, "1.5"], flag), ([flag, ""], flag)]
            cases += [([flag, str(v)], flag) for v in _out_of_range(own, [-(10**9), -1, 0, 2**40])]
        elif hint is float or "float" in str(hint):
            cases += [([flag, "abc"], flag), ([flag, ""], flag)]
            bad = _out_of_range(own, [-1e30, -1.0, 0.0, 1.5, 1e30, math.nan, math.inf])
            cases += [([flag, repr(v) if math.isfinite(v) else str(v)], flag) for v in bad]
        elif typing.get_origin(hint) is typing.Literal:
            cases += [([flag, "nope"], flag), ([flag, ""], flag)]
        elif hint is str and own:  # a name out of a list (env, network, dataset, ...), or a folder
            cases += [([flag, v], flag) for v in _out_of_range(own, ["nope", ""])]
        elif "tuple[int" in str(hint):
            cases += [([flag, "abc"], flag), ([flag, "0"], flag)]
    cases += [(["--no-such-flag", "1"], "--no-such-flag"), (["--preset", "nope"], "--preset")]
    if "num_seeds" in hints:
        cases.append((["--num-seeds", HUGE], "--num-seeds"))
    host = "algo" in hints  # the host loop runs as long as asked; its limit is the environments it holds
    for size in ("num_envs",) if host else ("num_envs", "num_episodes", "total_timesteps", "batch_size", "steps"):
        if size in hints:
            cases.append(([_flag(size), HUGE], ""))  # the message names the budget or the sizes
    if host:
        cases.append((["--distributed"], "--distributed"))  # refused: its environments live in this process
    if "env_params" in hints:
        cases += [(["--env-params", "gravity"], "--env-params"), (["--env-params", "no_such_param=1"], "--env-params")]
    return cases


def _disk_cases(name: str, root: Path) -> list[tuple[list[str], str]]:
    """Results and checkpoint folders that cannot be used."""
    module = importlib.import_module(cli.EXPERIMENTS[name][0])
    fields = {f.name for f in dataclasses.fields(type(next(iter(module.PRESETS.values()))))}
    if "out" not in fields:
        return [(["--run", str(root / "missing")], "--run"), (["--run", str(root / "corrupt")], "--run")]
    return [
        (["--out", "/proc/forbidden/run"], "--out"),
        (["--out", str(root / "a-file")], "--out"),
        (["--out", str(root / "full")], "--out"),
        (["--resume", str(root / "missing")], "--resume"),
        (["--resume", str(root / "corrupt")], "--resume"),
        (["--resume", str(root / "full")], "--resume"),  # a folder without a checkpoint
    ]


@pytest.fixture
def tripwires(monkeypatch):
    """Training starting is a failure here: the JAX runner's device state and the host loop's environments."""
    import synjax.runner.experiment
    
    def tripped(*args, **kwargs):
        raise AssertionError("training started on bad input")

    import synjax.host.atari
    import synjax.host.carracing

    monkeypatch.setattr(synjax.runner.experiment, "Runs", tripped)
    for host in (synjax.host.atari, synjax.host.carracing):
        monkeypatch.setattr(host, "make_env", tripped)


def test_every_bad_input_ends_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys, tripwires):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "a-file").write_text("not a folder")
    (fixtures / "full").mkdir()
    (fixtures / "full" / "notes.txt").write_text("someone's files")
    (fixtures / "corrupt").mkdir()
    (fixtures / "corrupt" / checkpoint.FILE).write_bytes(b"\x00garbage")
    (fixtures / "corrupt" / "config.json").write_text("{not json")
    before = sorted(p.relative_to(fixtures) for p in fixtures.rglob("*"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a default results folder would appear here
    tried, failures = 0, []
    for name in cli.EXPERIMENTS:
        for args, named in _cases_of(name) + _disk_cases(name, fixtures):
            tried += 1
            try:
                status = cli.main([name, *args] if name in ("eval", "export") else [name, *args, "--no-progress"])
            except SystemExit as e:
                status = e.code
            except Exception as e:  # noqa: BLE001 (a traceback is the failure this test looks for)
                status = f"{type(e).__name__}: {e}"
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if line.strip()]
            ok = (
                status == 2
                and len(lines) == 1
                and lines[0].startswith(f"synjax {name}: error: ")
                and named in lines[0]
                and not os.listdir(work)
                and sorted(p.relative_to(fixtures) for p in fixtures.rglob("*")) == before
            )
            if not ok:
                failures.append(f"synjax {name} {' '.join(args)}: status {status}, stderr {err[-400:]!r}, "
                                f"left {os.listdir(work)}")  # fmt: skip
    print(f"bad inputs tried: {tried} over {len(cli.EXPERIMENTS)} experiments")
    assert not failures, f"{len(failures)} of {tried} bad inputs:\n" + "\n".join(failures)
    assert tried > 1000  # 1,534 on 2026-12-01


@pytest.mark.parametrize("experiment", ["ppo", "a2c", "pqn", "dqn", "atari"])
def test_a_spiking_flag_without_a_spiking_network_is_refused_before_any_work(experiment, tmp_path, capsys):
    out = tmp_path / "never"
    try:
        status = cli.main([experiment, "--snn-encoder", "poisson", "--out", str(out)])
    except SystemExit as e:  # the CLI exits 2 from inside tyro's parsing, or returns 2
        status = e.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--snn-encoder='poisson' is invalid: must be left at its default ('direct')" in err[0]
    assert "only mean something with --network snn" in err[0] and not out.exists()
