"""Multi-process runs: JAX's distributed runtime, started before anything touches JAX, and the few agreements
the processes of one sweep need (one results-folder name, stop together, fail together).

A ``--distributed`` run is the same command started once per process (per host, or per GPU). Where the processes
find each other, in this order: the flags ``--coordinator HOST:PORT --num-processes N --process-id I``; the
environment variables ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` (read here, since
jax 0.10 reads only the first); else JAX's own cluster detection (SLURM, Cloud TPU, MPI). CPU processes exchange
arrays through gloo, so a CPU cluster (or two processes on a laptop) works too.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np

T = TypeVar("T")
#: environment variables read when the flags are not given
ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


class DistributedError(RuntimeError):
    """A ``--distributed`` run cannot go on: JAX started too early, or another process failed."""


def settings(coordinator: str = "", num_processes: int = 0, process_id: int = -1) -> dict[str, Any]:
    """The coordinator address, process count and id: the flags' values, else the environment's; ``None`` where
    neither says (JAX's cluster detection fills those in)."""

    def env_int(name: str) -> int | None:
        text = os.environ.get(name, "").strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"${name}={text!r} is invalid: must be an integer") from None

    return {
        "coordinator_address": coordinator or os.environ.get(ENV_COORDINATOR, "").strip() or None,
        "num_processes": num_processes or env_int(ENV_NUM_PROCESSES),
        "process_id": process_id if process_id >= 0 else env_int(ENV_PROCESS_ID),
    }


def initialize(coordinator: str = "", num_processes: int = 0, process_id: int = -1, timeout_s: int = 60) -> None:
    """Start JAX's distributed runtime (once; later calls return at once).

    Args:
      coordinator: ``HOST:PORT`` of process 0 (it listens there); empty: ``$JAX_COORDINATOR_ADDRESS`` or auto.
      num_processes: processes in the run; 0: ``$JAX_NUM_PROCESSES`` or auto.
      process_id: this process, ``0 .. num_processes - 1``; -1: ``$JAX_PROCESS_ID`` or auto.
      timeout_s: seconds to wait for every process to connect before failing.
    Raises:
      DistributedError: JAX already computed something in this process (the runtime must start first).
      ConnectionError: the processes did not all connect within ``timeout_s``, or nothing says where the
        coordinator is.
    """
    if jax.distributed.is_initialized():
        return
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise DistributedError(
            "--distributed: JAX already ran a computation in this process; call "
            "synjax.runner.distributed.initialize() before any other JAX call"
        )
    where = settings(coordinator, num_processes, process_id)
    n, i = where["num_processes"], where["process_id"]
    if n is not None and i is not None and not 0 <= i < n:
        raise ValueError(f"--process-id={i} is invalid: must be in 0..{n - 1} (--num-processes {n})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes need it; GPUs/TPUs ignore it
    address = where["coordinator_address"]
    if address and i not in (None, 0):  # JAX aborts the process when it cannot connect: find out first, politely
        wait_for_port(address, timeout_s, f"--distributed: process {i} of {n}")
    elif address:
        print(f"synjax: process 0 of {n}: waiting up to {timeout_s}s for every process at {address}", file=sys.stderr)
    try:
        jax.distributed.initialize(**where, initialization_timeout=timeout_s)
    except (ValueError, RuntimeError) as e:
        if address is None:
            raise ConnectionError(
                "--distributed: nothing says where the coordinator is: pass --coordinator HOST:PORT "
                "--num-processes N --process-id I, set $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES and "
                f"$JAX_PROCESS_ID, or run under SLURM or on Cloud TPU ({str(e).strip()[:200]})"
            ) from None
        raise ConnectionError(f"--distributed: could not start with the coordinator at {address}: {e}") from None


def wait_for_port(address: str, timeout_s: float, who: str) -> None:
    """Return once ``HOST:PORT`` accepts a TCP connection; ConnectionError naming it after ``timeout_s``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--coordinator={address!r} is invalid: must be HOST:PORT, e.g. 10.0.0.1:1234")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"{who} could not reach the coordinator at {address} within {timeout_s:g}s ({e.strerror or e}); "
                    "start process 0 there, check the address and port, or raise --coordinator-timeout"
                ) from None
            time.sleep(0.2)

def agree_any(flag: bool | int) -> int:
    """The largest of every process's ``flag`` (all processes must call it; one process: ``flag`` itself)."""
    if jax.process_count() == 1:
        return int(flag)
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.int32(flag))))


def together(prepare: Callable[[], T]) -> T:
    """``prepare()`` on every process; if it raised on any, it raises on all (the others with a line saying
    which process failed), so no process goes on to wait for the others at the first collective."""
    try:
        value, error = prepare(), None
    except Exception as e:  # noqa: BLE001 (re-raised below, on every process)
        value, error = None, e
    failed = agree_any(jax.process_index() + 1 if error is not None else 0)
    if error is not None:
        raise error
    if failed:
        raise DistributedError(f"--distributed: process {failed - 1} failed before training; see its message")
    return value


def from_process_0(value: int) -> int:
    """Process 0's ``value`` on every process (an integer, e.g. the time stamp of a results folder's name)."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int64(value)))


def runs_per_process(sharding: jax.sharding.Sharding, padded: int, num_runs: int) -> list[list[int]]:
    """Which runs (indices into the run axis, padding dropped) each process holds: ``[[0, 1], [2, 3]]``."""
    held: dict[int, set[int]] = {}
    for device, index in sharding.devices_indices_map((padded,)).items():
        held.setdefault(device.process_index, set()).update(r for r in range(padded)[index[0]] if r < num_runs)
    return [sorted(held.get(p, ())) for p in range(jax.process_count())]
