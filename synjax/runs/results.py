"""The results folder every experiment writes, and how to read it back.

Layout of ``out/``::

    config.json    everything needed to rerun (experiment name, every config field, synjax/jax versions)
    metrics.csv    one row per (seed, evaluation point): seed, step, then one column per metric
    summary.json   experiment, num_seeds, wall_time_s, compile_time_s, total_steps, steps_per_s,
                   final{metric: stats}, diverged (and checkpoint_time_s for the checkpointed runs)
    curves.png     per-seed faint lines, mean and 95% interval of every metric
    params.msgpack every seed's trained parameters (leading axis = seed), loaded by :func:`load_params`
    ...            experiment-specific files (q_values.npy, pictures)

Diverged seeds (non-finite parameters, or metrics that became non-finite: :mod:`synjax.runner.divergence`) are
reported, not averaged away: ``diverged`` is ``{"seeds": [3], "count": 1, "kept": 7, "by_seed": {"3":
{"first_step": 12000, "metrics": ["loss"], "params_finite": false}}}`` (``seeds`` empty when none diverged);
every ``final`` stats entry (``per_seed``, ``mean``, ``std``, ``ci95``, ``n``) is over the ``n`` kept seeds
while ``per_seed`` lists all; curves.png draws the diverged seeds red and dashed, left out of the mean. NaN and
infinities are written as ``null`` (summary.json is strict JSON).

Writing is all or nothing: files go into a hidden staging folder next to ``out`` that is renamed into place at the
end, so an interrupted run leaves no half-written results; an ``out`` that already holds results is refused
unless ``overwrite`` is set.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization

RESULT_FILES = ("config.json", "summary.json", "metrics.csv", "params.msgpack")


def check_out_dir(out: str | os.PathLike, overwrite: bool) -> Path:
    """Validate ``out`` before any training starts; return it as a Path.

    Raises:
      FileExistsError: ``out`` already holds results and ``overwrite`` is False.
      NotADirectoryError: ``out`` exists and is a file.
      PermissionError: the folder cannot be created or written (tried for real: the missing parent folders are
        made, a probe folder is written into the parent, and everything made is removed again).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"--out {out} already holds files; choose another folder or pass --overwrite to replace them"
        )
    parent = out.parent
    missing = [p for p in (parent, *parent.parents) if not p.exists()][::-1]  # outermost first
    made: list[Path] = []
    try:
        for p in missing:
            p.mkdir()
            made.append(p)
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe.", dir=parent))
        if out.is_dir():
            os.rmdir(tempfile.mkdtemp(prefix=".probe.", dir=out))
    except OSError as e:
        raise PermissionError(
            f"--out {out} cannot be written ({e.strerror or e}: {e.filename or parent}); choose a writable folder"
        ) from None
    finally:
        for p in reversed(made):
            p.rmdir()
    return out


def stats(per_seed: np.ndarray, keep: np.ndarray | None = None) -> dict[str, Any]:
    """Mean, sample std and Student-t 95% interval of one final metric across the kept seeds.

    Args:
      per_seed: shape (num_seeds,).
      keep: shape (num_seeds,) bool, the seeds the statistics use (default all; the runner drops the diverged).
    Returns:
      ``{"per_seed": [...every seed...], "mean": m, "std": s, "ci95": [low, high], "n": seeds used}`` (ci95
      collapses to the mean for 1 seed; mean, std and ci95 are None for 0).
    """
    from scipy import stats as st

    x = np.asarray(per_seed, dtype=np.float64).reshape(-1)
    used = x if keep is None else x[np.asarray(keep, bool).reshape(-1)]
    n = used.size
    if n == 0:
        return {"per_seed": x.tolist(), "mean": None, "std": None, "ci95": None, "n": 0}
    mean = float(used.mean())
    std = float(used.std(ddof=1)) if n > 1 else 0.0
    half = float(st.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    return {"per_seed": x.tolist(), "mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": int(n)}


def finite_json(value: Any) -> Any:
    """``value`` (JSON-able) with every NaN and infinity replaced by None, so ``json.dumps`` writes valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as the JSON-able dict that config.json holds (without the experiment and versions)."""
    return _jsonable(config)


def config_from_dict(config_type: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass from ``config.json``'s dict (lists become tuples; unknown keys are ignored)."""
    names = {f.name for f in dataclasses.fields(config_type)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return config_type(**kwargs)


def versions() -> dict[str, str]:
    """``{"synjax": ..., "jax": ...}``: the versions a run records (config.json, checkpoints)."""
    import jax

    from synjax import __version__

    return {"synjax": __version__, "jax": jax.__version__}


def write_metrics_csv(path: Path, steps: np.ndarray, metrics: Mapping[str, np.ndarray]) -> None:
    """metrics.csv: one row per seed and evaluation point.

    Args:
      steps: shape (P,) or (S, P), the x-axis (environment steps, episodes, epochs).
      metrics: name -> shape (S, P).
    """
    names = list(metrics)
    num_seeds, num_points = np.shape(metrics[names[0]]) if names else (0, 0)
    steps = np.broadcast_to(np.asarray(steps), (num_seeds, num_points))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "step", *names])
        for s in range(num_seeds):
            for p in range(num_points):
                w.writerow([s, steps[s, p].item(), *(np.asarray(metrics[n])[s, p].item() for n in names)])


def read_metrics_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_metrics_csv`: column name -> array of shape (S, P) (``step`` included)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    seeds = np.array([int(r["seed"]) for r in rows])
    num_seeds = seeds.max() + 1
    cols = {k: np.array([float(r[k]) for r in rows]).reshape(num_seeds, -1) for k in rows[0] if k != "seed"}
    return cols


def save_params(path: Path, params: Any) -> None:
    """Write a pytree of arrays (leading axis = seed) as Flax msgpack."""
    state = serialization.to_state_dict(params)
    state = _to_numpy(state)
    path.write_bytes(serialization.msgpack_serialize(state))


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)


def load_params(run_dir: str | os.PathLike, template: Any = None) -> Any:
    """Load the parameters a run saved: a nested dict of numpy arrays with a leading seed axis.

    Args:
      run_dir: the run's results folder.
      template: optional pytree of the saved structure; when given, the result has its type (e.g. an
        ``nnx.State`` or a dataclass) instead of plain dicts.
    """
    path = Path(run_dir) / "params.msgpack"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a synjax results folder?")
    state = serialization.msgpack_restore(path.read_bytes())
    if template is not None:
        return serialization.from_state_dict(template, state)
    return state


def load_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's summary.json as a dict."""
    return json.loads((Path(run_dir) / "summary.json").read_text())


def load_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's config.json as a dict."""
    return json.loads((Path(run_dir) / "config.json").read_text())


def write_run(
    out: str | os.PathLike,
    *,
    experiment: str,
    config: Any,
    steps: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    final: Mapping[str, np.ndarray],
    params: Any,
    wall_time_s: float,
    compile_time_s: float,
    total_steps: int,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
    extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write a whole results folder atomically and return its path.

    Runs whose parameters or metrics became non-finite (:func:`synjax.runner.divergence.find`) are named in
    summary.json's ``diverged`` entry, kept out of every final statistic (``per_seed`` still lists them) and
    drawn apart on curves.png.

    Args:
      out: results folder.
      experiment: experiment name (``"stdp-q"``).
      config: the experiment's config dataclass (saved whole as config.json).
      steps: shape (P,), x-axis of the curves.
      metrics: name -> (S, P) values at each evaluation point.
      final: name -> (S,) final value per seed (summarized with mean, std, ci95 over the seeds that did not
        diverge), or an already computed :func:`stats` dict (a sweep's per-point finals).
      params: pytree with leading seed axis.
      wall_time_s: training time without compilation, seconds.
      compile_time_s: XLA compilation time, seconds.
      total_steps: environment (or sample) steps done by all seeds together; steps_per_s = total / wall.
      extra: more JSON-able entries for summary.json.
      extra_files: callback writing experiment-specific files into the staging folder.
    """
    from synjax.runner import divergence
    from synjax.runs.plots import plot_curves

    out = check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        cfg = {"experiment": experiment, **_jsonable(config), "versions": versions()}
        (stage / "config.json").write_text(json.dumps(cfg, indent=2))
        metrics_np = {k: np.asarray(v) for k, v in metrics.items()}
        write_metrics_csv(stage / "metrics.csv", np.asarray(steps), metrics_np)
        num_seeds = (
            next(iter(metrics_np.values())).shape[0] if metrics_np else len(next(iter(final.values())))
        )
        diverged = divergence.find(np.asarray(steps), metrics_np, params, num_runs=num_seeds)
        summary = {
            "experiment": experiment,
            "num_seeds": int(num_seeds),
            "wall_time_s": float(wall_time_s),
            "compile_time_s": float(compile_time_s),
            "total_steps": int(total_steps),
            "steps_per_s": float(total_steps / wall_time_s) if wall_time_s > 0 else None,
            "final": {k: _final_stats(k, v, diverged.keep) for k, v in final.items()},
            "diverged": diverged.summary(),
            **_jsonable(dict(extra or {})),
        }
        text = json.dumps(finite_json(summary), indent=2, allow_nan=False)
        (stage / "summary.json").write_text(text)
        if metrics_np:
            first = {r: d.first_point for r, d in diverged.runs.items()}
            plot_curves(stage / "curves.png", np.asarray(steps), metrics_np, title=experiment, diverged=first)
        save_params(stage / "params.msgpack", params)
        if extra_files is not None:
            extra_files(stage)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def _final_stats(name: str, value: Any, keep: np.ndarray) -> dict[str, Any]:
    """:func:`stats` of one final metric over the kept runs (a ready stats dict passes through)."""
    if isinstance(value, Mapping):
        return dict(value)
    x = np.asarray(value).reshape(-1)
    if x.size != keep.size:
        raise ValueError(f"final[{name!r}] holds {x.size} values for {keep.size} runs; give one per run")
    return stats(x, keep)


def final_medians(output: Any) -> dict[str, Any]:
    """``{"final_median": {metric: median over the seeds that did not diverge}}`` for summary.json (the agents'
    targets are medians; None when every seed diverged)."""
    from synjax.runner import divergence

    keep = divergence.find(np.asarray(output.steps), output.metrics, output.params).keep
    medians = {}
    for k, v in output.final.items():
        kept = np.asarray(v, np.float64).reshape(-1)[keep]
        medians[k] = float(np.nanmedian(kept)) if np.isfinite(kept).any() else None
    return {"final_median": medians}
