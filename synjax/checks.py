"""Config checks: every bad value is refused before any work, naming the field and what is allowed."""

from __future__ import annotations

from typing import Any


def require(ok: bool, field: str, value: Any, allowed: str) -> None:
    """Raise ``ValueError("<field>=<value> is invalid: must be <allowed>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{field}={value!r} is invalid: must be {allowed}")
