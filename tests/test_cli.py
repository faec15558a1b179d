"""The synjax command line: listing, parsing, errors, and a small end-to-end run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synjax import cli

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_experiments(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.EXPERIMENTS:
        assert name in out


def test_version_prints_the_package_version(capsys):
    import synjax

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"synjax {synjax.__version__}"


def _flags_without_help(name: str, capsys) -> list[str]:
    """The flags in ``synjax NAME --help`` whose text is only a default (no description)."""
    import re

    with pytest.raises(SystemExit):
        cli.parse(name, ["--help"])
    rows = [row.strip().strip("│").strip() for row in capsys.readouterr().out.splitlines()]
    flags: list[list[str]] = []
    for row in rows:
        if not row or set(row) <= set("-─╭╮╰╯ ") or row.startswith(("╭", "╰")):
            continue
        flag = re.match(r"(?:-h, )?(--[a-z0-9-]+)(?:, --no-[a-z0-9-]+)?(?: [A-Z{][^ ]*)?(?: |$)(.*)", row)
        if flag:
            flags.append([flag.group(1), flag.group(2)])
        elif flags:
            flags[-1][1] += " " + row
    assert len(flags) > 5, name  # the parse above found the options box
    return [f for f, text in flags if not re.sub(r"\((default|required|fixed)[^)]*\)", "", text).strip()]


def test_every_flag_of_every_experiment_has_help_text(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one option per row where it fits
    missing = {name: _flags_without_help(name, capsys) for name in cli.EXPERIMENTS}
    assert not {name: flags for name, flags in missing.items() if flags}


def test_unknown_experiment(capsys):
    assert cli.main(["no-such-thing"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_every_experiment_has_presets_and_a_script():
    import importlib

    for name, (module_name, _) in cli.EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        assert module.PRESETS and callable(module.run), name
        script = ROOT / "scripts" / f"{name.replace('-', '_')}.py"
        assert script.is_file(), f"missing {script}"


def test_invalid_flag_value_names_the_field(capsys):
    for flag, value in (("--num-envs", "0"), ("--env", "Nope-v0"), ("--num-seeds", "0")):
        with pytest.raises(SystemExit) as exc:
            cli.parse("random-rollout", [flag, value])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"synjax random-rollout: error: {flag}=") and err.count("\n") == 1, err
        assert "must be" in err


def test_unknown_preset(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse("random-rollout", ["--preset", "fast"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("synjax random-rollout: error: unknown --preset 'fast'; allowed: ")


def test_random_rollout_end_to_end(tmp_path, capsys):
    out = tmp_path / "r"
    args = [
        "random-rollout",
        "--env",
        "Taxi-v4",
        "--num-envs",
        "16",
        "--steps",
        "400",
        "--num-points",
        "2",
        "--num-seeds",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert cli.main(args) == 0
    assert "results:" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_seeds"] == 2 and summary["total_steps"] == 2 * 16 * 400
    # Taxi random play: every finished episode returns between -2000 (200 illegal actions) and +20.
    ep = summary["final"]["episode_return"]["per_seed"]
    assert all(-2000 <= r <= 20 for r in ep)
    assert cli.main(args) == 2  # same folder again: refused, not overwritten
    assert "already holds" in capsys.readouterr().err


def test_script_runs_the_same_cli(tmp_path):
    out = tmp_path / "s"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "random_rollout.py"),
            "--env",
            "ShowerEnv",
            "--num-envs",
            "4",
            "--steps",
            "60",
            "--num-points",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert -60 <= summary["final"]["episode_return"]["mean"] <= 60
