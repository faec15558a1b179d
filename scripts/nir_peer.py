"""Play a synjax-exported spiking policy (a NIR graph) in a third-party simulator: Sinabs's NIR import.

Runs inside the peer's own venv (Sinabs, nir, torch, gymnasium); it imports neither synjax nor jax. Made with:

    python3 -m venv ~/.cache/synjax-bench/sinabs-3.1.3
    ~/.cache/synjax-bench/sinabs-3.1.3/bin/pip install "torch==2.13.0+cpu" "nir==1.0.8" "nirtorch==2.6" \
        "gymnasium==1.4.0" numpy pbr matplotlib
    ~/.cache/synjax-bench/sinabs-3.1.3/bin/pip install --no-deps "sinabs==3.1.3"

(``--no-deps`` because sinabs 3.1.3 pins ``nir<=1.0.4`` and requires ``samna``, a hardware toolkit that the
import does not use; nirtorch 2.6, which ``sinabs.from_nir`` calls, needs ``nir>=1.0.6``. torch is the CPU
wheel, from https://download.pytorch.org/whl/cpu where it can be reached.)

Usage:
    python nir_peer.py GRAPH.nir --observations OBS.npy --out ACTIONS.npy
        each row of OBS (N, *obs_shape) float32 is a separate decision from rest (every state zeroed); writes
        the argmax actions (N,) int64 (for an ``action: "mean"`` graph: the first output, (N, dim) float32)
    python nir_peer.py GRAPH.nir --episodes 10 --seed 0 --out RETURNS.json [--env CartPole-v1]
        plays gymnasium episodes (episode i reset with seed + i) and writes their returns and actions

What Sinabs 3.1.3 computes (sinabs/nir.py ``_import_sinabs_module``, sinabs/layers/functional/lif.py
``lif_forward_single``), per SNN step of dt = 1, all in float32:
    nir.LIF  -> LIFSqueeze(tau_mem=tau, norm_input=False, spike_threshold=v_threshold, spike_fn=MultiSpike,
                reset_fn=MembraneSubtract()):  v <- exp(-1/tau_mem) v + I  (r ignored, v_leak must be 0);
                spikes from the updated v in the same step; v <- v - spikes * threshold
    nir.IF   -> IAFSqueeze(spike_threshold=v_threshold, min_v_mem=-v_threshold): v <- v + I, same spiking,
                and v clipped below at -threshold (r ignored)
    nir.LI   -> ExpLeakSqueeze(tau_mem=tau, norm_input=False): v <- exp(-1/tau_mem) v + I, outputs v
                (raises unless r == 1 and v_leak == 0)
    nir.Affine -> torch.nn.Linear; Conv2d -> nn.Conv2d; Flatten -> nn.Flatten (start_dim + 1); Input/Output ->
                nn.Identity.  No nir.Linear (recurrence), nir.I or CubaLIF (an unmapped node is dropped).
The graph says (forward Euler, graph.metadata["dt"]): v <- (1 - dt/tau) v + (dt r / tau) I, and for IF
v <- v + dt r I; s = (v > v_threshold); subtract reset.  So, on a copy of the graph read from the file (the
file is never changed), this script sets for each LIF / LI node
    beta = 1 - dt / tau,  tau' = a float32 value for which torch's float32 exp(-1 / tau') equals float32(beta)
           exactly (starting from -1 / ln(beta) and stepping a few ulps), r' = 1, v_leak' = zeros (1-D)
and folds the input gain g = dt r / tau (IF: dt r) into the Affine node that feeds the neuron (its rows and
bias times g) when g is not exactly 1 (with the contract's r = tau and dt = 1, g is exactly 1: nothing is
folded).  A nir.I read-out (v <- v + dt r I: a rate decoder, or an LI whose decay reached 1) becomes an LI
with tau' = inf (Sinabs decays by exp(-1/inf) = 1), its gain dt r folded likewise.  The Euler values of the
file (tau = 1/(1 - beta), r = tau) would make Sinabs decay with exp(-(1 - beta)) instead of beta, and its LI
import refuses r != 1.
After the import: spike_fn of every LIF/IF layer is set from --spike-fn (default "strict", s = (v > threshold)
as the graph says; "single" is Sinabs's SingleSpike, v >= threshold; "multi" keeps what sinabs.from_nir gives,
MultiSpike, floor(v / threshold) spikes per step for v > 0), and the IF layers' min_v_mem clip is removed.
Refused with a one-line error (exit status 2): recurrent layers (nir.Linear, a cycle), reset other than
"subtract", v_leak != 0, tau < dt (beta < 0), a gain that cannot be folded, a node Sinabs does not import.
Not exact: for beta < 0.5 Sinabs's float32 exp(-1/tau') cannot always hit float32(beta) (a few ulps off).

Time: the imported module (nirtorch's GraphExecutor) takes (batch * T, *shape) with batch-major, time-minor
rows (sinabs.from_nir(..., num_timesteps=T)); every node's output is in the returned state's ``cache``, read
at the output node named first in metadata["outputs"] and at the T-th step.  The neuron states live in the
Sinabs layers' buffers across calls: before each decision the nodes named in metadata["reset_each_decision"]
are zeroed (all of them at an episode start), so a "carried" graph keeps its hidden membranes across the
decisions of an episode.  (--observations makes every row a decision from rest, for carried graphs too.)
"""

from __future__ import annotations

import argparse
import json
import sys

import nir
import numpy as np
import sinabs
import sinabs.layers as sl
import torch
from sinabs.activation import MultiSpike, SingleSpike


class StrictSingleSpike(torch.autograd.Function):
    """One spike per step where ``v_mem > threshold`` (the graph's rule; Sinabs's SingleSpike uses ``>=``)."""

    required_states = ["v_mem"]  # noqa: RUF012 (the attribute Sinabs reads)

    @staticmethod
    def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
        return (v_mem > spike_threshold).float()


SPIKE_FNS = {"strict": StrictSingleSpike, "single": SingleSpike, "multi": MultiSpike}


class Refused(Exception):
    pass


def _text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.shape == ():
        return _text(value[()])
    if isinstance(value, np.generic):
        return value.item()
    return value


def metadata(graph: nir.NIRGraph) -> dict:
    return {k: _text(v) for k, v in (graph.metadata or {}).items()}


def _names(text) -> list[str]:
    return [t for t in str(text or "").split(",") if t]


def _tau_for_beta(beta32: np.ndarray) -> np.ndarray:
    """float32 tau with float32 torch.exp(-1.0 / tau) == beta32 where possible (nearest otherwise)."""
    beta32 = beta32.astype(np.float32)
    with np.errstate(divide="ignore"):
        t0 = (-1.0 / np.log(beta32.astype(np.float64))).astype(np.float32)
    t0 = np.where(beta32 >= 1, np.float32(np.inf), t0).astype(np.float32)
    best = t0.copy()
    target = torch.from_numpy(beta32)
    err = (torch.exp(-1.0 / torch.from_numpy(t0)) - target).abs().numpy()
    lo, hi = t0.copy(), t0.copy()
    for _ in range(256):
        if not (err > 0).any():
            break
        lo = np.nextafter(lo, np.float32(0)).astype(np.float32)
        hi = np.nextafter(hi, np.float32(np.inf)).astype(np.float32)
        for cand in (lo, hi):
            e = (torch.exp(-1.0 / torch.from_numpy(cand)) - target).abs().numpy()
            better = e < err
            best = np.where(better, cand, best)
            err = np.where(better, e, err)
    return best.astype(np.float32)


def adapt(graph: nir.NIRGraph, dt: float) -> tuple[nir.NIRGraph, dict]:
    """A copy of ``graph`` whose parameters make Sinabs compute the graph's Euler step (see module doc)."""
    nodes = dict(graph.nodes)
    edges = list(graph.edges)
    info = {"folded_gain": []}
    preds = {n: [s for s, d in edges if d == n] for n in nodes}
    succs = {n: [d for s, d in edges if s == n] for n in nodes}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Linear) and not isinstance(node, nir.Affine):
            raise Refused(f"node {name!r} is nir.Linear (a recurrent layer): Sinabs imports no recurrence")
        known = (nir.Input, nir.Output, nir.Affine, nir.LIF, nir.IF, nir.LI, nir.I, nir.Conv2d, nir.Flatten,
                 nir.SumPool2d)  # fmt: skip
        if not isinstance(node, known):
            raise Refused(f"node {name!r} is {type(node).__name__}: not in Sinabs's NIR import")
    state = {}  # depth-first search for a cycle: 1 on the stack, 2 done

    def visit(n):
        state[n] = 1
        for d in succs[n]:
            if state.get(d) == 1 or (d not in state and visit(d)):
                return True
        state[n] = 2
        return False

    if any(n not in state and visit(n) for n in nodes):
        raise Refused("the graph has a cycle (a recurrent layer): Sinabs imports no recurrence")
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I)):
            continue
        r = np.asarray(node.r, np.float64)
        if isinstance(node, nir.IF):
            beta, gain = None, dt * r
        elif isinstance(node, nir.I):  # an integrator read-out: Sinabs's LI with tau = inf (decay 1)
            beta, gain = np.ones_like(r), dt * r
        else:
            tau = np.asarray(node.tau, np.float64)
            if np.any(np.asarray(node.v_leak) != 0):
                raise Refused(f"node {name!r} has v_leak != 0: Sinabs's LIF/LI have no leak potential")
            beta = 1.0 - dt / tau
            if np.any(beta < 0) or np.any(beta >= 1):
                raise Refused(f"node {name!r} has tau outside [dt, inf) (beta = 1 - dt/tau not in [0, 1))")
            gain = dt * r / tau
        gain32 = gain.astype(np.float32)
        if np.any(gain32 != 1):
            src = preds[name]
            if len(src) != 1 or not isinstance(graph.nodes[src[0]], nir.Affine) or succs[src[0]] != [name]:
                raise Refused(f"node {name!r}: input gain dt*r/tau != 1 and no lone Affine to fold it into")
            aff = nodes[src[0]]
            g = gain.reshape(-1)
            w = (np.asarray(aff.weight, np.float64) * g[:, None]).astype(np.float32)
            b = (np.asarray(aff.bias, np.float64) * g).astype(np.float32)
            nodes[src[0]] = nir.Affine(weight=w, bias=b)
            info["folded_gain"].append(name)
        shape = np.shape(node.r)
        ones = np.ones(shape, np.float32)
        if isinstance(node, nir.IF):
            new = nir.IF(r=ones, v_threshold=np.asarray(node.v_threshold, np.float32))
        else:
            tau_s = _tau_for_beta(beta.astype(np.float32)).reshape(shape)
            if isinstance(node, nir.LIF):
                new = nir.LIF(tau=tau_s, r=ones, v_leak=np.zeros(shape, np.float32),
                              v_threshold=np.asarray(node.v_threshold, np.float32))  # fmt: skip
            else:
                new = nir.LI(tau=tau_s, r=ones, v_leak=np.zeros(shape, np.float32))
            # sinabs checks v_leak / r with the builtin any(), which fails on arrays of more than one axis
            new.v_leak = np.zeros(int(np.prod(shape)), np.float32)
            if not isinstance(node, nir.LIF):
                new.r = np.ones(int(np.prod(shape)), np.float32)
        nodes[name] = new
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}), type_check=False), info


class Peer:
    """The imported network and the graph's decision protocol."""

    def __init__(self, path: str, spike_fn: str = "strict"):
        graph = nir.read(path)
        self.meta = metadata(graph)
        m = self.meta
        if str(m.get("reset", "subtract")) != "subtract":
            raise Refused(f"reset {m.get('reset')!r}: Sinabs's NIR import resets by subtraction only")
        if str(m.get("spike_timing", "after_update")) != "after_update":
            print(f"nir_peer: warning: spike_timing {m.get('spike_timing')!r}: the graph is not exact",
                  file=sys.stderr)  # fmt: skip
        self.dt = float(m.get("dt", 1.0))
        self.T = int(m["steps_per_decision"])
        outputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
        self.outputs = _names(m.get("outputs")) or outputs
        self.action = str(m.get("action", "argmax"))
        self.layout = str(m.get("observation_layout", "flat"))
        self.low = np.asarray(m["observation_low"], np.float32) if "observation_low" in m else None
        self.high = np.asarray(m["observation_high"], np.float32) if "observation_high" in m else None
        adapted, self.adapt_info = adapt(graph, self.dt)
        self.model = sinabs.from_nir(adapted, num_timesteps=self.T)
        self.model.eval()
        self.layers = {}
        for name, mod in self.model.named_children():
            if isinstance(mod, sl.StatefulLayer):
                self.layers[name] = mod
            if isinstance(mod, (sl.LIF, sl.IAF)) and not isinstance(mod, sl.ExpLeak):
                mod.spike_fn = SPIKE_FNS[spike_fn]
                if isinstance(mod, sl.IAF):
                    mod.min_v_mem = None
        stateful = set(self.layers)
        self.reset_each = set(_names(m["reset_each_decision"])) if "reset_each_decision" in m else stateful
        self.carried = bool(stateful - self.reset_each)

    def reset(self, names=None):
        for name, mod in self.layers.items():
            if names is None or name in names:
                mod.reset_states()

    def _prepare(self, obs: np.ndarray) -> torch.Tensor:
        obs = np.asarray(obs, np.float32)
        if self.layout == "HWC":
            obs = np.moveaxis(obs, -1, -3)
        if self.low is not None:
            obs = np.clip(obs, self.low, self.high)
        x = torch.from_numpy(np.ascontiguousarray(obs))
        b = x.shape[0]
        return x.unsqueeze(1).expand(b, self.T, *x.shape[1:]).reshape(b * self.T, *x.shape[1:])

    @torch.no_grad()
    def step(self, obs: np.ndarray) -> np.ndarray:
        """One decision for a batch ``obs (B, *shape)``, states as they are: the first output after step T."""
        _, state = self.model(self._prepare(obs))
        out = state.cache[self.outputs[0]]
        return out.reshape(obs.shape[0], self.T, *out.shape[1:])[:, -1].numpy()

    def act(self, out: np.ndarray) -> np.ndarray:
        return np.argmax(out, axis=-1) if self.action == "argmax" else out

    def decide_from_rest(self, obs: np.ndarray, chunk: int = 1024) -> np.ndarray:
        res = []
        for i in range(0, len(obs), chunk):
            self.reset()
            res.append(self.act(self.step(obs[i:i + chunk])))
        return np.concatenate(res)

    def play(self, env_id: str, episodes: int, seed: int) -> dict:
        import gymnasium as gym

        env = gym.make(env_id)
        returns, actions = [], []
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            self.reset()
            total, acts, done = 0.0, [], False
            while not done:
                if acts:
                    self.reset(self.reset_each)
                a = self.act(self.step(np.asarray(obs, np.float32)[None]))[0]
                a = int(a) if self.action == "argmax" else a.tolist()
                obs, reward, terminated, truncated, _ = env.step(a)
                total += float(reward)
                acts.append(a)
                done = terminated or truncated
            returns.append(total)
            actions.append(acts)
        env.close()
        return {"env": env_id, "seed": seed, "episodes": episodes, "returns": returns, "actions": actions,
                "mean_return": float(np.mean(returns)), "carried": self.carried,
                "simulator": f"sinabs {sinabs.__version__}", "nir": getattr(nir, "__version__", "?"),
                "torch": torch.__version__, "adapt": self.adapt_info}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("graph")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--observations", help="(N, *obs_shape) float32 .npy: one decision from rest per row")
    g.add_argument("--episodes", type=int, help="play this many gymnasium episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--out", required=True)
    p.add_argument("--spike-fn", choices=sorted(SPIKE_FNS), default="strict")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        peer = Peer(args.graph, spike_fn=args.spike_fn)
        if args.observations:
            obs = np.load(args.observations).astype(np.float32)
            out = peer.decide_from_rest(obs)
            np.save(args.out, out.astype(np.int64) if peer.action == "argmax" else out.astype(np.float32))
        else:
            if peer.action != "argmax" and args.env == "CartPole-v1":
                raise Refused(f"action {peer.action!r}: CartPole needs a discrete (argmax) policy")
            res = peer.play(args.env, args.episodes, args.seed)
            res["spike_fn"] = args.spike_fn
            with open(args.out, "w") as f:
                json.dump(res, f)
            print(f"returns {res['returns']} mean {res['mean_return']:.1f}")
    except Refused as e:
        print(f"nir_peer: refused: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
