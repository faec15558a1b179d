"""``synjax <experiment> [--preset NAME] [flags]``: one entry point for every experiment.

Each experiment module defines a frozen config dataclass (a :class:`synjax.experiment.RunConfig` subclass), a dict
``PRESETS`` of named configs and ``run(config)``. Flags are parsed by tyro from the config's fields; ``--preset``
picks the defaults the flags start from. ``python scripts/<experiment>.py`` calls the same :func:`main`.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence

#: experiment name -> (module, one-line help). Modules are imported only when their experiment runs.
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "random-rollout": ("synjax.rollout", "random actions in N parallel JAX envs; measures env steps/s"),
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
    "eval": (
        "synjax.evaluate_run",
        "evaluate or text-render the saved policies of a run: synjax eval --run DIR",
    ),
    "tabular-q": (
        "synjax.tabular.experiment",
        "tabular Q-learning on Taxi-v4, seeds vmapped, vs value iteration",
    ),
    "stdp-q": (
        "synjax.snn.experiment",
        "spiking STDP + Q hybrid on Taxi-v4: synaptic Q-values, reward-modulated STDP",
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


def _usage() -> str:
    width = max(map(len, EXPERIMENTS))
    lines = [
        "usage: synjax <experiment> [--preset NAME] [flags]   (synjax <experiment> --help lists its flags)",
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


def _resume_folder(args: Sequence[str]) -> str | None:
    """The value of ``--resume DIR`` / ``--resume=DIR`` in ``args``, if any."""
    for i, arg in enumerate(args):
        if arg == "--resume" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--resume="):
            return arg.split("=", 1)[1]
    return None


def _resumed_default(name: str, folder: str, config_type: type):
    """The config a checkpoint in ``folder`` was made with: a resumed run starts from its own flags."""
    from synjax import checkpoint, results

    try:
        saved, _, _ = checkpoint.read_run(folder, name)
        return results.config_from_dict(config_type, saved)
    except (FileNotFoundError, ValueError, TypeError) as e:
        raise SystemExit(f"synjax {name}: error: {e}") from None


def parse(name: str, args: Sequence[str]):
    """Build the config of experiment ``name`` from command-line ``args`` (raises SystemExit on bad flags).

    With ``--resume DIR`` the flags start from the config saved in DIR's checkpoint instead of a preset.
    """
    import tyro

    module = importlib.import_module(EXPERIMENTS[name][0])
    presets = module.PRESETS
    preset, rest = _pop_preset(list(args), presets)
    if preset not in presets:
        raise SystemExit(f"synjax {name}: error: unknown --preset {preset!r}; allowed: {', '.join(presets)}")
    default = presets[preset]
    resume = _resume_folder(rest)
    if resume is not None and hasattr(default, "resume"):
        default = _resumed_default(name, resume, type(default))
    description = f"{EXPERIMENTS[name][1]}. Presets: {', '.join(presets)} (default {next(iter(presets))})."
    try:
        config = tyro.cli(
            type(default), default=default, args=rest, prog=f"synjax {name}", description=description
        )
    except (ValueError, ImportError) as e:  # a config __post_init__ check, a missing optional dependency
        raise SystemExit(f"synjax {name}: error: {e}") from None
    return module, config


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point. Returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name = argv[0]
    if name not in EXPERIMENTS:
        print(f"synjax: error: unknown experiment {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, config = parse(name, argv[1:])
    from synjax.experiment import Interrupted

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
        ValueError,
        ImportError,
    ) as e:
        print(f"synjax {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synjax {name}: interrupted", file=sys.stderr)
        return 130
    if path is not None:
        summary = json.loads((path / "summary.json").read_text())
        finals = {
            k: f"{v['mean']:.4g} (95% CI {v['ci95'][0]:.4g}..{v['ci95'][1]:.4g})"
            for k, v in summary["final"].items()
        }
        print(f"results: {path}")
        print(
            f"  seeds {summary['num_seeds']}, train {summary['wall_time_s']:.2f}s, "
            f"compile {summary['compile_time_s']:.2f}s, {summary['steps_per_s']:.4g} steps/s"
        )
        for k, v in finals.items():
            print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
