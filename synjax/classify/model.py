"""The spiking classifier: spyx 1.0 (Flax NNX) neurons behind ``nnx.Linear`` layers, spike encoders, losses.

Network (the original notebook's, by default): ``D -> Linear -> H LIF -> ... -> Linear -> C output neurons``,
simulated for ``T`` time steps, time-major ``(T, B, ...)`` as spyx is.

Neurons are spyx's, built by :func:`synjax.snn.spyx_neurons.make_neuron`: any of its ``NEURONS`` for hidden
layers; the output layer is one of those or the non-spiking leaky integrator ``LI``. A spyx neuron emits the
spike of the membrane *before* this step's update, one step later than snntorch's ``Leaky``, which thresholds
the updated membrane; the recorded membrane is ``V_t`` in both.

With the ``direct`` encoding (the original: the static image as a constant input current) the first layer's current
``x W + b`` is the same at every step, so it is computed once per image instead of ``T`` times; that is the same
network and the same gradients at 1/T of the first layer's cost.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from synjax.snn.spyx_neurons import make_neuron, membrane_potential, surrogate

ENCODINGS = ("direct", "rate", "latency")
LOSSES = ("membrane_ce", "count_ce", "rate_mse", "max_membrane_ce")
READOUTS = ("spike_count", "membrane_sum", "membrane_max")
#: losses and readouts that need output spikes (not allowed with the ``LI`` output).
SPIKING_ONLY = ("count_ce", "rate_mse", "spike_count")


def _torch_like_linear(fan_in: int, fan_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` initialized as PyTorch's ``nn.Linear``: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def bias_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return nnx.Linear(
        fan_in,
        fan_out,
        kernel_init=nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_init=bias_init,
        rngs=rngs,
    )


class SpikingClassifier(nnx.Module):
    """``D -> [Linear -> neuron] * len(hidden) -> Linear -> output neuron (C units)``.

    Args:
      in_features: D, pixels per image.
      hidden: hidden layer sizes (the original: (1000,)).
      num_classes: C.
      neuron: hidden neuron kind (``spyx_neurons.NEURONS``); output: output neuron kind (``spyx_neurons.KINDS``).
      beta: membrane decay per step; alpha: synaptic-current decay (CuBaLIF); gamma: threshold adaptation (ALIF).
      threshold: firing threshold.
      activation: spyx spike function with its surrogate gradient (:func:`surrogate`).
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...],
        num_classes: int,
        *,
        neuron: str = "LIF",
        output: str = "LIF",
        beta: float = 0.95,
        alpha: float = 0.9,
        gamma: float = 0.9,
        threshold: float = 1.0,
        activation: Callable | None = None,
        rngs: nnx.Rngs,
    ):
        activation = activation or surrogate("arctan")
        sizes = (in_features, *hidden, num_classes)
        self.output = output
        self.kinds = (*(neuron,) * len(hidden), output)
        self.linears = nnx.List([_torch_like_linear(a, b, rngs) for a, b in itertools.pairwise(sizes)])
        kw = {"beta": beta, "alpha": alpha, "gamma": gamma, "threshold": threshold, "surrogate": activation}
        self.neurons = nnx.List([make_neuron(k, n, **kw, rngs=rngs) for k, n in zip(self.kinds, sizes[1:])])

    def __call__(self, x: jax.Array, time_steps: int, record_hidden: bool = False):
        """Simulate ``time_steps`` steps.

        Args:
          x: (B, D) constant input current (direct encoding) or (T, B, D) encoded spikes.
          time_steps: T.
          record_hidden: also return the first hidden layer's spikes.
        Returns:
          (out_spikes (T, B, C) or None for the LI output, out_membrane (T, B, C), hidden spikes (T, B, H) or None).
        """
        batch = x.shape[-2]
        first = self.linears[0](x)  # (B, H) or (T, B, H): computed once, outside the time loop
        constant = x.ndim == 2
        states = tuple(n.initial_state(batch) for n in self.neurons)
        last = len(self.neurons) - 1

        def step(states, current):
            current = first if constant else current
            new_states, hidden_spikes, out = [], None, None
            for i, (neuron, state) in enumerate(zip(self.neurons, states)):
                if i > 0:
                    current = self.linears[i](out)
                out, state = neuron(current, state)
                new_states.append(state)
                if i == 0:
                    hidden_spikes = out
            spikes = None if self.output == "LI" else out
            potential = membrane_potential(self.kinds[last], new_states[last])
            return tuple(new_states), (spikes, potential, hidden_spikes if record_hidden else None)

        _, (spikes, membrane, hidden) = jax.lax.scan(
            step, states, None if constant else first, length=time_steps if constant else None
        )
        return spikes, membrane, hidden


# ------------------------------------------------------------------------------------------------- encoders


def encode(x: jax.Array, encoding: str, time_steps: int, key: jax.Array) -> jax.Array:
    """Turn images into network input.

    Args:
      x: (B, D) pixels in [-1, 1].
      encoding: ``direct`` returns ``x`` itself, (B, D), fed as a constant current every step (the original);
        ``rate`` returns (T, B, D) Poisson spikes, each pixel firing with probability p = (x + 1) / 2 per step;
        ``latency`` returns (T, B, D) with one spike per pixel at step round((1 - p) (T - 1)) (brighter is
        earlier) and none for black pixels (p = 0).
      time_steps: T.
      key: PRNG key (used by ``rate`` only).
    """
    if encoding == "direct":
        return x
    p = (x + 1.0) * 0.5
    if encoding == "rate":
        return jax.random.bernoulli(key, p, (time_steps, *x.shape)).astype(x.dtype)
    if encoding == "latency":
        t_fire = jnp.round((1.0 - p) * (time_steps - 1)).astype(jnp.int32)
        t = jnp.arange(time_steps, dtype=jnp.int32)[:, None, None]
        return ((t == t_fire[None]) & (p[None] > 0)).astype(x.dtype)
    raise ValueError(f"encoding={encoding!r} is invalid: must be one of {', '.join(ENCODINGS)}")


# --------------------------------------------------------------------------------------- losses and readouts


def loss_per_sample(loss: str, spikes: jax.Array | None, membrane: jax.Array, labels: jax.Array) -> jax.Array:
    """Loss of each sample, shape (B,).

    Args:
      loss: ``membrane_ce`` cross-entropy of the output membrane at every step, summed over steps (the original);
        ``count_ce`` cross-entropy of the output spike counts; ``rate_mse`` squared error of the spike counts
        against 80% of T for the true class and 20% for the others (snntorch's ``mse_count_loss``), averaged
        over classes; ``max_membrane_ce`` cross-entropy of each neuron's largest membrane value over time.
      spikes: (T, B, C) output spikes.
      membrane: (T, B, C) output membrane.
      labels: (B,) int class indices.
    """
    if loss == "membrane_ce":
        per_step = optax.softmax_cross_entropy_with_integer_labels(membrane, labels[None, :])
        return per_step.sum(0)
    if loss == "max_membrane_ce":
        return optax.softmax_cross_entropy_with_integer_labels(membrane.max(0), labels)
    counts = spikes.sum(0)
    if loss == "count_ce":
        return optax.softmax_cross_entropy_with_integer_labels(counts, labels)
    if loss == "rate_mse":
        time_steps, num_classes = spikes.shape[0], spikes.shape[-1]
        target = jnp.where(jax.nn.one_hot(labels, num_classes) > 0, 0.8, 0.2) * time_steps
        return jnp.mean((counts - target) ** 2, axis=-1)
    raise ValueError(f"loss={loss!r} is invalid: must be one of {', '.join(LOSSES)}")


def predict(readout: str, spikes: jax.Array | None, membrane: jax.Array) -> jax.Array:
    """Predicted class index, shape (B,).

    Args:
      readout: ``spike_count`` the output neuron with the most spikes (the original), ties broken by the
        largest summed membrane; ``membrane_sum`` the largest membrane summed over time; ``membrane_max`` the
        largest membrane value at any step.
      spikes: (T, B, C) output spikes.
      membrane: (T, B, C) output membrane.
    """
    if readout == "membrane_sum":
        return jnp.argmax(membrane.sum(0), -1)
    if readout == "membrane_max":
        return jnp.argmax(membrane.max(0), -1)
    if readout == "spike_count":
        counts = spikes.sum(0)
        tied = counts == counts.max(-1, keepdims=True)
        return jnp.argmax(jnp.where(tied, membrane.sum(0), -jnp.inf), -1)
    raise ValueError(f"readout={readout!r} is invalid: must be one of {', '.join(READOUTS)}")
