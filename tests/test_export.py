"""NIR export and import: every network family round-trips (export, nir.write, nir.read, import: the same
actions), the NIR discretization agrees spike for spike with an independent NumPy interpreter
(tests/nir_reference.py), and ``synjax export`` / ``synjax eval --nir`` refuse bad input before writing."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from flax import nnx
from nir_reference import ReferenceGraph

from synjax.agents import config as agent_config
from synjax.agents import on_policy, ppo
from synjax.agents.spiking import NATURE_CONVS, SpikingActorCritic, SpikingQNetwork
from synjax.classify.model import SpikingClassifier
from synjax.cli import main
from synjax.export.from_nir import import_graph
from synjax.export.to_nir import Readout, classifier_to_nir, to_nir
from synjax.runs import evaluate_run, results


def _round_trip(graph, tmp_path) -> nir.NIRGraph:
    path = tmp_path / "g.nir"
    nir.write(str(path), graph)
    return nir.read(str(path))


def _with_obs_norm(net, seed=0):
    """Give the network's running statistics values far from (0, 1), so that their folding is tested."""
    if net.obs_norm is not None:
        dim = net.obs_norm.mean[...].shape[0]
        key = jax.random.key(seed)
        net.obs_norm.mean[...] = jax.random.normal(key, (dim,)) * 0.5
        net.obs_norm.var[...] = jnp.exp(jax.random.normal(jax.random.fold_in(key, 1), (dim,)))
    return net


def _decisions(net, graph, obs, steps=1):
    """Outputs of ``steps`` decisions (each on ``obs[t]``) by synjax and by the imported graph, carrying state."""
    imported = import_graph(graph)
    state, carry = imported.initial_state(obs.shape[1]), net.initial_carry((obs.shape[1],))
    ours, theirs = [], []
    for t in range(steps):
        outputs, carry = net.run(obs[t], carry)
        ours.append(outputs)
        out, state = imported.decide(imported.params, state, obs[t])
        theirs.append(out)
    return ours, theirs


def _observations(shape, steps=1, batch=64, seed=3, scale=1.5):
    return jax.random.normal(jax.random.key(seed), (steps, batch, *shape)) * scale


DENSE = [  # (discretization, time mode, neuron, decoder, T, norm_obs)
    ("spyx", "inner", "LIF", "membrane", 4, True),
    ("nir", "inner", "LIF", "membrane", 3, True),
    ("nir", "inner", "IF", "rate", 2, False),
    ("spyx", "inner", "LIF", "rate", 3, False),
    ("spyx", "carried", "RLIF", "membrane", 2, True),
    ("nir", "carried", "RLIF", "membrane", 2, True),
    ("nir", "carried", "RIF", "membrane", 1, False),
]


@pytest.mark.parametrize("discretization,mode,neuron,decoder,steps,norm", DENSE)
def test_dense_actor_critic_round_trips(tmp_path, discretization, mode, neuron, decoder, steps, norm):
    net = SpikingActorCritic(4, 2, (16, 12), time_steps=steps, time_mode=mode, neuron=neuron, decoder=decoder,
                             discretization=discretization, normalize_obs=norm, threshold=0.5,
                             rngs=nnx.Rngs(1))  # fmt: skip
    _with_obs_norm(net)
    if neuron.startswith("R"):  # spyx draws near-zero recurrent weights: make them matter
        for n in net.neurons:
            n.recurrent_w[...] = n.recurrent_w[...] * 200
    graph = _round_trip(to_nir(net, Readout(("actor", "critic"), "argmax")), tmp_path)
    assert graph.metadata["spike_timing"] == ("after_update" if discretization == "nir" else "before_update")
    obs = _observations((4,), steps=4 if mode == "carried" else 1)
    ours, theirs = _decisions(net, graph, obs, steps=obs.shape[0])
    for (actor, critic), (a, c) in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(actor), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(np.asarray(c), np.asarray(critic), rtol=1e-4, atol=1e-4)
        assert np.array_equal(np.argmax(a, -1), np.argmax(actor, -1))


@pytest.mark.parametrize("mode,neuron", [("inner", "LIF"), ("carried", "RLIF")])
def test_nir_discretization_matches_the_numpy_reference_spike_for_spike(tmp_path, mode, neuron):
    net = SpikingActorCritic(4, 2, (16, 12), time_steps=3, time_mode=mode, neuron=neuron, discretization="nir",
                             normalize_obs=True, threshold=0.5, rngs=nnx.Rngs(2))  # fmt: skip
    _with_obs_norm(net, seed=1)
    if neuron.startswith("R"):
        for n in net.neurons:
            n.recurrent_w[...] = n.recurrent_w[...] * 200
    graph = _round_trip(to_nir(net), tmp_path)
    reference = ReferenceGraph(graph)
    obs = _observations((4,), steps=3, batch=16)
    carry, ours = net.initial_carry((16,)), []
    for t in range(obs.shape[0]):  # synjax: the 16 episodes side by side, decisions t = 0, 1, 2
        (logits, _), _, spikes = net.simulate(obs[t], tuple(carry) or None)
        _, carry = net.run(obs[t], carry)
        ours.append((np.asarray(jnp.argmax(logits, -1)), [np.asarray(s) for s in spikes]))
    for b in range(obs.shape[1]):  # the reference: one episode at a time
        reference.episode_start()
        for t, (actions, spikes) in enumerate(ours):
            assert reference.act(np.asarray(obs[t, b])) == actions[b]
            for i, s in enumerate(spikes):
                assert np.array_equal(reference.last_spikes[f"lif_{i}"], s[:, b]), (b, t, i)


def test_spyx_timing_is_labelled_and_differs_from_nir_reading(tmp_path):
    net = SpikingActorCritic(4, 2, (16,), time_steps=3, neuron="LIF", rngs=nnx.Rngs(0))
    graph = to_nir(net)
    assert graph.metadata["spike_timing"] == "before_update"
    assert import_graph(graph).before_update
    assert not import_graph(graph, spike_timing="after_update").before_update


def test_image_networks_round_trip(tmp_path):
    minatar = SpikingActorCritic(10 * 10 * 4, 3, (16,), time_steps=2, image=(10, 10, 4), discretization="nir",
                                 rngs=nnx.Rngs(0))  # fmt: skip
    nature = SpikingActorCritic(4 * 40 * 40, 4, (16,), time_steps=2, image=(40, 40, 4), convs=NATURE_CONVS,
                                channels_first=True, pixel_scale=1 / 255, discretization="nir",
                                rngs=nnx.Rngs(1))  # fmt: skip
    cases = [(minatar, jax.random.uniform(jax.random.key(0), (1, 16, 400)) * 2),
             (nature, jax.random.randint(jax.random.key(1), (1, 8, 6400), 0, 256).astype(jnp.float32))]  # fmt: skip
    for net, obs in cases:
        graph = _round_trip(to_nir(net), tmp_path)
        assert graph.nodes["conv_0"].weight.shape[1] == 4 and "flatten" in graph.nodes
        ((actor, _),), ((a,),) = _decisions(net, graph, obs)
        np.testing.assert_allclose(np.asarray(a), np.asarray(actor), rtol=1e-4, atol=1e-4)
    ref = ReferenceGraph(_round_trip(to_nir(minatar), tmp_path))  # the reference reads HWC observations too
    x = cases[0][1][0, :4]
    logits = minatar.run(x)[0][0]
    assert [ref.act(np.asarray(o).reshape(10, 10, 4)) for o in x] == list(np.asarray(jnp.argmax(logits, -1)))


def test_q_network_continuous_actor_and_classifier_round_trip(tmp_path):
    q = SpikingQNetwork(4, 3, (16,), time_steps=3, normalize_obs=True, rngs=nnx.Rngs(0))
    _with_obs_norm(q)
    graph = _round_trip(to_nir(q), tmp_path)
    assert graph.metadata["outputs"] == "q" and graph.metadata["action"] == "argmax"
    obs = _observations((4,))[0]
    imported = import_graph(graph)
    actions, _ = imported.act(imported.params, imported.initial_state(64), obs)
    assert np.array_equal(np.asarray(actions), np.asarray(jnp.argmax(q(obs), -1)))

    gauss = SpikingActorCritic(3, 2, (8,), continuous=True, time_steps=3, rngs=nnx.Rngs(0))
    imported = import_graph(_round_trip(to_nir(gauss), tmp_path))
    mean, _ = imported.act(imported.params, imported.initial_state(64), obs[:, :3])
    np.testing.assert_allclose(np.asarray(mean), np.asarray(gauss.run(obs[:, :3])[0][0]), atol=1e-5)

    for output, readout in (("LIF", "spike_count"), ("LI", "membrane_sum")):
        model = SpikingClassifier(16, (12,), 4, output=output, threshold=0.5, rngs=nnx.Rngs(0))
        imported = import_graph(_round_trip(classifier_to_nir(model, 6, "direct", readout), tmp_path))
        x = jax.random.uniform(jax.random.key(2), (32, 16), minval=-1.0, maxval=1.0) * 3
        spikes, membrane, _ = model(x, 6)
        score = membrane.sum(0) if output == "LI" else spikes.sum(0)
        (out,), _ = imported.decide(imported.params, imported.initial_state(32), x)
        np.testing.assert_allclose(np.asarray(out), np.asarray(score), rtol=1e-4, atol=1e-4)


def test_what_nir_cannot_express_is_refused():
    make = lambda **kw: SpikingActorCritic(4, 2, (8,), time_steps=3, rngs=nnx.Rngs(0), **kw)
    for kw, words in (({"neuron": "ALIF"}, "snn_neuron='ALIF' cannot be exported"),
                      ({"encoder": "poisson"}, "snn_encoder='poisson' cannot be exported"),
                      ({"encoder": "population"}, "snn_encoder='population'")):  # fmt: skip
        with pytest.raises(ValueError, match=words):
            to_nir(make(**kw))
    from synjax.agents.networks import ActorCritic

    with pytest.raises(ValueError, match="has no spikes"):
        to_nir(ActorCritic(4, 2, (8,), rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="head='critic2' is invalid"):
        to_nir(make(), Readout(("critic2",), "argmax"))
    model = SpikingClassifier(16, (12,), 4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="encoding='rate' cannot be exported"):
        classifier_to_nir(model, 6, "rate", "spike_count")
    with pytest.raises(ValueError, match="readout='membrane_max'"):
        classifier_to_nir(model, 6, "direct", "membrane_max")


def test_import_refuses_unknown_nodes_and_missing_metadata():
    graph = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([2])}), "d": nir.Delay(np.ones(2)),
                                "out": nir.Output({"output": np.array([2])})},
                         edges=[("input", "d"), ("d", "out")], metadata={"steps_per_decision": 1, "outputs": "out"})  # fmt: skip
    with pytest.raises(ValueError, match="node 'd' is a Delay"):
        import_graph(graph)
    graph.metadata.clear()
    with pytest.raises(ValueError, match="no 'steps_per_decision'"):
        import_graph(graph)


# ------------------------------------------------------------------------------------------- the commands

SNN = ppo.PPOConfig(num_seeds=2, env="CartPole-v1", network="snn", hidden=(8,), snn_time_steps=2,
                    snn_discretization="nir", total_timesteps=256, num_envs=4, num_steps=8, progress=False)  # fmt: skip


def _fake_run(path, config, num_runs=2):
    """A results folder holding untrained networks of ``config`` (no training compile needed)."""
    env, env_params = agent_config.make_env(config)
    states = [nnx.state(on_policy.make_network(config, env, env_params, nnx.Rngs(i))) for i in range(num_runs)]
    stacked = jax.tree.map(lambda *x: np.stack(x), *states)
    results.write_run(path, experiment="ppo", config=config, steps=np.array([0]),
                      metrics={"eval_return": np.zeros((num_runs, 1))}, final={"eval_return": np.zeros(num_runs)},
                      params=stacked, wall_time_s=1.0, compile_time_s=1.0, total_steps=1)  # fmt: skip
    return path


def test_export_command_writes_graphs_that_eval_plays(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", SNN)
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "p.nir"), "--seed-index", "1"]) == 0
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "all"), "--all-seeds", "--critic"]) == 0
    assert sorted(os.listdir(tmp_path / "all")) == ["seed_000.nir", "seed_001.nir"]
    graph = nir.read(str(tmp_path / "all" / "seed_001.nir"))
    assert graph.metadata["outputs"] == "actor,critic" and int(graph.metadata["seed_index"]) == 1
    capsys.readouterr()
    assert main(["eval", "--nir", str(tmp_path / "p.nir"), "--episodes", "4"]) == 0
    assert "mean return" in capsys.readouterr().out
    _, played = evaluate_run.run(evaluate_run.EvalConfig(nir=str(tmp_path / "p.nir"), episodes=4))
    policy, params, _ = evaluate_run.load_policy(run)
    ours = evaluate_run.evaluate_saved(policy, jax.tree.map(lambda x: x[1:], params), 4)
    np.testing.assert_array_equal(played, ours)  # the same episodes, the same returns


def test_export_refuses_bad_input_before_writing(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", SNN)
    mlp = _fake_run(tmp_path / "mlp", dataclasses.replace(SNN, network="mlp", hidden=(8,), snn_time_steps=8,
                                                           snn_discretization="spyx"))  # fmt: skip
    alif = _fake_run(tmp_path / "alif", dataclasses.replace(SNN, snn_neuron="ALIF", snn_discretization="spyx",
                                                             snn_time_steps=2))  # fmt: skip
    blocker = tmp_path / "a-file"  # a folder that cannot be written into, for root too
    blocker.write_text("")
    out = str(tmp_path / "p.nir")
    cases = [
        (["--run", str(tmp_path), "--out", out], "--run="),
        (["--run", str(run), "--out", out, "--seed-index", "2"], "--seed-index=2 is invalid"),
        (["--run", str(run), "--out", str(blocker / "p.nir")], "writable folder"),
        (["--run", str(run), "--out", str(tmp_path / "p.txt")], "ending in .nir"),
        (["--run", str(run), "--out", str(tmp_path / "all"), "--all-seeds", "--seed-index", "1"], "left at 0"),
        (["--run", str(mlp), "--out", out], "has no spikes"),
        (["--run", str(alif), "--out", out], "--snn-neuron='ALIF' cannot be exported"),
    ]
    for args, words in cases:
        capsys.readouterr()
        assert _status(["export", *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ["a-file", "alif", "mlp", "run"]
    assert _status(["eval", "--nir", str(tmp_path / "none.nir")]) == 2
    assert main(["export", "--run", str(run), "--out", out]) == 0
    for args, words in ((["--nir", out, "--run", str(run)], "left unset with --run"),
                        (["--env", "CartPole-v1", "--run", str(run)], "left unset without --nir"),
                        (["--nir", out, "--render"], "left unset with --nir")):  # fmt: skip
        capsys.readouterr()
        assert _status(["eval", *args]) == 2, args
        assert words in capsys.readouterr().err


def _status(argv) -> int:
    """The exit status of ``synjax *argv`` (a refused flag exits from the parser)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_export_command_writes_a_classifier(tmp_path):
    from synjax.classify.config import ClassifyConfig
    from synjax.classify.train import build_model, pure_dict

    config = ClassifyConfig(hidden=(12,), time_steps=4, num_seeds=1, progress=False)
    model = build_model(config, 64, 2, jax.random.key(0))
    params = jax.tree.map(lambda x: np.asarray(x)[None], pure_dict(nnx.state(model)))
    run = tmp_path / "cls"
    results.write_run(run, experiment="snn-classify", config=config, steps=np.array([0]),
                      metrics={"val_acc": np.zeros((1, 1))}, final={"val_acc": np.zeros(1)}, params=params,
                      wall_time_s=1.0, compile_time_s=1.0, total_steps=1)  # fmt: skip
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "c.nir")]) == 0
    imported = import_graph(str(tmp_path / "c.nir"))
    x = jax.random.uniform(jax.random.key(1), (16, 64), minval=-1.0, maxval=1.0) * 4
    spikes, _, _ = model(x, 4)
    (counts,), _ = imported.decide(imported.params, imported.initial_state(16), x)
    np.testing.assert_array_equal(np.asarray(counts), np.asarray(spikes.sum(0)))
    assert _status(["export", "--run", str(run), "--out", str(tmp_path / "d.nir"), "--critic"]) == 2
