"""synjax: vectorized spiking networks and reinforcement learning in JAX."""

__version__ = "0.1.0"
