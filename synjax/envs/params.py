"""Validation of environment params, shared by Taxi and ShowerEnv.

Params may hold tracers (inside jit/vmap) or placeholders (``None`` in ``in_axes`` trees); only concrete numbers are
checked, so construction inside transformed code never fails spuriously.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax
import numpy as np

P = TypeVar("P")


def concrete(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array if it is a concrete number (not a tracer or a placeholder), else None."""
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (bool, int, float, np.ndarray, np.generic, jax.Array)):
        return np.asarray(value)
    return None


def check_probability(name: str, value: Any) -> None:
    """ValueError unless ``value`` is in [0, 1]."""
    v = concrete(value)
    if v is not None and not np.all((v >= 0.0) & (v <= 1.0)):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    """ValueError unless ``value`` is a whole number >= 1."""
    v = concrete(value)
    if v is not None and not (np.all(v > 0) and np.all(np.asarray(v, np.float64) % 1 == 0)):
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")


def check_flag(name: str, value: Any) -> None:
    """ValueError unless ``value`` is a bool (or 0/1)."""
    v = concrete(value)
    if v is not None and not np.all((v == 0) | (v == 1)):
        raise ValueError(f"{name} must be a bool (True/False), got {value!r}")


def make_validated(cls: type[P], env_name: str, **kwargs: Any) -> P:
    """``cls(**kwargs)`` (whose ``__post_init__`` checks values), with Python scalars cast to each field's type.

    Casting keeps one compiled step for every value (an int where a float is expected would recompile).

    Raises:
      ValueError: an unknown field (the message lists the allowed ones) or a value out of range.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - set(fields))
    if unknown:
        raise ValueError(f"unknown {env_name} param(s) {unknown}; allowed: {', '.join(fields)}")
    params = cls(**kwargs)  # validates
    kinds = {name: type(f.default) for name, f in fields.items() if isinstance(f.default, (bool, int, float))}
    return params.replace(
        **{
            k: kinds[k](v)
            for k, v in kwargs.items()
            if k in kinds and isinstance(v, (bool, int, float, np.generic))
        }
    )


def with_fields(default: P, env_name: str, **params: Any) -> P:
    """``default.replace(**params)`` for a gymnax ``EnvParams``, refusing unknown fields (listing the real ones)."""
    fields = {f.name for f in dataclasses.fields(default)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ValueError(
            f"{env_name} has no param {', '.join(unknown)}; its params are: {', '.join(sorted(fields))}"
        )
    return default.replace(**params)
