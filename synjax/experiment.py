"""The experiment runner: many seeds of one pure ``train(key)`` in one jit, sharded over every device.

Every experiment is a pure function ``train(key) -> TrainOutput`` built from a frozen config. The runner

1. splits ``num_seeds`` keys from ``jax.random.key(seed)`` (seed ``i`` gets the same key whatever the device
   count, so a sweep's numbers do not depend on the hardware layout);
2. runs ``jit(vmap(train))`` with the seed axis sharded over a 1-D ``jax.sharding.Mesh`` of all devices JAX sees
   (after ``jax.distributed.initialize()`` that is every device of every host), padding the seed axis to a
   multiple of the device count;
3. times compilation and execution separately, shows a progress bar fed from inside the jitted code
   (:mod:`synjax.progress`), and writes the results folder (:mod:`synjax.results`) on process 0.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from synjax import results
from synjax.progress import ProgressBar


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Flags every experiment has.

    Attributes:
      num_seeds: independent training runs, vmapped in one jit.
      seed: root seed; seed i of the sweep uses ``jax.random.split(jax.random.key(seed), num_seeds)[i]``.
      out: results folder; empty means ``runs/<experiment>-<date>-<time>``.
      overwrite: replace ``out`` if it already holds results.
      progress: draw a live progress bar.
      distributed: call ``jax.distributed.initialize()`` first (multi-host runs; see README).
    """

    num_seeds: int = 8
    seed: int = 0
    out: str = ""
    overwrite: bool = False
    progress: bool = True
    distributed: bool = False

    def __post_init__(self) -> None:
        require(self.num_seeds >= 1, "num_seeds", self.num_seeds, "an integer >= 1")
        require(self.seed >= 0, "seed", self.seed, "an integer >= 0")


def require(ok: bool, field: str, value: Any, allowed: str) -> None:
    """Raise ``ValueError("<field>=<value> is invalid: must be <allowed>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{field}={value!r} is invalid: must be {allowed}")


@struct.dataclass
class TrainOutput:
    """What one seed's ``train(key)`` returns (the runner adds a leading seed axis to every leaf).

    Attributes:
      params: the trained parameters (any pytree of arrays).
      steps: shape (P,), x-axis of the evaluation points (env steps, episodes, epochs).
      metrics: name -> shape (P,), values at the evaluation points.
      final: name -> scalar, the final metrics summarized across seeds.
      extras: name -> array, anything else an experiment wants to post-process (not written by the runner).
    """

    params: Any
    steps: jax.Array
    metrics: dict[str, jax.Array]
    final: dict[str, jax.Array]
    extras: dict[str, Any] = struct.field(default_factory=dict)


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """``num_seeds`` typed PRNG keys split from ``seed``: shape (num_seeds,)."""
    return jax.random.split(jax.random.key(seed), num_seeds)


def seed_mesh() -> Mesh:
    """A 1-D mesh named ``"seeds"`` over every device JAX sees (all hosts after distributed init)."""
    return Mesh(np.array(jax.devices()), ("seeds",))


@dataclasses.dataclass
class SweepRun:
    """Outputs of :func:`run_seeds` on the host: leaves have a leading axis of ``num_seeds``."""

    output: Any
    compile_time_s: float
    wall_time_s: float


def run_seeds(
    train: Callable[[jax.Array], Any],
    num_seeds: int,
    seed: int = 0,
    mesh: Mesh | None = None,
) -> SweepRun:
    """Run ``jit(vmap(train))`` over ``num_seeds`` keys, the seed axis sharded over ``mesh``.

    Args:
      train: pure function of one PRNG key.
      num_seeds: how many seeds.
      seed: root seed (see :func:`seed_keys`).
      mesh: defaults to :func:`seed_mesh`; a 1-device mesh gives the plain unsharded run.
    Returns:
      :class:`SweepRun` with numpy leaves of leading size ``num_seeds``.
    """
    mesh = mesh or seed_mesh()
    num_devices = mesh.devices.size
    padded = math.ceil(num_seeds / num_devices) * num_devices
    key_data = np.asarray(jax.random.key_data(seed_keys(seed, num_seeds)))
    if padded > num_seeds:  # extra copies of the last seed keep every device busy; dropped below
        key_data = np.concatenate([key_data, np.repeat(key_data[-1:], padded - num_seeds, axis=0)])
    sharding = NamedSharding(mesh, P("seeds"))
    keys = jax.make_array_from_callback(key_data.shape, sharding, lambda index: key_data[index])

    def one_seed(raw_key):
        return train(jax.random.wrap_key_data(raw_key))

    fn = jax.jit(jax.vmap(one_seed), in_shardings=sharding, out_shardings=sharding)
    t0 = time.perf_counter()
    compiled = fn.lower(keys).compile()
    t1 = time.perf_counter()
    out = compiled(keys)
    jax.block_until_ready(out)
    t2 = time.perf_counter()
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        out = multihost_utils.process_allgather(out, tiled=True)
    out = jax.tree.map(lambda x: np.asarray(x)[:num_seeds], out)
    return SweepRun(output=out, compile_time_s=t1 - t0, wall_time_s=t2 - t1)


def default_out(experiment: str) -> Path:
    """``runs/<experiment>-YYYYmmdd-HHMMSS`` under the current folder."""
    return Path("runs") / f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_experiment(
    experiment: str,
    config: RunConfig,
    train: Callable[[jax.Array], TrainOutput],
    *,
    progress_total: int,
    progress_unit_metric: str = "return",
    steps_per_seed: int | Callable[[TrainOutput], int],
    extra_summary: Callable[[TrainOutput], Mapping[str, Any]] | None = None,
    extra_files: Callable[[Path, TrainOutput], None] | None = None,
) -> tuple[Path | None, SweepRun]:
    """Train every seed of ``config`` and write the results folder.

    Args:
      experiment: name used for the folder and summary.
      config: the experiment's config (a :class:`RunConfig` subclass).
      train: pure ``train(key) -> TrainOutput`` for one seed.
      progress_total: the largest ``done`` value that ``train`` reports to :func:`synjax.progress.report`.
      progress_unit_metric: name of the value shown on the progress bar.
      steps_per_seed: environment/sample steps one seed performs (for steps_per_s), or, when that is only known
        after training (episodes of varying length), a function of the gathered outputs (leading seed axis)
        returning the steps of all seeds together.
      extra_summary: more summary.json entries computed from the gathered outputs.
      extra_files: writes experiment-specific files (pictures, arrays) into the results folder.
    Returns:
      (results folder or None on processes other than 0, the :class:`SweepRun`).
    """
    if config.distributed:
        jax.distributed.initialize()
    out = Path(config.out) if config.out else default_out(experiment)
    results.check_out_dir(out, config.overwrite)  # fail before training, not after
    desc = f"{experiment} x{config.num_seeds} seeds"
    with ProgressBar(progress_total, desc=desc, metric=progress_unit_metric, enabled=config.progress):
        run = run_seeds(train, config.num_seeds, config.seed)
    if jax.process_index() != 0:
        return None, run
    o: TrainOutput = run.output
    steps = np.asarray(o.steps)[0]
    path = results.write_run(
        out,
        experiment=experiment,
        config=config,
        steps=steps,
        metrics=o.metrics,
        final=o.final,
        params=o.params,
        wall_time_s=run.wall_time_s,
        compile_time_s=run.compile_time_s,
        total_steps=int(steps_per_seed(o))
        if callable(steps_per_seed)
        else int(steps_per_seed) * config.num_seeds,
        overwrite=config.overwrite,
        extra=extra_summary(o) if extra_summary else None,
        extra_files=(lambda stage: extra_files(stage, o)) if extra_files else None,
    )
    return path, run


def tree_index(tree: Any, i: int) -> Any:
    """Leaf-wise ``x[i]``: one seed out of a stacked pytree."""
    return jax.tree.map(lambda x: x[i], tree)
