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
        ({"kind": "ALIF", "discretization": "nir"}, "kind='ALIF' is invalid: must be one of LIF, IF, RLIF, RIF"),
        ({"kind": "LIF", "discretization": "euler"}, "discretization='euler' is invalid: must be one of spyx, nir"),
    ],
)
def test_bad_names_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_neuron(size=4, rngs=nnx.Rngs(0), **kwargs)


def test_nir_discretization_spikes_on_the_updated_membrane_and_subtracts_in_the_same_step():
    lif = make_neuron("LIF", 1, beta=0.5, discretization="nir", rngs=nnx.Rngs(0))
    spyx = make_neuron("LIF", 1, beta=0.5, rngs=nnx.Rngs(0))
    ours, theirs = [], []
    v, u = lif.initial_state(1), spyx.initial_state(1)
    for _ in range(6):  # v <- 0.5 v + 0.6: 0.6, 0.9, 1.05 -> spike, 0.05, 0.625, 0.9125, 1.05625 -> spike
        s, v = lif(jnp.full((1, 1), 0.6), v)
        ours.append((float(s[0, 0]), round(float(v[0, 0]), 5)))
        s, u = spyx(jnp.full((1, 1), 0.6), u)
        theirs.append(float(s[0, 0]))
    assert ours == [(0.0, 0.6), (0.0, 0.9), (1.0, 0.05), (0.0, 0.625), (0.0, 0.9125), (1.0, 0.05625)]
    assert theirs == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # spyx: the same spike one step later
    rif = make_neuron("RIF", 3, discretization="nir", rngs=nnx.Rngs(0))
    rif.recurrent_w[...] = jnp.eye(3)
    state = rif.initial_state(1)
    s1, state = rif(jnp.array([[1.5, 0.0, 0.0]]), state)  # spikes now; its own spike comes back next step
    s2, state = rif(jnp.zeros((1, 3)), state)
    assert s1.tolist() == [[1.0, 0.0, 0.0]] and state.shape == (1, 6)
    assert s2.tolist() == [[1.0, 0.0, 0.0]]  # 0.5 left after the reset + 1 from its own last spike = 1.5
    assert float(state[0, 0]) == pytest.approx(0.5)
