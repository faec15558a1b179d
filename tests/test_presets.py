"""Presets per environment: ``--preset NAME --env ID`` resolves to the settings made for that environment."""

import importlib

import pytest

from synjax import cli, presets


def _modules_with_env_presets():
    for name, (module_name, _) in cli.EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        if hasattr(module, "ENV_PRESETS"):
            yield name, module


def test_every_per_env_preset_is_made_for_the_environment_it_is_filed_under():
    seen = 0
    for name, module in _modules_with_env_presets():
        for preset, table in module.ENV_PRESETS.items():
            assert preset in module.PRESETS, (name, preset)
            for env, config in table.items():
                assert config.env == env, (name, preset, env)
                assert type(config) is type(module.PRESETS[preset]), (name, preset, env)
                seen += 1
    assert seen >= 10


@pytest.mark.parametrize(
    ("experiment", "args", "expect"),
    [
        ("ppo", ["--env", "Acrobot-v1"], {"env": "Acrobot-v1", "total_timesteps": 500_000, "activation": "relu"}),
        ("ppo", ["--env", "ShowerEnv"], {"env": "ShowerEnv", "norm_obs": True, "num_steps": 60}),
        ("ppo", ["--preset", "minatar-snn", "--env", "Freeway-MinAtar"], {"env": "Freeway-MinAtar", "network": "snn"}),
        ("ppo", ["--env", "Pendulum-v1", "--lr", "1e-3"], {"env": "Pendulum-v1", "lr": 1e-3, "num_envs": 32}),
        ("dqn", ["--preset", "tuned", "--env", "MountainCar-v0"], {"env": "MountainCar-v0", "hidden": (256, 256), "gamma": 0.98}),
        ("pqn", ["--preset", "minatar", "--env", "Asterix-MinAtar"], {"env": "Asterix-MinAtar", "network": "cnn"}),
        ("pqn", ["--env", "Taxi-v4"], {"env": "Taxi-v4", "lr": 1e-3, "total_timesteps": 500_000}),
        ("a2c", ["--env", "Acrobot-v1"], {"env": "Acrobot-v1", "num_envs": 16, "norm_obs": True, "norm_reward": True}),
        ("a2c", ["--env", "Pendulum-v1"], {"env": "Pendulum-v1", "num_steps": 8, "gae_lambda": 0.9, "anneal_lr": True}),
    ],
)
def test_the_preset_resolves_for_the_chosen_environment(experiment, args, expect, capsys):
    _, config = cli.parse(experiment, args)
    assert {k: getattr(config, k) for k in expect} == expect
    assert "note:" not in capsys.readouterr().err


def test_a_preset_on_an_environment_it_was_not_made_for_says_so_in_one_line(capsys):
    _, config = cli.parse("ppo", ["--preset", "notebook", "--env", "Acrobot-v1"])
    notebook = importlib.import_module("synjax.agents.ppo").PRESETS["notebook"]
    assert config.env == "Acrobot-v1" and config.total_timesteps == notebook.total_timesteps  # unchanged
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "preset 'notebook' was made for CartPole-v1" in line and "presets made for Acrobot-v1: tuned" in line
    cli.parse("ppo", ["--preset", "notebook"])  # on its own environment: no note
    assert capsys.readouterr().err == ""


def test_resolve_without_an_environment_keeps_the_preset():
    table = {"a": type("C", (), {"env": "X"})()}
    assert presets.resolve("a", None, table, {}) == (table["a"], None)
    assert presets.made_for("a", table, {"a": {"Y": object()}}) == ("X", "Y")
