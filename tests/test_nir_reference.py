"""The NumPy NIR reference interpreter (tests/nir_reference.py) on hand-built graphs, checked by hand."""

import itertools

import nir
import numpy as np
import pytest
from nir_reference import ReferenceGraph


def f32(*a):
    return np.array(a, dtype=np.float32)


def lif(beta, threshold=1.0, n=1, v_reset=0.0):
    """nir.LIF equal to v <- beta v + I at dt 1: tau = 1 / (1 - beta), r = tau, v_leak = 0."""
    tau = np.full(n, 1.0 / (1.0 - beta), np.float32)
    full = lambda x: np.full(n, x, np.float32)
    return nir.LIF(tau=tau, r=tau.copy(), v_leak=full(0), v_threshold=full(threshold), v_reset=full(v_reset))


def chain(*nodes, metadata=None, shape=(1,), type_check=True):
    """input -> nodes[0] -> ... -> output."""
    names = ["input", *[f"n{k}" for k in range(len(nodes))], "output"]
    out_shape = np.asarray(nodes[-1].output_type["output"]) if nodes else np.array(shape)
    all_nodes = [nir.Input(np.array(shape)), *nodes, nir.Output(out_shape)]
    edges = list(itertools.pairwise(names))
    graph = nir.NIRGraph(dict(zip(names, all_nodes)), edges, metadata=metadata or {}, type_check=type_check)
    return ReferenceGraph(graph)


def run(ref, x, steps):
    """(T, *out) outputs, (T, *shape) membranes of node n0."""
    outs, vs = [], []
    for _ in range(steps):
        outs.append(ref.step(x)["output"])
        vs.append(ref.v["n0"].copy())
    return np.stack(outs), np.stack(vs)


def test_lif_matches_beta_form_with_subtract_reset():
    ref = chain(lif(0.5))
    s, v = run(ref, f32(0.6), 6)
    # v <- 0.5 v + 0.6; spike after the update when v > 1; subtract 1
    np.testing.assert_allclose(v[:, 0], [0.6, 0.9, 0.05, 0.625, 0.9125, 0.05625], rtol=1e-5)
    np.testing.assert_array_equal(s[:, 0], [0, 0, 1, 0, 0, 1])
    assert ref.order == ["input", "n0", "output"] and ref.cycle_edges == []
    assert s.dtype == np.float32 and v.dtype == np.float32


def test_lif_zero_reset_goes_to_v_reset():
    ref = chain(lif(0.5, v_reset=0.2), metadata={"reset": "zero"})
    s, v = run(ref, f32(0.6), 5)
    # 0.6, 0.9, 1.05 -> 0.2, 0.7, 0.95
    np.testing.assert_allclose(v[:, 0], [0.6, 0.9, 0.2, 0.7, 0.95], rtol=1e-5)
    np.testing.assert_array_equal(s[:, 0], [0, 0, 1, 0, 0])


def test_if_threshold_is_strict_and_dt_scales_the_input():
    node = nir.IF(r=f32(2.0), v_threshold=f32(1.0))
    ref = chain(node, metadata={"dt": 0.5})
    s, v = run(ref, f32(0.25), 6)  # dt r I = 0.25 exactly
    np.testing.assert_array_equal(v[:, 0], [0.25, 0.5, 0.75, 1.0, 0.25, 0.5])  # 1.0 is not > 1.0
    np.testing.assert_array_equal(s[:, 0], [0, 0, 0, 0, 1, 0])


def test_li_readout_and_leak_voltage():
    w, b = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32), f32(0.1, -0.3)
    tau = np.full(2, 4.0, np.float32)  # beta 0.75
    li = nir.LI(tau=tau, r=tau.copy(), v_leak=np.zeros(2, np.float32))
    ref = chain(nir.Affine(w, b), li, shape=(2,))
    x = f32(0.3, -0.7)
    out = np.stack([ref.step(x)["output"] for _ in range(5)])
    v, expect = np.zeros(2), []
    for _ in range(5):
        v = 0.75 * v + (w.astype(np.float64) @ x + b)
        expect.append(v)
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    leak = chain(nir.LI(tau=f32(2.0), r=f32(1.0), v_leak=f32(1.0)))
    np.testing.assert_allclose([leak.step(f32(0.0))["output"][0] for _ in range(3)], [0.5, 0.75, 0.875])


def test_integrator_with_r_one_over_t_is_the_mean():
    ref = chain(nir.I(r=np.full(2, 0.25, np.float32)), shape=(2,))
    xs = [f32(1, 0), f32(0, 2), f32(3, 0), f32(0, 4)]
    outs = [ref.step(x)["output"] for x in xs]
    np.testing.assert_allclose(outs[-1], [1.0, 1.5])


def recurrent_graph(metadata=None):
    """input (1,) -> affine_0 -> lif_0 (2 neurons, beta 0) <-> recurrent_0; lif_0 -> output."""
    nodes = {
        "input": nir.Input(np.array([1])),
        "affine_0": nir.Affine(np.array([[2.0], [0.0]], np.float32), f32(0, 0)),
        "lif_0": lif(0.0, n=2),
        "recurrent_0": nir.Linear(np.array([[0.0, -5.0], [2.0, 0.0]], np.float32)),
        "output": nir.Output(np.array([2])),
    }
    edges = [
        ("input", "affine_0"),
        ("affine_0", "lif_0"),
        ("lif_0", "recurrent_0"),
        ("recurrent_0", "lif_0"),
        ("lif_0", "output"),
    ]
    return nir.NIRGraph(nodes, edges, metadata=metadata or {})


def test_recurrent_cycle_arrives_one_step_later():
    ref = ReferenceGraph(recurrent_graph())
    assert ref.cycle_edges == [("recurrent_0", "lif_0")]
    assert ref.order.index("lif_0") < ref.order.index("recurrent_0")
    s = np.stack([ref.step(f32(1.0))["output"] for _ in range(6)])
    # beta 0: v_t = 2 x - 5 s1_{t-1} for neuron 0 and 2 s0_{t-1} for neuron 1 (threshold 1)
    np.testing.assert_array_equal(s, [[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [1, 1]])
    np.testing.assert_allclose(ref.v["lif_0"], [1.0, 1.0])  # 2 - 1, 2 - 1 after the subtract reset
    ref.reset(["lif_0"])  # also clears the delayed recurrent input: neuron 1 sees no spike of step 6
    np.testing.assert_array_equal(ref.step(f32(1.0))["output"], [1, 0])


def test_conv2d_matches_a_direct_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6)).astype(np.float32)
    w = rng.normal(size=(3, 2, 3, 2)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    for stride, padding, dilation in [(2, 1, 1), ((1, 2), (0, 1), (2, 1))]:
        conv = nir.Conv2d((7, 6), w, stride, padding, dilation, 1, b)
        got = chain(conv, shape=(2, 7, 6)).step(x)["output"]
        (sh, sw), (ph, pw), (dh, dw) = [
            t if isinstance(t, tuple) else (t, t) for t in (stride, padding, dilation)
        ]
        xp = np.pad(x.astype(np.float64), ((0, 0), (ph, ph), (pw, pw)))
        ho, wo = (xp.shape[1] - dh * 2 - 1) // sh + 1, (xp.shape[2] - dw * 1 - 1) // sw + 1
        expect = np.zeros((3, ho, wo))
        for o in range(3):
            for r in range(ho):
                for c in range(wo):
                    for ci in range(2):
                        for i in range(3):
                            for j in range(2):
                                expect[o, r, c] += w[o, ci, i, j] * xp[ci, r * sh + i * dh, c * sw + j * dw]
                    expect[o, r, c] += b[o]
        assert got.shape == expect.shape  # (nir 1.0.8 infers W' from the kernel's height: not compared)
        np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5)
    grouped = nir.Conv2d((4, 4), np.ones((2, 1, 1, 1), np.float32), 1, 0, 1, 2, f32(0, 0))
    with pytest.raises(ValueError, match="groups"):
        chain(grouped, shape=(2, 4, 4), type_check=False)  # (nir's own type check refuses it too)


def test_flatten_row_major():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    whole = chain(nir.Flatten(np.array([2, 3, 4]), start_dim=0), shape=(2, 3, 4))
    np.testing.assert_array_equal(whole.step(x)["output"], x.reshape(24))
    inner = chain(nir.Flatten(np.array([2, 3, 4]), start_dim=1, end_dim=2), shape=(2, 3, 4))
    np.testing.assert_array_equal(inner.step(x)["output"], x.reshape(2, 12))
    hwc = chain(
        nir.Flatten(np.array([2, 3, 4]), start_dim=0), shape=(2, 3, 4), metadata={"observation_layout": "HWC"}
    )
    np.testing.assert_array_equal(hwc.decide(x.transpose(1, 2, 0))["output"], x.reshape(24))  # HWC -> CHW


def policy_graph(reset_each_decision, action="argmax"):
    """A tiny recurrent actor-critic graph in synjax's naming, and its parameters for a hand loop."""
    rng = np.random.default_rng(1)
    p = {
        "w0": rng.normal(size=(4, 3)).astype(np.float32),
        "b0": rng.normal(size=4).astype(np.float32) * 0.1,
        "rec": rng.normal(size=(4, 4)).astype(np.float32) * 0.5,
        "wa": rng.normal(size=(2, 4)).astype(np.float32),
        "ba": f32(0.05, -0.05),
        "wc": rng.normal(size=(1, 4)).astype(np.float32),
        "bc": f32(0.2),
    }
    tau = lambda n, beta: np.full(n, 1.0 / (1.0 - beta), np.float32)
    li = lambda n: nir.LI(tau=tau(n, 0.8), r=tau(n, 0.8), v_leak=np.zeros(n, np.float32))
    nodes = {
        "input": nir.Input(np.array([3])),
        "affine_0": nir.Affine(p["w0"], p["b0"]),
        "lif_0": lif(0.9, n=4),
        "recurrent_0": nir.Linear(p["rec"]),
        "actor_affine": nir.Affine(p["wa"], p["ba"]),
        "actor_li": li(2),
        "actor": nir.Output(np.array([2])),
        "critic_affine": nir.Affine(p["wc"], p["bc"]),
        "critic_li": li(1),
        "critic": nir.Output(np.array([1])),
    }
    edges = [("input", "affine_0"), ("affine_0", "lif_0"), ("lif_0", "recurrent_0"), ("recurrent_0", "lif_0")]
    edges += [("lif_0", "actor_affine"), ("actor_affine", "actor_li"), ("actor_li", "actor")]
    edges += [("lif_0", "critic_affine"), ("critic_affine", "critic_li"), ("critic_li", "critic")]
    metadata = {
        "format": "synjax-policy/1",
        "dt": 1.0,
        "reset": "subtract",
        "spike_timing": "after_update",
        "steps_per_decision": 4,
        "outputs": "actor,critic",
        "reset_each_decision": reset_each_decision,
        "action": action,
        "observation_layout": "flat",
        "observation_low": np.full(3, -1.0, np.float32),
        "observation_high": np.full(3, 1.0, np.float32),
        "seed_index": 0,
    }
    return nir.NIRGraph(nodes, edges, metadata=metadata), p


def hand_decision(p, obs, state, steps=4):
    """The beta form in float64: lif_0 (beta 0.9) with the previous step's spikes fed back, LI read-outs (0.8)."""
    v, s, la, lc = state
    x = np.clip(obs, -1.0, 1.0)
    spikes = []
    for _ in range(steps):
        v = 0.9 * v + p["w0"] @ x + p["b0"] + p["rec"] @ s
        s = (v > 1.0).astype(np.float64)
        v = v - s
        la = 0.8 * la + p["wa"] @ s + p["ba"]
        lc = 0.8 * lc + p["wc"] @ s + p["bc"]
        spikes.append(s)
    return (v, s, la, lc), np.stack(spikes)


def roundtrip(graph, tmp_path):
    path = tmp_path / "policy.nir"
    nir.write(path, graph)
    return ReferenceGraph(nir.read(path))


def test_policy_graph_roundtrip_decide_act_and_inner_reset(tmp_path):
    graph, p = policy_graph("lif_0,actor_li,critic_li")
    ref = roundtrip(graph, tmp_path)
    assert ref.metadata["steps_per_decision"] == 4 and isinstance(ref.metadata["steps_per_decision"], int)
    assert ref.outputs == ["actor", "critic"] and ref.cycle_edges == [("recurrent_0", "lif_0")]
    assert ref.metadata["format"] == "synjax-policy/1"
    assert ref.reset_each_decision == ["lif_0", "actor_li", "critic_li"]
    obs = f32(0.1, 0.3, 2.5)  # the last entry is clipped to 1
    y = ref.decide(obs)
    zero = (np.zeros(4), np.zeros(4), np.zeros(2), np.zeros(1))
    (_, _, la, lc), spikes = hand_decision(p, obs, zero)
    assert spikes.sum() > 0
    np.testing.assert_array_equal(ref.last_spikes["lif_0"], spikes)
    assert ref.last_spikes["lif_0"].shape == (4, 4) and ref.last_outputs["actor"].shape == (4, 2)
    np.testing.assert_allclose(y["actor"], la, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y["critic"], lc, rtol=1e-5, atol=1e-5)
    assert ref.act(obs) == int(np.argmax(la))  # inner mode: every decision starts from zero
    np.testing.assert_array_equal(ref.decide(obs)["actor"], y["actor"])
    np.testing.assert_array_equal(ref.decide(f32(0.1, 0.3, 1.0))["actor"], y["actor"])


def test_carried_graph_keeps_hidden_state_across_decisions(tmp_path):
    graph, p = policy_graph("actor_li,critic_li", action="mean")
    ref = roundtrip(graph, tmp_path)
    obs = f32(0.1, 0.3, 0.9)
    zero = (np.zeros(4), np.zeros(4), np.zeros(2), np.zeros(1))
    state, _ = hand_decision(p, obs, zero)
    first = ref.act(obs)  # "mean": the first output itself
    np.testing.assert_allclose(first, state[2], rtol=1e-5, atol=1e-5)
    v, s = state[0], state[1]  # the read-outs restart at 0, the LIF layer and its delayed spikes carry on
    (_, _, la, _), spikes = hand_decision(p, obs, (v, s, np.zeros(2), np.zeros(1)))
    second = ref.decide(obs)["actor"]
    np.testing.assert_array_equal(ref.last_spikes["lif_0"], spikes)
    np.testing.assert_allclose(second, la, rtol=1e-5, atol=1e-5)
    assert not np.allclose(second, first)
    ref.episode_start()
    np.testing.assert_array_equal(ref.act(obs), first)


def test_unknown_node_type_is_refused():
    with pytest.raises(ValueError, match="Scale"):
        chain(nir.Scale(f32(2.0)))
    with pytest.raises(ValueError, match="CubaLIF"):
        one = f32(1.0)
        chain(nir.CubaLIF(tau_syn=one, tau_mem=one, r=one, v_leak=f32(0.0), v_threshold=one))
