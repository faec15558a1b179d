"""JAX environments: Taxi-v4 (Gymnasium's dynamics, rainy and fickle variants), ShowerEnv, and all of gymnax."""

from synjax.envs.gymnasium_adapter import GymnasiumEnv, to_gymnasium
from synjax.envs.registry import SYNJAX_ENVS, env_ids, make
from synjax.envs.shower import Shower
from synjax.envs.taxi import Taxi

__all__ = ["SYNJAX_ENVS", "GymnasiumEnv", "Shower", "Taxi", "env_ids", "make", "to_gymnasium"]
