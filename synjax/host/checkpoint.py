"""Checkpoints of host-loop runs: one msgpack file (Flax serialization, no pickle), written atomically.

A checkpoint holds the config it was made with (JSON), the network state and optimizer state of every seed, the
seeds' PRNG key data, the counters (updates, wall time) and the learning-curve history, so a resumed run
continues the old curve. Environments are not saved: a resumed run starts fresh episodes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgpack
from flax import serialization

FILE = "checkpoint.msgpack"
#: Config fields a resumed run may change (budget, bookkeeping and reporting, not the learning problem).
MAY_DIFFER = frozenset(
    {"total_timesteps", "out", "overwrite", "progress", "resume", "checkpoint_every", "eval_episodes", "gif",
     "distributed"}
)  # fmt: skip


def save(folder: str | os.PathLike, config: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write ``folder/checkpoint.msgpack`` atomically (a temporary file renamed over the old one).

    Args:
      config: the run's config as JSON-able dict.
      state: pytree of arrays and Python scalars/lists (params, opt_state, keys, counters, history).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"config": json.dumps(config), "state": serialization.to_state_dict(state)}
    path = folder / FILE
    tmp = folder / f".{FILE}.tmp"
    tmp.write_bytes(serialization.msgpack_serialize(payload))
    os.replace(tmp, path)
    return path


def read(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config dict, raw state dict)`` of ``folder``'s checkpoint.

    Raises:
      FileNotFoundError: no such folder or no checkpoint in it.
      ValueError: the file is not a readable checkpoint (truncated, corrupt, another format).
    """
    folder = Path(folder)
    path = folder / FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"--resume {folder}: no such folder")
    if not path.is_file():
        raise FileNotFoundError(
            f"--resume {folder}: no {FILE} in it (a run writes one every checkpoint_every updates, on Ctrl-C "
            "and at the end)"
        )
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        config = json.loads(payload["config"])
        state = payload["state"]
    except (
        ValueError,
        KeyError,
        TypeError,
        msgpack.exceptions.ExtraData,
        msgpack.exceptions.UnpackException,
    ) as e:
        raise ValueError(f"--resume {folder}: {FILE} is corrupt or not a synjax checkpoint ({e})") from None
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise ValueError(f"--resume {folder}: {FILE} is corrupt or not a synjax checkpoint")  # noqa: TRY004
    return config, state


def config_difference(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Fields (outside :data:`MAY_DIFFER`) whose values differ, as ``"name: saved -> current"`` lines."""
    keys = sorted((set(saved) | set(current)) - MAY_DIFFER)
    return [
        f"{k}: {saved.get(k, '<absent>')!r} -> {current.get(k, '<absent>')!r}"
        for k in keys
        if saved.get(k, "<absent>") != current.get(k, "<absent>")
    ]


def restore(template: dict[str, Any], raw: dict[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """``template`` (a state of the right structure) filled with the checkpoint's ``raw`` state."""
    try:
        return serialization.from_state_dict(template, raw)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--resume {folder}: {FILE} does not fit this network/optimizer ({e})") from None
