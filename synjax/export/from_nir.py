"""A NIR graph as a jittable JAX policy: :func:`import_graph`, then :meth:`ImportedGraph.decide`.

The graph is simulated as NIR defines its nodes, forward Euler at the metadata's ``dt`` (docs/export.md):
``LIF`` ``v <- v + dt / tau (v_leak - v + r I)``, a spike where ``v > v_threshold``, then the reset the metadata
names (``subtract``: ``v <- v - s v_threshold``; ``zero``: ``v <- v_reset``); ``IF`` ``v <- v + dt r I``; ``LI``
and ``I`` the same without spikes; ``Affine``, ``Linear``, ``Scale``, ``Conv2d``, ``Flatten``, ``Threshold``.
Edges into a node are summed. A cycle is recurrence: in each SNN step the nodes run in topological order from the
input with the cycle-closing edges left out, and such an edge delivers its source's output of the previous step.
With ``spike_timing: before_update`` (a synjax graph of spyx neurons) a spiking node emits the spike of its
membrane before the step's update, as spyx does, so that graph plays exactly as it trained.

A decision (the metadata's protocol): zero the nodes in ``reset_each_decision``, clip the observation to
``observation_low`` / ``observation_high`` if given, present it for ``steps_per_decision`` steps, read each
output after the last; the action is the argmax of the first output (``action: argmax``) or the output itself
(``mean``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import nir
import numpy as np

#: graph metadata a policy needs, with what it means
REQUIRED_METADATA = {"steps_per_decision": "SNN steps per decision", "outputs": "comma-separated output nodes"}
STATEFUL = (nir.LIF, nir.IF, nir.LI, nir.I)
SPIKING = (nir.LIF, nir.IF)
SUPPORTED = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Conv2d, nir.Flatten, nir.Threshold,
             *STATEFUL)  # fmt: skip


def _text(value: Any) -> str:
    """A metadata string as ``nir.read`` may return it (bytes, numpy scalars)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return ",".join(_text(v) for v in value.tolist())
    return str(value)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(n for n in _text(value).split(",") if n)


def _evaluation_order(graph: nir.NIRGraph, known: frozenset[str] = frozenset()):
    """(nodes in the order one SNN step computes them, the cycle-closing edges): a depth-first search from the
    inputs; an edge to a node already on the search path closes a cycle. Edges out of the ``known`` nodes (whose
    outputs are known when the step starts: spiking nodes with spyx timing) do not order anything."""
    successors: dict[str, list[str]] = {n: [] for n in graph.nodes}
    every: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        every[src].append(dst)
        if src not in known:
            successors[src].append(dst)
    state, closing, post = {}, set(), []

    def visit(node: str) -> None:
        state[node] = "open"
        for nxt in successors[node]:
            if state.get(nxt) == "open":
                closing.add((node, nxt))
            elif nxt not in state:
                visit(nxt)
        state[node] = "done"
        post.append(node)

    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    reached, frontier = set(inputs), list(inputs)
    while frontier:  # over every edge: which nodes an input reaches at all
        for dst in every[frontier.pop()]:
            if dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    unreached = [n for n in graph.nodes if n not in reached]
    if unreached:
        raise ValueError(f"the graph's nodes {', '.join(unreached)} are not reached from an Input node")
    for name in [*inputs, *graph.nodes]:  # reverse post-order of a depth-first forest: a topological order
        if name not in state:
            visit(name)
    return tuple(reversed(post)), frozenset(closing)


@dataclasses.dataclass(frozen=True)
class ImportedGraph:
    """A NIR graph ready to run. ``params``: ``{node: {field: jnp array}}`` (a pytree, vmappable over graphs of
    one structure); the rest is static structure read from the graph and its metadata."""

    nodes: dict[str, nir.NIRNode]
    order: tuple[str, ...]
    sources: dict[str, tuple[tuple[str, bool], ...]]  # node -> ((source, delayed), ...)
    params: dict[str, dict[str, jax.Array]]
    input_shape: tuple[int, ...]
    outputs: tuple[str, ...]
    steps: int
    dt: float
    reset: str
    before_update: bool
    reset_each_decision: tuple[str, ...]
    action: str
    layout: str
    metadata: dict[str, Any]

    @property
    def delayed_sources(self) -> tuple[str, ...]:
        return tuple(sorted({s for srcs in self.sources.values() for s, delayed in srcs if delayed}))

    @property
    def stateful(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if isinstance(self.nodes[n], STATEFUL))

    def initial_state(self, batch: int) -> dict[str, jax.Array]:
        """Every state at rest: ``{node: (batch, *shape)}`` for the stateful nodes and ``{"delayed:" + node:
        ...}`` for the sources of cycle-closing edges (their last output); shapes are the nodes' output types."""
        names = (*self.stateful, *(f"delayed:{s}" for s in self.delayed_sources))
        shape = lambda n: tuple(int(d) for d in np.asarray(self.nodes[n].output_type["output"]).ravel())
        return {n: jnp.zeros((batch, *shape(n.removeprefix("delayed:"))), jnp.float32) for n in names}

    def _step(self, params, state, x):
        """One SNN step on ``x (B, *input_shape)`` from ``state``: (new state, the outputs' values)."""
        values, new_state = {}, {}
        if self.before_update:  # a spiking node emits the spike of its membrane before this step's update
            for name in self.order:
                if isinstance(self.nodes[name], SPIKING):
                    values[name] = (state[name] > params[name]["v_threshold"]).astype(jnp.float32)
        for name in self.order:
            node, p = self.nodes[name], params.get(name, {})
            inputs = [state[f"delayed:{s}"] if delayed else values[s] for s, delayed in self.sources[name]]
            current = x if isinstance(node, nir.Input) else sum(inputs[1:], inputs[0])
            if isinstance(node, (nir.Input, nir.Output)):
                out = current
            elif isinstance(node, nir.Affine):
                out = current @ p["weight"].T + p["bias"]
            elif isinstance(node, nir.Linear):
                out = current @ p["weight"].T
            elif isinstance(node, nir.Scale):
                out = current * p["scale"]
            elif isinstance(node, nir.Threshold):
                out = (current > p["threshold"]).astype(jnp.float32)
            elif isinstance(node, nir.Flatten):
                shape = current.shape[1:]
                start, end = node.start_dim % len(shape), node.end_dim % len(shape)
                out = current.reshape(current.shape[0], *shape[:start], -1, *shape[end + 1:])
            elif isinstance(node, nir.Conv2d):
                out = _conv2d(node, p, current)
            else:  # a stateful node
                out, new_state[name] = self._neuron(node, p, state[name], current, values.get(name))
            values[name] = out
        for src in self.delayed_sources:
            new_state[f"delayed:{src}"] = values[src]
        return new_state, tuple(values[o] for o in self.outputs)

    def _neuron(self, node, p, v, current, spiked=None):
        dt = self.dt
        if isinstance(node, (nir.LIF, nir.LI)):
            updated = v + dt / p["tau"] * (p["v_leak"] - v + p["r"] * current)
        else:  # IF, I
            updated = v + dt * p["r"] * current
        if not isinstance(node, SPIKING):
            return updated, updated
        s = spiked if spiked is not None else (updated > p["v_threshold"]).astype(jnp.float32)
        if self.reset == "zero":
            return s, jnp.where(s > 0, p["v_reset"], updated)
        return s, updated - s * p["v_threshold"]

    def decide(self, params, state, obs):
        """One decision on ``obs (B, *input_shape)`` (flat, or ``(B, H, W, C)`` / flat HWC for an ``HWC``
        layout) from ``state``: (outputs, one ``(B, width)`` per name in ``outputs``; the state after it)."""
        obs = jnp.asarray(obs, jnp.float32)
        if self.layout == "HWC":
            c, h, w = self.input_shape
            obs = obs.reshape(-1, h, w, c).transpose(0, 3, 1, 2)
        obs = obs.reshape(-1, *self.input_shape)
        if "observation_low" in params.get("_observation", {}):
            obs = jnp.clip(obs, params["_observation"]["observation_low"], params["_observation"]["observation_high"])
        reset = set(self.reset_each_decision)
        state = {k: (jnp.zeros_like(v) if k.removeprefix("delayed:") in reset else v) for k, v in state.items()}

        def body(state, _):
            return self._step(params, state, obs)

        state, outputs = jax.lax.scan(body, state, None, length=self.steps)
        return tuple(o[-1] for o in outputs), state

    def act(self, params, state, obs):
        """``decide``, then the action: argmax of the first output, or the output itself (``mean``)."""
        outputs, state = self.decide(params, state, obs)
        first = outputs[0]
        return (jnp.argmax(first, -1) if self.action == "argmax" else first), state


def _conv2d(node: nir.Conv2d, p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """NIR's Conv2d (cross-correlation, OIHW weights) on ``x (B, C, H, W)``."""
    pair = lambda v: tuple(int(a) for a in np.broadcast_to(np.asarray(v), (2,)))
    padding = node.padding
    if isinstance(padding, str):
        pad = padding.upper()
    else:
        pad = [(a, a) for a in pair(padding)]
    y = jax.lax.conv_general_dilated(x, p["weight"], pair(node.stride), pad, rhs_dilation=pair(node.dilation),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                     feature_group_count=int(node.groups))  # fmt: skip
    return y + p["bias"].reshape(1, -1, 1, 1)


_FIELDS = {nir.Affine: ("weight", "bias"), nir.Linear: ("weight",), nir.Scale: ("scale",),
           nir.Threshold: ("threshold",), nir.Conv2d: ("weight", "bias"),
           nir.LIF: ("tau", "r", "v_leak", "v_threshold", "v_reset"), nir.IF: ("r", "v_threshold", "v_reset"),
           nir.LI: ("tau", "r", "v_leak"), nir.I: ("r",)}  # fmt: skip


def import_graph(graph: nir.NIRGraph | str, **overrides: Any) -> ImportedGraph:
    """``graph`` (or a ``.nir`` file's path) as an :class:`ImportedGraph`.

    ``overrides`` replace metadata entries (e.g. ``steps_per_decision=4`` for a graph from another tool).
    Raises ValueError for a node type it cannot run (naming the types it runs), missing metadata or a graph not
    reached from its input.
    """
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    meta = {**graph.metadata, **overrides}
    for key, what in REQUIRED_METADATA.items():
        if key not in meta:
            raise ValueError(f"the graph's metadata has no {key!r} ({what}): set graph.metadata[{key!r}] or pass "
                             f"{key}= to import_graph")  # fmt: skip
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph) or not isinstance(node, SUPPORTED):
            kinds = ", ".join(t.__name__ for t in SUPPORTED)
            why = f"node {name!r} is a {type(node).__name__}, which is not run here: nodes must be one of {kinds}"
            raise ValueError(why)  # noqa: TRY004 (the file's content is wrong, not the caller's type)
        if isinstance(node, nir.Conv2d) and int(node.groups) != 1:
            raise ValueError(f"node {name!r}: groups={node.groups} is invalid: must be 1")
    timing = _text(meta.get("spike_timing", "after_update"))
    spiking = frozenset(n for n, node in graph.nodes.items() if isinstance(node, SPIKING))
    order, closing = _evaluation_order(graph, spiking if timing == "before_update" else frozenset())
    sources = {n: tuple((s, (s, n) in closing) for s, d in graph.edges if d == n) for n in order}
    params = {}
    for name, node in graph.nodes.items():
        fields = _FIELDS.get(type(node), ())
        arrays = {f: getattr(node, f) for f in fields if getattr(node, f, None) is not None}
        if isinstance(node, nir.LIF | nir.IF) and "v_reset" not in arrays:
            arrays["v_reset"] = np.zeros_like(np.asarray(node.v_threshold))
        if arrays:
            params[name] = {f: jnp.asarray(np.asarray(a, np.float32)) for f, a in arrays.items()}
    if "observation_low" in meta:
        params["_observation"] = {k: jnp.asarray(np.asarray(meta[k], np.float32))
                                  for k in ("observation_low", "observation_high")}  # fmt: skip
    input_name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input))
    input_shape = tuple(int(d) for d in np.asarray(graph.nodes[input_name].input_type["input"]).ravel())
    outputs = _names(meta["outputs"])
    for o in outputs:
        if o not in graph.nodes:
            raise ValueError(f"outputs names {o!r}, which is not a node of the graph")
    stateful = tuple(n for n in order if isinstance(graph.nodes[n], STATEFUL))
    reset_each = _names(meta["reset_each_decision"]) if "reset_each_decision" in meta else stateful
    reset = _text(meta.get("reset", "subtract"))
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset={reset!r} in the graph's metadata is invalid: must be 'subtract' or 'zero'")
    return ImportedGraph(nodes=dict(graph.nodes), order=order, sources=sources, params=params,
                         input_shape=input_shape, outputs=outputs, steps=int(meta["steps_per_decision"]),
                         dt=float(meta.get("dt", 1.0)), reset=reset, before_update=timing == "before_update",
                         reset_each_decision=reset_each, action=_text(meta.get("action", "argmax")),
                         layout=_text(meta.get("observation_layout", "flat")),
                         metadata={k: v for k, v in meta.items()})  # fmt: skip


def nir_policy(path: str, env_id: str = ""):
    """The NIR file ``path`` as a :class:`~synjax.runs.saved_policy.Policy` on the JAX environment ``env_id``
    (default: the graph's ``env`` metadata), its parameters with a leading run axis of 1, and the
    :class:`ImportedGraph`: what ``synjax eval --nir`` plays."""
    from synjax.agents.networks import obs_encoder
    from synjax.envs import registry
    from synjax.runs.saved_policy import Policy

    graph = import_graph(path)
    env_id = env_id or _text(graph.metadata.get("env", ""))
    if not env_id:
        raise ValueError(f"env='' is invalid for {path}: its metadata names no environment; pass --env ID")
    env, env_params = registry.make(env_id)
    _, encode = obs_encoder(env, env_params)

    def act(params, obs, carry):
        return graph.act(params, carry, encode(obs))

    def initial_carry(params, batch_shape):
        return graph.initial_state(int(np.prod(batch_shape)))

    params = jax.tree.map(lambda x: x[None], graph.params)
    return Policy(env, env_params, None, act, initial_carry=initial_carry), params, graph
