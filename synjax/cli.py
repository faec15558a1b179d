"""``synjax <experiment> [--preset NAME] [flags]``: one entry point for every experiment.

Each experiment module defines a frozen config dataclass (a :class:`synjax.runner.experiment.RunConfig` subclass), a dict
``PRESETS`` of named configs and ``run(config)``. Flags are parsed by tyro from the config's fields; ``--preset``
picks the defaults the flags start from. ``python scripts/<experiment>.py`` calls the same :func:`main`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

#: experiment name -> (module, one-line help). Modules are imported only when their experiment runs.
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "random-rollout": ("synjax.envs.random_rollout", "random actions in N parallel JAX envs; measures env steps/s"),
    "snn-classify": (
        "synjax.classify.experiment",
        "spiking image classifier (spyx): digits, MNIST, Fashion-MNIST",
    ),
    "ppo": (
        "synjax.agents.ppo",
        "PPO on any JAX env, seeds (and --lr 1e-4,3e-4 style sweeps) vmapped in one jit",
    ),
    "a2c": (
        "synjax.agents.a2c",
        "A2C on any JAX env, seeds (and --lr 1e-4,3e-4 style sweeps) vmapped in one jit",
    ),
    "eprop": (
        "synjax.agents.eprop",
        "online spiking actor-critic: reward-based e-prop at every env step, no BPTT (or its controls)",
    ),
    "eval": (
        "synjax.runs.evaluate_run",
        "evaluate, text-render or draw (GIF) the saved policies of a run: synjax eval --run DIR",
    ),
    "export": (
        "synjax.export.experiment",
        "write a spiking run's network as a NIR graph: synjax export --run DIR --out policy.nir",
    ),
    "tabular-q": (
        "synjax.tabular.experiment",
        "tabular Q-learning on Taxi-v4, seeds vmapped, vs value iteration",
    ),
    "stdp-q": (
        "synjax.snn.experiment",
        "spiking STDP + Q hybrid on Taxi-v4: synaptic Q-values, reward-modulated STDP",
    ),
    "pqn": (
        "synjax.agents.pqn",
        "PQN (parallel Q-learning, LayerNorm, Q(lambda), no replay or target net); --network mlp|snn",
    ),
    "dqn": ("synjax.agents.dqn", "DQN on discrete-action JAX envs; seeds and --lr sweeps vmapped in one jit"),
    "atari": (
        "synjax.host.atari",
        "A2C/PPO on an Atari game (ALE vector env on the host, jitted agents): --game breakout --algo a2c",
    ),
    "carracing": (
        "synjax.host.carracing",
        "PPO/A2C on CarRacing-v3 pixels (Gymnasium vector env on the host, jitted agents): --algo ppo",
    ),
}


#: experiments that run in one process: their configs refuse ``--distributed`` (``multi_process`` is False) or
#: have no such flag
SINGLE_PROCESS = frozenset({"eval", "export", "atari", "carracing"})


def _usage() -> str:
    width = max(map(len, EXPERIMENTS))
    lines = [
        "usage: synjax <experiment> [--preset NAME] [flags]   (synjax <experiment> --help lists its flags)",
        "       synjax --version",
        "",
        "experiments:",
        *(f"  {name:<{width}}  {help_}" for name, (_, help_) in EXPERIMENTS.items()),
    ]
    return "\n".join(lines)


def _pop_preset(args: list[str], presets: dict) -> tuple[str, list[str]]:
    """``--preset NAME`` taken out of ``args``; without it, a preset named like the ``--algo`` value (the host
    experiments name their presets by algorithm), else the first preset."""
    rest, preset = [], None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--preset" and i + 1 < len(args):
            preset, i = args[i + 1], i + 2
            continue
        if arg.startswith("--preset="):
            preset, i = arg.split("=", 1)[1], i + 1
            continue
        rest.append(arg)
        i += 1
    if preset is None:
        algo = [rest[j + 1] for j, a in enumerate(rest[:-1]) if a == "--algo"]
        algo += [a.split("=", 1)[1] for a in rest if a.startswith("--algo=")]
        preset = algo[-1] if algo and algo[-1] in presets else next(iter(presets))
    return preset, rest


def _flag_value(args: Sequence[str], flag: str) -> str | None:
    """The last value of ``flag VALUE`` / ``flag=VALUE`` in ``args``, if any."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _fail(name: str, message: Any) -> NoReturn:
    """One line on stderr, exit status 2 (a usage error: nothing was run or written)."""
    print(f"synjax {name}: error: {_as_flag(message)}", file=sys.stderr)
    raise SystemExit(2)


def _start_distributed(name: str, args: Sequence[str]) -> None:
    """With ``--distributed`` among ``args``, start JAX's distributed runtime now: before the config checks,
    which already compute with JAX. (An experiment that cannot run on several processes refuses the flag in its
    config check instead.)"""
    if [a for a in args if a in ("--distributed", "--no-distributed")][-1:] != ["--distributed"]:
        return
    if name in SINGLE_PROCESS:  # importing its module to ask would already start JAX (its presets are checked)
        return
    from synjax.runner import distributed

    numbers = {}
    for flag, default in (("--num-processes", 0), ("--process-id", -1), ("--coordinator-timeout", 60)):
        text = _flag_value(args, flag)
        try:
            numbers[flag] = default if text is None else int(text)
        except ValueError:
            _fail(name, f"{flag}={text!r} is invalid: must be an integer")
    try:
        distributed.initialize(_flag_value(args, "--coordinator") or "", numbers["--num-processes"],
                               numbers["--process-id"], numbers["--coordinator-timeout"])  # fmt: skip
    except (ConnectionError, ValueError, distributed.DistributedError) as e:
        _fail(name, e)


def _resumed_default(name: str, folder: str, config_type: type):
    """The config a checkpoint in ``folder`` was made with: a resumed run starts from its own flags (except how
    its processes meet, which belongs to each launch)."""
    from synjax.runner import checkpoint
    from synjax.runs import results

    try:
        saved, _, _ = checkpoint.read_run(folder, name)
        per_launch = ("distributed", "coordinator", "num_processes", "process_id", "coordinator_timeout")
        return results.config_from_dict(config_type, {k: v for k, v in saved.items() if k not in per_launch})
    except (FileNotFoundError, ValueError, TypeError) as e:
        _fail(name, e)


def _as_flag(message: Any) -> str:
    """A config check's ``"num_envs=0 is invalid: ..."`` as the flag a user typed: ``"--num-envs=0 is ..."``."""
    text = str(message)
    field = re.match(r"([a-z_][a-z0-9_]*)=", text)
    return "--" + field.group(1).replace("_", "-") + text[len(field.group(1)) :] if field else text


def _one_line(tyro_error: str) -> str:
    """tyro's boxed error message as one line: ``--num-seeds='abc' ...`` / ``--lr=-1.0 is invalid: ...``."""
    rows = [line.strip().strip("│|╭╮╰╯+").strip() for line in tyro_error.splitlines()]
    segments: list[list[str]] = [[]]  # the box's parts, between its rules ("─ Value error ───" is a rule too)
    for row in rows:
        framed = re.fullmatch(r"[─━\-=+]+ (.+?) [─━\-=+]+", row)
        if framed or (row and set(row) <= set("─━-=+ ")):
            segments += [[framed.group(1)] if framed else [], []]
        elif row:
            segments[-1].append(row)
    parts = [" ".join(seg) for seg in segments if seg]
    title = parts[0] if parts and re.fullmatch(r"[A-Z][a-z ]+", parts[0]) else ""  # "Value error"
    text = next((p for p in parts if p != title), title or tyro_error.strip())
    metavar = ""
    if "Argument helptext:" in rows:
        usage = rows[rows.index("Argument helptext:") + 1].split()
        metavar = f" (expects {' '.join(usage[1:])})" if len(usage) > 1 else ""
    match = re.match(r"Error parsing (\S+): (.*)", text)
    if match:
        where, text = match.groups()
        value = re.search(r"(?:invalid literal for int\(\) with base 10|could not convert string to float): (.*)", text)
        if where.startswith("-") and value:  # a value of the wrong type
            kind = "an integer" if "int()" in text else "a number"
            text = f"{where}={value.group(1)} is invalid: must be {kind}"
        elif where.startswith("-"):
            text = f"{where}: {text}{metavar}"
    text = _as_flag(text)
    unknown = re.match(r"Unrecognized options?: (.*)", text)
    if unknown:
        flags = [a for a in unknown.group(1).split(", ") if a.startswith("-")]
        what = f"unknown flag {', '.join(flags)}" if flags else f"unexpected argument {unknown.group(1)}"
        text = f"{what} (--help lists the flags)"
    return text


def parse(name: str, args: Sequence[str]):
    """Build the config of experiment ``name`` from command-line ``args``.

    With ``--resume DIR`` the flags start from the config saved in DIR's checkpoint instead of a preset. A bad
    flag or value prints one line (``synjax ppo: error: --lr=-1.0 is invalid: must be a float > 0``) and raises
    ``SystemExit(2)``.
    """
    import tyro

    module = importlib.import_module(EXPERIMENTS[name][0])
    presets = module.PRESETS
    preset, rest = _pop_preset(list(args), presets)
    if preset not in presets:
        _fail(name, f"unknown --preset {preset!r}; allowed: {', '.join(presets)}")
    default = presets[preset]
    resume = _flag_value(rest, "--resume")
    if resume is not None and hasattr(default, "resume"):
        default = _resumed_default(name, resume, type(default))
    elif hasattr(default, "env") and "--help" not in rest and "-h" not in rest:
        from synjax.envs.registry import env_ids
        from synjax.presets import resolve

        env = _flag_value(rest, "--env")
        env = env if env in env_ids() else None  # an unknown id is refused by the config check below
        default, note = resolve(preset, env, presets, getattr(module, "ENV_PRESETS", {}))
        if note is not None:
            print(f"synjax {name}: {note}", file=sys.stderr)
    description = f"{EXPERIMENTS[name][1]}. Presets: {', '.join(presets)} (default {next(iter(presets))})."
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            config = tyro.cli(
                type(default), default=default, args=rest, prog=f"synjax {name}", description=description
            )
    except SystemExit as e:
        if e.code not in (0, None):
            _fail(name, _one_line(captured.getvalue()))
        raise
    except (ValueError, ImportError) as e:  # a check tyro did not catch, a missing optional dependency
        _fail(name, e)
    sys.stderr.write(captured.getvalue())  # warnings of a successful parse
    return module, config


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point. Returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from synjax import __version__

        print(f"synjax {__version__}")
        return 0
    name = argv[0]
    if name not in EXPERIMENTS:
        print(f"synjax: error: unknown experiment {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    _start_distributed(name, argv[1:])
    module, config = parse(name, argv[1:])
    from synjax.runner.distributed import DistributedError
    from synjax.runner.experiment import Interrupted

    try:
        path, _ = module.run(config)
    except Interrupted as e:
        print(f"synjax {name}: {e}", file=sys.stderr)
        return 128 + e.signum
    except (
        FileExistsError,
        FileNotFoundError,
        NotADirectoryError,
        PermissionError,
        ConnectionError,
        DistributedError,
        ValueError,
        ImportError,
    ) as e:
        print(f"synjax {name}: error: {_as_flag(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synjax {name}: interrupted", file=sys.stderr)
        return 130
    if path is not None:
        from synjax.runner.divergence import describe

        summary = json.loads((path / "summary.json").read_text())
        finals = {
            k: f"{v['mean']:.4g} (95% CI {v['ci95'][0]:.4g}..{v['ci95'][1]:.4g})"
            if v["mean"] is not None and v["ci95"][0] is not None
            else "n/a (no finite value)"
            for k, v in summary["final"].items()
        }
        print(f"results: {path}")
        print(
            f"  seeds {summary['num_seeds']}, train {summary['wall_time_s']:.2f}s, "
            f"compile {summary['compile_time_s']:.2f}s, {summary['steps_per_s']:.4g} steps/s"
        )
        for k, v in finals.items():
            print(f"  {k}: {v}")
        if (line := describe(summary)) is not None:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
