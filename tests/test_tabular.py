"""Tabular Q-learning, value iteration (ground truth) and greedy evaluation on Taxi."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synjax.cli import main as cli_main
from synjax.envs import taxi
from synjax.tabular import evaluate, qlearning
from synjax.tabular import value_iteration as vi
from synjax.tabular.qlearning import TabularQConfig, TrainState

ENV = taxi.Taxi()
STARTS = taxi.start_states()
# Passenger waiting at R, destination G, taxi on R: pickup, 8 moves around the wall, drop-off = 20 - 9 = 11.
R_TO_G = int(taxi.encode(0, 0, 0, 1))


@pytest.fixture(scope="module")
def q_star():
    return vi.value_iteration(0.95)


@pytest.fixture(scope="module")
def q_star_rainy():
    return vi.value_iteration(0.95, is_rainy=True)


@jax.jit
def simulate_greedy(q):
    """Greedy episodes from every start, step by step through the JAX env's own step_env (dry Taxi).

    Returns (200, 300): the return collected after 1, 2, ..., 200 steps.
    """
    ids = jnp.asarray(STARTS)
    row, col, pass_loc, dest = taxi.decode(ids)
    state = taxi.EnvState(
        time=jnp.zeros_like(ids),
        taxi_row=row,
        taxi_col=col,
        pass_loc=pass_loc,
        dest_idx=dest,
        fickle_pending=jnp.zeros(ids.shape, bool),
        last_action=jnp.full(ids.shape, -1),
    )
    step = jax.vmap(ENV.step_env, in_axes=(None, 0, 0, None))

    def body(c, _):
        obs, state, ret, done = c
        obs, state, r, term, _ = step(jax.random.key(0), state, jnp.argmax(q[obs], axis=1), taxi.EnvParams())
        ret = ret + jnp.where(done, 0.0, r)
        return (obs, state, ret, done | term), ret

    init = (ids, state, jnp.zeros(ids.shape), jnp.zeros(ids.shape, bool))
    return jax.lax.scan(body, init, None, length=200)[1]


# ---------------------------------------------------------------------------------------------- ground truth


def test_value_iteration_is_a_fixed_point_and_its_greedy_policy_is_optimal(q_star):
    assert vi.bellman_residual(q_star.q, 0.95) < 1e-9
    optimum = vi.optimal_start_return()
    assert optimum == pytest.approx(
        7.93, abs=1e-9
    )  # Gymnasium's own P gives the same (not the 8.46 often quoted)
    returns = vi.policy_start_returns(q_star.q)
    assert returns.mean() == pytest.approx(optimum, abs=1e-9)
    # No greedy policy of any table beats the optimum from any start.
    random_q = np.random.default_rng(0).normal(size=(500, 6))
    assert np.all(vi.policy_start_returns(random_q) <= vi.optimal_finite_horizon_values()[STARTS] + 1e-9)


def test_hand_checked_optimal_value(q_star):
    v, delivered = vi.policy_values(q_star.q.argmax(1))
    assert v[R_TO_G] == pytest.approx(11.0)
    assert delivered[R_TO_G] == 1.0
    assert q_star.v[R_TO_G] == pytest.approx(sum(-(0.95**k) for k in range(9)) + 20 * 0.95**9)


def test_value_iteration_rainy(q_star_rainy):
    assert vi.bellman_residual(q_star_rainy.q, 0.95, is_rainy=True) < 1e-8
    optimum = vi.optimal_start_return(is_rainy=True)
    assert 0.0 < optimum < vi.optimal_start_return()  # slipping costs steps
    assert vi.policy_start_returns(q_star_rainy.q, is_rainy=True).mean() == pytest.approx(optimum, abs=1e-6)
    # The undiscounted problem (gamma = 1) converges too and agrees with the horizon-200 optimum.
    undiscounted = vi.value_iteration(1.0, is_rainy=True)
    assert undiscounted.v[STARTS].mean() == pytest.approx(optimum, abs=1e-6)


def test_value_iteration_rejects_bad_gamma():
    with pytest.raises(ValueError, match="gamma"):
        vi.value_iteration(1.5)


# ---------------------------------------------------------------------------------------------- evaluation


def test_exact_evaluation_on_hand_checkable_tables():
    # argmax of zeros is South everywhere: nobody is delivered, 200 steps of -1.
    ret, delivered = evaluate.greedy_outcomes_all_starts(jnp.zeros((500, 6)))
    np.testing.assert_array_equal(np.asarray(ret), -200.0)
    assert not np.any(np.asarray(delivered))
    # Always "pickup": legal (-1) once where the taxi starts on the passenger, then illegal (-10) forever.
    q = jnp.zeros((500, 6)).at[:, taxi.PICKUP].set(1.0)
    row, col, pass_loc, _ = taxi.decode(STARTS)
    on_passenger = np.array([(r, c) == taxi.LOCS[p] for r, c, p in zip(row, col, pass_loc)])
    expected = np.where(on_passenger, -1.0 - 199 * 10.0, -2000.0)
    np.testing.assert_array_equal(np.asarray(evaluate.greedy_returns_all_starts(q)), expected)
    np.testing.assert_array_equal(
        np.asarray(evaluate.greedy_returns_all_starts(q, max_steps=3)), np.where(on_passenger, -21.0, -30.0)
    )


def test_doubling_evaluation_equals_step_by_step_simulation(q_star):
    noisy = q_star.q + np.random.default_rng(0).normal(scale=2.0, size=(500, 6))  # some starts loop forever
    assert np.any(vi.policy_start_returns(noisy) < -100)
    expected_eval = jax.jit(evaluate.expected_greedy_returns_all_starts, static_argnums=1)
    for q in (q_star.q, noisy):
        q32 = jnp.asarray(q, jnp.float32)
        simulated = np.asarray(simulate_greedy(q32))
        for max_steps in (1, 7, 13, 200):
            exact = np.asarray(evaluate.greedy_returns_all_starts(q32, max_steps))
            np.testing.assert_allclose(exact, simulated[max_steps - 1], atol=1e-4)
            np.testing.assert_allclose(np.asarray(expected_eval(q32, max_steps)), exact, atol=1e-3)
            np.testing.assert_allclose(vi.policy_start_returns(q, max_steps), exact, atol=1e-3)


def test_evaluation_rejects_wrong_shapes():
    with pytest.raises(AssertionError):
        evaluate.greedy_returns_all_starts(jnp.zeros((500, 5)))
    with pytest.raises(ValueError, match="max_steps"):
        evaluate.greedy_returns_all_starts(jnp.zeros((500, 6)), max_steps=0)


def test_sampled_evaluation_matches_the_expectation(q_star, q_star_rainy):
    sample = jax.jit(evaluate.sampled_greedy_episodes, static_argnums=3)
    ret, delivered = sample(jax.random.key(0), jnp.asarray(q_star.q, jnp.float32), taxi.EnvParams(), 600)
    assert np.all(np.asarray(delivered))
    assert set(np.unique(np.asarray(ret))) <= set(vi.policy_start_returns(q_star.q).tolist())
    rainy = taxi.EnvParams(is_rainy=True)
    ret, _ = sample(jax.random.key(1), jnp.asarray(q_star_rainy.q, jnp.float32), rainy, 1000)
    expected = float(
        evaluate.expected_greedy_returns_all_starts(jnp.asarray(q_star_rainy.q), is_rainy=True).mean()
    )
    se = float(np.std(np.asarray(ret)) / np.sqrt(1000))
    assert abs(float(np.mean(np.asarray(ret))) - expected) < 4 * se


# ---------------------------------------------------------------------------------------------- pure pieces


def test_update_does_not_bootstrap_from_terminal_states():
    q = jnp.zeros((500, 6)).at[7].set(jnp.arange(6.0))  # max q[7] = 5
    s, a = jnp.int32(3), jnp.int32(2)
    q = q.at[s, a].set(1.0)
    terminal = qlearning.update(q, s, a, 20.0, jnp.int32(7), True, alpha=0.5, gamma=0.9)
    assert float(terminal[s, a]) == pytest.approx(1.0 + 0.5 * (20.0 - 1.0))
    truncated = qlearning.update(q, s, a, -1.0, jnp.int32(7), False, alpha=0.5, gamma=0.9)
    assert float(truncated[s, a]) == pytest.approx(1.0 + 0.5 * (-1.0 + 0.9 * 5.0 - 1.0))
    # Nothing else moved.
    assert float(jnp.abs(terminal - q).sum()) == pytest.approx(abs(float(terminal[s, a]) - 1.0))


def test_update_masks_and_averages_duplicates():
    q = jnp.zeros((500, 6))
    obs, act = jnp.array([1, 1, 2]), jnp.array([0, 0, 3])
    new = qlearning.update(
        q,
        obs,
        act,
        jnp.array([2.0, 4.0, 8.0]),
        jnp.array([9, 9, 9]),
        jnp.ones(3, bool),
        0.5,
        0.9,
        mask=jnp.array([True, True, False]),
    )
    assert float(new[1, 0]) == pytest.approx(0.5 * 3.0)  # mean TD error of the two hits
    assert float(new[2, 3]) == 0.0  # masked


def test_select_action_and_schedule():
    q_s = jnp.array([[0.0, 3.0, 1.0, 0.0, 0.0, 0.0]])
    assert int(qlearning.select_action(jnp.array([[0.5, 0.99]]), q_s, 0.1, "epsilon")[0]) == 1  # greedy
    assert int(qlearning.select_action(jnp.array([[0.05, 0.99]]), q_s, 0.1, "epsilon")[0]) == 5  # explores
    # Softmax: empirical frequencies follow softmax(q / T).
    u = jax.random.uniform(jax.random.key(0), (20000, 2))
    acts = qlearning.select_action(u, jnp.broadcast_to(q_s[0], (20000, 6)), jnp.full(20000, 2.0), "softmax")
    freq = np.bincount(np.asarray(acts), minlength=6) / 20000
    np.testing.assert_allclose(freq, np.asarray(jax.nn.softmax(q_s[0] / 2.0)), atol=0.015)
    eps = qlearning.exploration_schedule(jnp.array([0, 1, 10_000]), 1.0, 0.9995, 0.01)
    np.testing.assert_allclose(np.asarray(eps), [1.0, 0.9995, 0.01], rtol=1e-5)


def test_model_step_and_reset_equal_the_env():
    table = jnp.asarray(qlearning.dynamics_table())
    s, a = np.meshgrid(np.arange(500), np.arange(6), indexing="ij")
    s, a = jnp.asarray(s.ravel(), jnp.int32), jnp.asarray(a.ravel(), jnp.int32)
    nxt, r, term = jax.jit(qlearning.model_step)(table, s, a, jnp.full(s.shape, 0.999))

    @jax.jit
    def env_step(s, a):
        row, col, pass_loc, dest = taxi.decode(s)
        state = taxi.EnvState(
            time=jnp.zeros_like(s),
            taxi_row=row,
            taxi_col=col,
            pass_loc=pass_loc,
            dest_idx=dest,
            fickle_pending=jnp.zeros(s.shape, bool),
            last_action=jnp.full(s.shape, -1),
        )
        keys = jax.random.split(jax.random.key(0), s.shape[0])
        return jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None))(keys, state, a, taxi.EnvParams())

    obs, _, r_env, term_env, _ = env_step(s, a)
    np.testing.assert_array_equal(np.asarray(nxt), np.asarray(obs))
    np.testing.assert_array_equal(np.asarray(r), np.asarray(r_env))
    np.testing.assert_array_equal(np.asarray(term), np.asarray(term_env))
    # Rainy: the thresholds reproduce the transition probabilities.
    rainy = jnp.asarray(qlearning.dynamics_table(True, 0.8))
    u = (jnp.arange(1000) + 0.5) / 1000
    sa = int(taxi.encode(2, 2, 0, 1)), taxi.NORTH
    nxt, _, _ = jax.jit(qlearning.model_step)(rainy, jnp.full(1000, sa[0]), jnp.full(1000, sa[1]), u)
    P = taxi.transition_table(True, 0.8).P[sa]
    counts = np.bincount(np.asarray(nxt), minlength=500) / 1000
    np.testing.assert_allclose(counts, P, atol=1e-3)
    # Reset: 300 evenly spaced uniforms hit every start state exactly once.
    starts = qlearning.model_reset((jnp.arange(300) + 0.5) / 300)
    np.testing.assert_array_equal(np.sort(np.asarray(starts)), STARTS)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_fused_training_steps_equal_the_plain_update(num_envs):
    """make_chunk (gathered rows, patched entries, masks) == a plain loop of select_action/model_step/update."""
    config = TabularQConfig(
        num_envs=num_envs,
        eval_every=num_envs * 10,
        num_episodes=num_envs * 10,
        max_steps=9,
        alpha=0.7,
        gamma=0.9,
        epsilon_decay=0.9,
        epsilon_end=0.05,
    )
    chunk = jax.jit(qlearning.make_chunk(config))
    n = num_envs
    bits = jax.random.bits(jax.random.key(3), (400, n, 2), jnp.uint32)
    q0 = jax.random.normal(jax.random.key(4), (500, 6))
    obs = qlearning.model_reset(jnp.linspace(0.1, 0.9, n))
    zf, zi = jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.int32)
    quota = 6
    out = chunk(TrainState(q0, obs, q0[obs], zi, zf, zi, zf, zf, zf, jnp.int32(0)), bits, quota)

    table = jnp.asarray(qlearning.dynamics_table())

    @jax.jit
    def plain_step(q, obs, ep, length, bits_t):
        u_select, u_start, u_rain = qlearning.step_uniforms(bits_t)
        active = ep < quota
        eps = qlearning.exploration_schedule(ep * n + jnp.arange(n), 1.0, 0.9, 0.05)
        a = qlearning.select_action(u_select, q[obs], eps, "epsilon")
        s2, r, term = qlearning.model_step(table, obs, a, u_rain)
        q = qlearning.update(q, obs, a, r, s2, term, 0.7, 0.9, mask=active)
        end = term | (length + 1 >= 9)
        obs = jnp.where(active, jnp.where(end, qlearning.model_reset(u_start), s2), obs)
        length = jnp.where(active, jnp.where(end, 0, length + 1), length)
        return q, obs, ep + (end & active), length, active.sum()

    q, ep, length, steps = q0, jnp.zeros(n, jnp.int32), jnp.zeros(n, jnp.int32), 0
    for t in range(400):
        q, obs, ep, length, live = plain_step(q, obs, ep, length, bits[t])
        steps += int(live)
    ep = np.asarray(ep)
    np.testing.assert_allclose(np.asarray(out.q), np.asarray(q), atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.q_obs), np.asarray(out.q)[np.asarray(out.obs)], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.episode), ep)
    assert int(out.agent_steps) == steps
    assert np.all(ep == quota)  # every env reached the quota and then idled


def test_truncation_bootstraps_in_training():
    """max_steps=1: every episode is cut after one step; the cut must bootstrap, the drop-off must not."""
    config = TabularQConfig(
        max_steps=1, eval_every=10, num_episodes=10, alpha=1.0, gamma=0.5, epsilon_start=0.0, epsilon_end=0.0
    )
    chunk = jax.jit(qlearning.make_chunk(config))
    at_g = int(taxi.encode(0, 4, 4, 1))  # in the taxi at G, destination G: drop-off is terminal
    q = jnp.zeros((500, 6)).at[at_g, taxi.DROPOFF].set(1.0)
    after = int(taxi.encode(0, 4, 1, 1))
    q = q.at[after].set(100.0)  # a bootstrap from the terminal state would show up as +50
    start = jnp.array([at_g])
    zf, zi = jnp.zeros(1, jnp.float32), jnp.zeros(1, jnp.int32)
    bits = jnp.zeros((1, 1, 2), jnp.uint32)
    out = chunk(TrainState(q, start, q[start], zi, zf, zi, zf, zf, zf, jnp.int32(0)), bits, 1)
    assert float(out.q[at_g, taxi.DROPOFF]) == pytest.approx(20.0)
    assert float(out.sum_success[0]) == 1.0
    # A move cut by max_steps: target -1 + 0.5 * max q[s'].
    s = int(taxi.encode(2, 2, 0, 1))
    s2 = int(taxi.encode(1, 2, 0, 1))
    q = jnp.zeros((500, 6)).at[s, taxi.NORTH].set(1.0).at[s2, 3].set(8.0)
    out = chunk(TrainState(q, jnp.array([s]), q[jnp.array([s])], zi, zf, zi, zf, zf, zf, jnp.int32(0)), bits, 1)
    assert float(out.q[s, taxi.NORTH]) == pytest.approx(-1.0 + 0.5 * 8.0)
    assert float(out.sum_success[0]) == 0.0 and int(out.episode[0]) == 1


# ---------------------------------------------------------------------------------------------- training


TINY = TabularQConfig(num_seeds=2, num_episodes=1000, eval_every=100, chunk_steps=32)


@pytest.fixture(scope="module")
def tiny_train():
    fn = jax.jit(jax.vmap(qlearning.make_train(TINY)))
    keys = jax.random.split(jax.random.key(0), 2)
    return fn, keys, fn(keys)


def test_tiny_training_improves_the_greedy_return(tiny_train):
    _, _, out = tiny_train
    greedy = np.asarray(out.metrics["greedy_return"])
    assert greedy.shape == (2, 10)
    assert np.all(greedy[:, -1] > 5.0) and np.all(greedy[:, 0] < 0.0)
    np.testing.assert_allclose(np.asarray(out.final["greedy_return"]), greedy[:, -1])
    # The final metric is the exact evaluation of the returned table.
    for q, g in zip(np.asarray(out.params), np.asarray(out.final["greedy_return"])):
        assert vi.policy_start_returns(q).mean() == pytest.approx(g, abs=1e-4)
    success = np.asarray(out.metrics["success_rate"])
    assert np.all(success[:, -1] > success[:, 0])
    np.testing.assert_array_equal(np.asarray(out.steps[0]), np.arange(100, 1001, 100))
    eps = np.asarray(out.metrics["epsilon"][0])
    np.testing.assert_allclose(eps, np.maximum(0.01, 0.9995 ** (np.arange(100, 1001, 100) - 1)), rtol=1e-5)
    # Every seed played exactly its episodes: their lengths add up to the agent steps.
    lengths = np.asarray(out.metrics["episode_length"]) * 100
    np.testing.assert_allclose(lengths.sum(1), np.asarray(out.extras["agent_steps"]), rtol=1e-6)


def test_same_seed_same_table_bit_for_bit(tiny_train):
    fn, keys, out = tiny_train
    again = fn(keys)
    np.testing.assert_array_equal(np.asarray(again.params), np.asarray(out.params))
    assert not np.array_equal(np.asarray(out.params[0]), np.asarray(out.params[1]))


def test_each_seed_is_independent_of_its_batch_mates(tiny_train):
    """The batched stretch loop runs until the slowest seed is done; the others must not notice."""
    _, keys, out = tiny_train
    alone = jax.jit(qlearning.make_train(TINY))(keys[1])  # unbatched: the plain while_loop
    # Same random stream: the same episodes, step for step (float rounding of batched vs scalar code aside).
    assert int(alone.extras["agent_steps"]) == int(out.extras["agent_steps"][1])
    np.testing.assert_array_equal(
        np.asarray(alone.metrics["success_rate"]), np.asarray(out.metrics["success_rate"][1])
    )
    np.testing.assert_allclose(np.asarray(alone.params), np.asarray(out.params[1]), rtol=1e-4, atol=1e-4)


def test_rainy_training_reports_a_sampled_return():
    config = TabularQConfig(
        num_episodes=200,
        eval_every=100,
        is_rainy=True,
        alpha=0.1,
        eval_max_steps=50,
        sampled_eval_episodes=50,
        chunk_steps=32,
    )
    out = jax.jit(qlearning.make_train(config))(jax.random.key(0))
    assert set(out.final) == {
        "greedy_return",
        "greedy_success",
        "solved",
        "episodes_to_solve",
        "greedy_return_sampled",
    }
    assert np.isfinite(float(out.final["greedy_return_sampled"]))
    assert float(out.final["greedy_return"]) == pytest.approx(
        float(evaluate.expected_greedy_returns_all_starts(out.params, 50, True).mean()), abs=1e-4
    )


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("alpha", -0.1, r"alpha=-0.1 is invalid: must be in \(0, 1\]"),
        ("alpha", 0.0, "alpha"),
        ("gamma", 1.5, r"gamma=1.5 is invalid: must be in \[0, 1\]"),
        ("gamma", -0.01, "gamma"),
        ("epsilon_start", 1.2, "epsilon_start"),
        ("epsilon_decay", 0.0, "epsilon_decay"),
        ("temperature_start", -1.0, "temperature_start"),
        ("exploration", "greedy", "exploration"),
        ("max_steps", 0, "max_steps"),
        ("num_envs", 0, "num_envs"),
        ("eval_every", 7, "num_episodes"),
        ("rainy_probability", 1.5, "rainy_probability"),
        ("solve_margin", -1.0, "solve_margin"),
        ("chunk_steps", 0, "chunk_steps"),
        ("num_seeds", 0, "num_seeds"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TabularQConfig(), **{field: value})


def test_num_envs_must_divide_eval_every():
    with pytest.raises(ValueError, match="eval_every"):
        TabularQConfig(num_envs=3, eval_every=100)


def test_cli_writes_the_results_folder(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli_main(
        [
            "tabular-q",
            "--preset",
            "notebook",
            "--num-seeds",
            "2",
            "--num-episodes",
            "1000",
            "--chunk-steps",
            "32",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    q = np.load(out / "q_values.npy")
    assert q.shape == (2, 500, 6) and q.dtype == np.float32
    assert (out / "policy_map.png").stat().st_size > 0 and (out / "curves.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["optimal_return"] == pytest.approx(7.93)
    assert summary["total_steps"] == sum(summary["agent_steps_per_seed"]) > 2000
    greedy = [vi.policy_start_returns(qi).mean() for qi in q]
    np.testing.assert_allclose(summary["final"]["greedy_return"]["per_seed"], greedy, atol=1e-4)
    assert f"results: {out}" in capsys.readouterr().out


def test_cli_rejects_bad_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["tabular-q", "--gamma", "2", "--no-progress"])
    assert exit_info.value.code != 0
    assert "gamma=2.0 is invalid: must be in [0, 1]" in capsys.readouterr().err
