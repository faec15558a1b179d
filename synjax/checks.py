"""Declarative config checks: the allowed range stands next to the field, and one loop checks every field.

    @dataclasses.dataclass(frozen=True)
    class MyConfig(RunConfig):
        num_envs: Annotated[int, at_least(1)] = 8
        lr: Annotated[Floats, above(0.0)] = 3e-4          # a sweepable field: every value is checked
        activation: Annotated[str, one_of("tanh", "relu")] = "tanh"

:class:`synjax.runner.experiment.RunConfig`'s ``__post_init__`` calls :func:`check_fields`, so every config refuses a bad
value before any work with ``"<field>=<value> is invalid: must be <allowed>"``. Checks that relate several
fields (a divisor of ``num_envs * num_steps``) stay in the config's own ``__post_init__`` and use
:func:`require`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import typing
from collections.abc import Callable
from typing import Any


def require(ok: bool, field: str, value: Any, allowed: str) -> None:
    """Raise ``ValueError("<field>=<value> is invalid: must be <allowed>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{field}={value!r} is invalid: must be {allowed}")


def require_defaults(config: Any, field_set: type, why: str) -> None:
    """Refuse any field of the dataclass ``field_set`` that ``config`` moves away from its default (the default
    of ``config``'s own class): a flag that would change nothing. ``why`` ends the message (when the fields mean
    something)."""
    defaults = {f.name: f.default for f in dataclasses.fields(type(config))}
    for f in dataclasses.fields(field_set):
        value = getattr(config, f.name)
        require(value == defaults[f.name], f.name, value, f"left at its default ({defaults[f.name]!r}) {why}")


@dataclasses.dataclass(frozen=True)
class Check:
    """An allowed range: ``ok(value) -> bool`` and the words for what is allowed (``"an integer >= 1"``)."""

    ok: Callable[[Any], bool]
    allowed: str


def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def at_least(low: float, allowed: str = "") -> Check:
    """``value >= low`` (an integer when ``low`` is one)."""
    text = f"an integer >= {low}" if isinstance(low, int) else f"a float >= {low:g}"
    return Check(lambda v: _number(v) and v >= low, allowed or text)


def integer_in(low: int, high: int, allowed: str = "") -> Check:
    """An integer with ``low <= value <= high``."""
    return Check(lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
                 allowed or f"an integer in {low}..{high}")  # fmt: skip


def above(low: float, allowed: str = "") -> Check:
    """``value > low``, finite."""
    return Check(lambda v: _number(v) and v > low and math.isfinite(v), allowed or f"a float > {low:g}")


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False, allowed: str = "") -> Check:
    """``low <= value <= high``, either end open on request."""
    lo = (lambda v: v > low) if low_open else (lambda v: v >= low)
    hi = (lambda v: v < high) if high_open else (lambda v: v <= high)
    text = f"a float in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return Check(lambda v: _number(v) and lo(v) and hi(v), allowed or text)


def finite(allowed: str = "a finite number") -> Check:
    """A finite number."""
    return Check(lambda v: _number(v) and math.isfinite(v), allowed)


def one_of(*names: str) -> Check:
    """One of ``names``."""
    return Check(lambda v: v in names, f"one of {', '.join(map(str, names))}")


def each(check: Check, allowed: str) -> Check:
    """Every element of a tuple passes ``check`` (e.g. layer widths)."""
    return Check(lambda v: isinstance(v, tuple) and all(check.ok(x) for x in v), allowed)


@functools.cache
def field_checks(config_type: type) -> tuple[tuple[str, tuple[Check, ...], bool], ...]:
    """``(name, checks, sweepable)`` for every field of ``config_type`` that carries :class:`Check` metadata.

    A subclass that gives a field another default (``num_envs: int = 1``) keeps the base class's checks: the
    metadata of every class in the MRO counts.
    """
    from synjax.runner.sweep import SWEEP_SPEC

    meta: dict[str, list[Any]] = {}
    for klass in reversed(config_type.__mro__):
        own = inspect.get_annotations(klass)
        if dataclasses.is_dataclass(klass) and own:
            hints = typing.get_type_hints(klass, include_extras=True)
            for name in own:
                meta.setdefault(name, []).extend(getattr(hints.get(name), "__metadata__", ()))
    out = []
    for f in dataclasses.fields(config_type):
        checks = tuple(dict.fromkeys(m for m in meta.get(f.name, ()) if isinstance(m, Check)))
        if checks:
            out.append((f.name, checks, any(m is SWEEP_SPEC for m in meta.get(f.name, ()))))
    return tuple(out)


def check_fields(config: Any) -> None:
    """Check every annotated field of ``config`` (each value of a swept field); raise on the first bad one."""
    for name, checks, sweepable in field_checks(type(config)):
        value = getattr(config, name)
        values = value if sweepable and isinstance(value, (tuple, list)) else (value,)
        if sweepable:
            require(len(values) >= 1, name, value, "at least one value")
        for v in values:
            for c in checks:
                require(c.ok(v), name, v, c.allowed)
