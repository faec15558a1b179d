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

from synjax.snn import encoders, neurons, plasticity, sparse_plasticity
from synjax.snn.plasticity import Signals

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
    w = jnp.zeros((1, 1))
    state = rule.init(w)
    pre, post = [], []
    for t in range(40):
        s = jnp.array([1.0 if t == t_spike else 0.0])
        dw, state = rule.update(w, state, w, Signals(s, s))
        assert dw is w  # a trace rule passes the change on
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
        dw, state = rule.update(plasticity.no_change(w), state, w, Signals(spikes[0], spikes[1]))
        return (state, w + dw), w + dw

    return jax.lax.scan(step, (rule.init(w0), w0), (pre_train, post_train))[1]


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
    dw, _ = rule.update(
        plasticity.no_change(w), rule.init(w), w, Signals(jnp.ones(1), jnp.ones(3))
    )  # simultaneous
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


# ---------------------------------------------------------------------------------------------- chain


def _raster(seed, steps=20, n_pre=3, n_post=2):
    rng = np.random.default_rng(seed)
    pre = (rng.random((steps, n_pre)) < 0.4).astype(np.float32)
    post = (rng.random((steps, n_post)) < 0.4).astype(np.float32)
    w = rng.uniform(0.1, 0.9, (n_pre, n_post)).astype(np.float32)
    return jnp.asarray(pre), jnp.asarray(post), jnp.asarray(w)


def test_chain_applies_its_rules_in_sequence():
    """chain(a, b, c).update == a's update, then b's on a's dw, then c's on b's dw; states side by side."""
    a = plasticity.stdp(0.05, 0.04, 4.0, 6.0, bounds="soft")
    b = plasticity.scale(0.5)
    c = plasticity.stdp(0.02, 0.03, 2.0, 3.0, bounds="hard")
    chained = plasticity.chain(a, b, c)
    pre, post, w = _raster(0)
    state = chained.init(w)
    s_a, s_b, s_c = a.init(w), b.init(w), c.init(w)
    assert len(state) == 3
    for t in range(pre.shape[0]):
        signals = Signals(pre[t], post[t])
        dw, state = chained.update(plasticity.no_change(w), state, w, signals)
        dw_a, s_a = a.update(plasticity.no_change(w), s_a, w, signals)
        dw_b, s_b = b.update(dw_a, s_b, w, signals)
        dw_c, s_c = c.update(dw_b, s_c, w, signals)
        np.testing.assert_array_equal(dw, dw_c)
        for x, y in zip(jax.tree.leaves(state), jax.tree.leaves((s_a, s_b, s_c))):
            np.testing.assert_array_equal(x, y)
        w = plasticity.apply_updates(w, dw, 0.0, 1.0)
    assert float(jnp.abs(dw_a).sum()) > 0  # the raster did make changes


def test_chain_of_additive_rules_sums_their_changes_and_scale_scales_them():
    a = plasticity.stdp(0.05, 0.04, 4.0, 6.0, bounds="none")
    b = plasticity.stdp(0.02, 0.03, 2.0, 3.0, bounds="none")
    pre, post, w0 = _raster(1)
    w_a, w_b = _run_stdp(a, pre, post, w0), _run_stdp(b, pre, post, w0)
    w_ab = _run_stdp(plasticity.chain(a, b), pre, post, w0)
    np.testing.assert_allclose(w_ab - w0, (w_a - w0) + (w_b - w0), rtol=1e-5, atol=1e-7)
    w_half = _run_stdp(plasticity.chain(a, plasticity.scale(0.5)), pre, post, w0)
    np.testing.assert_allclose(w_half - w0, 0.5 * (w_a - w0), rtol=1e-5, atol=1e-7)
    assert not np.allclose(w_a, w0)
    # The empty chain passes the change on; a state of the wrong length is refused.
    dw = jnp.ones_like(w0)
    assert plasticity.chain().update(dw, plasticity.chain().init(w0), w0, Signals())[0] is dw
    with pytest.raises(ValueError, match="one per rule"):
        plasticity.chain(a, b).update(dw, (a.init(w0),), w0, Signals(pre[0], post[0]))


def test_chained_trace_rule_follows_the_three_factor_rules_window():
    """exponential_traces(tau_plus, tau_minus) in a chain keeps the traces the R-STDP window keeps."""
    rstdp = plasticity.reward_modulated_stdp(0.1, 2.0, tau_plus=4.0, tau_minus=6.0)
    chained = plasticity.chain(plasticity.exponential_traces(4.0, 6.0), rstdp)
    pre, post, w = _raster(2, steps=8)
    state = chained.init(w)
    for t in range(8):
        _, state = chained.update(plasticity.no_change(w), state, w, Signals(pre[t], post[t]))
        np.testing.assert_allclose(state[0].pre, state[1].traces.pre, rtol=1e-6)
        np.testing.assert_allclose(state[0].post, state[1].traces.post, rtol=1e-6)


# ---------------------------------------------------------------------------------------------- R-STDP


def test_rstdp_eligibility_decays_with_tau_e_and_gates_the_modulated_change():
    tau_e, eta = 3.0, 0.1
    rule = plasticity.reward_modulated_stdp(eta, tau_e, 1.0, 1.0, 5.0, 5.0, bounds="none")
    w = jnp.zeros((2, 2))
    zero = plasticity.no_change(w)
    state = rule.init(w)
    dw, state = rule.update(zero, state, w, Signals(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])))
    np.testing.assert_allclose(state.tag, [[0.0, 1.0], [0.0, 0.0]], atol=1e-7)  # pre 0 & post 1 together: +1
    assert float(jnp.abs(dw).sum()) == 0.0  # the tag alone does not change the weights
    dw, state = rule.update(
        zero, state, w, Signals(modulator=0.0)
    )  # no modulator: no change, eligibility = tag
    assert float(jnp.abs(dw).sum()) == 0.0 and float(state.eligibility[0, 1]) == pytest.approx(1.0)
    assert float(jnp.abs(state.tag).sum()) == 0.0  # the window is cleared
    for k in range(1, 6):
        dw, state = rule.update(zero, state, w, Signals(modulator=2.0))
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
        signals = Signals(jax.nn.one_hot(row, 8), post, modulator)  # a time step, then the modulation step
        dw, state = rule.update(plasticity.no_change(w), state, w, signals)
        return (state, w + dw), w + dw

    def run(rows, posts, modulators):
        w = jnp.zeros((8, 2))
        return jax.lax.scan(step, (rule.init(w), w), (rows, posts, modulators))[1]

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


@functools.cache
def _dense_and_sparse_steps(trace):
    n_pre, tau_e, eta = 30, 2.0, 0.3
    # Amplitudes and windows that do not cancel: with "replace", a tag that is 0 in one rounding and 1e-8 in
    # another would decide between keeping and replacing an eligibility.
    kw = {
        "a_minus": 0.37,
        "tau_plus": 3.0,
        "tau_minus": 7.0,
        "tag_scale": 0.3,
        "trace": trace,
        "eligibility_max": 1.5,
        "bounds": "hard",
        "w_min": -1.0,
        "w_max": 1.0,
    }
    dense = plasticity.reward_modulated_stdp(eta, tau_e, **kw)
    sparse = sparse_plasticity.sparse_reward_modulated_stdp(
        eta, tau_e, sparse_plasticity.sparse_capacity(tau_e, 1e-7), **kw
    )

    def window(rule, state, w, pre, post):
        def t(state, x):
            return rule.update(plasticity.no_change(w), state, w, Signals(*x))[1], None

        return jax.lax.scan(t, state, (pre, post))[0]

    @jax.jit
    def step(d_state, s_state, u_state, w_d, w_s, w_u, row, pre, post, modulator):
        """One window of row ``row`` then a modulation step: dense rule; sparse fold + apply (the agent's
        path); sparse update + apply_updates."""
        d_state = window(dense, d_state, w_d, jax.nn.one_hot(row, n_pre)[None] * pre[:, None], post)
        dw, d_state = dense.update(plasticity.no_change(w_d), d_state, w_d, Signals(modulator=modulator))
        s_state = sparse.fold(window(sparse, s_state, w_s, pre[:, None], post), row)
        u_state = window(sparse, u_state, w_u, pre[:, None], post)
        du, u_state = sparse.update(
            plasticity.no_change(w_u), u_state, w_u, Signals(modulator=modulator, row=row)
        )
        return (
            (d_state, s_state, u_state),
            (plasticity.apply_updates(w_d, dw, -1.0, 1.0), sparse.apply(s_state, modulator, w_s),
             plasticity.apply_updates(w_u, du, -1.0, 1.0)),
        )  # fmt: skip

    return dense, sparse, step


@pytest.mark.parametrize("trace", ["accumulate", "replace"])
def test_sparse_rule_equals_the_dense_rule(trace):
    """The row cache of the STDP-Q agent gives the dense eligibility and weights (one row active a window)."""
    n_pre, n_post = 30, 4
    dense, sparse, step = _dense_and_sparse_steps(trace)
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.uniform(-0.5, 0.5, (n_pre, n_post)), jnp.float32)
    states, ws = (dense.init(w), sparse.init(w), sparse.init(w)), (w, w, w)
    for k in range(120):
        row = int(rng.integers(0, 6 if k < 60 else n_pre))  # revisits first, then many distinct rows
        pre = jnp.asarray(rng.random(5) < 0.6, jnp.float32)
        post = jnp.asarray(rng.random((5, n_post)) < 0.4, jnp.float32)
        states, ws = step(*states, *ws, jnp.int32(row), pre, post, jnp.float32(rng.normal()))
        d_state, s_state, u_state = states
        np.testing.assert_allclose(sparse.to_dense(s_state, n_pre), d_state.eligibility, atol=1e-6)
        np.testing.assert_array_equal(sparse.to_dense(u_state, n_pre), sparse.to_dense(s_state, n_pre))
        np.testing.assert_allclose(ws[1], ws[0], atol=1e-5)
        np.testing.assert_allclose(ws[2], ws[1], atol=1e-6)
    assert float(jnp.abs(d_state.eligibility).max()) > 0.1
    cleared = sparse.clear(s_state)
    assert float(jnp.abs(sparse.to_dense(cleared, n_pre)).sum()) == 0.0
    with pytest.raises(ValueError, match="row"):
        sparse.update(plasticity.no_change(w), cleared, w, Signals(modulator=1.0))


def test_sparse_capacity():
    assert sparse_plasticity.sparse_capacity(0.0) == 1
    assert sparse_plasticity.sparse_capacity(1.0, 1e-6) == 14  # exp(-14) < 1e-6 < exp(-13)
    assert sparse_plasticity.sparse_capacity(20.0, 1e-6, max_rows=100) == 100
