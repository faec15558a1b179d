"""The spyx neuron factory shared by the classifier and spiking policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax.snn.spyx_neurons import KINDS, RECURRENT, TWO_PART_STATE, make_neuron, membrane_potential


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_steps_with_the_documented_shapes(kind):
    layer = make_neuron(kind, 6, surrogate="superspike", rngs=nnx.Rngs(params=jax.random.key(0)))
    assert type(layer).__name__ == kind
    state = layer.initial_state(3)
    assert state.shape == (3, 12 if kind in TWO_PART_STATE else 6)
    out, state = layer(jnp.full((3, 6), 2.0), state)
    assert out.shape == (3, 6) and membrane_potential(kind, state).shape == (3, 6)


def test_recurrent_flag_and_weight_scale():
    for kind, rec in RECURRENT.items():
        layer = make_neuron(kind, 400, recurrent=True, rngs=nnx.Rngs(params=jax.random.key(1)))
        assert type(layer).__name__ == rec
        std = np.std(np.asarray(layer.recurrent_w[...]))
        assert std == pytest.approx(0.0088 / 20, rel=0.1)  # spyx: truncated_normal(0.01); / sqrt(400)
    assert type(make_neuron("RLIF", 4, recurrent=True, rngs=nnx.Rngs(0))).__name__ == "RLIF"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "Izhikevich"}, "kind='Izhikevich' is invalid: must be one of LIF, IF, ALIF"),
        ({"kind": "ALIF", "recurrent": True}, "one of LIF, IF, CuBaLIF, RLIF, RIF, RCuBaLIF with recurrent"),
        ({"kind": "LIF", "surrogate": "sigmoid"}, "surrogate='sigmoid' is invalid: must be one of arctan"),
    ],
)
def test_bad_names_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_neuron(size=4, rngs=nnx.Rngs(0), **kwargs)
