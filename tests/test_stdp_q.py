"""The spiking STDP + Q hybrid (synjax.snn.stdp_q): read-out, ablation rules, training, CLI, NumPy reference."""

import dataclasses
import functools
import importlib.util
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from synjax.cli import main
from synjax.runner.experiment import run_seeds
from synjax.snn import neurons, stdp_q
from synjax.snn.experiment import PRESETS
from synjax.snn.stdp_q import StdpQConfig

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: the tiny training every end-to-end test shares (one compile): 400 episodes, fast exploration decay.
TINY = StdpQConfig(num_seeds=2, num_episodes=400, eval_every=100, epsilon_decay=0.99, progress=False)
TINY_FLAGS = [
    "--num-seeds",
    "2",
    "--num-episodes",
    "400",
    "--eval-every",
    "100",
    "--epsilon-decay",
    "0.99",
    "--no-progress",
]


def _load_numpy_reference():
    spec = importlib.util.spec_from_file_location("numpy_stdp_q", ROOT / "scripts" / "numpy_stdp_q.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------- read-out


READOUT_CONFIGS = {
    "tuned": PRESETS["tuned"],
    "no-inhibition": dataclasses.replace(PRESETS["tuned"], inhibition=0.0),
    "reset-zero": dataclasses.replace(PRESETS["tuned"], reset="zero", beta=0.5),
    "sparse-input": dataclasses.replace(PRESETS["tuned"], input_rate=0.3, snn_steps=7),
    "noise-off": dataclasses.replace(PRESETS["tuned"], exploration="noise"),
}
_readouts = {
    name: jax.jit(
        jax.vmap(lambda row, c=c: stdp_q.decide(jax.random.key(0), row[None], 0, jnp.float32(0.0), c)[0])
    )
    for name, c in READOUT_CONFIGS.items()
}


@SETTINGS
@given(
    arrays(np.float32, (64, 6), elements=st.floats(-1.0, 1.0, width=32)),
    st.sampled_from([1.0, 1e-2, 1e-4]),
    st.sampled_from(list(READOUT_CONFIGS)),
)
def test_spiking_readout_without_exploration_is_the_argmax_of_the_weight_row(rows, scale, name):
    rows = rows * np.float32(scale)  # small scales: near-ties and rows that make no neuron fire
    # XLA on CPU flushes subnormal floats (|w| < 1.2e-38) to zero; compare weights as the device sees them.
    rows = np.where(np.abs(rows) < np.finfo(np.float32).tiny, np.float32(0.0), rows)
    chosen = np.asarray(_readouts[name](jnp.asarray(rows)))
    np.testing.assert_array_equal(chosen, rows.argmax(axis=1))


def test_greedy_action_on_a_full_weight_matrix():
    w = jax.random.uniform(jax.random.key(3), (500, 6), minval=-1.0, maxval=1.0)
    s = jnp.arange(0, 500, 37)
    chosen = jax.jit(jax.vmap(lambda s: stdp_q.greedy_action(w, s, PRESETS["tuned"])))(s)
    np.testing.assert_array_equal(chosen, np.asarray(w)[np.asarray(s)].argmax(1))


# ---------------------------------------------------------------------------------------------- ablation rules


@functools.cache
def _compiled_step(config):
    """plasticity_step of ``config`` (rule and config baked in), jitted once per config."""
    rule = stdp_q.three_factor_rule(config)

    def step(w, s, a, delta, estate, episode_end, active):
        greedy = jnp.argmax(w[s]).astype(jnp.int32)
        return stdp_q.plasticity_step(
            jax.random.key(1), rule, estate, w, s, a, greedy, delta, episode_end, config, active
        )

    return jax.jit(step), rule


def _step(config, w, s, a, delta, estate=None, episode_end=False, active=True):
    step, rule = _compiled_step(config)
    if estate is None and config.rule == "rstdp":
        estate = rule.init(w)
    return step(
        w, jnp.int32(s), jnp.int32(a), jnp.float32(delta), estate, jnp.bool_(episode_end), jnp.bool_(active)
    )


W0 = jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (500, 6)), jnp.float32)


def test_td_only_changes_only_the_taken_synapse_by_eta_delta():
    config = dataclasses.replace(PRESETS["td-only"], eta=0.3)
    w, _ = _step(config, W0, 3, 2, 0.4)
    diff = np.asarray(w - W0)
    assert np.count_nonzero(diff) == 1
    np.testing.assert_allclose(diff[3, 2], 0.3 * 0.4, rtol=1e-5)


@pytest.mark.parametrize("taken", ["greedy", "other"])
def test_original_rule_adds_fixed_lr_to_greedy_and_subtracts_it_from_the_others(taken):
    config = dataclasses.replace(PRESETS["original-rule"], eta=0.3, original_lr=0.01)
    s = 3
    greedy = int(np.argmax(W0[s]))
    a = greedy if taken == "greedy" else (greedy + 1) % 6
    delta = -0.2  # a bad outcome: the greedy action is still reinforced
    w, _ = _step(config, W0, s, a, delta)
    diff = np.asarray(w - W0)
    expected = np.full(6, -0.01)
    expected[greedy] = 0.01
    expected[a] += 0.3 * delta
    np.testing.assert_allclose(diff[s], expected, rtol=1e-4, atol=1e-7)
    assert np.count_nonzero(np.delete(diff, s, axis=0)) == 0


def _window_tag(config):
    """Closed form of the learning window's normalized tag when pre and post fire on every step."""
    d_plus, d_minus = math.exp(-1 / config.tau_plus), math.exp(-1 / config.tau_minus)
    steps = range(config.snn_steps)
    s_plus = sum(d_plus**k for t in steps for k in range(t + 1))
    s_minus = sum(d_minus**k for t in steps for k in range(1, t + 1))
    return (config.a_plus * s_plus - config.a_minus * s_minus) / (config.a_plus * s_plus)


def test_rstdp_credits_only_the_taken_synapse_and_its_eligibility_decays_across_steps():
    config = dataclasses.replace(PRESETS["tuned"], eta=0.2, tau_e=2.0)
    e0 = _window_tag(config)  # the efference copy makes the taken neuron fire every step; inhibition the rest
    w1, estate = _step(config, W0, 3, 2, 0.5)
    diff = np.asarray(w1 - W0)
    assert np.count_nonzero(diff) == 1
    np.testing.assert_allclose(diff[3, 2], 0.2 * 0.5 * e0, rtol=1e-4)
    w2, estate = _step(config, w1, 7, 0, -0.3, estate)
    diff = np.asarray(w2 - w1)
    assert np.count_nonzero(diff) == 2
    np.testing.assert_allclose(diff[7, 0], 0.2 * -0.3 * e0, rtol=1e-4)
    np.testing.assert_allclose(diff[3, 2], 0.2 * -0.3 * e0 * math.exp(-1 / 2.0), rtol=1e-4)
    # An episode end clears the eligibility: the next step credits only its own synapse.
    w3, estate = _step(config, w2, 9, 1, 0.1, estate, episode_end=True)
    w4, _ = _step(config, w3, 11, 4, 0.1, estate)
    assert np.count_nonzero(np.asarray(w4 - w3)) == 1


def test_rules_differ_and_a_frozen_step_changes_nothing():
    results = {}
    for preset in ("tuned", "td-only", "original-rule"):
        config = PRESETS[preset]
        w, _ = _step(config, W0, 3, 2, 0.5)
        results[preset] = np.asarray(w)
        frozen, _ = _step(config, W0, 3, 2, 0.5, active=False)
        np.testing.assert_array_equal(frozen, W0)
    assert not np.array_equal(results["tuned"], results["td-only"])
    assert not np.array_equal(results["td-only"], results["original-rule"])


def test_td_error_does_not_bootstrap_from_terminal_transitions():
    config = PRESETS["tuned"]
    w = W0.at[10].set(0.8)
    go_on = stdp_q.td_error(w, 3, 2, jnp.float32(-1.0), 10, jnp.bool_(False), config)
    final = stdp_q.td_error(w, 3, 2, jnp.float32(20.0), 10, jnp.bool_(True), config)
    np.testing.assert_allclose(go_on, -0.05 + 0.95 * 0.8 - W0[3, 2], rtol=1e-5)
    np.testing.assert_allclose(final, 1.0 - W0[3, 2], rtol=1e-5)


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("eta", -0.1),
        ("original_lr", -0.01),
        ("tau_e", -1.0),
        ("a_minus", -1.0),
        ("input_rate", 0.0),
        ("gamma", 1.5),
        ("gamma", -0.1),
        ("snn_steps", 0),
        ("w_min", 1.0),
        ("rule", "hebb"),
        ("eval_every", 333),
        ("epsilon_decay", 0.0),
    ],
)
def test_invalid_config_fails_naming_the_field_and_range(field, value):
    with pytest.raises(ValueError, match=rf"{field}=.*must be"):
        StdpQConfig(**{field: value})


def test_w_min_equal_to_w_max_is_rejected():
    with pytest.raises(ValueError, match="w_min=.*must be < w_max"):
        StdpQConfig(w_min=0.5, w_max=0.5, w_init_low=0.5, w_init_high=0.5)


def test_presets_are_valid_and_tuned_comes_first():
    assert next(iter(PRESETS)) == "tuned"
    assert {"tuned", "notebook", "td-only", "original-rule", "long-tau"} <= set(PRESETS)
    assert PRESETS["td-only"].rule == "td_only" and PRESETS["original-rule"].rule == "original"
    assert PRESETS["long-tau"].tau_e > PRESETS["tuned"].tau_e


# ---------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stdpq") / "run"
    assert main(["stdp-q", *TINY_FLAGS, "--out", str(out)]) == 0
    return out


def test_cli_writes_weights_policy_map_and_summary(cli_run):
    q = np.load(cli_run / "q_values.npy")
    assert q.shape == (2, 500, 6) and q.dtype == np.float32
    assert q.min() >= TINY.w_min and q.max() <= TINY.w_max  # exactly inside the bounds
    assert (cli_run / "policy_map.png").stat().st_size > 0 and (cli_run / "curves.png").exists()
    summary = json.loads((cli_run / "summary.json").read_text())
    assert summary["experiment"] == "stdp-q" and summary["num_seeds"] == 2
    for name in ("greedy_return", "greedy_success", "solved", "episodes_to_solve", "reached_target"):
        assert name in summary["final"]
    assert summary["total_steps"] == sum(summary["agent_steps_per_seed"]) > 400
    assert 7.9 < summary["optimal_return"] < 8.0
    config = json.loads((cli_run / "config.json").read_text())
    assert config["rule"] == "rstdp" and config["num_episodes"] == 400


def test_tiny_training_improves(cli_run):
    from synjax.runs import results

    m = results.read_metrics_csv(cli_run / "metrics.csv")  # name -> (seeds, points)
    np.testing.assert_array_equal(m["step"][0], [100, 200, 300, 400])
    for seed in range(2):
        greedy, success, ret = m["greedy_return"][seed], m["success_rate"][seed], m["train_return"][seed]
        assert greedy[-1] > greedy[0]
        assert success[-1] > success[0] + 0.5
        assert ret[-1] > ret[0] + 100


def test_same_config_and_seed_give_identical_weights_whatever_the_sweep_size(cli_run):
    run = run_seeds(stdp_q.make_train(TINY), 3, seed=0)
    q = np.load(cli_run / "q_values.npy")
    np.testing.assert_array_equal(run.output.params[:2], q)
    assert not np.array_equal(run.output.params[1], run.output.params[2])


def test_script_shows_help():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stdp_q.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "--snn-steps" in done.stdout and "--tau-e" in done.stdout


# ---------------------------------------------------------------------------------------------- NumPy reference


def test_numpy_reference_network_matches_synjax():
    ref = _load_numpy_reference()
    config = PRESETS["tuned"]
    rng = np.random.default_rng(5)
    sim = jax.jit(
        lambda c: neurons.simulate(
            c, beta=config.beta, threshold=config.threshold, inhibition=config.inhibition
        )
    )
    for _ in range(20):
        currents = rng.uniform(-0.3, 1.2, (config.snn_steps, 6))
        spikes, first, v = ref._lif_window(currents, config)
        window = sim(jnp.asarray(currents, jnp.float32))
        np.testing.assert_array_equal(spikes, np.asarray(window.spikes))
        np.testing.assert_allclose(v, window.v_final, atol=1e-5)
        assert ref._winner(spikes, first, v) == int(neurons.spike_count_winner(window))
    # The learning-window tag of one step equals the JAX rule's.
    s, a = 42, 3
    w = np.asarray(W0)
    regular = np.ones(config.snn_steps)
    drive = regular[:, None] * w[s][None, :]
    drive[:, a] += config.efference
    post, _, _ = ref._lif_window(drive, config)
    tag = ref._stdp_tag(regular, post, config) / (
        config.a_plus
        * sum(math.exp(-k / config.tau_plus) for t in range(config.snn_steps) for k in range(t + 1))
    )
    rule = stdp_q.three_factor_rule(config)
    window = stdp_q.learning_window(jax.random.key(0), rule, rule.init(W0), W0, s, a, config)
    jax_tag = rule.to_dense(rule.fold(window, s), 500)[s]  # what the window adds to an empty eligibility
    np.testing.assert_allclose(tag, jax_tag, rtol=1e-4, atol=1e-6)


def test_numpy_reference_run_returns_bounded_weights_and_step_count():
    ref = _load_numpy_reference()
    w, steps = ref.run(PRESETS["tuned"], seed=0, num_episodes=3)
    assert w.shape == (500, 6) and w.dtype == np.float32
    assert 3 <= steps <= 300 and w.min() >= -1.0 and w.max() <= 1.0
    assert np.count_nonzero(w != ref.run(PRESETS["tuned"], seed=0, num_episodes=3)[0]) == 0
