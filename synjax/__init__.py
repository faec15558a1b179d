"""synjax: vectorized spiking networks and reinforcement learning in JAX."""

from synjax.cpu_flags import one_device_per_core, prefer_xla_convolutions

# before JAX's CPU backend starts (see synjax.cpu_flags): up to 3x faster CNN gradients; the seeds of a sweep
# spread over every core
prefer_xla_convolutions()
one_device_per_core()

__version__ = "0.1.0"
