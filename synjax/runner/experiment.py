"""The experiment runner: many seeds (and swept values) of one :class:`synjax.trainer.Trainer`, sharded over
every device, driven in chunks that are checkpointed, so a long sweep survives a crash.

Every experiment builds ``make_train(config) -> Trainer`` (``init``, ``step``, ``finish``). The runner

1. splits ``num_seeds`` keys from ``jax.random.key(seed)`` (seed ``i`` gets the same key whatever the device
   count, so a sweep's numbers do not depend on the hardware layout), one run per seed and swept point
   (:mod:`synjax.runner.sweep`);
2. runs ``jit(vmap(init))``, then the steps in ``num_chunks`` jitted chunks of ``jit(vmap(scan(step)))`` over the
   whole state, the run axis sharded over a 1-D ``jax.sharding.Mesh`` of all devices JAX sees (after
   ``jax.distributed.initialize()`` that is every device of every host), padded to a multiple of the device
   count; then ``jit(vmap(finish))``;
3. writes ``checkpoint.msgpack`` into the results folder every ``checkpoint_every`` chunks and when a SIGTERM or
   Ctrl-C arrives (at the end of the chunk running then), so ``--resume DIR`` continues bit for bit;
4. times compilation and execution separately, shows a progress bar fed from inside the jitted code
   (:mod:`synjax.runner.progress`) and writes the results folder (:mod:`synjax.runs.results`) on process 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from synjax.runner import checkpoint, distributed, divergence, log_sinks, sizes, sweep
from synjax.runner.config import RunConfig
from synjax.runner.devices import Runs, concat, seed_keys, seed_mesh, to_device, to_host
from synjax.runner.progress import ProgressBar
from synjax.runs import results
from synjax.trainer import Trainer, TrainOutput

__all__ = ["SweepRun", "TrainOutput", "Trainer", "run_experiment", "run_seeds", "seed_keys"]


@dataclasses.dataclass
class SweepRun:
    """Outputs of :func:`run_seeds` or :func:`run_experiment` on the host: leaves have a leading axis of
    ``num_seeds`` (times the sweep's points). ``checkpoint_time_s``: seconds spent writing checkpoints (not
    part of ``wall_time_s``)."""

    output: Any
    compile_time_s: float
    wall_time_s: float
    checkpoint_time_s: float = 0.0


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
    mesh = mesh or seed_mesh(num_seeds)
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


def default_out(experiment: str, when: float | None = None) -> Path:
    """``runs/<experiment>-YYYYmmdd-HHMMSS`` under the current folder (``when``: seconds since the epoch; now)."""
    return Path("runs") / f"{experiment}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"


class Interrupted(Exception):
    """A SIGTERM or Ctrl-C stopped the run after a chunk; its checkpoint is in ``folder``."""

    def __init__(self, folder: Path, done: int, total: int, signum: int):
        super().__init__(
            f"interrupted at step {done} of {total}: checkpoint saved in {folder}; continue with --resume {folder}"
        )
        self.folder, self.done, self.total, self.signum = folder, done, total, signum


def chunk_length(num_steps: int, num_chunks: int) -> int:
    """Steps per chunk: ``ceil(num_steps / num_chunks)``, or the nearest larger divisor of ``num_steps`` within a
    factor 2 of it (equal chunks compile once; otherwise the last, shorter chunk compiles separately)."""
    base = max(1, -(-num_steps // max(1, num_chunks)))
    for length in range(base, min(num_steps, 2 * base) + 1):
        if num_steps % length == 0:
            return length
    return base


@contextlib.contextmanager
def stop_requests():
    """While open, SIGTERM and the first Ctrl-C only set ``flag["signum"]`` (the runner stops after the chunk
    running then, with a checkpoint); a second Ctrl-C interrupts at once. Yields the flag dict."""
    flag: dict[str, int | None] = {"signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signum"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signum"] = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _resume_state(experiment: str, config: RunConfig) -> dict[str, Any]:
    """The raw checkpoint of ``config.resume``, after checking it is of this experiment, config and version."""
    from synjax import __version__

    saved, versions, raw = checkpoint.read_run(config.resume, experiment)
    if versions.get("synjax") != __version__:
        raise ValueError(
            f"--resume {config.resume}: the checkpoint was made by synjax {versions.get('synjax')}, this is "
            f"{__version__}; resume it with that version"
        )
    if saved.get("num_seeds") != config.num_seeds:
        raise ValueError(
            f"--resume {config.resume}: the checkpoint holds {saved.get('num_seeds')} seeds, not "
            f"{config.num_seeds}; drop --num-seeds to continue it"
        )
    checkpoint.refuse_difference(config.resume, saved, results.config_dict(config), checkpoint.MAY_DIFFER_JAX)
    for name in ("train_state", "metrics", "done", "wall_time_s", "compile_time_s"):
        if name not in raw:
            raise ValueError(f"--resume {config.resume}: {checkpoint.FILE} is not a JAX-experiment checkpoint")
    return raw


def run_experiment(
    experiment: str,
    config: RunConfig,
    make_train: Callable[[Any], Trainer],
    *,
    progress_total: int,
    progress_unit_metric: str = "return",
    steps_per_seed: int | Callable[[TrainOutput], int],
    extra_summary: Callable[[TrainOutput], Mapping[str, Any]] | None = None,
    extra_files: Callable[[Path, TrainOutput], None] | None = None,
) -> tuple[Path | None, SweepRun]:
    """Train every seed (and swept point) of ``config`` in chunks, checkpointed, and write the results folder.

    Args:
      experiment: name used for the folder, the summary and the checkpoint.
      config: the experiment's config (a :class:`RunConfig` subclass; :data:`synjax.runner.sweep.Floats` fields
        with several values make a sweep).
      make_train: ``config -> Trainer``; called inside the trace with the swept fields as tracers.
      progress_total: the largest ``done`` value that the steps report to :func:`synjax.runner.progress.report`.
      progress_unit_metric: name of the value shown on the progress bar.
      steps_per_seed: environment/sample steps one run performs (for steps_per_s), or, when that is only known
        after training (episodes of varying length), a function of the gathered outputs (leading run axis)
        returning the steps of all runs together.
      extra_summary: more summary.json entries computed from the gathered outputs (per point in a sweep).
      extra_files: writes experiment-specific files (pictures, arrays) into the results folder.
    Returns:
      (results folder or None on processes other than 0, the :class:`SweepRun` of all runs).
    Raises:
      Interrupted: a SIGTERM or Ctrl-C stopped the run; its checkpoint is saved.
    """
    out = _start(experiment, config)
    raw, one_run = distributed.together(lambda: _prepare(experiment, config, make_train, out, progress_total))
    runs = Runs(config, make_train, one_run)
    saved_config = {"experiment": experiment, **results.config_dict(config), "versions": results.versions()}
    run = _initial(runs, raw, config)
    sink, stream = _open_log(config, out, experiment, saved_config, runs, raw, run.done)
    with log_sinks.closed_on_error(sink):
        _train_chunks(run, runs, config, out, saved_config, stream, experiment, progress_total, progress_unit_metric)
        output = _finish(run, runs, stream)
    result = SweepRun(output=output, compile_time_s=run.compile_s, wall_time_s=run.wall_s,
                      checkpoint_time_s=run.checkpoint_s)  # fmt: skip
    if jax.process_index() != 0:
        return None, result
    path = _write(out, experiment, config, runs, result, steps_per_seed, extra_summary, extra_files, sink, stream)
    return path, result


def _start(experiment: str, config: RunConfig) -> Path:
    """Start JAX's distributed runtime (``--distributed``) and name the results folder, the same on every
    process."""
    if config.distributed:
        distributed.initialize(config.coordinator, config.num_processes, config.process_id,
                               config.coordinator_timeout)  # fmt: skip
    stamp = distributed.from_process_0(int(time.time()))  # one folder name for every process
    return Path(config.out or config.resume or default_out(experiment, stamp))


def _prepare(experiment, config, make_train, out, progress_total) -> tuple[dict[str, Any] | None, Trainer]:
    """Everything that can fail before training: the checkpoint to resume (checked against the config), the
    results folder, the first sweep point's trainer and whether the sweep fits in memory."""
    raw = _resume_state(experiment, config) if config.resume else None
    if jax.process_index() == 0 and (raw is None or out.resolve() != Path(config.resume).resolve()):
        results.check_out_dir(out, config.overwrite)  # fail before training, not after
    names, points = sweep.grid(config)
    try:
        one_run = make_train(sweep.at(config, **dict(zip(names, points[0]))))  # the first point, concrete
    except (MemoryError, OverflowError) as e:  # a budget so large that even the set-up cannot hold it
        raise ValueError(f"the config is too large to set up ({type(e).__name__}: {e}); lower the budget "
                         "or the sizes") from None  # fmt: skip
    runs_text = f"--num-seeds {config.num_seeds}" + (f" x {len(points)} swept points" if names else "")
    sizes.check_fits(one_run, len(points) * config.num_seeds, len(jax.devices()), progress_total, runs_text)
    return raw, one_run


@dataclasses.dataclass
class _Progress:
    """A run in progress: the sharded training state, the metrics gathered on the host, steps done, seconds."""

    states: Any
    history: list[Any]
    done: int
    compile_s: float
    wall_s: float
    checkpoint_s: float = 0.0


def _initial(runs: Runs, raw: dict[str, Any] | None, config: RunConfig) -> _Progress:
    """The state to train from: ``jit(vmap(init))`` of every run, or the checkpoint ``raw`` of ``--resume``."""
    t0 = time.perf_counter()
    if raw is None:
        init = runs.init_fn().lower(runs.keys, runs.hps).compile()
        compile_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        states = init(runs.keys, runs.hps)
        jax.block_until_ready(states)
        return _Progress(states, [], 0, compile_s, time.perf_counter() - t1)
    template = jax.eval_shape(runs.init_fn(), runs.keys, runs.hps)
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct((runs.num_runs, *x.shape[1:]), x.dtype), template)
    states = to_device(checkpoint.tree_from_arrays(template, raw["train_state"], config.resume), runs.sharding,
                       runs.padded)  # fmt: skip
    done = int(raw["done"])
    m1 = jax.eval_shape(runs.chunk_fn(1), states, runs.hps, 0)[1]
    m_template = jax.tree.map(lambda x: jax.ShapeDtypeStruct((runs.num_runs, done, *x.shape[2:]), x.dtype), m1)
    history = [checkpoint.tree_from_arrays(m_template, raw["metrics"], config.resume)] if done else []
    return _Progress(states, history, done, float(raw["compile_time_s"]), float(raw["wall_time_s"]))


def _open_log(config, out, experiment, saved_config, runs, raw, done):
    """``--log``: the sink (process 0) and the stream that hands it each chunk's final points; ``(None, None)``
    without one."""
    if config.log == "none":
        return None, None
    sink = None
    if jax.process_index() == 0:
        run_names = log_sinks.run_names(config.num_seeds, runs.names, runs.points)
        sink = log_sinks.open_sink(config.log, out, experiment, saved_config, run_names, raw is not None)
    return sink, log_sinks.PointStream(runs, sink, done)


def _checkpoint_state(run: _Progress, runs: Runs, num_steps: int) -> dict[str, Any]:
    """What a checkpoint holds, copied off the devices now (the next chunk reuses their buffers)."""
    if len(run.history) > 1:  # joined once here, so a run of many checkpoints does not re-join every chunk
        run.history[:] = [concat(run.history)]
    return {
        "done": run.done, "num_steps": num_steps, "wall_time_s": run.wall_s, "compile_time_s": run.compile_s,
        "train_state": checkpoint.arrays_to_tree(to_host(run.states, runs.num_runs)),
        "metrics": checkpoint.arrays_to_tree(run.history[0]) if run.history else {},
    }  # fmt: skip


def _train_chunks(run, runs, config, out, saved_config, stream, experiment, progress_total, metric) -> None:
    """The training steps in jitted chunks (each length compiled once), with a progress bar; a checkpoint every
    ``checkpoint_every`` chunks, written in the background; a SIGTERM or Ctrl-C (to any process) saves one and
    raises :class:`Interrupted`."""
    num_steps = runs.trainer.num_steps
    length = chunk_length(num_steps, config.num_chunks)
    writer = checkpoint.BackgroundWriter(enabled=jax.process_index() == 0)

    def save(wait: bool = False) -> None:
        t = time.perf_counter()
        writer.submit(out, saved_config, _checkpoint_state(run, runs, num_steps))
        if wait:
            writer.wait()
        run.checkpoint_s += time.perf_counter() - t

    desc = f"{experiment} x{config.num_seeds} seeds" + (f", {len(runs.points)} points" if runs.names else "")
    if jax.process_count() > 1:
        desc += f" [process {jax.process_index()}/{jax.process_count()}]"
    initial = progress_total * run.done // max(1, num_steps)
    with ProgressBar(progress_total, desc=desc, metric=metric, enabled=config.progress, initial=initial), \
            stop_requests() as stop:  # fmt: skip
        chunk_index, compiled = 0, {}
        while run.done < num_steps:
            n = min(length, num_steps - run.done)
            t1 = time.perf_counter()
            if n not in compiled:
                compiled[n] = runs.chunk_fn(n).lower(run.states, runs.hps, jnp.int32(run.done)).compile()
            t2 = time.perf_counter()
            run.states, metrics = compiled[n](run.states, runs.hps, jnp.int32(run.done))
            run.history.append(to_host(metrics, runs.num_runs))  # blocks until the chunk is done
            t3 = time.perf_counter()
            run.compile_s, run.wall_s, run.done = run.compile_s + t2 - t1, run.wall_s + t3 - t2, run.done + n
            chunk_index += 1
            if stream is not None:  # the rows that are final now, to TensorBoard / W&B
                stream.after_chunk(run.states, run.history, run.done)
            signum = distributed.agree_any(stop["signum"] or 0)  # a signal to any process stops them all
            if signum:
                save(wait=True)
                writer.close()
                raise Interrupted(out, run.done, num_steps, signum)
            if config.checkpoint_every and chunk_index % config.checkpoint_every == 0 and run.done < num_steps:
                save()
    writer.close()  # the last checkpoint is on disk before the results folder replaces it


def _finish(run: _Progress, runs: Runs, stream) -> TrainOutput:
    """``jit(vmap(finish))`` over the final states and every step's metrics, gathered on the host."""
    t1 = time.perf_counter()
    metrics = to_device(concat(run.history), runs.sharding, runs.padded)
    finish = runs.finish_fn().lower(run.states, metrics, runs.hps).compile()
    t2 = time.perf_counter()
    output = to_host(finish(run.states, metrics, runs.hps), runs.num_runs)
    run.compile_s, run.wall_s = run.compile_s + t2 - t1, run.wall_s + time.perf_counter() - t2
    if stream is not None:
        stream.finish(output)
    return output


def _write(out, experiment, config, runs, run: SweepRun, steps_per_seed, extra_summary, extra_files, sink,
           stream) -> Path:  # fmt: skip
    """The results folder (process 0): summary (per sweep point), curves, divergence, the experiment's files,
    the log sink's folder."""
    o: TrainOutput = run.output
    steps = np.asarray(o.steps)[0]
    num_runs = runs.num_runs
    if runs.names:
        metrics, final, extra = sweep.sweep_results(runs.names, runs.points, config.num_seeds, o, extra_summary)
    else:
        metrics, final = o.metrics, o.final
        extra = dict(extra_summary(o)) if extra_summary else {}
    split = {}
    if jax.process_count() > 1:
        split = {"distributed": {"num_processes": jax.process_count(),
                                 "runs_per_process": distributed.runs_per_process(runs.sharding, runs.padded,
                                                                                  num_runs)}}  # fmt: skip
    if stream is not None:
        split["log_time_s"] = stream.time_s  # streaming to the sink, not part of wall_time_s

    def files(stage: Path) -> None:
        if runs.names:
            metrics_only = {k: np.asarray(v) for k, v in o.metrics.items()}
            bad = {r: d.first_point for r, d in divergence.find(steps, metrics_only, o.params).runs.items()}
            sweep.plot_sweep(stage / "curves.png", steps, metrics_only, runs.names, runs.points, config.num_seeds,
                             title=experiment, diverged=bad)  # fmt: skip
        if extra_files is not None:
            extra_files(stage, o)
        if sink is not None:  # closed, and its folder carried into the new results folder
            sink.move_into(stage)

    return results.write_run(
        out, experiment=experiment, config=config, steps=steps, metrics=metrics, final=final, params=o.params,
        wall_time_s=run.wall_time_s, compile_time_s=run.compile_time_s,
        total_steps=int(steps_per_seed(o)) if callable(steps_per_seed) else int(steps_per_seed) * num_runs,
        overwrite=True, extra={**extra, "checkpoint_time_s": run.checkpoint_time_s, **split}, extra_files=files,
    )  # fmt: skip
