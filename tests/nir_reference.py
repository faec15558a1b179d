"""An independent NumPy reference interpreter of NIR graphs: the test suite's check of synjax's NIR exporter.

Written from the contract in the notes on synjax's NIR conventions and from nir's node classes only; it never
imports synjax. Every value is a float32 array, so that results compare closely with a float32 JAX run.

One SNN step evaluates the nodes in a fixed order: a depth-first search from the Input node(s) along the edges
(children in the order of ``graph.edges``), reversed post-order. An edge u -> v to a node v still on the search
stack (v is an ancestor of u: the edge from the later node back to an earlier one in a cycle, e.g.
``recurrent_i -> lif_i``) is cycle-closing: v is computed before u, so the edge delivers u's output of the
previous step (zeros at the first step and after a reset). Every other edge delivers u's output of this step.
"""

from __future__ import annotations

import nir
import numpy as np

STATEFUL = (nir.LIF, nir.IF, nir.LI, nir.I)
SPIKING = (nir.LIF, nir.IF)
SUPPORTED = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, *STATEFUL)


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _plain(value):
    """A metadata value as nir.read returns it (bytes, numpy scalars, 0-d or string arrays) as plain Python."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _plain(value.item())
        if value.dtype.kind in "SOU":
            return [_plain(v) for v in value.tolist()]
        return value
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _names(value) -> list[str]:
    """Node names from a comma-separated str (or a list of str); None or "" gives []."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [p.strip() for p in parts if p.strip()]


def _pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints (tuple, list or array, as nir.read gives it) as (int, int)."""
    a = np.asarray(value).ravel()
    if a.size == 1:
        return int(a[0]), int(a[0])
    if a.size == 2:
        return int(a[0]), int(a[1])
    raise ValueError(f"Conv2d {what} must be an int or a pair of ints, got {value!r}")


def conv2d(x, weight, bias, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Cross-correlation of x (C, H, W) with weight (O, C, kh, kw) [OIHW] plus bias (O,): (O, H', W') float32.

    stride, padding, dilation: int or (h, w); padding also "valid", or "same" at stride 1. groups must be 1.
    """
    if int(np.asarray(groups)) != 1:
        raise ValueError(f"Conv2d groups={int(np.asarray(groups))} is not supported (only groups=1)")
    x, weight, bias = _f32(x), _f32(weight), _f32(bias)
    if x.ndim != 3 or weight.ndim != 4 or weight.shape[1] != x.shape[0]:
        raise ValueError(f"Conv2d: input {x.shape} does not match OIHW weight {weight.shape}")
    o, _, kh, kw = weight.shape
    (sh, sw), (dh, dw) = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            ph = pw = (0, 0)
        elif padding == "same" and (sh, sw) == (1, 1):
            th, tw = dh * (kh - 1), dw * (kw - 1)
            ph, pw = (th // 2, th - th // 2), (tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"Conv2d padding {padding!r} is not supported at stride {(sh, sw)}")
    else:
        p = _pair(padding, "padding")
        ph, pw = (p[0], p[0]), (p[1], p[1])
    xp = np.pad(x, ((0, 0), ph, pw))
    ho = (xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"Conv2d: kernel {weight.shape} does not fit input {x.shape}")
    out = np.zeros((o, ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            out += np.tensordot(weight[:, :, i, j], patch, axes=(1, 0))
    return out + bias.reshape(-1, 1, 1)


def flatten(x: np.ndarray, start_dim: int, end_dim: int) -> np.ndarray:
    """Row-major flatten of the unbatched x's dims start_dim..end_dim (inclusive, negative counts from the end)."""
    nd = x.ndim
    s, e = int(start_dim), int(end_dim)
    s, e = s + nd if s < 0 else s, e + nd if e < 0 else e
    if not 0 <= s <= e < nd:
        raise ValueError(f"Flatten start_dim={start_dim}, end_dim={end_dim} invalid for shape {x.shape}")
    return x.reshape(x.shape[:s] + (int(np.prod(x.shape[s : e + 1])),) + x.shape[e + 1 :])


class ReferenceGraph:
    """A NIR graph run step by step in float32 NumPy, with synjax's decision protocol on top.

    Attributes: order (node names in evaluation order), cycle_edges ([(u, v)], delayed by one step), outputs
    (Output node names, metadata "outputs" first), metadata (normalized), v (node -> membrane/state array),
    spikes (LIF/IF node -> spikes (*shape) of the last step), last_spikes (LIF/IF node -> (T, *shape) of the
    last decision), last_outputs (output -> (T, *shape) of the last decision).
    """

    def __init__(self, graph: nir.NIRGraph):
        self.nodes = dict(graph.nodes)
        self.edges = [(str(u), str(v)) for u, v in graph.edges]
        self.metadata = {str(k): _plain(v) for k, v in (graph.metadata or {}).items()}
        for name, node in self.nodes.items():
            if not isinstance(node, SUPPORTED):
                raise ValueError(f"node {name!r}: unsupported NIR node type {type(node).__name__}")  # noqa: TRY004
        if len(set(self.edges)) != len(self.edges):
            raise ValueError("duplicate edges")
        self.inputs = [n for n, node in self.nodes.items() if isinstance(node, nir.Input)]
        for u, v in self.edges:
            if u not in self.nodes or v not in self.nodes:
                raise ValueError(f"edge ({u!r}, {v!r}) names a node that is not in the graph")
            if v in self.inputs:
                raise ValueError(f"edge ({u!r}, {v!r}) leads into an Input node")
        if not self.inputs:
            raise ValueError("the graph has no Input node")
        self.input_shapes = {
            n: tuple(int(s) for s in np.asarray(self.nodes[n].input_type["input"]).ravel())
            for n in self.inputs
        }
        output_nodes = [n for n, node in self.nodes.items() if isinstance(node, nir.Output)]
        named = _names(self.metadata.get("outputs"))
        for n in named:
            if n not in output_nodes:
                raise ValueError(f"metadata outputs names {n!r}, which is not an Output node")
        self.outputs = named + [n for n in output_nodes if n not in named]
        if not self.outputs:
            raise ValueError("the graph has no Output node")

        self.dt = np.float32(self.metadata.get("dt", 1.0))
        self.reset_mode = str(self.metadata.get("reset", "subtract"))
        if self.reset_mode not in ("subtract", "zero"):
            raise ValueError(f"metadata reset must be 'subtract' or 'zero', got {self.reset_mode!r}")
        self.steps_per_decision = int(self.metadata.get("steps_per_decision", 1))
        if self.steps_per_decision < 1:
            raise ValueError(f"steps_per_decision must be >= 1, got {self.steps_per_decision}")
        self.reset_each_decision = _names(self.metadata.get("reset_each_decision"))
        for n in self.reset_each_decision:
            if n not in self.nodes:
                raise ValueError(f"reset_each_decision names {n!r}, which is not a node")
        self.action = str(self.metadata.get("action", "argmax"))
        if self.action not in ("argmax", "mean"):
            raise ValueError(f"metadata action must be 'argmax' or 'mean', got {self.action!r}")
        self.layout = str(self.metadata.get("observation_layout", "flat"))
        self.obs_low = self._bound("observation_low")
        self.obs_high = self._bound("observation_high")

        self.params = {n: self._params(n, node) for n, node in self.nodes.items()}
        self.order, self.cycle_edges = self._schedule()
        closing = set(self.cycle_edges)
        self.incoming = {n: [(u, (u, v) in closing) for u, v in self.edges if v == n] for n in self.nodes}
        self.stateful = [n for n in self.order if isinstance(self.nodes[n], STATEFUL)]
        self.spiking = [n for n in self.order if isinstance(self.nodes[n], SPIKING)]
        # A dry step on zeros (cycle-closing edges left out) gives every node's output shape.
        self.v = {n: np.zeros(self.params[n]["r"].shape, np.float32) for n in self.stateful}
        zeros = {n: np.zeros(s, np.float32) for n, s in self.input_shapes.items()}
        self.shapes = {n: a.shape for n, a in self._run(zeros, delayed=None)[0].items()}
        self.delayed: dict[tuple[str, str], np.ndarray] = {}
        self.spikes: dict[str, np.ndarray] = {}
        self.last_spikes: dict[str, np.ndarray] = {}
        self.last_outputs: dict[str, np.ndarray] = {}
        self.reset()

    # ------------------------------------------------------------------------------------------ construction

    def _bound(self, key: str):
        if self.metadata.get(key) is None:
            return None
        if len(self.inputs) != 1:
            raise ValueError(f"metadata {key} needs exactly one Input node")
        bound = _f32(self.metadata[key])
        if bound.shape != self.input_shapes[self.inputs[0]]:
            raise ValueError(f"metadata {key} has shape {bound.shape}, the input {self.input_shapes}")
        return bound

    @staticmethod
    def _params(name: str, node) -> dict:
        if isinstance(node, nir.Affine):
            return {"weight": _f32(node.weight), "bias": _f32(node.bias)}
        if isinstance(node, nir.Linear):
            return {"weight": _f32(node.weight)}
        if isinstance(node, nir.Conv2d):
            if int(np.asarray(node.groups)) != 1:
                raise ValueError(f"node {name!r}: Conv2d groups={node.groups} is not supported (only 1)")
            padding = node.padding if isinstance(node.padding, str) else _pair(node.padding, "padding")
            return {
                "weight": _f32(node.weight),
                "bias": _f32(node.bias),
                "stride": _pair(node.stride, "stride"),
                "padding": padding,
                "dilation": _pair(node.dilation, "dilation"),
            }
        if isinstance(node, nir.Flatten):
            return {"start_dim": int(node.start_dim), "end_dim": int(node.end_dim)}
        keys = {
            nir.LIF: ("tau", "r", "v_leak", "v_threshold", "v_reset"),
            nir.IF: ("r", "v_threshold", "v_reset"),
        }
        keys |= {nir.LI: ("tau", "r", "v_leak"), nir.I: ("r",)}
        params = {k: _f32(getattr(node, k)) for k in keys.get(type(node), ())}
        if params and any(p.shape != params["r"].shape for p in params.values()):
            raise ValueError(f"node {name!r}: parameter shapes differ {[p.shape for p in params.values()]}")
        return params

    def _schedule(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(evaluation order, cycle-closing edges): DFS from the inputs, reversed post-order, back edges."""
        children = {n: [] for n in self.nodes}
        for u, v in self.edges:
            children[u].append(v)
        mark: dict[str, int] = {}  # 1: on the search stack, 2: finished
        post, back = [], []
        for root in self.inputs:
            mark[root] = 1
            stack = [(root, iter(children[root]))]
            while stack:
                node, rest = stack[-1]
                child = next(rest, None)
                if child is None:
                    stack.pop()
                    mark[node] = 2
                    post.append(node)
                elif mark.get(child) == 1:
                    back.append((node, child))
                elif child not in mark:
                    mark[child] = 1
                    stack.append((child, iter(children[child])))
        unreached = [n for n in self.nodes if n not in mark]
        if unreached:
            raise ValueError(f"nodes not reachable from the input: {unreached}")
        return post[::-1], back

    # ------------------------------------------------------------------------------------------ one step

    def _forward(self, name: str, i: np.ndarray, v):
        """One node on its summed input i: (output, new state or None, spikes or None)."""
        node, p, dt = self.nodes[name], self.params[name], self.dt
        if isinstance(node, nir.Output):
            return i, None, None
        if isinstance(node, (nir.Affine, nir.Linear)):
            if i.ndim != 1 or p["weight"].ndim != 2 or p["weight"].shape[1] != i.shape[0]:
                raise ValueError(f"node {name!r}: weight {p['weight'].shape} does not fit input {i.shape}")
            y = p["weight"] @ i
            return (y + p["bias"] if "bias" in p else y), None, None
        if isinstance(node, nir.Conv2d):
            return conv2d(i, p["weight"], p["bias"], p["stride"], p["padding"], p["dilation"]), None, None
        if isinstance(node, nir.Flatten):
            return flatten(i, p["start_dim"], p["end_dim"]), None, None
        if i.shape != v.shape:
            raise ValueError(f"node {name!r}: input shape {i.shape} differs from the neurons' {v.shape}")
        if isinstance(node, (nir.LIF, nir.LI)):
            v = v + dt / p["tau"] * (p["v_leak"] - v + p["r"] * i)
        else:  # IF, I
            v = v + dt * p["r"] * i
        if not isinstance(node, SPIKING):
            return v, v, None
        s = v > p["v_threshold"]
        v = v - s * p["v_threshold"] if self.reset_mode == "subtract" else np.where(s, p["v_reset"], v)
        s = s.astype(np.float32)
        return s, v, s

    def _run(self, xs: dict, delayed):
        """One step without side effects: (outputs of all nodes, new states, spikes). delayed None: dry run."""
        out, state, spikes = {}, {}, {}
        for name in self.order:
            if name in xs:
                out[name] = xs[name]
                continue
            total = None
            for u, closing in self.incoming[name]:
                if closing and delayed is None:
                    continue
                val = delayed[(u, name)] if closing else out[u]
                if total is not None and val.shape != total.shape:
                    raise ValueError(f"node {name!r}: incoming shapes differ ({total.shape}, {val.shape})")
                total = val if total is None else total + val
            out[name], v, s = self._forward(name, total, self.v.get(name))
            if v is not None:
                state[name] = v
            if s is not None:
                spikes[name] = s
        return out, state, spikes

    def _inputs(self, x) -> dict[str, np.ndarray]:
        xs = dict(x) if isinstance(x, dict) else {self.inputs[0]: x} if len(self.inputs) == 1 else None
        if xs is None or set(xs) != set(self.inputs):
            raise ValueError(f"step needs a value for each input {self.inputs}")
        xs = {n: _f32(a) for n, a in xs.items()}
        for n, a in xs.items():
            if a.shape != self.input_shapes[n]:
                raise ValueError(f"input {n!r} has shape {self.input_shapes[n]}, got {a.shape}")
        return xs

    def step(self, x) -> dict[str, np.ndarray]:
        """One SNN step on one observation x (the Input's shape, no batch axis; a dict for several Inputs).

        Returns output name -> value (that Output's shape) after this step; updates v, spikes and the
        delayed values of the cycle-closing edges.
        """
        out, state, self.spikes = self._run(self._inputs(x), self.delayed)
        self.v.update(state)
        for u, v in self.cycle_edges:
            self.delayed[(u, v)] = out[u]
        return {n: out[n].copy() for n in self.outputs}

    def reset(self, names=None) -> None:
        """Zero the state of the named nodes (list or comma-separated str; None: every state).

        The delayed values of the cycle-closing edges that start or end at a named node are zeroed too.
        """
        if names is None:
            names = list(self.nodes)
        names = _names(names) if isinstance(names, str) else list(names)
        for n in names:
            if n not in self.nodes:
                raise ValueError(f"reset: no node {n!r}")
            if n in self.v:
                self.v[n] = np.zeros_like(self.v[n])
        for u, v in self.cycle_edges:
            if u in names or v in names:
                self.delayed[(u, v)] = np.zeros(self.shapes[u], np.float32)

    # ------------------------------------------------------------------------------------------ decisions

    def _observation(self, obs) -> np.ndarray:
        """The observation as the input sees it: HWC transposed to CHW where the layout says so, clipped."""
        if len(self.inputs) != 1:
            raise ValueError("decide needs exactly one Input node")
        shape = self.input_shapes[self.inputs[0]]
        x = _f32(obs)
        if x.shape != shape and self.layout == "HWC" and x.ndim == 3 and x.transpose(2, 0, 1).shape == shape:
            x = x.transpose(2, 0, 1)
        if x.shape != shape:
            raise ValueError(f"observation shape {x.shape} does not fit the input {shape} ({self.layout})")
        if self.obs_low is not None:
            x = np.maximum(x, self.obs_low)
        if self.obs_high is not None:
            x = np.minimum(x, self.obs_high)
        return x

    def decide(self, obs) -> dict[str, np.ndarray]:
        """One decision: zero reset_each_decision, present the clipped obs for steps_per_decision steps.

        obs: the Input's shape (or HWC of a CHW input when observation_layout is "HWC"). Returns each output's
        value after the last step; fills last_spikes (T, *shape) and last_outputs (T, *shape).
        """
        self.reset(self.reset_each_decision)
        x = self._observation(obs)
        spikes = {n: [] for n in self.spiking}
        trace = {n: [] for n in self.outputs}
        for _ in range(self.steps_per_decision):
            y = self.step(x)
            for n, seq in spikes.items():
                seq.append(self.spikes[n])
            for n, seq in trace.items():
                seq.append(y[n])
        self.last_spikes = {n: np.stack(s) for n, s in spikes.items()}
        self.last_outputs = {n: np.stack(t) for n, t in trace.items()}
        return y

    def act(self, obs):
        """The action of one decision: int argmax of the first output, or the first output itself ("mean")."""
        y = self.decide(obs)[self.outputs[0]]
        return int(np.argmax(y)) if self.action == "argmax" else y

    def episode_start(self) -> None:
        """Zero every state (the start of an episode)."""
        self.reset()
