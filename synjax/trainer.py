"""The training contract every JAX-environment experiment keeps: ``init``, ``step``, ``finish``.

A training run of one seed is

    state = init(key)
    for i in range(num_steps):
        state, metrics_i = step(state, i)
    output = finish(state, metrics)          # metrics: every metrics_i stacked along a leading axis

and :class:`Trainer` holds the four pieces. Calling it, ``trainer(key)``, runs exactly that as one
``lax.scan`` (so ``jax.jit(jax.vmap(make_train(config)))(keys)`` still trains many seeds in one call); the runner
(:mod:`synjax.runner.experiment`) instead runs the steps in jitted chunks of the whole vmapped, sharded state and
checkpoints the state between chunks, which makes a sweep resumable after a crash or a SIGTERM.

The step index ``i`` is an argument, not part of ``state``: it is the same for every seed, so under ``vmap`` it
stays unbatched and a ``lax.cond`` on it (evaluate now? report progress?) remains a real branch instead of
becoming a select that runs both sides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class TrainOutput:
    """What one seed's training returns (the runner adds a leading seed axis to every leaf).

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


#: ``init(key) -> state``: one seed's training state (a pytree of arrays).
Init = Callable[[jax.Array], Any]
#: ``step(state, i) -> (state, metrics)``: step ``i`` (int32 scalar, shared by every seed) of the run.
Step = Callable[[Any, jax.Array], tuple[Any, Any]]
#: ``finish(state, metrics) -> TrainOutput``; ``metrics`` has every step's metrics stacked, leading axis num_steps.
Finish = Callable[[Any, Any], TrainOutput]


@dataclasses.dataclass(frozen=True)
class Trainer:
    """One seed's training as pure, jittable and vmappable pieces; calling it is ``train(key)``.

    Attributes:
      init: :data:`Init`.
      step: :data:`Step`; one update, episode stretch or epoch.
      finish: :data:`Finish`.
      num_steps: how many steps the run has.
      point_ready: P ints, optional: point ``p`` of ``finish``'s metrics is final once ``point_ready[p]``
        steps are done (it reads no later step and nothing of the state that later steps change), so a logging
        sink (:mod:`synjax.runner.log_sinks`) can stream it while the run goes on; nondecreasing. None: one point per
        step (point ``p`` after step ``p + 1``) when ``finish`` returns ``num_steps`` points, else every point
        at the end.
    """

    init: Init
    step: Step
    finish: Finish
    num_steps: int
    point_ready: tuple[int, ...] | None = None

    def points_done(self, done: int, num_points: int) -> int:
        """How many leading points of ``finish``'s ``num_points`` are final after ``done`` steps (see
        ``point_ready``)."""
        if self.point_ready is not None:
            return int(np.searchsorted(np.asarray(self.point_ready), done, side="right"))
        if num_points == self.num_steps:
            return min(done, num_points)
        return num_points if done >= self.num_steps else 0

    def run_steps(self, state: Any, start: jax.Array, length: int) -> tuple[Any, Any]:
        """Steps ``start .. start + length - 1`` as one ``lax.scan``: ``(state, metrics stacked (length, ...))``."""
        return jax.lax.scan(self.step, state, start + jnp.arange(length, dtype=jnp.int32))

    def __call__(self, key: jax.Array) -> TrainOutput:
        """The whole run of one seed: ``finish(*scan(step, init(key), 0 .. num_steps - 1))``."""
        state, metrics = self.run_steps(self.init(key), jnp.int32(0), self.num_steps)
        return self.finish(state, metrics)
