"""Logging sinks (``--log tensorboard|wandb``): the rows a run writes to ``metrics.csv``, streamed while it
trains, one run per seed (and swept point), inside the results folder.

- ``tensorboard`` (the ``tensorboardX`` package): ``<out>/tb/seed_<i>`` (a sweep:
  ``<out>/tb/<point>/seed_<i>``, ``<point>`` as ``lr=0.001``); view with ``tensorboard --logdir <out>/tb``.
- ``wandb``: one W&B run per seed, named ``seed_<i>`` (a sweep: ``<point>/seed_<i>``), grouped by the results
  folder's name, project ``$WANDB_PROJECT`` or ``synjax``, its ``dir`` the results folder (``<out>/wandb/``);
  with ``WANDB_MODE=offline`` the runs stay on disk until ``wandb sync <out>/wandb/offline-run-*``.

Each metric is a scalar of its ``metrics.csv`` name at the row's ``step`` (environment steps, episodes or
epochs: the x-axis of curves.png); NaN and infinite values (no episode ended yet) are left out. Both packages
are optional (``pip install -e ".[log]"``): :func:`check_available` refuses a missing one when the config is
made, before any work, and they are imported only when a sink opens. A resumed run appends to its TensorBoard
folders (the points from the first step it writes on are purged first, so points written after the last
checkpoint are not doubled); in W&B it makes new runs (new ids) that hold the whole curve.
"""

from __future__ import annotations

import abc
import contextlib
import importlib.metadata
import importlib.util
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from synjax.runner.devices import Runs, concat, to_device, to_host

#: the values ``--log`` takes
SINKS = ("none", "tensorboard", "wandb")
#: sink -> (module, lowest version: wandb keeps several runs open in one process from 0.19.10 on)
PACKAGES = {"tensorboard": ("tensorboardX", "2.6"), "wandb": ("wandb", "0.19.10")}
#: sink -> its folder inside the results folder
FOLDERS = {"tensorboard": "tb", "wandb": "wandb"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def check_available(kind: str) -> None:
    """Raise a one-line ImportError unless the package of sink ``kind`` is installed, recent enough."""
    if kind not in PACKAGES:
        return
    module, lowest = PACKAGES[kind]
    install = 'pip install -e ".[log]"'
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"--log {kind} needs the {module} package, which is not installed: {install}")
    try:
        have = importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return  # importable without metadata (a source checkout): let it try
    if _version(have) < _version(lowest):
        raise ImportError(f"--log {kind} needs {module} >= {lowest}, this is {have}: {install}")


def run_names(num_seeds: int, names: Sequence[str] = (), points: Any = None) -> list[tuple[str, dict]]:
    """``(name, config entries)`` of every run ``r`` (sweep point ``r // num_seeds``, seed ``r % num_seeds``):
    ``seed_<s>``, or ``<point label>/seed_<s>`` in a sweep."""
    from synjax.runner import sweep

    grid = [()] if not names else list(points)
    runs = []
    for g, point in enumerate(grid):
        values = {n: float(v) for n, v in zip(names, point)}
        for s in range(num_seeds):
            name = f"seed_{s}" if not names else f"{sweep.label(tuple(names), np.asarray(point))}/seed_{s}"
            runs.append((name, {"run": g * num_seeds + s, "seed_index": s, **values}))
    return runs


class Sink(abc.ABC):
    """Where the metric rows of every run go while training runs; :func:`open_sink` makes one.

    Attributes:
      folder: the sink's folder inside the results folder (``tb`` or ``wandb``).
      continues: the folder already holds this run's earlier points (a resumed TensorBoard run): only the
        points after the checkpoint need writing; otherwise the whole curve is written.
    """

    folder: Path
    continues: bool = False

    @abc.abstractmethod
    def write(self, steps: Any, values: Mapping[str, Any]) -> None:
        """One point of every run: ``steps`` an int or (R,) ints, ``values`` name -> (R,)."""

    @abc.abstractmethod
    def close(self, ok: bool = True) -> None:
        """Flush and close (idempotent); ``ok`` False: the run stopped early or failed."""

    def write_points(self, steps: Any, metrics: Mapping[str, Any], start: int, stop: int) -> None:
        """Points ``start .. stop - 1`` of a curve: ``steps`` (P,) or (R, P), ``metrics`` name -> (R, P)."""
        steps = np.asarray(steps)
        for p in range(start, stop):
            self.write(steps[..., p], {k: np.asarray(v)[:, p] for k, v in metrics.items()})

    def move_into(self, stage: Path) -> None:
        """Close the sink and move its folder into ``stage``, the results folder about to replace ``out``."""
        self.close()
        if self.folder.exists():
            os.replace(self.folder, stage / self.folder.name)


def _finite(values: Mapping[str, Any], r: int) -> dict[str, float]:
    row = {k: float(np.asarray(v).reshape(-1)[r]) for k, v in values.items()}
    return {k: v for k, v in row.items() if math.isfinite(v)}


def _step(steps: Any, r: int) -> int:
    steps = np.asarray(steps).reshape(-1)
    return int(steps[r if steps.size > 1 else 0])


class TensorBoardSink(Sink):
    """One tensorboardX ``SummaryWriter`` per run, in ``<out>/tb/<run name>``, flushed after every point."""

    def __init__(self, out: Path, runs: Sequence[tuple[str, dict[str, Any]]], resumed: bool):
        import tensorboardX

        self._writer_type = tensorboardX.SummaryWriter
        self.folder = out / FOLDERS["tensorboard"]
        self.names = [name for name, _ in runs]
        self.resumed = resumed
        self.continues = resumed and all((self.folder / n).is_dir() for n in self.names)
        self.writers: dict[int, Any] = {}

    def _writer(self, r: int, step: int):
        if r not in self.writers:  # opened at the first point: a resumed run purges what it writes again
            logdir = self.folder / self.names[r]
            purge = step if self.resumed and logdir.is_dir() else None
            # tensorboardX names an event file by the second it opened; a resume in the same second
            # would reopen (and truncate) the first process's file, so each writer adds its own suffix
            suffix = f".{os.getpid()}.{time.time_ns()}"
            self.writers[r] = self._writer_type(logdir=str(logdir), purge_step=purge, filename_suffix=suffix)
        return self.writers[r]

    def write(self, steps: Any, values: Mapping[str, Any]) -> None:
        for r in range(len(self.names)):
            step = _step(steps, r)
            writer = self._writer(r, step)
            for name, value in _finite(values, r).items():
                writer.add_scalar(name, value, global_step=step)
            writer.flush()

    def close(self, ok: bool = True) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


class WandbSink(Sink):
    """One W&B run per training run (``reinit="create_new"``), grouped by the results folder's name."""

    def __init__(self, out: Path, experiment: str, config: Mapping[str, Any],
                 runs: Sequence[tuple[str, dict[str, Any]]]):  # fmt: skip
        import wandb

        self.folder = out / FOLDERS["wandb"]
        project = os.environ.get("WANDB_PROJECT") or "synjax"
        settings = wandb.Settings(console="off", quiet=True)  # the terminal belongs to the progress bar
        self.runs: list[Any] = []
        try:
            for name, extra in runs:
                self.runs.append(wandb.init(
                    project=project, group=out.name, name=name, job_type=experiment, dir=str(out),
                    config={**config, **extra}, reinit="create_new", settings=settings,
                ))  # fmt: skip
        except wandb.errors.Error as e:  # not logged in, no network: one line, before any training
            self.close(ok=False)
            raise ConnectionError(f"--log wandb: W&B could not start a run ({e}); run `wandb login`, or set "
                                  "WANDB_MODE=offline to keep the runs on disk") from None  # fmt: skip
        except BaseException:
            self.close(ok=False)
            raise

    def write(self, steps: Any, values: Mapping[str, Any]) -> None:
        for r, run in enumerate(self.runs):
            row = _finite(values, r)
            if row:
                run.log(row, step=_step(steps, r))

    def close(self, ok: bool = True) -> None:
        for run in self.runs:
            run.finish(exit_code=0 if ok else 1)
        self.runs.clear()


def open_sink(kind: str, out: Path, experiment: str, config: Mapping[str, Any],
              runs: Sequence[tuple[str, dict[str, Any]]], resumed: bool) -> Sink | None:  # fmt: skip
    """The sink ``kind`` (None for ``"none"``) writing into the results folder ``out`` for ``runs``
    (:func:`run_names`). A run that is not resumed first removes the sink's folder left in ``out``
    (``--overwrite``: the folder is replaced at the end anyway)."""
    if kind == "none":
        return None
    check_available(kind)
    out = Path(out)
    folder = out / FOLDERS[kind]
    if not resumed and folder.exists():
        shutil.rmtree(folder)
    if kind == "tensorboard":
        return TensorBoardSink(out, runs, resumed)
    return WandbSink(out, experiment, config, runs)


@contextlib.contextmanager
def closed_on_error(sink: Sink | None) -> Iterator[None]:
    """Close ``sink`` as failed if the block raises (a Ctrl-C, a SIGTERM, a crash); the points are on disk."""
    try:
        yield
    except BaseException:
        if sink is not None:
            sink.close(ok=False)
        raise


class PointStream:
    """Hands a logging sink the metric rows that are final after each chunk (:meth:`Trainer.points_done`):
    ``finish``'s steps and metrics on the history so far, padded with NaN to the full length (the rows handed
    on read none of the padding). Every process computes them (the runs are sharded over all); only process 0
    has a ``sink`` to write them to. ``time_s``: seconds spent here (not part of the training time)."""

    def __init__(self, runs: Runs, sink: Sink | None, resumed_at: int):
        self.runs, self.sink, self.resumed_at = runs, sink, resumed_at
        self.fn = runs.points_fn()
        self.num_points = self.computed = self.written = 0
        self.time_s = 0.0

    def after_chunk(self, states: Any, history: list[Any], done: int) -> None:
        t = time.perf_counter()
        runs, num_steps = self.runs, self.runs.trainer.num_steps

        def pad(x: np.ndarray) -> np.ndarray:
            fill = np.nan if np.issubdtype(x.dtype, np.floating) else 0
            rest = np.full((x.shape[0], num_steps - x.shape[1], *x.shape[2:]), fill, x.dtype)
            return np.concatenate([x, rest], axis=1)

        metrics = to_device(jax.tree.map(pad, concat(history)), runs.sharding, runs.padded)
        if not self.num_points:  # the first chunk of this process: what the folder already holds
            self.num_points = jax.eval_shape(self.fn, states, metrics, runs.hps)[0].shape[1]
            self.computed = runs.trainer.points_done(self.resumed_at, self.num_points)
            self.written = self.computed if self.sink is not None and self.sink.continues else 0
        ready = runs.trainer.points_done(done, self.num_points)
        if ready > self.computed:
            steps, values = to_host(self.fn(states, metrics, runs.hps), runs.num_runs)
            if self.sink is not None:
                self.sink.write_points(steps, values, self.written, ready)
            self.computed = self.written = ready
        self.time_s += time.perf_counter() - t

    def finish(self, output: Any) -> None:
        """The points not written yet, from the finished run's ``output`` (host arrays, leading run axis)."""
        t = time.perf_counter()
        if self.sink is not None:
            self.sink.write_points(output.steps, output.metrics, self.written, np.shape(output.steps)[-1])
        self.time_s += time.perf_counter() - t
