"""A trained spiking network as a NIR graph (nir 1.0; Pedersen et al. 2024): :func:`to_nir`.

The graph (node names fixed; docs/export.md has the whole contract)::

    input -> [conv_i -> lif_i]* -> (flatten) -> [affine_i -> lif_i]* -> per head: {head}_affine -> {head}_li
          -> {head}                    (a recurrent layer adds lif_i -> recurrent_i -> lif_i, a cycle)

Each node is NIR's continuous-time equation, read with forward Euler at ``dt = 1`` (the graph's metadata): a
LIF layer of decay ``beta`` is ``nir.LIF(tau = 1 / (1 - beta), r = tau, v_leak = 0, v_reset = 0)``, so one step
is ``v <- beta v + I``; IF is ``nir.IF(r = 1)``; a membrane read-out is ``nir.LI`` with the same ``tau`` and
``r``; a rate read-out (the mean of the last layer's spikes through a dense layer) is ``nir.I(r = 1 / T)`` read
after the ``T``-th step. The observation normalization is folded into the first ``Affine`` (its clip written as
``observation_low`` / ``observation_high`` in raw units); the pixel scale into the first ``Conv2d``. Subtract
reset and the spike timing have no node: the metadata names them (``reset``, ``spike_timing``). With the ``nir``
discretization (:mod:`synjax.snn.nir_neurons`) the graph computes exactly what synjax computed; with spyx's
(a spike answers the membrane before the update) it is the closest NIR reading, and the metadata says
``spike_timing: before_update``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import nir
import numpy as np
from flax import nnx

from synjax.agents.spiking import SpikingNetwork, spiking_core

FORMAT = "synjax-policy/1"
#: the hidden neuron kinds a graph can hold (NIR has no ALIF node; the current-based kinds are not exported)
EXPORTABLE_NEURONS = ("LIF", "IF", "RLIF", "RIF")


@dataclasses.dataclass(frozen=True)
class Readout:
    """What a policy decides from: which heads become outputs, and how the first one becomes an action."""

    heads: tuple[str, ...]
    action: str  # "argmax" (logits, Q-values) or "mean" (a Gaussian's mean)


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _neuron_node(kind: str, beta: float, threshold: float, shape: tuple[int, ...]) -> nir.NIRNode:
    """The NIR node of a spiking layer of ``shape`` (forward Euler, dt = 1)."""
    thr, zero = np.full(shape, threshold, np.float32), np.zeros(shape, np.float32)
    if kind in ("IF", "RIF") or beta >= 1.0:
        return nir.IF(r=np.ones(shape, np.float32), v_threshold=thr, v_reset=zero)
    tau = np.full(shape, 1.0 / (1.0 - beta), np.float32)
    return nir.LIF(tau=tau, r=tau.copy(), v_leak=zero, v_threshold=thr, v_reset=zero.copy())


def _li_node(beta: float, width: int) -> nir.NIRNode:
    """A membrane read-out ``v <- beta v + I``: ``nir.LI`` with ``tau = 1 / (1 - beta)``, ``r = tau``; ``nir.I``
    (``r = 1``) when the trained decay reached 1."""
    if beta >= 1.0:
        return nir.I(r=np.ones((width,), np.float32))
    tau = np.full((width,), 1.0 / (1.0 - beta), np.float32)
    return nir.LI(tau=tau, r=tau.copy(), v_leak=np.zeros((width,), np.float32))


def _beta(layer: nnx.Module) -> float:
    """A layer's (trained) decay as it runs: clipped to [0, 1] (spyx's layers and :class:`NirLIF` clip it);
    1 for a layer without one (IF)."""
    beta = getattr(layer, "beta", None)
    return 1.0 if beta is None else float(np.clip(np.asarray(beta[...]), 0.0, 1.0))


def check_exportable(model: nnx.Module) -> SpikingNetwork:
    """The spiking core of ``model`` if NIR can express it; else ValueError naming the setting and what can be
    exported."""
    net = spiking_core(model)
    if net is None:
        from synjax.agents.eprop_network import EpropActorCritic

        kind = "is not exported yet" if isinstance(model, EpropActorCritic) else "has no spikes"
        raise ValueError(f"a {type(model).__name__} {kind}: the spiking networks of --network snn and snn-classify "
                         "are exported to NIR")  # fmt: skip
    if net.neuron not in EXPORTABLE_NEURONS:
        raise ValueError(f"snn_neuron={net.neuron!r} cannot be exported: NIR has no node for it; exported neurons "
                         f"are {', '.join(EXPORTABLE_NEURONS)}")  # fmt: skip
    if net.encoder != "direct":
        raise ValueError(f"snn_encoder={net.encoder!r} cannot be exported: NIR has no node for it (the poisson "
                         "code hashes the observation's bits, the population code is Gaussian); the 'direct' "
                         "encoder is exported")  # fmt: skip
    if net.image is not None and net.obs_norm is not None:
        raise ValueError("norm_obs with image observations cannot be exported: a per-pixel normalization does not "
                         "fold into a convolution; image networks without norm_obs are exported")  # fmt: skip
    if net.image is not None and net.neuron.startswith("R"):
        raise ValueError(f"snn_neuron={net.neuron!r} with convolutions cannot be exported: recurrent feature maps "
                         "are not written; LIF or IF feature maps are")  # fmt: skip
    return net


def to_nir(model: nnx.Module, readout: Readout | None = None, **metadata: Any) -> nir.NIRGraph:
    """The NIR graph of the spiking network ``model`` (a :class:`SpikingNetwork`, or a Q policy wrapping one).

    Args:
      model: the trained network (from :func:`synjax.runs.saved_network.load_network`).
      readout: the heads to write and the action rule; default: ``actor`` (argmax, or the mean of a continuous
        actor) for an actor-critic, ``q`` (argmax) for a Q-network.
      **metadata: extra graph metadata (str, int, float), e.g. ``experiment``, ``env``, ``seed_index``.
    Raises:
      ValueError: what :func:`check_exportable` refuses, or a head the network does not have.
    """
    net = check_exportable(model)
    readout = readout or default_readout(net)
    for head in readout.heads:
        if head not in net.head_names:
            raise ValueError(f"head={head!r} is invalid: must be one of {', '.join(net.head_names)}")
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    extra: dict[str, Any] = {}
    scale, shift = np.ones(net.sizes[0], np.float32), np.zeros(net.sizes[0], np.float32)
    if net.obs_norm is not None:  # x_n = (x - mean) / std: folded as W diag(1 / std), b - W mean / std
        std = np.sqrt(_f32(net.obs_norm.var[...]) + np.float32(1e-8))
        scale, shift = 1.0 / std, -_f32(net.obs_norm.mean[...]) / std
        mean, clip = _f32(net.obs_norm.mean[...]), np.float32(net.obs_norm.clip)
        extra["observation_low"], extra["observation_high"] = mean - clip * std, mean + clip * std
    convs = 0
    if net.image is None:
        nodes["input"] = nir.Input({"input": np.array([net.sizes[0]])})
    else:
        h, w, c = net.image
        nodes["input"] = nir.Input({"input": np.array([c, h, w])})
    previous = "input"
    for i, (layer, neuron) in enumerate(zip(net.linears, net.neurons)):
        if hasattr(layer, "conv"):  # a convolution: flax HWIO kernels -> OIHW
            kernel = _f32(layer.conv.kernel[...]).transpose(3, 2, 0, 1) * (net.pixel_scale if i == 0 else 1.0)
            in_h, in_w, _ = layer.in_shape
            nodes[f"conv_{i}"] = nir.Conv2d(input_shape=(in_h, in_w), weight=kernel, stride=layer.stride, padding=0,
                                            dilation=1, groups=1, bias=_f32(layer.conv.bias[...]))  # fmt: skip
            oh, ow, f = layer.out_shape
            edges.append((previous, f"conv_{i}"))
            nodes[f"lif_{i}"] = _neuron_node(net.neuron, _beta(neuron), net.threshold, (f, oh, ow))
            edges.append((f"conv_{i}", f"lif_{i}"))
            previous, convs = f"lif_{i}", i + 1
            continue
        kernel = _f32(layer.kernel[...])  # (in, out)
        if i == 0:
            bias = _f32(layer.bias[...]) + shift @ kernel
            kernel = kernel * scale[:, None]
        else:
            bias = _f32(layer.bias[...])
        if i == convs and convs:  # the dense layer after the feature maps: NHWC rows -> NIR's CHW flatten
            oh, ow, f = net.linears[i - 1].out_shape
            kernel = kernel.reshape(oh, ow, f, -1).transpose(2, 0, 1, 3).reshape(oh * ow * f, -1)
            nodes["flatten"] = nir.Flatten({"input": np.array([f, oh, ow])}, start_dim=0, end_dim=-1)
            edges.append((previous, "flatten"))
            previous = "flatten"
        nodes[f"affine_{i}"] = nir.Affine(weight=kernel.T.copy(), bias=bias)
        nodes[f"lif_{i}"] = _neuron_node(net.neuron, _beta(neuron), net.threshold, (kernel.shape[1],))
        edges += [(previous, f"affine_{i}"), (f"affine_{i}", f"lif_{i}")]
        if hasattr(neuron, "recurrent_w"):  # s_{t-1} @ W: NIR's Linear weight is (out, in) = W.T
            nodes[f"recurrent_{i}"] = nir.Linear(weight=_f32(neuron.recurrent_w[...]).T.copy())
            edges += [(f"lif_{i}", f"recurrent_{i}"), (f"recurrent_{i}", f"lif_{i}")]
        previous = f"lif_{i}"
    readouts = []
    for head in readout.heads:
        dense = getattr(net, head)
        nodes[f"{head}_affine"] = nir.Affine(weight=_f32(dense.kernel[...]).T.copy(), bias=_f32(dense.bias[...]))
        width = dense.out_features
        if net.decoder == "membrane":
            readouts.append(f"{head}_li")
            nodes[f"{head}_li"] = _li_node(_beta(getattr(net, f"{head}_li")), width)
        else:  # the mean over T of W s_t + b, read after the T-th step
            readouts.append(f"{head}_mean")
            nodes[f"{head}_mean"] = nir.I(r=np.full((width,), 1.0 / net.time_steps, np.float32))
        nodes[head] = nir.Output({"output": np.array([width])})
        edges += [(previous, f"{head}_affine"), (f"{head}_affine", readouts[-1]), (readouts[-1], head)]
    stateful = [n for n in nodes if n.startswith("lif_")] + readouts
    layout = "flat" if net.image is None else ("CHW" if net.channels_first else "HWC")
    meta = {
        "format": FORMAT, "dt": 1.0, "reset": "subtract",
        "spike_timing": "after_update" if net.discretization == "nir" else "before_update",
        "steps_per_decision": int(net.time_steps), "outputs": ",".join(readout.heads),
        "reset_each_decision": ",".join(stateful if net.time_mode == "inner" else readouts),
        "action": readout.action, "observation_layout": layout, "encoder": net.encoder, "decoder": net.decoder,
        "neuron": net.neuron, "time_mode": net.time_mode, **extra, **metadata,
    }  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def classifier_to_nir(model: nnx.Module, time_steps: int, encoding: str, readout: str, **metadata: Any) -> nir.NIRGraph:
    """The NIR graph of a :class:`~synjax.classify.model.SpikingClassifier` (``snn-classify``): hidden layers as
    above, then ``logits_affine -> logits_lif -> logits_count`` (``nir.I``, r = 1: the spike count, for the
    ``spike_count`` read-out) or ``logits_affine -> logits_li -> logits_sum`` (``membrane_sum``), output
    ``logits``, read after ``time_steps`` steps from rest; the prediction is its argmax.

    Raises:
      ValueError: an encoding other than ``direct``, the ``membrane_max`` read-out or a membrane read-out of
        spiking outputs, a neuron NIR has no node for.
    """
    if encoding != "direct":
        raise ValueError(f"encoding={encoding!r} cannot be exported: the spike encoders draw from a PRNG key outside "
                         "the network; the 'direct' encoding is exported")  # fmt: skip
    hidden_kinds, output = model.kinds[:-1], model.kinds[-1]
    for kind in hidden_kinds:
        if kind not in EXPORTABLE_NEURONS:
            raise ValueError(f"neuron={kind!r} cannot be exported: NIR has no node for it; exported neurons are "
                             f"{', '.join(EXPORTABLE_NEURONS)}")  # fmt: skip
    allowed = {"LI": "membrane_sum"}.get(output, "spike_count")
    if output not in (*EXPORTABLE_NEURONS, "LI") or output.startswith("R") or readout != allowed:
        raise ValueError(f"readout={readout!r} with output={output!r} cannot be exported: NIR reads a sum over steps "
                         "with an integrator, so 'spike_count' of LIF or IF outputs and 'membrane_sum' of LI "
                         "outputs are exported")  # fmt: skip
    sizes = [layer.in_features for layer in model.linears] + [model.linears[-1].out_features]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input({"input": np.array([sizes[0]])})}
    edges, previous = [], "input"
    for i, (layer, neuron, kind) in enumerate(zip(model.linears, model.neurons, model.kinds)):
        name = f"lif_{i}" if i < len(hidden_kinds) else ("logits_li" if output == "LI" else "logits_lif")
        affine = f"affine_{i}" if i < len(hidden_kinds) else "logits_affine"
        nodes[affine] = nir.Affine(weight=_f32(layer.kernel[...]).T.copy(), bias=_f32(layer.bias[...]))
        width = layer.out_features
        nodes[name] = _li_node(_beta(neuron), width) if kind == "LI" else _neuron_node(kind, _beta(neuron),
                                                                                        neuron.threshold, (width,))
        edges += [(previous, affine), (affine, name)]
        if hasattr(neuron, "recurrent_w"):
            nodes[f"recurrent_{i}"] = nir.Linear(weight=_f32(neuron.recurrent_w[...]).T.copy())
            edges += [(name, f"recurrent_{i}"), (f"recurrent_{i}", name)]
        previous = name
    total = "logits_sum" if output == "LI" else "logits_count"
    nodes[total] = nir.I(r=np.ones((sizes[-1],), np.float32))
    nodes["logits"] = nir.Output({"output": np.array([sizes[-1]])})
    edges += [(previous, total), (total, "logits")]
    stateful = [n for n, node in nodes.items() if isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I))]
    meta = {
        "format": FORMAT, "dt": 1.0, "reset": "subtract", "spike_timing": "before_update",
        "steps_per_decision": int(time_steps), "outputs": "logits", "reset_each_decision": ",".join(stateful),
        "action": "argmax", "observation_layout": "flat", "encoder": encoding, "decoder": readout,
        "neuron": ",".join(model.kinds), "time_mode": "inner", **metadata,
    }  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def default_readout(net: SpikingNetwork) -> Readout:
    """The actor (argmax, or its mean when continuous) of an actor-critic, ``q`` (argmax) of a Q-network."""
    if "actor" in net.head_names:
        return Readout(("actor",), "mean" if getattr(net, "continuous", False) else "argmax")
    return Readout((net.head_names[0],), "argmax")
