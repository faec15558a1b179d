"""The runs of a sweep on the devices: seed keys, the mesh, the sharded inputs and the jitted pieces of a
:class:`synjax.trainer.Trainer` over all runs, and moving state between host and devices (for checkpoints)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from synjax.runner import sweep
from synjax.trainer import Trainer


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """``num_seeds`` typed PRNG keys split from ``seed``: shape (num_seeds,)."""
    return jax.random.split(jax.random.key(seed), num_seeds)


def seed_mesh(num_runs: int | None = None) -> Mesh:
    """A 1-D mesh named ``"seeds"`` over every device JAX sees (all hosts after distributed init); in one process,
    over no more devices than ``num_runs`` (a single run is not copied onto a second device)."""
    devices = jax.devices()
    if num_runs is not None and jax.process_count() == 1:
        devices = devices[: max(1, num_runs)]
    return Mesh(np.array(devices), ("seeds",))


def to_host(tree: Any, num_runs: int) -> Any:
    """Device pytree (leading run axis, maybe sharded over hosts) -> numpy on every process, padding dropped;
    PRNG keys become their key data."""
    tree = jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(lambda x: np.array(x)[:num_runs], tree)  # a copy: a view would pin the donated buffer


def is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def to_device(tree: Any, sharding: NamedSharding, padded: int) -> Any:
    """Host pytree (leading run axis) -> arrays sharded over the run axis, padded with copies of the last run.
    Leaves that are typed PRNG keys (on the host) go over as key data and are wrapped again."""

    def put(x):
        key = is_key(x)
        data = np.asarray(jax.random.key_data(x) if key else x)
        if padded > data.shape[0]:
            data = np.concatenate([data, np.repeat(data[-1:], padded - data.shape[0], axis=0)])
        arr = jax.make_array_from_callback(data.shape, sharding, lambda index: data[index])
        return jax.random.wrap_key_data(arr) if key else arr

    return jax.tree.map(put, tree)


@dataclasses.dataclass
class Runs:
    """The G*S runs of a config (G swept points x S seeds) as sharded inputs, and their jitted pieces."""

    config: Any
    make_train: Callable[[Any], Trainer]
    #: one run's trainer (for num_steps; the traced ones get their swept values); built here when not given
    trainer: Trainer | None = None

    def __post_init__(self) -> None:
        self.names, self.points = sweep.grid(self.config)
        self.num_runs = len(self.points) * self.config.num_seeds
        self.mesh = seed_mesh(self.num_runs)
        self.padded = math.ceil(self.num_runs / self.mesh.devices.size) * self.mesh.devices.size
        self.sharding = NamedSharding(self.mesh, P("seeds"))
        keys = np.asarray(jax.random.key_data(seed_keys(self.config.seed, self.config.num_seeds)))
        keys = np.tile(keys, (len(self.points),) + (1,) * (keys.ndim - 1))
        hp = np.repeat(self.points, self.config.num_seeds, axis=0).astype(np.float32)
        self.keys = to_device(keys, self.sharding, self.padded)
        self.hps = to_device(hp, self.sharding, self.padded)
        if self.trainer is None:
            self.trainer = self.make_train(sweep.at(self.config))
        self._chunks: dict[int, Any] = {}

    def _trainer(self, hp_row: jax.Array) -> Trainer:
        return self.make_train(sweep.at(self.config, **{n: hp_row[j] for j, n in enumerate(self.names)}))

    def init_fn(self):
        def one(raw_key, hp_row):
            return self._trainer(hp_row).init(jax.random.wrap_key_data(raw_key))

        return jax.jit(jax.vmap(one), in_shardings=(self.sharding, self.sharding), out_shardings=self.sharding)

    def chunk_fn(self, length: int):
        """``(states, hps, start) -> (states, metrics (R, length, ...))``, jitted once per length."""
        if length not in self._chunks:

            def one(state, hp_row, start):
                return self._trainer(hp_row).run_steps(state, start, length)

            replicated = NamedSharding(self.mesh, P())
            self._chunks[length] = jax.jit(
                jax.vmap(one, in_axes=(0, 0, None)),
                in_shardings=(self.sharding, self.sharding, replicated),
                out_shardings=self.sharding,
                donate_argnums=0,
            )
        return self._chunks[length]

    def finish_fn(self):
        def one(state, metrics, hp_row):
            return self._trainer(hp_row).finish(state, metrics)

        sh = self.sharding
        return jax.jit(jax.vmap(one), in_shardings=(sh, sh, sh), out_shardings=sh)

    def points_fn(self):
        """``finish`` reduced to ``(steps (R, P), metrics name -> (R, P))``: what a logging sink streams while
        the run goes on (XLA drops the parts of ``finish`` that only the params, ``final`` or extras need)."""

        def one(state, metrics, hp_row):
            out = self._trainer(hp_row).finish(state, metrics)
            return out.steps, out.metrics

        sh = self.sharding
        return jax.jit(jax.vmap(one), in_shardings=(sh, sh, sh), out_shardings=sh)


def concat(history: list[Any]) -> Any:
    """Chunks' metrics (leaves (R, L_c, ...)) joined along the step axis."""
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *history)
