"""A live progress bar fed from inside jitted, vmapped, sharded code.

Training functions call :func:`report` inside their ``lax.scan``; it is a no-op for the numbers (a
``jax.debug.callback`` with no outputs), so train functions stay pure and bit-for-bit reproducible. On the host, a
:class:`ProgressBar` opened with ``with ProgressBar(total=...)`` receives those reports and draws a tqdm bar with
steps done, steps/s and the latest value of one metric. Without an open bar, reports are dropped.

Cost: the step counter is the same for every seed, so a report of ``done`` alone fires once per call site even
under ``vmap``; one with a batched ``value`` fires once per seed, which is why :func:`report` sends only every
``every`` calls. Order: callbacks are unordered effects, so XLA may run a report of ``done`` alone before work
it does not depend on; pass a ``value`` computed by that work to pin the report after it.
"""

from __future__ import annotations

import threading
from typing import Any, Self

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

_active: ProgressBar | None = None
_lock = threading.Lock()


class ProgressBar:
    """Host-side tqdm bar that jitted code reports into through :func:`report`.

    Args:
      total: number of steps one seed runs (the unit is the experiment's: env steps, episodes, epochs).
      desc: label in front of the bar.
      metric: name shown for the reported value (e.g. ``"return"``).
      enabled: draw nothing when False (reports are still accepted and dropped).
      initial: steps already done (a resumed run continues its bar from there).
    """

    def __init__(
        self, total: int, desc: str = "", metric: str = "value", enabled: bool = True, initial: int = 0
    ):
        self.total = int(total)
        self.desc = desc
        self.metric = metric
        self.enabled = enabled
        self.done = int(initial)
        self.latest: float | None = None
        self._bar: Any = None

    def __enter__(self) -> Self:
        global _active
        if self.enabled:
            self._bar = tqdm(
                total=self.total, initial=self.done, desc=self.desc, unit="step", unit_scale=True,
                dynamic_ncols=True,
            )
        with _lock:
            _active = self
        return self

    def __exit__(self, *exc) -> None:
        global _active
        with _lock:
            _active = None
        if self._bar is not None:
            if exc[0] is None:
                self._bar.update(self.total - self._bar.n)
            self._bar.close()

    def _receive(self, done: int, value: float | None) -> None:
        with _lock:
            if done > self.done:
                if self._bar is not None:
                    self._bar.update(done - self.done)
                self.done = done
            if value is not None and np.isfinite(value):
                self.latest = value
                if self._bar is not None:
                    self._bar.set_postfix({self.metric: f"{value:.3g}"}, refresh=False)


def _host_steps(done) -> None:
    bar = _active
    if bar is not None:
        bar._receive(int(done), None)


def _host_value(done, value) -> None:
    bar = _active
    if bar is not None:
        bar._receive(int(done), float(value))


def report(done: jax.Array, value: jax.Array | None = None, every: int = 1) -> None:
    """Tell the open :class:`ProgressBar` that ``done`` steps are finished (call inside jitted code).

    Args:
      done: int scalar, steps finished so far by this seed; must not depend on the seed (it is the scan
        counter) so that one report serves every seed of a vmapped batch.
      value: optional float scalar, the latest metric (e.g. mean episode return) of this seed.
      every: send only when ``done % every == 0`` (the bar still ends at ``total`` on exit).
    """
    done = jnp.asarray(done)

    def send(_):
        if value is None:
            jax.debug.callback(_host_steps, done)
        else:  # one callback carrying both: it depends on ``value``, so XLA cannot run it before the work
            jax.debug.callback(_host_value, done, value)

    if every <= 1:
        send(None)
    else:
        jax.lax.cond(done % every == 0, send, lambda _: None, None)
