"""One ``make`` for synjax's environments and every gymnax id; ours are registered with gymnax too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnax
from gymnax.environments import environment

from synjax.envs.masked import MaskedCartPole
from synjax.envs.params import with_fields
from synjax.envs.shower import Shower
from synjax.envs.taxi import Taxi

#: synjax's own environments: id -> class. Each has ``make_params(**params)`` that validates.
SYNJAX_ENVS: dict[str, Callable[[], environment.Environment]] = {
    "Taxi-v4": Taxi, "ShowerEnv": Shower, "CartPole-masked-v1": MaskedCartPole,
}  # fmt: skip


def _register_with_gymnax() -> None:
    for env_id, cls in SYNJAX_ENVS.items():
        if env_id not in gymnax.registered_envs:
            gymnax.register(env_id, cls)


_register_with_gymnax()


def env_ids() -> list[str]:
    """Every id :func:`make` accepts: synjax's first, then gymnax's."""
    return list(SYNJAX_ENVS) + [e for e in gymnax.registered_envs if e not in SYNJAX_ENVS]


def make(name: str, **params: Any) -> tuple[environment.Environment, Any]:
    """Build an environment and its params.

    Args:
      name: ``"Taxi-v4"``, ``"ShowerEnv"``, ``"CartPole-masked-v1"`` or any gymnax id (``"CartPole-v1"``, ...), see :func:`env_ids`.
      **params: fields of the environment's ``EnvParams`` to change from the defaults (e.g. ``is_rainy=True``).
    Returns:
      ``(env, env_params)``.
    Raises:
      ValueError: unknown name (the message lists the valid ones), unknown param field (lists the fields), or
        an invalid value (names the field and the allowed range).
    """
    if name in SYNJAX_ENVS:
        env = SYNJAX_ENVS[name]()
        return env, env.make_params(**params)
    if name not in gymnax.registered_envs:
        raise ValueError(f"unknown environment {name!r}; valid ids: {', '.join(env_ids())}")
    env, default = gymnax.make(name)
    return env, with_fields(default, name, **params)
