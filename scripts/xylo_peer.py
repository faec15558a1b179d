"""Run an int8 spiking policy on Xylo's bit-accurate simulator (PyPI ``xylosim``, ``xylosim.v1``), standalone.

Runs in its own venv (no jax, no synjax; never ``samna`` nor ``rockpool.devices.xylo``)::

    python3 -m venv ~/.cache/synjax-bench/xylosim
    ~/.cache/synjax-bench/xylosim/bin/pip install xylosim numpy gymnasium  # xylosim 0.1.3: sdist, g++
    PY=~/.cache/synjax-bench/xylosim/bin/python
    $PY scripts/xylo_peer.py run  spec.npz out.npz [--check]        # simulate decisions on xylosim
    $PY scripts/xylo_peer.py selftest [--cases 300] [--seed 0]      # xylosim vs the NumPy model, full traces
    $PY scripts/xylo_peer.py bench [--nhid 64 --t 8 --nin 4 --nout 2 --n 2000]
    $PY scripts/xylo_peer.py decide POLICY.npz OBS.npy --out ACTIONS.npy [--details D.npz] [--check]
    $PY scripts/xylo_peer.py play POLICY.npz --episodes 10 --seed 0 --out OUT.json   # gymnasium CartPole-v1

A policy .npz (``decide``, ``play``; made by ``scripts/bench_xylo.py``) is a spec as below without
``inputs``, plus its observation encoder: ``obs_mean (D,)``, ``obs_var (D,)``, ``obs_clip``, ``rate_range``,
``T`` (synjax's ``poisson`` encoder, ported bit-exactly: :func:`encode`), optional ``obs_count`` (input
spikes per encoder spike), ``bias_counts (T,)`` (an always-on last input channel's spikes per step) and
``extra`` (steps without input after the T). Each observation is a decision from rest; the action is the
argmax of ``vmem_out_next`` (the read-out after one more step, below). ``play`` resets episode i with
``seed + i`` and writes the returns, each episode's first observation and the hidden spikes per decision.

Input .npz (``run``): ``w_in (Nin, Nhid[, 2])`` int8, optional ``w_rec (Nhid, Nhid[, 2])`` int8, ``w_out
(Nhid, Nout)`` int8, ``threshold`` (scalar or (Nhid,)), ``threshold_out`` (scalar or (Nout,)), ``dash_mem``,
``dash_syn``, optional ``dash_syn_2`` (used when the weights have a synapse axis of 2), ``dash_mem_out``,
``dash_syn_out`` (scalars or per neuron), ``weight_shift_in / _rec / _out`` (scalars), ``inputs (N, T, Nin)``
input spike counts per step (0..15). Each decision runs from rest (``XyloLayer.reset_all()``).

Output .npz: ``vmem_out (N, Nout)`` output membranes after step T (as recorded: after the output neurons'
own subtract reset); ``vmem_out_next (N, Nout)`` after one more step with no input: Xylo delivers hidden
spikes of step t to the readout at step t+1, so this is exactly the readout membrane after step T of a model
whose readout takes the *same* step's hidden spikes (see ``equations`` below); ``spikes_hidden (N, Nhid)`` and
``spikes_out (N, Nout)`` spike counts over steps 1..T; ``spikes_out_next (N, Nout)`` over steps 2..T+1.

Integer equations of ``xylosim.v1`` (read from the xylosim 0.1.3 sdist: ``src/v1/cpp/XyloLayer.cpp``
``XyloLayer::evolve / deliver_spikes / evolve_neurons`` and ``src/v1/cpp/XyloIAFNeuron.cpp``
``XyloIAFNeuron::evolve / decayState / decay / receiveSpike``, ``safe_add`` in ``XyloIAFNeuron.h``), one time
step t, all state int16, sat() = clamp to [-32768, 32767] applied after *every single* addition::

    dec(x, d)   = x >> d (arithmetic) if that is nonzero, else sign(x)        (decay by at least 1 toward 0)
    w~          = int16(w << weight_shift)                                      (int8 weight, left shift)
    # 1 deliver (hidden synapse k in {0, 1}; spike counts clipped to 15 per input channel, 31 per neuron):
    I_k <- I_k  + sum_i  c_in[t, i]   * w~_in[i, :, k]       one sat-add per spike, inputs i = 0..Nin-1 first,
    I_k <- I_k  + sum_j  n_hid[t-1, j] * w~_rec[j, :, k]     then the hidden neurons' spikes of the last step
    Io  <- Io   + sum_j  n_hid[t-1, j] * w~_out[j, :]        (readout: also the previous step's hidden spikes)
    # 2 every neuron, hidden then readout:
    I_k <- I_k - dec(I_k, dash_syn_k)                        synaptic decay AFTER this step's input
    V   <- V   - dec(V, dash_mem)
    V   <- sat(V + sum_k I_k)
    n   <- min(max_spikes, floor(V / thr)) if V >= thr else 0    (max_spikes 31 hidden, 1 readout)
    V   <- V - n * thr                                       subtract reset, same step
    n_hid[t] <- n (delivered at t+1)

So with ``dash_syn = 0`` the synaptic current (this step's input included) is erased before it reaches the
membrane (I - (I >> 0) = 0): nothing ever reaches V. The smallest usable synaptic decay is ``dash_syn = 1``
(I <- I - floor(I / 2) = ceil(I / 2)): a current-based LIF, not the plain LIF ``V <- beta V + W s``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

I16_MIN, I16_MAX = -32768, 32767
MAX_INP_SPIKES, MAX_SPIKES, MAX_OUT_SPIKES = 15, 31, 1
LIMITS = {"Nin": 16, "Nhid": 1000, "Nout": 8}


class SpecError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- specification
def _vec(x, n, name):
    a = np.asarray(x)
    if a.ndim == 0:
        a = np.full(n, a)
    a = a.reshape(-1)
    if a.size != n:
        raise SpecError(f"{name} needs {n} entries, has {a.size}")
    if a.dtype.kind == "f":
        if not np.all(a == np.round(a)):
            raise SpecError(f"{name} must be integer")
    elif a.dtype.kind not in "iub":
        raise SpecError(f"{name} must be integer, is {a.dtype}")
    return a.astype(np.int64)


def _int8_weights(w, name):
    w = np.asarray(w)
    if w.dtype.kind not in "iu":
        raise SpecError(f"{name} must be an integer array (int8), is {w.dtype}")
    if w.size and (w.min() < -128 or w.max() > 127):
        raise SpecError(f"{name} out of int8 range [{w.min()}, {w.max()}]")
    return w.astype(np.int64)


def load_spec(d) -> dict:
    """Validate a spec (mapping of arrays); raise SpecError with one line on any violation."""
    if "w_in" not in d or "w_out" not in d:
        raise SpecError("spec needs w_in and w_out")
    w_in = _int8_weights(d["w_in"], "w_in")
    w_out = _int8_weights(d["w_out"], "w_out")
    if w_in.ndim == 2:
        w_in = w_in[..., None]
    if w_in.ndim != 3 or w_in.shape[2] not in (1, 2):
        raise SpecError(f"w_in must be (Nin, Nhid) or (Nin, Nhid, 2), is {tuple(np.shape(d['w_in']))}")
    if w_out.ndim != 2:
        raise SpecError(f"w_out must be (Nhid, Nout), is {w_out.shape}")
    nin, nhid, nsyn = w_in.shape
    nout = w_out.shape[1]
    if w_out.shape[0] != nhid:
        raise SpecError(f"w_out has {w_out.shape[0]} rows, w_in has {nhid} hidden neurons")
    if nin > LIMITS["Nin"] or nhid > LIMITS["Nhid"] or nout > LIMITS["Nout"] or min(nin, nhid, nout) < 1:
        raise SpecError(
            f"Xylo v1 allows 1 <= Nin <= 16, Nhid <= 1000, Nout <= 8; got Nin={nin} Nhid={nhid} Nout={nout}"
        )
    w_rec = d.get("w_rec", None)
    if w_rec is None or np.size(w_rec) == 0:
        w_rec = np.zeros((nhid, nhid, nsyn), np.int64)
    else:
        w_rec = _int8_weights(w_rec, "w_rec")
        if w_rec.ndim == 2:
            w_rec = w_rec[..., None]
        if w_rec.shape[:2] != (nhid, nhid) or w_rec.shape[2] not in (1, 2):
            raise SpecError(f"w_rec must be (Nhid, Nhid[, 2]) with Nhid={nhid}, is {w_rec.shape}")
        if w_rec.shape[2] != nsyn:  # pad the one with a single synapse
            nsyn = 2
            w_in = np.concatenate([w_in, np.zeros_like(w_in)], 2) if w_in.shape[2] == 1 else w_in
            w_rec = np.concatenate([w_rec, np.zeros_like(w_rec)], 2) if w_rec.shape[2] == 1 else w_rec
    s = {"w_in": w_in, "w_rec": w_rec, "w_out": w_out, "nin": nin, "nhid": nhid, "nout": nout, "nsyn": nsyn}
    s["threshold"] = _vec(d.get("threshold", 1), nhid, "threshold")
    s["threshold_out"] = _vec(d.get("threshold_out", I16_MAX), nout, "threshold_out")
    for k in ("threshold", "threshold_out"):
        if s[k].min() < 1 or s[k].max() > I16_MAX:
            raise SpecError(f"{k} must be in [1, 32767] (int16, > 0), got [{s[k].min()}, {s[k].max()}]")
    s["dash_mem"] = _vec(d.get("dash_mem", 1), nhid, "dash_mem")
    s["dash_syn"] = _vec(d.get("dash_syn", 1), nhid, "dash_syn")
    s["dash_syn_2"] = _vec(d.get("dash_syn_2", 1), nhid, "dash_syn_2")
    s["dash_mem_out"] = _vec(d.get("dash_mem_out", 1), nout, "dash_mem_out")
    s["dash_syn_out"] = _vec(d.get("dash_syn_out", 1), nout, "dash_syn_out")
    for k in ("dash_mem", "dash_syn", "dash_syn_2", "dash_mem_out", "dash_syn_out"):
        if s[k].min() < 0 or s[k].max() > 15:
            raise SpecError(f"{k} must be in [0, 15] (4-bit), got [{s[k].min()}, {s[k].max()}]")
    for k in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        v = np.asarray(d.get(k, 0))
        if v.size != 1 or v.dtype.kind not in "iu" and not (v.dtype.kind == "f" and v == np.round(v)):
            raise SpecError(f"{k} must be one integer")
        v = int(v.reshape(()))
        if not 0 <= v <= 15:
            raise SpecError(f"{k} must be in [0, 15], got {v}")
        s[k] = v
    return s


def check_inputs(inputs, nin) -> np.ndarray:
    x = np.asarray(inputs)
    if x.ndim != 3 or x.shape[2] != nin:
        raise SpecError(f"inputs must be (N, T, Nin={nin}), is {x.shape}")
    if x.dtype.kind not in "iub" and not (x.dtype.kind == "f" and np.all(x == np.round(x))):
        raise SpecError(f"inputs must be integer spike counts, is {x.dtype}")
    if x.size and (x.min() < 0 or x.max() > MAX_INP_SPIKES):
        raise SpecError(
            f"input spike counts must be in [0, {MAX_INP_SPIKES}] per channel and step, "
            f"got [{x.min()}, {x.max()}]"
        )
    return x.astype(np.int64)


# ---------------------------------------------------------------------------------------------------- encoder
#: murmur3's 32-bit finalizer constants and the golden-ratio increment (``synjax.agents.spiking._MIX``)
_MIX = (0x85EBCA6B, 0xC2B2AE35, 0x9E3779B9)


def _fmix(h: np.ndarray) -> np.ndarray:
    """murmur3's finalizer on uint32 words (wrapping arithmetic), any shape."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(_MIX[0])
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(_MIX[1])
    return h ^ (h >> np.uint32(16))


def observation_uniforms(obs: np.ndarray, steps: int, width: int) -> np.ndarray:
    """NumPy port of ``synjax.agents.spiking.observation_uniforms`` (bit-identical): ``obs (B, D)`` ->
    ``(steps, B, width)`` float32 uniforms in [0, 1) on the grid 2**-24, a fixed function of the float32 bits
    of each observation row (``synjax.envs.random_bits.uniform_from_bits`` with its default 24 top bits)."""
    with np.errstate(over="ignore"):
        words = np.ascontiguousarray(obs, np.float32).view(np.uint32)  # (B, D)
        position = np.arange(words.shape[-1], dtype=np.uint32) * np.uint32(_MIX[2])
        seed = _fmix(_fmix(words + position).sum(-1, dtype=np.uint32) + np.uint32(_MIX[2]))  # (B,)
        index = np.arange(steps * width, dtype=np.uint32).reshape(steps, 1, width) + np.uint32(1)
        bits = _fmix(seed[None, :, None] ^ (index * np.uint32(_MIX[2])))
    return ((bits >> np.uint32(8)) & np.uint32(0xFFFFFF)).astype(np.float32) * np.float32(2.0**-24)


def poisson_spikes(spec: dict, obs: np.ndarray) -> np.ndarray:
    """synjax's ``poisson`` encoder in float32 NumPy: ``obs (B, D)`` raw observations -> ``(B, T, 2 D)`` 0/1
    spikes: ``obs_n = clip((obs - mean) / sqrt(var + 1e-8), -clip, clip)``, ``rate = clip([obs_n, -obs_n] /
    range, 0, 1)``, spike where the observation's hash uniform is below the rate. ``spec`` gives ``obs_mean
    (D,)``, ``obs_var (D,)``, ``obs_clip``, ``rate_range`` and ``T``."""
    obs = np.asarray(obs, np.float32)
    mean, var = np.asarray(spec["obs_mean"], np.float32), np.asarray(spec["obs_var"], np.float32)
    clip, rng = np.float32(spec["obs_clip"]), np.float32(spec["rate_range"])
    x = np.clip((obs - mean) / np.sqrt(var + np.float32(1e-8)), -clip, clip)
    rate = np.clip(np.concatenate([x, -x], -1) / rng, np.float32(0), np.float32(1))  # (B, 2D)
    u = observation_uniforms(obs, int(spec["T"]), rate.shape[-1])  # (T, B, 2D)
    return (u < rate).transpose(1, 0, 2).astype(np.int64)


def count_spikes(spec: dict, obs: np.ndarray) -> np.ndarray:
    """A count code of a ``direct``-encoded policy's constant input current: ``obs (B, D)`` -> ``(B, T, 2 D)``
    spike counts, the same every step: ``round(count_scale * [obs_n, -obs_n])`` clipped to 0..15 (Xylo's input
    counts per step), ``obs_n`` normalized and clipped as synjax does. The mapped input weights are the float
    network's ``[W; -W] / count_scale``, so the current is ``obs_n W`` up to the counts' rounding."""
    obs = np.asarray(obs, np.float32)
    mean, var = np.asarray(spec["obs_mean"], np.float32), np.asarray(spec["obs_var"], np.float32)
    x = np.clip((obs - mean) / np.sqrt(var + np.float32(1e-8)), -np.float32(spec["obs_clip"]), spec["obs_clip"])
    counts = np.clip(np.rint(np.concatenate([x, -x], -1) * float(spec["count_scale"])), 0, MAX_INP_SPIKES)
    return np.repeat(counts.astype(np.int64)[:, None], int(spec["T"]), 1)


def input_spikes(spec: dict, obs: np.ndarray) -> np.ndarray:
    """The encoder the spec names (``encoder``: ``poisson``, the default, or ``count``): ``(B, T, 2 D)``."""
    count = str(spec.get("encoder", "poisson")) == "count"
    return count_spikes(spec, obs) if count else poisson_spikes(spec, obs)


def encode(spec: dict, obs: np.ndarray) -> np.ndarray:
    """The Xylo input of each decision: ``obs (B, D)`` -> spike counts ``(B, T + extra, Nin)``.

    Channels: the ``2 D`` Poisson channels, ``obs_count`` input spikes per encoder spike (1, or 2 where the
    mapping undoes the synaptic filter); then, where the spec has ``bias_counts (T,)``, one always-on channel
    with that many spikes per step (the hidden biases). The ``extra`` last steps carry no input at all."""
    x = input_spikes(spec, obs) * int(spec.get("obs_count", 1))
    b, t, _ = x.shape
    if "bias_counts" in spec and np.size(spec["bias_counts"]):
        bias = np.asarray(spec["bias_counts"], np.int64).reshape(1, t, 1)
        x = np.concatenate([x, np.broadcast_to(bias, (b, t, 1))], -1)
    extra = int(spec.get("extra", 0))
    return np.concatenate([x, np.zeros((b, extra, x.shape[-1]), np.int64)], 1)


def load_policy(path) -> tuple[dict, dict]:
    """A policy ``.npz``: (the validated Xylo spec, its arrays: the encoder's ``obs_mean``, ``obs_var``,
    ``obs_clip``, ``rate_range``, ``T`` and optional ``obs_count``, ``bias_counts``, ``extra``)."""
    with np.load(path) as f:
        d = {k: f[k] for k in f.files}
    for k in ("obs_mean", "obs_var", "obs_clip", "rate_range", "T"):
        if k not in d:
            raise SpecError(f"a policy spec needs {k} (the observation encoder)")
    return load_spec(d), d


# ---------------------------------------------------------------------------------------------------- xylosim
class XyloPeer:
    """One ``xylosim.v1.XyloLayer`` built once from a validated spec.

    The layer stores raw pointers to the Python-owned ``XyloSynapse`` objects, so the lists are kept alive
    here (dropping them makes ``evolve`` segfault)."""

    def __init__(self, s: dict):
        from xylosim.v1 import XyloLayer, XyloSynapse

        self.s = s

        def syn_lists(
            w,
        ):  # w (pre, post, nsyn) -> per pre: synapse 0 targets ascending, then synapse 1 (as rockpool)
            out = []
            for pre in range(w.shape[0]):
                row = []
                for k in range(w.shape[2]):
                    for post in np.nonzero(w[pre, :, k])[0]:
                        row.append(XyloSynapse(int(post), k, int(w[pre, post, k])))
                out.append(row)
            return out

        self._syn_in = syn_lists(s["w_in"])
        self._syn_rec = syn_lists(s["w_rec"])
        self._syn_out = syn_lists(s["w_out"][..., None])
        if s["nsyn"] == 2:
            dash_syns = [[int(a), int(b)] for a, b in zip(s["dash_syn"], s["dash_syn_2"])]
        else:
            dash_syns = [[int(a)] for a in s["dash_syn"]]
        self.layer = XyloLayer(
            synapses_in=self._syn_in,
            synapses_rec=self._syn_rec,
            synapses_out=self._syn_out,
            aliases=[[] for _ in range(s["nhid"])],
            threshold=[int(v) for v in s["threshold"]],
            threshold_out=[int(v) for v in s["threshold_out"]],
            weight_shift_inp=s["weight_shift_in"],
            weight_shift_rec=s["weight_shift_rec"],
            weight_shift_out=s["weight_shift_out"],
            dash_mem=[int(v) for v in s["dash_mem"]],
            dash_mem_out=[int(v) for v in s["dash_mem_out"]],
            dash_syns=dash_syns,
            dash_syns_out=[[int(v)] for v in s["dash_syn_out"]],
            name="synjax_xylo_peer",
        )

    def trace(self, x: np.ndarray) -> dict:
        """One decision from rest: ``x (T, Nin)`` -> full per-step recordings (T, ...)."""
        L = self.layer
        L.reset_all()
        out = L.evolve(x.tolist())
        r = {
            "out_spikes": np.asarray(out, np.int64).reshape(len(x), -1),
            "hid_spikes": np.asarray(L.rec_recurrent_spikes, np.int64).reshape(len(x), -1),
            "v_mem": np.asarray(L.rec_v_mem, np.int64).T,
            "i_syn": np.asarray(L.rec_i_syn, np.int64).T,
            "v_mem_out": np.asarray(L.rec_v_mem_out, np.int64).T,
            "i_syn_out": np.asarray(L.rec_i_syn_out, np.int64).T,
        }
        if self.s["nsyn"] == 2:
            r["i_syn2"] = np.asarray(L.rec_i_syn2, np.int64).T
        return r

    def decide(self, inputs: np.ndarray) -> dict:
        """``inputs (N, T, Nin)`` -> readout after step T and T+1 (one extra step without input)."""
        n, t, nin = inputs.shape
        L = self.layer
        res = {
            "vmem_out": np.zeros((n, self.s["nout"]), np.int64),
            "vmem_out_next": np.zeros((n, self.s["nout"]), np.int64),
            "spikes_hidden": np.zeros((n, self.s["nhid"]), np.int64),
            "spikes_out": np.zeros((n, self.s["nout"]), np.int64),
            "spikes_out_next": np.zeros((n, self.s["nout"]), np.int64),
        }
        pad = [[0] * nin]
        for i in range(n):
            L.reset_all()
            out = np.asarray(L.evolve(inputs[i].tolist() + pad), np.int64)
            vo = np.asarray(L.rec_v_mem_out, np.int64)  # (Nout, T+1)
            res["vmem_out"][i] = vo[:, t - 1]
            res["vmem_out_next"][i] = vo[:, t]
            res["spikes_hidden"][i] = np.asarray(L.rec_recurrent_spikes[:t], np.int64).sum(0)
            res["spikes_out"][i] = out[:t].sum(0)
            res["spikes_out_next"][i] = out[1:].sum(0)
        return res


# ------------------------------------------------------------------------------------------------ NumPy model
def _dec(x, d):
    dv = x >> d
    return np.where(dv == 0, np.sign(x), dv)


def _shifted(w, sh):
    """int16(w << sh) as the C++ does (int8 weight promoted to int, shifted, passed as int16_t)."""
    v = w.astype(np.int64) << sh
    return ((v + 32768) % 65536) - 32768


def _deliver(I, counts_list, weights_list):
    """Sequential saturating adds, exactly as xylosim: per pre neuron in order, one add per spike.

    I (N, post, K); counts (N, pre); weights (pre, post, K). Fast path (plain sum) when no partial sum can
    leave int16; otherwise the per-spike loop."""
    pos = np.zeros_like(I)
    neg = np.zeros_like(I)
    tot = np.zeros_like(I)
    for c, w in zip(counts_list, weights_list):
        tot += np.einsum("np,pqk->nqk", c, w)
        pos += np.einsum("np,pqk->nqk", c, np.maximum(w, 0))
        neg += np.einsum("np,pqk->nqk", c, np.minimum(w, 0))
    slow = np.any(I + pos > I16_MAX, axis=(1, 2)) | np.any(I + neg < I16_MIN, axis=(1, 2))  # per decision
    out = I + tot
    if not slow.any():
        return out
    J = I[slow]
    for c, w in zip(counts_list, weights_list):
        c = c[slow]
        for p in range(w.shape[0]):
            if not np.any(c[:, p]):
                continue
            for r in range(int(c[:, p].max())):
                m = (c[:, p] > r)[:, None, None]
                J = np.where(m, np.clip(J + w[p][None], I16_MIN, I16_MAX), J)
    out[slow] = J
    return out


def model_run(s: dict, inputs: np.ndarray, record: bool = False) -> dict:
    """Vectorised over the N decisions: ``inputs (N, T, Nin)`` from rest. Returns per-step recordings
    (shape (N, T, ...)) of the same quantities as :meth:`XyloPeer.trace`."""
    n, T, _ = inputs.shape
    nhid, nout, K = s["nhid"], s["nout"], s["nsyn"]
    w_in = _shifted(s["w_in"], s["weight_shift_in"])
    w_rec = _shifted(s["w_rec"], s["weight_shift_rec"])
    w_out = _shifted(s["w_out"][..., None], s["weight_shift_out"])
    d_syn = np.stack([s["dash_syn"], s["dash_syn_2"]], -1)[:, :K][None]  # (1, nhid, K)
    d_mem, thr = s["dash_mem"][None], s["threshold"][None]
    d_syn_o, d_mem_o, thr_o = (
        s["dash_syn_out"][None, :, None],
        s["dash_mem_out"][None],
        s["threshold_out"][None],
    )
    I = np.zeros((n, nhid, K), np.int64)
    V = np.zeros((n, nhid), np.int64)
    Io = np.zeros((n, nout, 1), np.int64)
    Vo = np.zeros((n, nout), np.int64)
    spk = np.zeros((n, nhid), np.int64)
    rec = {k: [] for k in ("out_spikes", "hid_spikes", "v_mem", "i_syn", "i_syn2", "v_mem_out", "i_syn_out")}
    for t in range(T):
        c_in = np.minimum(inputs[:, t], MAX_INP_SPIKES)
        c_h = np.minimum(spk, MAX_SPIKES)
        I = _deliver(I, [c_in, c_h], [w_in, w_rec])
        Io = _deliver(Io, [c_h], [w_out])
        # hidden neurons
        I = I - _dec(I, d_syn)
        V = V - _dec(V, d_mem)
        V = np.clip(V + I.sum(-1), I16_MIN, I16_MAX)
        spk = np.where(V >= thr, np.minimum(V // thr, MAX_SPIKES), 0)
        V = V - spk * thr
        # readout neurons
        Io = Io - _dec(Io, d_syn_o)
        Vo = Vo - _dec(Vo, d_mem_o)
        Vo = np.clip(Vo + Io[..., 0], I16_MIN, I16_MAX)
        so = np.where(Vo >= thr_o, np.minimum(Vo // thr_o, MAX_OUT_SPIKES), 0)
        Vo = Vo - so * thr_o
        if record:
            rec["out_spikes"].append(so)
            rec["hid_spikes"].append(spk)
            rec["v_mem"].append(V)
            rec["i_syn"].append(I[..., 0])
            rec["v_mem_out"].append(Vo)
            rec["i_syn_out"].append(Io[..., 0])
            if K == 2:
                rec["i_syn2"].append(I[..., 1])
        else:
            rec["v_mem_out"].append(Vo)
            rec["hid_spikes"].append(spk)
            rec["out_spikes"].append(so)
    return {k: np.stack(v, 1) for k, v in rec.items() if v}


def model_decide(s: dict, inputs: np.ndarray) -> dict:
    n, t, nin = inputs.shape
    x = np.concatenate([inputs, np.zeros((n, 1, nin), inputs.dtype)], 1)
    r = model_run(s, x)
    return {
        "vmem_out": r["v_mem_out"][:, t - 1],
        "vmem_out_next": r["v_mem_out"][:, t],
        "spikes_hidden": r["hid_spikes"][:, :t].sum(1),
        "spikes_out": r["out_spikes"][:, :t].sum(1),
        "spikes_out_next": r["out_spikes"][:, 1:].sum(1),
    }


# --------------------------------------------------------------------------------------------------- commands
def random_spec(rng, nin=None, nhid=None, nout=None, nsyn=None, rec=None, sat=False) -> dict:
    nin = nin or int(rng.integers(1, 17))
    nhid = nhid or int(rng.integers(1, 40))
    nout = nout or int(rng.integers(1, 9))
    nsyn = nsyn or int(rng.integers(1, 3))
    rec = bool(rng.integers(0, 2)) if rec is None else rec

    def w(shape, density):
        return (rng.integers(-128, 128, shape) * (rng.random(shape) < density)).astype(np.int8)

    d = {
        "w_in": w((nin, nhid, nsyn), rng.uniform(0.2, 1.0)),
        "w_out": w((nhid, nout), rng.uniform(0.2, 1.0)),
        "threshold": rng.integers(1, 2000 if not sat else 30000, nhid),
        "threshold_out": rng.integers(1, 32768, nout) if rng.random() < 0.5 else 32767,
        "dash_mem": rng.integers(0, 16, nhid),
        "dash_syn": rng.integers(0, 16, nhid),
        "dash_syn_2": rng.integers(0, 16, nhid),
        "dash_mem_out": rng.integers(0, 16, nout),
        "dash_syn_out": rng.integers(0, 16, nout),
        "weight_shift_in": int(rng.integers(0, 9 if sat else 5)),
        "weight_shift_rec": int(rng.integers(0, 9 if sat else 5)),
        "weight_shift_out": int(rng.integers(0, 9 if sat else 5)),
    }
    if rec:
        d["w_rec"] = w((nhid, nhid, nsyn), rng.uniform(0.1, 0.6))
    if nsyn == 1:
        d["w_in"] = d["w_in"][..., 0]
        if rec:
            d["w_rec"] = d["w_rec"][..., 0]
    return d


def cmd_selftest(a) -> int:
    rng = np.random.default_rng(a.seed)
    keys = ("out_spikes", "hid_spikes", "v_mem", "i_syn", "i_syn2", "v_mem_out", "i_syn_out")
    n_ok = n_steps = n_sat = n_multi = 0
    first_bad = None
    for case in range(a.cases):
        d = random_spec(rng, sat=(case % 3 == 2))
        s = load_spec(d)
        T = int(rng.integers(1, 25))
        N = int(rng.integers(1, 5))
        x = (
            rng.integers(0, 16, (N, T, s["nin"])) * (rng.random((N, T, s["nin"])) < rng.uniform(0.1, 1))
        ).astype(np.int64)
        peer = XyloPeer(s)
        m = model_run(s, x, record=True)
        ok = True
        for i in range(N):
            tr = peer.trace(x[i])
            for k in keys:
                if k not in tr:
                    continue
                if not np.array_equal(tr[k], m[k][i]):
                    ok = False
                    if first_bad is None:
                        first_bad = (case, i, k, tr[k].ravel()[:20], m[k][i].ravel()[:20])
            n_sat += int(np.any(np.abs(tr["v_mem"]) >= I16_MAX) or np.any(np.abs(tr["i_syn"]) >= I16_MAX))
            n_multi += int(tr["hid_spikes"].max(initial=0) > 1)
        # decide(): xylosim vs NumPy on the readout quantities
        pd, md = peer.decide(x), model_decide(s, x)
        ok &= all(np.array_equal(pd[k], md[k]) for k in pd)
        n_ok += ok
        n_steps += N * T
    # the delay claim: readout after step T+1 == readout after step T of a readout fed the same step's spikes
    same_ok = 0
    for case in range(50):
        s = load_spec(random_spec(rng))
        x = rng.integers(0, 16, (3, int(rng.integers(1, 12)), s["nin"]))
        hid = model_run(s, x, record=True)["hid_spikes"]  # (N, T, Nhid) from rest
        w_out = _shifted(s["w_out"], s["weight_shift_out"])
        Io = np.zeros((3, s["nout"]), np.int64)
        Vo = np.zeros_like(Io)
        for t in range(x.shape[1]):
            Io = _deliver(Io[..., None], [hid[:, t]], [w_out[..., None]])[..., 0]
            Io = Io - _dec(Io, s["dash_syn_out"][None])
            Vo = Vo - _dec(Vo, s["dash_mem_out"][None])
            Vo = np.clip(Vo + Io, I16_MIN, I16_MAX)
            Vo = Vo - np.where(Vo >= s["threshold_out"][None], 1, 0) * s["threshold_out"][None]
        same_ok += np.array_equal(Vo, XyloPeer(s).decide(x)["vmem_out_next"])
    print(f"delay: xylosim vmem_out_next == same-step-readout model at T in {same_ok}/50 random specs")
    print(
        f"selftest: {n_ok}/{a.cases} random specs agree exactly (all recorded states, every step; "
        f"{n_steps} decision-steps; {n_sat} decisions touched int16 saturation, {n_multi} had >1 spike/step)"
    )
    if first_bad:
        print("first mismatch (case, decision, key, xylosim, model):", first_bad)

    # dash_syn = 0 probe, and the dash_syn = 1 reading
    for dsyn in (0, 1):
        s = load_spec(
            {
                "w_in": np.array([[100]], np.int8),
                "w_out": np.array([[1]], np.int8),
                "threshold": 10000,
                "dash_mem": 15,
                "dash_syn": dsyn,
                "dash_syn_out": 1,
                "dash_mem_out": 15,
            }
        )
        tr = XyloPeer(s).trace(np.array([[1], [0], [0], [0], [0]]))
        print(
            f"probe dash_syn={dsyn}, dash_mem=15, one input spike of weight 100 at step 1: "
            f"I_syn={tr['i_syn'][:, 0].tolist()} V={tr['v_mem'][:, 0].tolist()}"
        )
    s = load_spec(
        {
            "w_in": np.array([[100]], np.int8),
            "w_out": np.array([[1]], np.int8),
            "threshold": 50,
            "dash_mem": 15,
            "dash_syn": 1,
        }
    )
    tr = XyloPeer(s).trace(np.array([[1], [0], [0]]))
    print(
        f"probe threshold=50, dash_syn=1, input 100 at step 1: V={tr['v_mem'][:, 0].tolist()} "
        f"spikes={tr['hid_spikes'][:, 0].tolist()} (spike iff V >= thr)"
    )
    s = load_spec(
        {
            "w_in": np.array([[100]], np.int8),
            "w_out": np.array([[1]], np.int8),
            "threshold": 1,
            "dash_mem": 1,
            "dash_syn": 1,
            "dash_syn_out": 1,
            "dash_mem_out": 4,
            "threshold_out": 32767,
        }
    )
    tr = XyloPeer(s).trace(np.array([[1], [0], [0], [0]]))
    print(
        f"probe readout delay: hidden spikes per step={tr['hid_spikes'][:, 0].tolist()} "
        f"readout I_syn={tr['i_syn_out'][:, 0].tolist()} V={tr['v_mem_out'][:, 0].tolist()}"
    )
    return 0 if n_ok == a.cases and same_ok == 50 else 1


def cmd_bench(a) -> int:
    rng = np.random.default_rng(a.seed)
    d = random_spec(rng, nin=a.nin, nhid=a.nhid, nout=a.nout, nsyn=1, rec=a.rec)
    d.update(
        threshold=rng.integers(a.thr // 2, a.thr * 3 // 2 + 1, a.nhid),
        threshold_out=32767,
        dash_mem=2,
        dash_syn=1,
        dash_mem_out=4,
        dash_syn_out=1,
        weight_shift_in=0,
        weight_shift_rec=0,
        weight_shift_out=0,
    )
    if a.rec:
        d["w_rec"] = (d["w_rec"] // 4).astype(np.int8)
    s = load_spec(d)
    x = (rng.random((a.n, a.t, a.nin)) < 0.5).astype(np.int64) * rng.integers(
        1, a.max_count + 1, (a.n, a.t, a.nin)
    )
    t0 = time.perf_counter()
    peer = XyloPeer(s)
    t_build = time.perf_counter() - t0
    peer.decide(x[:10])
    t0 = time.perf_counter()
    pd = peer.decide(x)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    md = model_decide(s, x)
    t_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(min(a.n, 500)):
        model_decide(s, x[i : i + 1])
    t_np1 = (time.perf_counter() - t0) / min(a.n, 500)
    agree = all(np.array_equal(pd[k], md[k]) for k in pd)
    print(
        f"bench Nin={a.nin} Nhid={a.nhid} Nout={a.nout} T={a.t} rec={a.rec} N={a.n}: "
        f"build {t_build * 1e3:.1f} ms; "
        f"xylosim {a.n / t_sim:.0f} decisions/s (T+1={a.t + 1} steps each, reset_all per decision); "
        f"NumPy model batched {a.n / t_np:.0f} decisions/s, one at a time {1 / t_np1:.0f} decisions/s; "
        f"agree={agree}; hidden spikes per neuron per step={pd['spikes_hidden'].mean() / a.t:.2f}"
    )
    return 0 if agree else 1


def cmd_run(a) -> int:
    with np.load(a.spec) as f:
        d = {k: f[k] for k in f.files}
    try:
        s = load_spec(d)
        if "inputs" not in d:
            raise SpecError("spec needs inputs (N, T, Nin)")
        x = check_inputs(d["inputs"], s["nin"])
    except SpecError as e:
        print(f"refused: {e}")
        return 2
    if x.shape[1] < 1:
        print("refused: T must be >= 1")
        return 2
    t0 = time.perf_counter()
    r = XyloPeer(s).decide(x)
    dt = time.perf_counter() - t0
    info = f"xylo_peer: {x.shape[0]} decisions x T={x.shape[1]} in {dt:.3f} s"
    if a.check:
        m = model_decide(s, x)
        agree = all(np.array_equal(r[k], m[k]) for k in r)
        r["model_agrees"] = np.array(agree)
        info += f"; NumPy model agrees exactly: {agree}"
    np.savez(a.out, **r)
    print(info)
    return 0


def cmd_decide(a) -> int:
    """Each observation of ``OBS.npy (N, D)`` a decision from rest on xylosim -> actions ``(N,)``."""
    try:
        s, d = load_policy(a.spec)
        obs = np.load(a.obs).astype(np.float32)
        x = check_inputs(encode(d, obs), s["nin"])
    except SpecError as e:
        print(f"refused: {e}")
        return 2
    t0 = time.perf_counter()
    r = XyloPeer(s).decide(x)
    dt = time.perf_counter() - t0
    actions = np.argmax(r["vmem_out_next"], -1)
    np.save(a.out, actions)
    if a.details:
        np.savez(a.details, inputs=x, **r)
    info = f"xylo_peer decide: {len(obs)} decisions x {x.shape[1] + 1} steps in {dt:.2f} s"
    if a.check:
        m = model_decide(s, x)
        info += f"; NumPy model agrees exactly: {all(np.array_equal(r[k], m[k]) for k in r)}"
    print(info)
    return 0


def cmd_play(a) -> int:
    """gymnasium episodes (episode i reset with ``seed + i``) with the Xylo layer deciding every step."""
    import gymnasium as gym

    try:
        s, d = load_policy(a.spec)
    except SpecError as e:
        print(f"refused: {e}")
        return 2
    peer = XyloPeer(s)
    env = gym.make(a.env)
    returns, lengths, first_obs, hidden = [], [], [], np.zeros(s["nhid"])
    t0 = time.perf_counter()
    for ep in range(a.episodes):
        obs, _ = env.reset(seed=a.seed + ep)
        first_obs.append(np.asarray(obs, np.float32).tolist())
        total, steps, done = 0.0, 0, False
        while not done:
            r = peer.decide(check_inputs(encode(d, np.asarray(obs, np.float32)[None]), s["nin"]))
            hidden += r["spikes_hidden"][0]
            obs, reward, terminated, truncated, _ = env.step(int(np.argmax(r["vmem_out_next"][0])))
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    dt = time.perf_counter() - t0
    out = {"env": a.env, "seed": a.seed, "episodes": a.episodes, "returns": returns,
           "mean_return": float(np.mean(returns)), "decisions": int(sum(lengths)), "seconds": dt,
           "first_obs": first_obs, "steps_per_decision": int(d["T"]) + int(d.get("extra", 0)) + 1,
           "hidden_spikes_per_decision": (hidden / max(1, sum(lengths))).tolist()}  # fmt: skip
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"xylo_peer play: {a.episodes} episodes of {a.env}, returns {returns} "
          f"(mean {out['mean_return']:.1f}), {sum(lengths)} decisions in {dt:.1f} s")  # fmt: skip
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("spec")
    r.add_argument("out")
    r.add_argument("--check", action="store_true")
    t = sub.add_parser("selftest")
    t.add_argument("--cases", type=int, default=300)
    t.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bench")
    for k, v in (
        ("nin", 4),
        ("nhid", 64),
        ("nout", 2),
        ("t", 8),
        ("n", 2000),
        ("seed", 0),
        ("thr", 200),
        ("max_count", 1),
    ):
        b.add_argument(f"--{k}", type=int, default=v)
    b.add_argument("--rec", action="store_true")
    de = sub.add_parser("decide", help="each observation of OBS.npy a decision from rest -> ACTIONS.npy")
    de.add_argument("spec")
    de.add_argument("obs")
    de.add_argument("--out", required=True)
    de.add_argument("--details", help="also write the inputs, readout membranes and spike counts (.npz)")
    de.add_argument("--check", action="store_true", help="also run the NumPy model and compare")
    pl = sub.add_parser("play", help="gymnasium episodes with the Xylo layer deciding")
    pl.add_argument("spec")
    pl.add_argument("--episodes", type=int, default=10)
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--env", default="CartPole-v1")
    pl.add_argument("--out", required=True)
    a = p.parse_args(argv)
    cmds = {"run": cmd_run, "selftest": cmd_selftest, "bench": cmd_bench, "decide": cmd_decide,
            "play": cmd_play}  # fmt: skip
    return cmds[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
