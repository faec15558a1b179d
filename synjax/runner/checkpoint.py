"""Checkpoints: one msgpack file (Flax serialization, no pickle) in the results folder, written atomically.

One mechanism for both kinds of run. A JAX-environment experiment (:mod:`synjax.runner.experiment`) saves its whole
vmapped training state (environment states included, so a resumed run is bit-for-bit the uninterrupted one), the
metrics gathered so far and its counters; a host-loop run (:mod:`synjax.host.experiment`) saves the network and
optimizer states, the seeds' PRNG keys and its curve (its Gymnasium environments are not saved: a resumed run
starts fresh episodes). Both store the config they were made with as JSON, so a resume with another config is
refused with the difference named.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path
from typing import Any

import jax
import msgpack
import numpy as np
from flax import serialization

FILE = "checkpoint.msgpack"
#: Config fields a resumed host-loop run may change (budget, bookkeeping and reporting, not the learning problem).
MAY_DIFFER = frozenset(
    {"total_timesteps", "out", "overwrite", "progress", "resume", "checkpoint_every", "eval_episodes", "gif",
     "distributed", "coordinator", "num_processes", "process_id", "coordinator_timeout", "log"}
)  # fmt: skip
#: Config fields a resumed JAX-environment run may change: bookkeeping only (its budget sets the whole state).
MAY_DIFFER_JAX = frozenset({"out", "overwrite", "progress", "resume", "checkpoint_every", "distributed", "coordinator",
                            "num_processes", "process_id", "coordinator_timeout", "log"})  # fmt: skip


class BackgroundWriter:
    """Writes checkpoints on one background thread while training goes on: :meth:`submit` hands it a state
    already copied to the host; the next submit, :meth:`wait` or :meth:`close` raises a failed write.
    ``enabled=False`` (processes other than 0 of a distributed run) writes nothing."""

    def __init__(self, enabled: bool = True):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._pending: list[concurrent.futures.Future] = []
        self.enabled = enabled

    def submit(self, folder: Path, config: dict[str, Any], state: dict[str, Any]) -> None:
        self.wait()
        if self.enabled:
            self._pending.append(self._pool.submit(save, folder, config, state))

    def wait(self) -> None:
        """Until every submitted checkpoint is on disk."""
        while self._pending:
            self._pending.pop().result()

    def close(self) -> None:
        self.wait()
        self._pool.shutdown()


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
            f"--resume {folder}: no {FILE} in it (a run writes one while it trains, every --checkpoint-every "
            "chunks or updates, and on SIGTERM or Ctrl-C; a finished JAX-environment run keeps only its results)"
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


def read_run(folder: str | os.PathLike, experiment: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """:func:`read`, refusing a checkpoint of another experiment: ``(saved config without its "experiment" and
    "versions" entries, the versions it recorded ({} if none), raw state)``."""
    saved, raw = read(folder)
    if saved.get("experiment", experiment) != experiment:
        raise ValueError(f"--resume {folder}: a checkpoint of {saved['experiment']!r}, not {experiment!r}")
    versions = saved.get("versions", {})
    return {k: v for k, v in saved.items() if k not in ("experiment", "versions")}, versions, raw


def refuse_difference(
    folder: str | os.PathLike, saved: dict[str, Any], current: dict[str, Any], may_differ: frozenset[str]
) -> None:
    """ValueError naming every field (outside ``may_differ``) in which ``current`` differs from ``saved``."""
    diff = config_difference(saved, current, may_differ)
    if diff:
        raise ValueError(
            f"--resume {folder}: the checkpoint was made with another config; differences (checkpoint -> now): "
            f"{'; '.join(diff)}"
        )


def config_difference(
    saved: dict[str, Any], current: dict[str, Any], may_differ: frozenset[str] = MAY_DIFFER
) -> list[str]:
    """Fields (outside ``may_differ``) whose values differ, as ``"name: saved -> current"`` lines."""
    keys = sorted((set(saved) | set(current)) - may_differ)
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


def arrays_to_tree(tree: Any) -> dict[str, Any]:
    """A pytree of arrays as a msgpack-able dict ``{"0": leaf, "1": leaf, ...}`` in flattening order; typed PRNG
    keys become their raw ``uint32`` key data (:func:`tree_from_arrays` turns them back)."""
    leaves = jax.tree.leaves(tree)
    out = {}
    for i, leaf in enumerate(leaves):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out[str(i)] = np.asarray(leaf)
    return out


def tree_from_arrays(template: Any, raw: dict[str, Any], folder: str | os.PathLike) -> Any:
    """Inverse of :func:`arrays_to_tree`: ``template``'s structure (arrays or ``jax.ShapeDtypeStruct``s) filled
    with the saved leaves, each checked against the template's shape and dtype.

    Raises:
      ValueError: the leaves do not fit the template (another network, environment or seed count).
    """
    leaves, treedef = jax.tree.flatten(template)
    if not isinstance(raw, dict) or len(raw) != len(leaves):
        raise ValueError(
            f"--resume {folder}: {FILE} holds {len(raw) if isinstance(raw, dict) else 'no'} arrays where this run "
            f"has {len(leaves)}: it was made by another version of this experiment"
        )
    out = []
    for i, like in enumerate(leaves):
        value = raw.get(str(i))
        is_key = jax.dtypes.issubdtype(like.dtype, jax.dtypes.prng_key)
        shape = (*like.shape, *jax.random.key_data(jax.random.key(0)).shape) if is_key else like.shape
        dtype = np.uint32 if is_key else like.dtype
        if not isinstance(value, np.ndarray) or value.shape != tuple(shape) or value.dtype != dtype:
            got = f"{value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(
                f"--resume {folder}: {FILE} array {i} is {got}, this run needs {np.dtype(dtype)}{list(shape)}"
            )
        out.append(jax.random.wrap_key_data(value) if is_key else value)
    return jax.tree.unflatten(treedef, out)
