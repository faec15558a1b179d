"""Will a sweep fit? Its training state and metrics measured abstractly (``jax.eval_shape``, nothing allocated)
against the memory free on the device, and its step counters against int32, before anything is built on it.

The estimate is a lower bound (the jitted chunk's temporaries come on top), so only a run that certainly cannot
fit is refused, with the numbers and the largest piece of state named.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from synjax.trainer import Trainer

#: the step index and the progress counters are int32 inside the jitted code
MAX_STEPS = 2**31 - 1


def human(num_bytes: float) -> str:
    """``1.5 GiB`` style."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if num_bytes < 1024 or unit == "PiB":
            return f"{num_bytes:.3g} {unit}"
        num_bytes /= 1024
    raise AssertionError


def free_bytes(device: jax.Device) -> int | None:
    """Bytes free on ``device``: the accelerator's limit minus its use, the host's available memory for CPU;
    None where it cannot be told."""
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _leaves_bytes(tree: Any) -> list[tuple[int, str]]:
    """(bytes, "path shape dtype") of every leaf of an abstract pytree, largest first."""
    out = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        dtype = leaf.dtype
        itemsize = 8 if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) else np.dtype(dtype).itemsize
        out.append((math.prod(leaf.shape) * itemsize, f"{jax.tree_util.keystr(path)} {tuple(leaf.shape)} {dtype}"))
    return sorted(out, reverse=True)


def check_fits(trainer: Trainer, num_runs: int, num_devices: int, progress_total: int, runs_text: str) -> None:
    """Refuse a sweep that cannot run here, before its first array is made.

    Args:
      trainer: one run's :class:`Trainer` (its shapes are those of every run).
      num_runs: runs in the sweep (points x seeds).
      num_devices: devices the runs are split over.
      progress_total: the largest progress count a run reports.
      runs_text: the flags that set ``num_runs``, for the message (``"--num-seeds 16"``).
    Raises:
      ValueError: naming the budget or the sizes, with the numbers.
    """
    if trainer.num_steps > MAX_STEPS or progress_total > MAX_STEPS:
        raise ValueError(
            f"the budget is too large: {max(trainer.num_steps, progress_total):,} steps per run, at most "
            f"{MAX_STEPS:,} (2**31 - 1: the counters in the jitted loop are int32); lower the budget flag "
            "(--total-timesteps, --num-episodes, --epochs, --steps)"
        )
    state = jax.eval_shape(trainer.init, jax.random.key(0))
    _, metrics = jax.eval_shape(lambda s: trainer.run_steps(s, jnp.int32(0), 1), state)
    leaves = _leaves_bytes(state)
    per_run = sum(b for b, _ in leaves) + sum(b for b, _ in _leaves_bytes(metrics)) * trainer.num_steps
    device = jax.local_devices()[0]
    # the CPU devices of one process (one per core, see synjax.cpu_flags) share the host's memory: one per process
    memories, where = ((jax.process_count(), "on this host") if device.platform == "cpu"
                       else (num_devices, "per device"))  # fmt: skip
    need = per_run * math.ceil(num_runs / memories)
    free = free_bytes(device)
    if free is not None and need > free:
        largest = leaves[0][1] if leaves else "metrics"
        raise ValueError(
            f"{runs_text}: the training state and metrics need {human(need)} {where} ({human(per_run)} per run; "
            f"largest piece {largest}), more than the {human(free)} free on {device.platform}; use fewer seeds "
            "or points, or smaller sizes (--num-envs, buffers, budget)"
        )
