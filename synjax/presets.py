"""Presets per environment (rl-baselines3-zoo's convention): ``--preset tuned --env Acrobot-v1`` picks the
settings tuned for Acrobot-v1.

An experiment module keeps ``PRESETS`` (name -> config, each made for the environment in its ``env`` field) and
may add ``ENV_PRESETS`` (name -> {environment id -> config}): the same preset name tuned for other environments.
:func:`resolve` picks the config for the chosen environment; a preset used on an environment it was not made for
runs unchanged, with a one-line note that names the environments it was made for.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: The MinAtar games with per-game presets (gymnax also registers Seaquest-MinAtar: not measured here).
MINATAR_GAMES = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar")


def per_game(config: Any) -> dict[str, Any]:
    """``config`` for every MinAtar game: the published MinAtar settings (purejaxql, PureJaxRL) are one config
    for all games."""
    return {game: dataclasses.replace(config, env=game) for game in MINATAR_GAMES}


def made_for(name: str, presets: dict[str, Any], env_presets: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """The environments preset ``name`` has settings for: its own ``env`` first, then the per-env ones."""
    own = getattr(presets[name], "env", None)
    envs = [own] if own is not None else []
    return tuple(dict.fromkeys([*envs, *env_presets.get(name, {})]))


def resolve(
    name: str, env: str | None, presets: dict[str, Any], env_presets: dict[str, dict[str, Any]]
) -> tuple[Any, str | None]:
    """The config preset ``name`` starts from on environment ``env`` (None: the preset's own), and a note when
    the preset was not made for ``env`` (else None)."""
    default = presets[name]
    if env is None or env == getattr(default, "env", env):
        return default, None
    if env in env_presets.get(name, {}):
        return env_presets[name][env], None
    envs = made_for(name, presets, env_presets)
    tuned = [p for p, table in env_presets.items() if env in table] + [
        p for p, c in presets.items() if getattr(c, "env", None) == env
    ]
    hint = f"; presets made for {env}: {', '.join(dict.fromkeys(tuned))}" if tuned else ""
    note = (
        f"note: preset {name!r} was made for {', '.join(envs)}; on {env} it runs those settings unchanged"
        f"{hint}"
    )
    return default, note
