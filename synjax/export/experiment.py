"""``synjax export --run DIR --out FILE.nir``: a finished spiking run's network as a NIR file.

One seed (``--seed-index``) to ``--out`` (a ``.nir`` file), or every seed (``--all-seeds``) into the folder
``--out`` as ``seed_000.nir``, ...; ``--critic`` adds the value head of an actor-critic. Everything is checked
before a file is written (the run, the seed, the settings NIR can express, the output path), and each file is
written to a temporary name first, so a failure leaves nothing half-written. :mod:`synjax.export.to_nir` says what
the graph holds.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Annotated

import jax
import nir
import numpy as np

from synjax.checks import at_least, check_fields, require
from synjax.export.to_nir import Readout, check_exportable, classifier_to_nir, default_readout, to_nir
from synjax.runs import results
from synjax.runs.saved_network import load_network


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Export a saved spiking run to NIR.

    Attributes:
      run: the run's results folder (config.json and params.msgpack).
      out: the ``.nir`` file to write (one seed), or the folder to write ``seed_NNN.nir`` into (``all_seeds``).
      seed_index: which saved run (row of params.msgpack) to export.
      all_seeds: export every saved run.
      critic: also write the value head of an actor-critic (output ``critic``).
    """

    run: str = ""
    out: str = ""
    seed_index: Annotated[int, at_least(0)] = 0
    all_seeds: bool = False
    critic: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        if self.run:
            path = Path(self.run)
            require((path / "config.json").is_file() and (path / "params.msgpack").is_file(), "run", self.run,
                    "a synjax results folder holding config.json and params.msgpack")  # fmt: skip
        if self.out:
            self._check_out()
        require(not (self.all_seeds and self.seed_index), "seed_index", self.seed_index,
                "left at 0 with --all-seeds (every seed is exported)")  # fmt: skip

    def _check_out(self) -> None:
        out = Path(self.out)
        if self.all_seeds:
            require(not out.exists() or out.is_dir(), "out", self.out, "a folder (or a new path) with --all-seeds")
            parent = out if out.is_dir() else out.parent
        else:
            require(out.suffix == ".nir" and not out.is_dir(), "out", self.out, "a file path ending in .nir")
            parent = out.parent
        parent = parent if str(parent) else Path(".")
        require(parent.is_dir() and os.access(parent, os.W_OK), "out", self.out,
                "a path in an existing, writable folder")  # fmt: skip


def _write(path: Path, graph: nir.NIRGraph) -> None:
    """``nir.write`` to a temporary file in the same folder, then an atomic rename onto ``path``."""
    fd, tmp = tempfile.mkstemp(suffix=".nir.tmp", dir=path.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _graph(config: ExportConfig, data: dict, seed_index: int, meta: dict) -> nir.NIRGraph:
    """The NIR graph of saved run ``seed_index``."""
    if data.get("experiment") == "snn-classify":
        from synjax.classify.experiment import load_model

        require(not config.critic, "critic", True, "left unset: a classifier has no value head")
        model, c = load_model(config.run, seed_index)
        return classifier_to_nir(model, c.time_steps, c.encoding, c.readout, seed_index=seed_index, **meta)
    net = check_exportable(load_network(config.run, seed_index))
    readout = default_readout(net)
    if config.critic:
        require("critic" in net.head_names, "critic", True, f"left unset: a {data.get('experiment')} network has "
                "no value head")  # fmt: skip
        readout = Readout((*readout.heads, "critic"), readout.action)
    return to_nir(net, readout, seed_index=seed_index, **meta)


def run(config: ExportConfig):
    """Write the NIR file(s) of ``config.run``; prints what was written. ``(None, paths)``."""
    require(bool(config.run), "run", config.run, "a results folder (--run DIR)")
    require(bool(config.out), "out", config.out, "a .nir file to write (a folder with --all-seeds)")
    data = results.load_config(config.run)
    num_runs = int(np.shape(jax.tree.leaves(results.load_params(config.run))[0])[0])
    seeds = range(num_runs) if config.all_seeds else [config.seed_index]
    require(config.seed_index < num_runs, "seed_index", config.seed_index,
            f"an index below the {num_runs} saved runs")  # fmt: skip
    meta = {"experiment": str(data.get("experiment", "")), "env": str(data.get("env", "")),
            "source_run": str(Path(config.run).resolve())}  # fmt: skip
    graphs = [(i, _graph(config, data, i, meta)) for i in seeds]  # all built before any file is written
    out = Path(config.out)
    if config.all_seeds:
        out.mkdir(exist_ok=True)
    paths = []
    for i, graph in graphs:
        path = out / f"seed_{i:03d}.nir" if config.all_seeds else out
        _write(path, graph)
        paths.append(path)
    meta = graphs[0][1].metadata
    timing = "exact" if meta["spike_timing"] == "after_update" else "spyx spike timing, not exact in NIR"
    print(f"export: {len(paths)} NIR graph(s) of {data.get('experiment')} run {config.run} ({meta['neuron']}, "
          f"T = {meta['steps_per_decision']}, {meta['time_mode']}, {timing}; outputs {meta['outputs']})")  # fmt: skip
    for path in paths:
        print(f"  wrote {path}")
    return None, paths


PRESETS = {"default": ExportConfig()}
