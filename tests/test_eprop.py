"""e-prop's rule (:mod:`synjax.snn.eprop`): exactly BPTT's gradient where the paper says it is (one layer, no
recurrent weights, symmetric feedback, the reset's gradient detached in both), an approximation with recurrent
weights (measured and printed), the PlasticityRule form equal to the batched functions, the refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synjax.snn import eprop, plasticity
from synjax.snn.plasticity import Signals

STEPS, BATCH, N_IN, HIDDEN, OUT = 40, 3, 5, 16, 3
KAPPA = 0.8


def _problem(seed=0):
    k = jax.random.split(jax.random.key(seed), 5)
    x = jax.random.normal(k[0], (STEPS, BATCH, N_IN)) * 1.5
    w_in = jax.random.normal(k[1], (N_IN, HIDDEN)) * 0.8
    w_rec = jax.random.normal(k[2], (HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)
    w_out = jax.random.normal(k[3], (HIDDEN, OUT)) / np.sqrt(HIDDEN)
    target = jax.random.normal(k[4], (STEPS, BATCH, OUT))
    return x, w_in, w_rec, w_out, target


def _forward(cell, w_in, w_rec, w_out, x):
    """The layer and its leaky read-out over the sequence: read-outs (STEPS, B, OUT), pseudo-derivatives, the
    presynaptic activities of the input and recurrent synapses."""

    def step(carry, xt):
        state, y = carry
        current = xt @ w_in + (state.z @ w_rec if w_rec is not None else 0.0)
        z, psi, new = eprop.neuron_step(cell, state, current)
        y = KAPPA * y + z @ w_out
        return (new, y), (y, psi, state.z)

    init = (eprop.rest((BATCH, HIDDEN)), jnp.zeros((BATCH, OUT)))
    _, (y, psi, z_prev) = jax.lax.scan(step, init, x)
    return y, psi, z_prev


def _loss(cell, w_in, w_rec, w_out, x, target):
    y, _, _ = _forward(cell, w_in, w_rec, w_out, x)
    return 0.5 * ((y - target) ** 2).sum()


def _eprop_gradients(cell, w_in, w_rec, w_out, x, target, feedback=None):
    """e-prop's gradients of the same loss for the input (and recurrent) weights, from the forward traces."""
    y, psi, z_prev = _forward(cell, w_in, w_rec, w_out, x)
    y, psi, z_prev = jax.lax.stop_gradient((y, psi, z_prev))
    learning = eprop.learning_signal(y - target, w_out if feedback is None else feedback)  # (STEPS, B, H)
    grads = []
    for pre, n_pre in ((x, N_IN), (z_prev, HIDDEN)) if w_rec is not None else ((x, N_IN),):

        def step(carry, inputs):
            traces, ebar, g = carry
            p, s, lsig = inputs
            e, traces = eprop.eligibility_step(cell, traces, p, s)
            ebar = KAPPA * ebar + e
            return (traces, ebar, g + eprop.weight_gradient(lsig, ebar).sum(0)), None

        init = (eprop.eligibility_init(cell, (BATCH,), n_pre, HIDDEN), jnp.zeros((BATCH, n_pre, HIDDEN)),
                jnp.zeros((n_pre, HIDDEN)))  # fmt: skip
        (_, _, g), _ = jax.lax.scan(step, init, (pre, psi, learning))
        grads.append(g)
    return grads


def _relative(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize("kind", ["LIF", "ALIF", "IF", "sigmoid", "adaptive-sigmoid"])
def test_eprop_equals_bptt_for_one_layer_without_recurrent_weights(kind):
    x, w_in, _, w_out, target = _problem()
    cell = eprop.Cell(kind=kind, alpha=1.0 if kind == "IF" else 0.9, beta_a=0.5)
    bptt = jax.grad(_loss, argnums=1)(cell, w_in, None, w_out, x, target)
    (ours,) = _eprop_gradients(cell, w_in, None, w_out, x, target)
    assert float(jnp.abs(bptt).max()) > 1e-2  # the surrogate lets gradient through: not a 0 == 0 comparison
    np.testing.assert_allclose(ours, bptt, rtol=1e-5, atol=1e-5 * float(jnp.abs(bptt).max()))


@pytest.mark.parametrize("kind", ["LIF", "ALIF"])
def test_eprop_with_recurrent_weights_approximates_bptt(kind):
    x, w_in, w_rec, w_out, target = _problem(1)
    cell = eprop.Cell(kind=kind, beta_a=0.5 if kind == "ALIF" else 0.07)
    bptt_in, bptt_rec = jax.grad(_loss, argnums=(1, 2))(cell, w_in, w_rec, w_out, x, target)
    ours_in, ours_rec = _eprop_gradients(cell, w_in, w_rec, w_out, x, target)
    err_in, err_rec = _relative(ours_in, bptt_in), _relative(ours_rec, bptt_rec)
    cos = float((ours_in * bptt_in).sum() / jnp.linalg.norm(ours_in) / jnp.linalg.norm(bptt_in))
    print(f"recurrent {kind}: e-prop vs BPTT relative error input {err_in:.3f}, recurrent {err_rec:.3f}; "
          f"cosine (input) {cos:.3f}")  # fmt: skip
    assert 1e-4 < err_in < 1.0 and cos > 0.5  # not exact (it drops paths), but the same direction


def test_random_feedback_is_not_the_gradient_but_the_same_traces():
    x, w_in, _, w_out, target = _problem(2)
    cell = eprop.Cell()
    bptt = jax.grad(_loss, argnums=1)(cell, w_in, None, w_out, x, target)
    feedback = jax.random.normal(jax.random.key(9), w_out.shape) / np.sqrt(HIDDEN)
    (ours,) = _eprop_gradients(cell, w_in, None, w_out, x, target, feedback)
    assert _relative(ours, bptt) > 0.1


def test_the_plasticity_rule_form_matches_the_batched_functions():
    """eprop() in a chain with scale(), fed one sample's steps, gives that sample's e-prop gradient."""
    x, w_in, _, w_out, target = _problem(3)
    cell = eprop.Cell(kind="ALIF", beta_a=0.5)
    y, psi, _ = _forward(cell, w_in, None, w_out, x)
    learning = eprop.learning_signal(y - target, w_out)
    rule = plasticity.chain(eprop.eprop(cell, KAPPA), plasticity.scale(-0.5))
    state, total = rule.init(w_in), jnp.zeros_like(w_in)
    for t in range(STEPS):
        signals = Signals(x[t, 0], psi[t, 0], learning=learning[t, 0])
        dw, state = rule.update(plasticity.no_change(w_in), state, w_in, signals)
        total = total + dw
    # the batched functions on a batch of copies of sample 0: the gradient summed over BATCH copies
    copies = x[:, :1].repeat(BATCH, 1), target[:, :1].repeat(BATCH, 1)
    (batched,) = _eprop_gradients(cell, w_in, None, w_out, copies[0], copies[1])
    np.testing.assert_allclose(total, -0.5 * batched / BATCH, rtol=1e-5, atol=1e-7)


def test_td_eligibility_accumulates_and_is_modulated():
    rule = eprop.td_eligibility(0.5)
    w = jnp.zeros((1, 1))
    trace = rule.init(w)
    dw, trace = rule.update(jnp.ones((1, 1)), trace, w, Signals())
    assert float(dw[0, 0]) == 0.0 and float(trace[0, 0]) == 1.0
    dw, trace = rule.update(jnp.ones((1, 1)), trace, w, Signals(modulator=2.0))
    assert float(trace[0, 0]) == 1.5 and float(dw[0, 0]) == 3.0


def test_actor_critic_error_is_the_gradient_of_its_loss():
    logits, action = jnp.array([[0.3, -1.0, 0.5]]), jnp.array([2])
    policy, ent = eprop.actor_critic_error(logits, action, value_coef=0.5, ent_coef=0.01)

    def e_policy(out):
        return -jax.nn.log_softmax(out[:, :3])[0, 2] - 0.5 * out[0, 3]

    def e_entropy(out):
        log_pi = jax.nn.log_softmax(out[:, :3])
        return 0.01 * (jnp.exp(log_pi) * log_pi).sum()

    out = jnp.concatenate([logits, jnp.array([[0.7]])], -1)
    np.testing.assert_allclose(policy, jax.grad(e_policy)(out), rtol=1e-6)
    np.testing.assert_allclose(ent, jax.grad(e_entropy)(out), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "cell, field",
    [(eprop.Cell(kind="CuBaLIF"), "kind"), (eprop.Cell(alpha=0.0), "alpha"), (eprop.Cell(threshold=0.0), "threshold"),
     (eprop.Cell(rho=1.5), "rho"), (eprop.Cell(dampening=-1.0), "dampening")],
)  # fmt: skip
def test_bad_cells_are_refused(cell, field):
    with pytest.raises(ValueError, match=f"^{field}="):
        eprop.eprop(cell, 0.9)


def test_bad_decays_are_refused():
    with pytest.raises(ValueError, match="^kappa="):
        eprop.eprop(eprop.Cell(), 1.5)
    with pytest.raises(ValueError, match="^decay="):
        eprop.td_eligibility(-0.1)


@pytest.mark.parametrize("kind", ["LIF", "ALIF"])
def test_a_window_of_steps_equals_stepping_the_traces(kind):
    """eligibility_window (one contraction over the steps without adaptation) gives what stepping
    eligibility_step and the read-out filter gives, traces included."""
    cell = eprop.Cell(kind=kind, beta_a=0.5)
    k = jax.random.split(jax.random.key(4), 3)
    pre = jax.random.normal(k[0], (6, BATCH, N_IN))
    psi = jax.random.uniform(k[1], (6, BATCH, HIDDEN)) * 0.3
    start = eprop.eligibility_init(cell, (BATCH,), N_IN, HIDDEN)
    start = start._replace(pbar=jax.random.normal(k[2], (BATCH, N_IN)))
    traces, ebar = start, jnp.zeros((BATCH, N_IN, HIDDEN))
    for t in range(6):
        e, traces = eprop.eligibility_step(cell, traces, pre[t], psi[t])
        ebar = KAPPA * ebar + e
    window, after = eprop.eligibility_window(cell, start, pre, psi, KAPPA)
    np.testing.assert_allclose(window, ebar, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(traces)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
