"""A spiking CartPole policy mapped onto Xylo v1's integer neurons and run on its bit-accurate simulator.

    python scripts/bench_xylo.py --run RUN [--seed-index 0] [--episodes 10] [--seed 0] [--json OUT.json]

RUN is an inner-mode spiking PPO/A2C run on CartPole-v1 with one hidden layer, the ``nir`` discretization, the
``poisson`` encoder and the membrane decoder (``synjax ppo --network snn --snn-discretization nir
--snn-encoder poisson --hidden 64 ...``). Steps:

1. plays ``--episodes`` deterministic gymnasium CartPole-v1 episodes (episode i reset with ``seed + i``) with
   synjax's float policy (JAX) and keeps every observation it decided on;
2. maps the network onto Xylo's parameters (:func:`to_xylo`, two mappings, below) and runs each mapping on
   xylosim 0.1.3 (``scripts/xylo_peer.py`` in its own venv, made on first use): its action on every kept
   observation (each a decision from rest) and its own episodes, on the same reset seeds;
3. prints the table (agreement with the float policy, return, hidden firing) and the ablation of the gap: each
   of Xylo's departures from the float network switched on alone in a float model of it (:func:`simulate`),
   and the integer model (the NumPy model of ``xylo_peer.py``, bit-exact to xylosim).

The float network per decision (T steps from rest): input spikes ``x_t (8,)`` (synjax's hash-Poisson encoder,
ported bit-exactly to NumPy in ``xylo_peer.py``), hidden ``v <- beta v + x_t W + b``, spike if ``v > thr``,
``v -= thr``; read-out ``u <- beta_li u + s_t Wo + bo``; action ``argmax u_T``. Xylo v1 differs: every
synapse is a current ``I <- I + w s; I <- I - dec(I, dash_syn)`` with ``dash_syn >= 1`` (0 erases it), so an
input reaches the membrane spread over the following steps (half at once with ``dash_syn = 1``); decays are
``1 - 2**-dash`` and at least 1 LSB a step; a neuron emits ``floor(V / thr)`` spikes per step (up to 31);
weights are int8 (times a power-of-two ``weight_shift``), state int16; there are no biases; hidden spikes
reach the read-out one step later.

Mappings (int8 weights ``round(w * scale)``, one scale per layer, ``scale = 127 / max |w|``; hidden threshold
``round(thr * scale * 2**weight_shift)`` with the largest shift that keeps the float model's membrane range in
int16; ``dash_mem = round(-log2(1 - beta))`` in 0..15; read-out ``threshold_out = 32767``, so it never
spikes, read after step T + 1, which undoes the one-step delay):

- ``direct``: one Xylo neuron per float neuron, ``dash_syn = 1`` (the smallest: a spike's charge arrives
  1/2, 1/4, ... over the steps). An always-on input channel (1 spike per step) carries the hidden biases; the
  read-out biases come from a hidden bias neuron that it drives (one spike per step), or are dropped.
- ``inverse``: the same, plus neurons that undo the synaptic filter exactly. With ``dash_syn = 1`` a current
  fed ``2 c_t - c_{t-1}`` each step holds exactly ``c_t`` after its decay (in integers too: the sum is even).
  So each input spike is sent twice (count 2), and a relay neuron per input channel, which fires exactly on
  its channel's spikes (its self-inhibition applies the same trick to it), sends ``-w`` one step later
  through the recurrent weights; the bias channel sends 2 spikes at step 1, then 1. For the read-out, each
  hidden neuron has a twin (same inputs, so the same spikes: ``2 Wo`` together) and a relay that repeats its
  spikes one step later (``-Wo``). Xylo then computes the float network's equations up to multi-spike, int8
  weights and the 1-LSB leak: 3 (H + 1) + 8 hidden neurons, 9 input channels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import xylo_peer as xp
from peer_venv import clean_env, peer_python

from synjax.runs.saved_network import load_network

XYLOSIM = ("xylosim", ["xylosim==0.1.3", "numpy", "gymnasium"])
PEER = Path(__file__).resolve().parent / "xylo_peer.py"
#: input spikes per step per normalized unit of a direct-encoded policy's observation (15 counts = 3 std)
COUNT_SCALE = 5.0
I16_MAX = 32767


# --------------------------------------------------------------------------------------- the float network
def float_params(net) -> dict:
    """The float network's parameters (float64) and its encoder's settings, from a ``SpikingActorCritic``:
    ``W (2D, H)``, ``b (H,)``, ``thr``, ``beta`` (clipped to [0, 1] as the forward pass does), ``Wo (H, A)``,
    ``bo (A,)``, ``beta_li``; ``obs_mean``, ``obs_var`` (float32), ``obs_clip``, ``rate_range``, ``T``."""
    ok = (net.time_mode == "inner" and net.encoder in ("poisson", "direct") and net.decoder == "membrane"
          and net.discretization == "nir" and len(net.neurons) == 1 and net.neuron == "LIF"
          and net.obs_norm is not None)  # fmt: skip
    if not ok:
        raise SystemExit("bench_xylo maps inner-mode, poisson- or direct-encoded (with --norm-obs), "
                         "membrane-decoded networks with one hidden LIF layer in the nir discretization")  # fmt: skip

    def f64(v):
        return np.asarray(v[...], np.float64)

    beta, beta_li = float(f64(net.neurons[0].beta)), float(f64(net.actor_li.beta))
    W, code = f64(net.linears[0].kernel), {"encoder": "poisson"}
    if net.encoder == "direct":  # a constant current obs_n W: the count code [obs_n, -obs_n] * K, weights [W; -W] / K
        code = {"encoder": "count", "count_scale": COUNT_SCALE}
        W = np.concatenate([W, -W], 0) / COUNT_SCALE
    return {**code, "W": W, "b": f64(net.linears[0].bias), "thr": float(net.threshold),
            "beta": float(np.clip(beta, 0, 1)), "beta_raw": beta, "Wo": f64(net.actor.kernel),
            "bo": f64(net.actor.bias), "beta_li": float(np.clip(beta_li, 0, 1)), "beta_li_raw": beta_li,
            "obs_mean": np.asarray(net.obs_norm.mean[...], np.float32),
            "obs_var": np.asarray(net.obs_norm.var[...], np.float32), "obs_clip": float(net.obs_norm.clip),
            "rate_range": 3.0, "T": int(net.time_steps)}  # fmt: skip


def simulate(p: dict, x: np.ndarray, *, smear_hidden=False, smear_out=False, multi=False, delay=False,
             extra=0, readout_bias=True, read_at_t=False) -> dict:  # fmt: skip
    """The float network, or Xylo's departures from it one by one, in float64. ``x (N, T, 2D)`` input spikes.

    Flags: ``smear_hidden`` / ``smear_out``: the hidden / read-out synapses are Xylo's ``dash_syn = 1``
    current (``I <- (I + c) / 2``, then ``V <- beta V + I``) instead of the input itself; ``multi``:
    ``floor(V / thr)`` spikes (<= 31) where ``V >= thr``, instead of one where ``V > thr``; ``delay``: the
    read-out takes the previous step's hidden spikes and is read one step later (Xylo's vmem_out_next), or at
    step T with ``read_at_t`` (Xylo's vmem_out: the last step's spikes lost); ``extra`` steps without input
    before the read; ``readout_bias=False`` drops ``bo``. All off: synjax's forward pass.

    Returns ``logits (N, A)``, ``spikes (N, H)`` hidden spike counts over the steps before the read,
    ``v_max``, ``v_min`` (membrane range, threshold units) and ``c_max`` (largest |current| into a membrane).
    """
    n, T, _ = x.shape
    late = int(delay and not read_at_t)
    steps = T + extra + late
    x = np.concatenate([x, np.zeros((n, steps - T, x.shape[2]))], 1)
    W, b, thr, beta = p["W"], p["b"], p["thr"], p["beta"]
    V = np.zeros((n, W.shape[1]))
    I, s = np.zeros_like(V), np.zeros_like(V)
    Vo = np.zeros((n, p["Wo"].shape[1]))
    Io = np.zeros_like(Vo)
    count, v_max, v_min, c_max = np.zeros_like(V), 0.0, 0.0, 0.0
    bias_on = prev_on = False
    for t in range(steps):
        prev, prev_on, bias_on = s, bias_on, t < T
        c = x[:, t] @ W + b * bias_on
        I = (I + c) / 2 if smear_hidden else c
        V = beta * V + I
        v_max, v_min, c_max = max(v_max, V.max()), min(v_min, V.min()), max(c_max, np.abs(c).max())
        if multi:
            s = np.where(V >= thr, np.minimum(np.floor(V / thr), xp.MAX_SPIKES), 0.0)
        else:
            s = (V > thr).astype(np.float64)
        V = V - s * thr
        src, on = (prev, prev_on) if delay else (s, bias_on)
        r = src @ p["Wo"] + p["bo"] * (on and readout_bias)
        Io = (Io + r) / 2 if smear_out else r
        Vo = p["beta_li"] * Vo + Io
        if t < steps - late:
            count += s
    return {"logits": Vo, "spikes": count, "v_max": v_max / thr, "v_min": v_min / thr, "c_max": c_max / thr}


# ------------------------------------------------------------------------------------------------ the mapping
def dash(beta: float) -> int:
    """Xylo's decay exponent for a per-step decay ``beta``: ``round(-log2(1 - beta))`` in 0..15 (15 for 1)."""
    return int(np.clip(np.round(-np.log2(max(1.0 - beta, 2.0**-20))), 0, 15))


def scales(p: dict, ranges: dict, shift_in: int | None = None, clip_pct: float = 100.0) -> dict:
    """Per-layer scales: hidden ``s_h = 127 / m`` with ``m`` the ``clip_pct`` percentile of ``|[W; b]|``
    (the max by default; larger weights are clipped to +-127), read-out ``s_o = 127 / max |[Wo; bo]|``; and
    the weight shifts: ``shift_in`` (given, or the largest in 0..8 that keeps the float model's membrane range
    ``ranges`` (threshold units) plus twice its largest current inside int16), ``shift_out`` the largest that
    keeps twice the largest |logit| and four times a read-out input bound inside int16."""
    m = np.percentile(np.abs(np.concatenate([p["W"].ravel(), p["b"]])), clip_pct)
    s_h = 127.0 / m
    if shift_in is None:
        span = max(ranges["v_max"], -ranges["v_min"]) + 2 * ranges["c_max"]
        shift_in = max([k for k in range(9) if s_h * p["thr"] * 2**k * span <= I16_MAX] or [0])
    s_o = 127.0 / max(np.abs(p["Wo"]).max(), np.abs(p["bo"]).max())
    span_o = 2 * max(ranges["logit_max"], 2 * ranges["r_max"])
    shift_out = max([k for k in range(9) if s_o * 2**k * span_o <= I16_MAX] or [0])
    return {"s_h": s_h, "s_o": s_o, "shift_in": shift_in, "shift_out": shift_out}


def quantized(p: dict, sc: dict) -> dict:
    """``p`` with its weights, biases and threshold rounded as :func:`to_xylo` rounds them (float units)."""
    q = dict(p)
    q["W"] = np.clip(np.round(p["W"] * sc["s_h"]), -127, 127) / sc["s_h"]
    q["b"] = np.clip(np.round(p["b"] * sc["s_h"]), -127, 127) / sc["s_h"]
    q["thr"] = np.round(p["thr"] * sc["s_h"] * 2 ** sc["shift_in"]) / (sc["s_h"] * 2 ** sc["shift_in"])
    q["Wo"], q["bo"] = np.round(p["Wo"] * sc["s_o"]) / sc["s_o"], np.round(p["bo"] * sc["s_o"]) / sc["s_o"]
    return q


def to_xylo(p: dict, sc: dict, *, mode: str = "direct", readout_bias: bool = True, extra: int = 0) -> dict:
    """The Xylo spec (arrays for ``xylo_peer.py``'s ``.npz``) of the float network ``p`` with scales ``sc``.

    ``mode``: ``direct`` or ``inverse`` (module docstring). Hidden neurons: the H float neurons, then (with
    ``readout_bias``) the bias neuron; ``inverse`` adds their twins, their relays and one relay per input
    channel. Inputs: the ``2 D`` Poisson channels, then the bias channel. ``extra``: steps without input
    before the read (``direct`` only)."""
    sh, ws = sc["shift_in"], 2 ** sc["shift_in"]
    nobs, h = p["W"].shape
    a = p["Wo"].shape[1]
    w = np.clip(np.round(p["W"] * sc["s_h"]), -127, 127).astype(np.int64)
    bias = np.clip(np.round(p["b"] * sc["s_h"]), -127, 127).astype(np.int64)
    wo = np.round(p["Wo"] * sc["s_o"]).astype(np.int64)
    bo = np.round(p["bo"] * sc["s_o"]).astype(np.int64)
    thr = int(np.round(p["thr"] * sc["s_h"] * ws))
    # the "float" hidden units: H neurons and (readout_bias) the bias neuron: input column, bias, readout row
    hb = h + int(readout_bias)
    w_unit = np.zeros((nobs + 1, hb), np.int64)
    w_unit[:nobs, :h], w_unit[nobs, :h] = w, bias
    thr_unit, dm_unit = np.full(hb, thr), np.full(hb, dash(p["beta"]))
    wo_unit = np.zeros((hb, a), np.int64)
    wo_unit[:h] = wo
    if readout_bias:  # 1 spike per step while the bias channel is on: I is w/2 .. < w, V reset each step
        w_unit[nobs, h], wo_unit[h] = 127, bo
        dm_unit[h] = 0  # V <- V - dec(V, 0) = 0: V holds only this step's current
        bias_w = 127 * ws
        thr_unit[h] = bias_w - (bias_w >> 1) if mode == "direct" else bias_w
    spec = {"threshold_out": I16_MAX, "dash_syn": 1, "dash_syn_2": 1, "dash_syn_out": 1,
            "dash_mem_out": dash(p["beta_li"]), "weight_shift_in": sh, "weight_shift_out": sc["shift_out"],
            "obs_mean": p["obs_mean"], "obs_var": p["obs_var"], "obs_clip": p["obs_clip"],
            "rate_range": p["rate_range"], "T": p["T"], "encoder": p["encoder"],
            "count_scale": p.get("count_scale", 0.0)}  # fmt: skip
    if mode == "direct":
        spec.update(w_in=int8(w_unit), w_out=int8(wo_unit), threshold=thr_unit, dash_mem=dm_unit,
                    obs_count=1, bias_counts=np.ones(p["T"], np.int64), extra=extra)  # fmt: skip
        return spec
    if extra:
        raise ValueError("extra steps are for the direct mapping")
    # inverse: [units | twins | unit relays | input relays]
    n = 3 * hb + nobs
    twin, rel, inrel = np.arange(hb) + hb, np.arange(hb) + 2 * hb, np.arange(nobs) + 3 * hb
    r = min(127, max(1, 256 >> sh))  # relay weight: r << sh <= 256, its threshold; current < 3 * 31 * 256
    w_in = np.zeros((nobs + 1, n), np.int64)
    w_rec = np.zeros((n, n), np.int64)
    w_out = np.zeros((n, a), np.int64)
    w_in[:, :hb], w_in[:, twin] = w_unit, w_unit  # the input, sent twice (count 2)
    w_in[np.arange(nobs), inrel] = r  # each input channel's relay ...
    w_rec[inrel, inrel] = -r  # ... undoes its own filter: it fires exactly on its channel's spikes
    w_rec[inrel[:, None], np.arange(hb)] = -w_unit[:nobs]  # the input again, one step later, negated
    w_rec[inrel[:, None], twin] = -w_unit[:nobs]
    w_rec[np.arange(hb), rel] = r  # unit and twin drive the unit's relay: it repeats its spikes a step later
    w_rec[twin, rel] = r
    w_rec[rel, rel] = -r
    w_out[:hb], w_out[twin], w_out[rel] = wo_unit, wo_unit, -wo_unit  # 2 Wo now, -Wo one step later
    relay_thr = r << sh
    spec.update(w_in=int8(w_in), w_rec=int8(w_rec), w_out=int8(w_out), weight_shift_rec=sh,
                threshold=np.concatenate([thr_unit, thr_unit, np.full(hb + nobs, relay_thr)]),
                dash_mem=np.concatenate([dm_unit, dm_unit, np.zeros(hb + nobs, np.int64)]), obs_count=2,
                bias_counts=np.r_[2, np.ones(p["T"] - 1, np.int64)], extra=0)  # fmt: skip
    return spec


def int8(w: np.ndarray) -> np.ndarray:
    """``w`` as int8, refusing (not wrapping) values outside [-128, 127]."""
    if w.size and (w.min() < -128 or w.max() > 127):
        raise ValueError(f"weights out of int8 range: [{w.min()}, {w.max()}]")
    return w.astype(np.int8)


def numpy_xylo(spec: dict, obs: np.ndarray) -> dict:
    """The NumPy integer model of ``xylo_peer.py`` (bit-exact to xylosim) on ``obs (N, D)``: ``actions (N,)``,
    ``spikes_hidden (N, Nhid)``."""
    r = xp.model_decide(xp.load_spec(spec), xp.encode(spec, obs))
    return {"actions": np.argmax(r["vmem_out_next"], -1), "spikes_hidden": r["spikes_hidden"]}


# ------------------------------------------------------------------------------------------- the episodes
def episodes(decide, n: int, seed: int) -> tuple[list[float], np.ndarray]:
    """``n`` gymnasium CartPole-v1 episodes (episode i reset with ``seed + i``), actions from ``decide(obs (1,
    4)) -> (1,)``: (returns, every observation decided on ``(N, 4)`` float32)."""
    env = gym.make("CartPole-v1")
    returns, seen = [], []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            seen.append(obs)
            action = int(decide(np.asarray(obs, np.float32)[None])[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return returns, np.asarray(seen, np.float32)


def xylosim(spec: dict, obs: np.ndarray, n_episodes: int, seed: int) -> dict:
    """xylosim (``xylo_peer.py`` in its venv) on ``spec``: actions on ``obs (N, D)`` (each from rest), hidden
    spike counts ``(N, Nhid)``, and its own episodes (``play``'s JSON)."""
    python = peer_python(XYLOSIM[0], XYLOSIM[1])
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/spec.npz", **spec)
        np.save(f"{tmp}/obs.npy", obs)
        run = [str(python), str(PEER)]
        subprocess.run([*run, "decide", f"{tmp}/spec.npz", f"{tmp}/obs.npy", "--out", f"{tmp}/a.npy",
                        "--details", f"{tmp}/d.npz"], check=True, env=clean_env())  # fmt: skip
        subprocess.run([*run, "play", f"{tmp}/spec.npz", "--episodes", str(n_episodes), "--seed", str(seed),
                        "--out", f"{tmp}/play.json"], check=True, env=clean_env())  # fmt: skip
        with np.load(f"{tmp}/d.npz") as d:
            hidden = d["spikes_hidden"]
        return {"actions": np.load(f"{tmp}/a.npy"), "spikes_hidden": hidden,
                "play": json.loads(Path(f"{tmp}/play.json").read_text())}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ main
def ablation_rows(p: dict, q: dict) -> dict:
    """Name -> (parameters, :func:`simulate` flags): each of Xylo's departures alone, then together; ``q`` is
    ``p`` quantized as the mappings quantize it."""
    xylo_decay = {k: 1 - 2.0 ** -dash(p[k]) if dash(p[k]) < 15 else p[k] for k in ("beta", "beta_li")}
    smear = {"smear_hidden": True, "smear_out": True}
    return {
        "none (float model == synjax)": (p, {}),
        "synaptic smear, hidden (dash_syn 1)": (p, {"smear_hidden": True}),
        "synaptic smear, read-out (dash_syn_out 1)": (p, {"smear_out": True}),
        "synaptic smear, both": (p, smear),
        "multi-spike (floor(V/thr), V >= thr)": (p, {"multi": True}),
        "read-out delay, read after step T": (p, {"delay": True, "read_at_t": True}),
        "read-out delay, read after step T + 1": (p, {"delay": True}),
        "read-out bias dropped": (p, {"readout_bias": False}),
        f"decays 1 - 2^-dash (beta {p['beta']:.3f}, {p['beta_li']:.3f})": (dict(p, **xylo_decay), {}),
        "int8 hidden weights and biases": (dict(p, W=q["W"], b=q["b"], thr=q["thr"]), {}),
        "int8 read-out weights and biases": (dict(p, Wo=q["Wo"], bo=q["bo"]), {}),
        "int8, both layers": (q, {}),
        "all (direct: smear, multi, delay T+1, int8)": (q, {**smear, "multi": True, "delay": True}),
        "multi-spike + int8 (inverse)": (q, {"multi": True}),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a CartPole-v1 spiking PPO/A2C results folder (see above)")
    ap.add_argument("--seed-index", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="episode i resets with seed + i")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    net = load_network(a.run, a.seed_index)
    p = float_params(net)
    T, h = p["T"], p["W"].shape[1]
    policy = jax.jit(lambda o: jnp.argmax(net.run(o)[0][0], -1))
    float_returns, obs = episodes(lambda o: np.asarray(policy(jnp.asarray(o))), a.episodes, a.seed)
    ours = np.asarray(policy(jnp.asarray(obs)))
    x = xp.input_spikes(p, obs).astype(np.float64)  # (N, T, 8): synjax's encoder (bit-exact) or the count code
    ref = simulate(p, x)
    ranges = {k: ref[k] for k in ("v_max", "v_min", "c_max")}
    ranges["logit_max"] = float(np.abs(ref["logits"]).max())
    ranges["r_max"] = float(np.abs(ref["spikes"] @ p["Wo"]).max())  # a step's read-out input is below this
    check = float(np.mean(ref["logits"].argmax(-1) == ours))
    print(f"run {a.run}, seed index {a.seed_index}: {h} hidden LIF, beta {p['beta']:.4f} (trained "
          f"{p['beta_raw']:.4f}, clipped), read-out LI beta {p['beta_li']:.4f} (trained "
          f"{p['beta_li_raw']:.4f}), thr {p['thr']}, T = {T}, {p['encoder']} encoder")  # fmt: skip
    print(f"{len(obs)} decisions from {a.episodes} episodes of the float policy; float NumPy model == synjax "
          f"on {check:.2%}; membrane range [{ranges['v_min']:.1f}, {ranges['v_max']:.1f}] thr")  # fmt: skip
    sc = scales(p, ranges)
    coarse = dict(sc, shift_in=0)
    thr_int = round(p["thr"] * sc["s_h"] * 2 ** sc["shift_in"])
    print(f"scales: hidden {sc['s_h']:.1f} / unit, threshold {thr_int} (weight_shift_in {sc['shift_in']}); "
          f"read-out {sc['s_o']:.1f} / unit (weight_shift_out "
          f"{sc['shift_out']}); dash_mem {dash(p['beta'])}, dash_mem_out {dash(p['beta_li'])}, dash_syn 1\n")
    variants = {
        "direct": to_xylo(p, sc),
        "direct, read-out bias dropped": to_xylo(p, sc, readout_bias=False),
        "direct, weight_shift_in 0": to_xylo(p, coarse),
        "direct, +2 steps without input": to_xylo(p, sc, extra=2),
        "direct, +4 steps without input": to_xylo(p, sc, extra=4),
        "direct, +8 steps without input": to_xylo(p, sc, extra=8),
    }
    if p["encoder"] == "poisson":  # a constant count code needs no filter undone (and 2 x 15 counts would not fit)
        variants["inverse (relays + twins)"] = to_xylo(p, sc, mode="inverse")
        variants["inverse, weight_shift_in 0"] = to_xylo(p, coarse, mode="inverse")
    rows = {"float synjax (JAX)": {"nin": p["W"].shape[0], "nhid": h, "steps": T, "agreement": 1.0,
                                   "returns": float_returns, "firing": float(ref["spikes"].mean() / T),
                                   "spikes": float(ref["spikes"].sum(1).mean())}}  # fmt: skip
    starts = obs[np.r_[0, np.cumsum(float_returns)[:-1]].astype(int)]  # each episode's first observation
    for name, spec in variants.items():
        res = xylosim(spec, obs, a.episodes, a.seed)
        hidden = res["spikes_hidden"]
        rows[name] = {"nin": int(spec["w_in"].shape[0]), "nhid": int(spec["w_in"].shape[1]),
                      "steps": T + int(spec["extra"]) + 1,
                      "agreement": float(np.mean(res["actions"] == ours)),
                      "returns": res["play"]["returns"], "firing": float(hidden[:, :h].mean() / T),
                      "spikes": float(hidden.sum(1).mean()),
                      "numpy_model_identical": bool(np.array_equal(numpy_xylo(spec, obs)["actions"],
                                                                   res["actions"])),
                      "same_starts": bool(np.allclose(res["play"]["first_obs"], starts))}  # fmt: skip
    title = f"CartPole-v1, episode seeds {a.seed}..{a.seed + a.episodes - 1}"
    print(f"\n{title:34s} {'Nin':>3s} {'Nhid':>4s} {'steps':>5s} {'agreement':>9s} "
          f"{'return: mean (min..max)':>24s} {'firing':>6s} {'spikes':>6s}")
    for name, r in rows.items():
        ret = r["returns"]
        flags = "" if r.get("numpy_model_identical", True) else "  NumPy model differs!"
        flags += "" if r.get("same_starts", True) else "  other episode starts!"
        print(f"{name:34s} {r['nin']:3d} {r['nhid']:4d} {r['steps']:5d} {r['agreement']:9.2%} "
              f"{np.mean(ret):10.1f} ({min(ret):5.0f}..{max(ret):5.0f}) {r['firing']:6.3f} {r['spikes']:6.0f}"
              f"{flags}")  # fmt: skip
    print(f"agreement: xylosim's action == synjax's on its {len(obs)} observations, each decided from rest; "
          "steps: Xylo steps per decision;\nfiring: spikes per float hidden neuron per step (Xylo allows "
          "several per step); spikes: all hidden spikes per decision\n(relays, twins and bias neuron "
          "included). A row is flagged where xylosim's actions differ from the NumPy integer model's, or its "
          "episodes start elsewhere.")

    q = quantized(p, sc)
    print(f"\nablation: Xylo's departures from the float network in a float model of it (NumPy), on the same "
          f"{len(obs)} decisions and {a.episodes} episodes")  # fmt: skip
    print(f"{'departure':44s} {'agreement':>9s} {'return':>7s}")
    ablation = {}
    for name, (params, flags) in ablation_rows(p, q).items():
        agree = float(np.mean(simulate(params, x, **flags)["logits"].argmax(-1) == ours))

        def decide(o, params=params, flags=flags):
            return simulate(params, xp.input_spikes(p, o).astype(np.float64), **flags)["logits"].argmax(-1)

        ret = episodes(decide, a.episodes, a.seed)[0]
        ablation[name] = {"agreement": agree, "returns": ret}
        print(f"{name:44s} {agree:9.2%} {np.mean(ret):7.1f}")
    for name, flags in (("direct", {"smear_hidden": True, "smear_out": True, "multi": True, "delay": True}),
                        ("inverse (relays + twins)", {"multi": True})):  # fmt: skip
        if name not in variants:
            continue
        fm = simulate(q, x, **flags)["logits"].argmax(-1)
        same = float(np.mean(numpy_xylo(variants[name], obs)["actions"] == fm))
        ablation[f"integer model == float model, {name}"] = {"agreement": same}
        label = f"integer model == its float model, {name.split()[0]}"
        print(f"{label:44s} {same:9.2%}  (the rest: the 1-LSB leak, rounding)")
    if a.json:
        Path(a.json).write_text(json.dumps({"run": str(a.run), "seed_index": a.seed_index, "seed": a.seed,
                                            "decisions": len(obs), "scales": sc, "rows": rows,
                                            "ablation": ablation}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
