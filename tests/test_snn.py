"""synjax.snn building blocks: LIF neurons, spike encoders, spike traces, STDP and reward-modulated STDP."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from synjax.snn import encoders, neurons, plasticity

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@jax.jit
def _simulate(currents, beta, inhibition=0.0):
    """One compiled window per input shape; beta and inhibition are traced (no recompiles across examples)."""
    return neurons.simulate(currents, beta=beta, inhibition=inhibition)


# ---------------------------------------------------------------------------------------------- neurons


def test_lif_step_leak_threshold_and_both_resets():
    v = jnp.array([0.5, 0.5, 0.0])
    out = neurons.lif_step(v, jnp.array([0.2, 0.7, 1.5]), beta=0.8, threshold=1.0, reset="subtract")
    np.testing.assert_allclose(out.potential, [0.6, 1.1, 1.5], rtol=1e-6)
    np.testing.assert_array_equal(out.spike, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(out.v, [0.6, 0.1, 0.5], rtol=1e-5)
    zero = neurons.lif_step(v, jnp.array([0.2, 0.7, 1.5]), beta=0.8, threshold=1.0, reset="zero")
    np.testing.assert_allclose(zero.v, [0.6, 0.0, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="reset"):
        neurons.lif_step(v, v, beta=0.9, reset="hold")


def test_subthreshold_membrane_follows_the_leaky_integral():
    beta, current, steps = 0.9, 0.05, 12  # saturates at 0.5 < threshold: never fires
    window = _simulate(jnp.full((steps, 1), current), beta)
    expected = current * (1 - beta ** np.arange(1, steps + 1)) / (1 - beta)
    np.testing.assert_allclose(window.potentials[:, 0], expected, rtol=1e-5)
    assert float(window.spikes.sum()) == 0.0 and np.isinf(window.first_spike[0])


def test_suprathreshold_constant_input_fires_every_step_with_subtract_reset():
    window = _simulate(jnp.full((10, 1), 1.0), 0.9)
    np.testing.assert_array_equal(window.spikes[:, 0], np.ones(10))
    assert float(window.first_spike[0]) == 0.0  # crosses exactly at the end of step 0


def test_lateral_inhibition_current_and_silencing():
    spikes = jnp.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(neurons.lateral_inhibition(spikes, 0.5), [-0.5, -1.0, -0.5])
    # Neuron 0 driven hard fires from step 0; with inhibition, neuron 1 (just enough to fire alone) never does.
    currents = jnp.tile(jnp.array([[2.0, 0.3]]), (10, 1))
    alone = _simulate(currents, 0.9, 0.0)
    inhibited = _simulate(currents, 0.9, 2.0)
    assert float(alone.spikes[:, 1].sum()) > 0
    assert float(inhibited.spikes[:, 1].sum()) == 0.0 and float(inhibited.spikes[:, 0].sum()) == 10


@SETTINGS
@given(st.floats(0.1, 3.0), st.floats(0.01, 1.0), st.floats(0.0, 1.0))
def test_first_spike_time_is_strictly_earlier_for_stronger_input(current, extra, beta):
    currents = jnp.array([[current, current + extra]], jnp.float32).repeat(10, axis=0)
    first = np.asarray(_simulate(currents, beta).first_spike)
    assert first[1] <= first[0]
    if np.isfinite(first[0]):
        assert first[1] < first[0]


def test_winner_most_spikes_then_first_spike_then_closest_to_threshold():
    # Most spikes wins even if it starts later.
    spikes = jnp.array([[1, 0], [0, 1], [0, 1]], jnp.float32)
    w = neurons.Window(spikes, spikes, jnp.zeros(2), jnp.array([0.0, 1.0]))
    assert int(neurons.spike_count_winner(w)) == 1
    # Equal counts: the earlier first spike wins.
    w = neurons.Window(spikes[:2], spikes[:2], jnp.zeros(2), jnp.array([0.4, 0.2]))
    assert int(neurons.spike_count_winner(w)) == 1
    # No spikes at all: the highest final potential wins.
    none = jnp.zeros((3, 3))
    w = neurons.Window(none, none, jnp.array([0.1, 0.7, 0.3]), jnp.full(3, jnp.inf))
    assert int(neurons.spike_count_winner(w)) == 1


# ---------------------------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("steps", [1, 7, 10, 25])
@pytest.mark.parametrize("rate", [0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0])
def test_regular_train_count_and_even_spacing(steps, rate):
    train = np.asarray(encoders.regular_train(steps, rate))
    assert set(np.unique(train)) <= {0.0, 1.0}
    assert train.sum() == math.floor(steps * rate + 1e-9)
    times = np.nonzero(train)[0]
    if times.size > 1:  # gaps differ by at most one step
        gaps = np.diff(times)
        assert gaps.max() - gaps.min() <= 1


def test_poisson_train_rate_and_independence():
    keys = jax.random.split(jax.random.key(0), 4000)
    trains = np.asarray(jax.vmap(lambda k: encoders.poisson_train(k, 10, 0.3))(keys))
    assert abs(trains.mean() - 0.3) < 0.01  # 40,000 Bernoulli(0.3): std of the mean 0.0023
    counts = trains.sum(1)
    assert abs(counts.var() - 10 * 0.3 * 0.7) < 0.2  # Binomial(10, 0.3) variance 2.1
    assert np.asarray(encoders.spike_train(keys[0], "regular", 10, 0.3)).sum() == 3
    with pytest.raises(ValueError, match="encoding"):
        encoders.spike_train(keys[0], "burst", 10, 0.3)


def test_onehot_current_equals_dense_raster_through_weights():
    w = jax.random.normal(jax.random.key(1), (50, 6))
    train = encoders.poisson_train(jax.random.key(2), 8, 0.5)
    dense = encoders.onehot_trains(jnp.int32(17), 50, train)
    assert dense.shape == (8, 50) and float(dense.sum()) == float(train.sum())
    np.testing.assert_allclose(encoders.onehot_current(jnp.int32(17), train, w), dense @ w, rtol=1e-6)


# ---------------------------------------------------------------------------------------------- traces, STDP


@SETTINGS
@given(st.floats(0.5, 50.0), st.integers(0, 30))
def test_trace_of_one_spike_decays_exponentially(tau, t_spike):
    rule = plasticity.exponential_traces(tau, 2 * tau)
    state = rule.init(1, 1)
    pre, post = [], []
    for t in range(40):
        s = jnp.array([1.0 if t == t_spike else 0.0])
        state = rule.update(state, s, s)
        pre.append(float(state.pre[0]))
        post.append(float(state.post[0]))
    t = np.arange(40)
    expected_pre = np.where(t >= t_spike, np.exp(-(t - t_spike) / tau), 0.0)
    expected_post = np.where(t >= t_spike, np.exp(-(t - t_spike) / (2 * tau)), 0.0)
    np.testing.assert_allclose(pre, expected_pre, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(post, expected_post, rtol=1e-4, atol=1e-7)


def _stdp_scan(rule, pre_train, post_train, w0):
    """Weights after every step of a spike raster: (T, n_pre, n_post)."""

    def step(carry, spikes):
        state, w = carry
        dw, state = rule.update(state, spikes[0], spikes[1], w)
        return (state, w + dw), w + dw

    state = rule.init(pre_train.shape[1], post_train.shape[1])
    return jax.lax.scan(step, (state, w0), (pre_train, post_train))[1]


def _run_stdp(rule, pre_train, post_train, w0):
    return jax.jit(functools.partial(_stdp_scan, rule))(pre_train, post_train, w0)[-1]


@functools.cache
def _bounded_stdp_runner(bounds, a_plus, a_minus):
    rule = plasticity.stdp(a_plus, a_minus, 3.0, 3.0, bounds=bounds, w_min=-0.5, w_max=1.5)
    return jax.jit(functools.partial(_stdp_scan, rule))


A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS = 0.01, 0.012, 5.0, 8.0


def _window(dt):
    """Closed form of the pair window, elementwise: dt = t_post - t_pre."""
    dt = np.asarray(dt, np.float64)
    return np.where(
        dt >= 0, A_PLUS * np.exp(-dt / TAU_PLUS), -A_MINUS * np.exp(np.minimum(dt, 0) / TAU_MINUS)
    )


_PAIR_RULE = plasticity.stdp(A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, bounds="none")
_pair_runner = jax.jit(functools.partial(_stdp_scan, _PAIR_RULE))


@pytest.mark.parametrize("delay", [-12, -5, -1, 0, 1, 2, 5, 12])
def test_stdp_pair_matches_the_closed_form_window(delay):
    t_pre = 15
    pre, post = np.zeros((40, 1), np.float32), np.zeros((40, 1), np.float32)
    pre[t_pre, 0], post[t_pre + delay, 0] = 1.0, 1.0
    w = _pair_runner(pre, post, jnp.zeros((1, 1)))[-1]
    np.testing.assert_allclose(float(w[0, 0]), float(_window(delay)), rtol=1e-4, atol=1e-9)


@SETTINGS
@given(
    arrays(np.float32, (25, 2), elements=st.sampled_from([0.0, 1.0])),
    arrays(np.float32, (25, 3), elements=st.sampled_from([0.0, 1.0])),
)
def test_stdp_all_to_all_sums_every_pair(pre, post):
    w = np.asarray(_pair_runner(pre, post, jnp.zeros((2, 3)))[-1])
    expected = np.zeros((2, 3))
    for i in range(2):
        for j in range(3):
            t_pre, t_post = np.nonzero(pre[:, i])[0], np.nonzero(post[:, j])[0]
            expected[i, j] = _window(t_post[None, :] - t_pre[:, None]).sum()
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-6)


@SETTINGS
@given(
    arrays(np.float32, (30, 3), elements=st.sampled_from([0.0, 1.0])),
    arrays(np.float32, (30, 2), elements=st.sampled_from([0.0, 1.0])),
    arrays(np.float32, (3, 2), elements=st.floats(-0.5, 1.5, width=32)),
    st.sampled_from(["hard", "soft"]),
    st.sampled_from([(0.05, 0.05), (2.0, 0.5), (0.5, 3.0)]),
)
def test_stdp_weights_stay_within_bounds_under_any_input(pre, post, w0, bounds, amplitudes):
    ws = np.asarray(_bounded_stdp_runner(bounds, *amplitudes)(pre, post, np.clip(w0, -0.5, 1.5)))
    # Plain ``w + dw`` may overshoot by one float rounding; apply_updates removes even that.
    assert ws.min() >= -0.5 - 1e-6 and ws.max() <= 1.5 + 1e-6
    exact = plasticity.apply_updates(jnp.asarray(ws), 0.0, -0.5, 1.5)
    np.testing.assert_allclose(exact, ws, atol=1e-6)


def test_soft_bounds_scale_changes_by_the_distance_to_the_bound():
    rule = plasticity.stdp(0.1, 0.1, 5.0, 5.0, bounds="soft", w_min=0.0, w_max=1.0)
    w = jnp.array([[0.0, 0.5, 1.0]])
    dw, _ = rule.update(rule.init(1, 3), jnp.ones(1), jnp.ones(3), w)  # simultaneous: potentiation 0.1 only
    np.testing.assert_allclose(dw, [[0.1, 0.05, 0.0]], rtol=1e-5, atol=1e-8)


def test_stdp_rejects_bad_parameters():
    with pytest.raises(ValueError, match="a_plus"):
        plasticity.stdp(a_plus=-1.0)
    with pytest.raises(ValueError, match="w_min"):
        plasticity.stdp(w_min=1.0, w_max=1.0)
    with pytest.raises(ValueError, match="tau"):
        plasticity.exponential_traces(-1.0, 1.0)


def test_max_potentiation_is_the_tag_of_an_always_firing_pair():
    rule = plasticity.stdp(0.3, 0.0, 4.0, 4.0, bounds="none")
    w = _run_stdp(rule, jnp.ones((10, 1)), jnp.ones((10, 1)), jnp.zeros((1, 1)))
    np.testing.assert_allclose(float(w[0, 0]), plasticity.max_potentiation(0.3, 4.0, 10), rtol=1e-5)


# ---------------------------------------------------------------------------------------------- R-STDP


def test_rstdp_eligibility_decays_with_tau_e_and_gates_the_modulated_change():
    tau_e, eta = 3.0, 0.1
    rule = plasticity.reward_modulated_stdp(eta, tau_e, 1.0, 1.0, 5.0, 5.0, bounds="none")
    w = jnp.zeros((2, 2))
    state = rule.init(w)
    state = rule.update(state, jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))  # pre 0 & post 1 together: +1
    tag = np.asarray(rule.window_tag(state))
    np.testing.assert_allclose(tag, [[0.0, 1.0], [0.0, 0.0]], atol=1e-7)
    assert float(w.sum()) == 0.0  # the tag alone does not change the weights
    dw, state = rule.apply(state, 0.0, w)  # no modulator: no change, but the eligibility holds the tag
    assert float(jnp.abs(dw).sum()) == 0.0
    for k in range(1, 6):
        dw, state = rule.apply(state, 2.0, w)
        np.testing.assert_allclose(float(state.eligibility[0, 1]), math.exp(-k / tau_e), rtol=1e-5)
        np.testing.assert_allclose(float(dw[0, 1]), eta * 2.0 * math.exp(-k / tau_e), rtol=1e-5)
        assert float(jnp.abs(dw).sum() - jnp.abs(dw[0, 1])) == 0.0  # only the tagged synapse is eligible


@functools.cache
def _rstdp_runner(bounds, trace):
    """Jitted: rows (N,), post spikes (N, 2), modulators (N,) -> weights after every modulation step."""
    rule = plasticity.reward_modulated_stdp(0.9, 4.0, bounds=bounds, trace=trace, w_min=-1.0, w_max=1.0)

    def step(carry, event):
        state, w = carry
        row, post, modulator = event
        state = rule.update(state, jnp.ones(1), post)
        dw, state = rule.apply(state, modulator, w, rows=row[None])
        return (state, w + dw), w + dw

    def run(rows, posts, modulators):
        w = jnp.zeros((8, 2))
        return jax.lax.scan(step, (rule.init(w, window_pre=1), w), (rows, posts, modulators))[1]

    return jax.jit(run)


@SETTINGS
@given(
    arrays(np.int32, 30, elements=st.integers(0, 7)),
    arrays(np.float32, (30, 2), elements=st.sampled_from([0.0, 1.0])),
    arrays(np.float32, 30, elements=st.floats(-3.0, 3.0, width=32)),
    st.sampled_from(["hard", "soft"]),
    st.sampled_from(["accumulate", "replace"]),
)
def test_rstdp_weights_stay_within_bounds_under_any_modulation(rows, posts, modulators, bounds, trace):
    ws = np.asarray(_rstdp_runner(bounds, trace)(rows, posts, modulators))
    assert ws.min() >= -1.0 - 1e-6 and ws.max() <= 1.0 + 1e-6


@pytest.mark.parametrize("trace", ["accumulate", "replace"])
def test_sparse_eligibility_equals_the_dense_rule(trace):
    """The row cache of the STDP-Q agent gives the dense eligibility and weights (one row tagged a step)."""
    n_pre, n_post, tau_e, eta = 30, 4, 2.0, 0.3
    kw = {"trace": trace, "eligibility_max": 1.5, "bounds": "hard", "w_min": -1.0, "w_max": 1.0}
    dense = plasticity.reward_modulated_stdp(eta, tau_e, **kw)
    sparse = plasticity.sparse_eligibility(eta, tau_e, plasticity.sparse_capacity(tau_e, 1e-7), **kw)
    rng = np.random.default_rng(0)
    w_dense = w_sparse = jnp.asarray(rng.uniform(-0.5, 0.5, (n_pre, n_post)), jnp.float32)
    d_state = dense.init(w_dense, window_pre=1)
    s_state = sparse.init(n_post)
    dense_apply, sparse_update, sparse_apply = (
        jax.jit(dense.apply),
        jax.jit(sparse.update),
        jax.jit(sparse.apply),
    )
    for step in range(120):
        row = int(rng.integers(0, 6 if step < 60 else n_pre))  # revisits first, then many distinct rows
        tag = jnp.asarray(rng.normal(0, 0.7, n_post) * (rng.random(n_post) < 0.7), jnp.float32)
        modulator = float(rng.normal())
        d_state = d_state._replace(tag=tag[None])
        dw, d_state = dense_apply(d_state, modulator, w_dense, rows=jnp.array([row]))
        w_dense = plasticity.apply_updates(w_dense, dw, -1.0, 1.0)
        s_state = sparse_update(s_state, jnp.int32(row), tag)
        w_sparse = sparse_apply(s_state, modulator, w_sparse)
        np.testing.assert_allclose(sparse.to_dense(s_state, n_pre), d_state.eligibility, atol=1e-6)
        np.testing.assert_allclose(w_sparse, w_dense, atol=1e-5)
    cleared = sparse.clear(s_state)
    assert float(jnp.abs(sparse.to_dense(cleared, n_pre)).sum()) == 0.0


def test_sparse_capacity():
    assert plasticity.sparse_capacity(0.0) == 1
    assert plasticity.sparse_capacity(1.0, 1e-6) == 14  # exp(-14) < 1e-6 < exp(-13)
    assert plasticity.sparse_capacity(20.0, 1e-6, max_rows=100) == 100
