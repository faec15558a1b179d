"""Taxi-v4 conformance against Gymnasium's own TaxiEnv (its P table, action_mask, start states and step)."""

import re

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synjax.envs import taxi
from synjax.envs.taxi import EnvParams, EnvState, Taxi

ENV = Taxi()
ALL_STATES = np.arange(taxi.NUM_STATES)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def gym_taxi(**kwargs):
    return gymnasium.make("Taxi-v4", **kwargs).unwrapped


@pytest.fixture(scope="module")
def gym_dry():
    return gym_taxi()


def states_of(ids, fickle=False, time=0):
    """Batched EnvState for state ids (any 1-d int array)."""
    ids = jnp.asarray(ids, jnp.int32)
    row, col, pass_loc, dest = taxi.decode(ids)
    return EnvState(
        time=jnp.full(ids.shape, time, jnp.int32),
        taxi_row=row,
        taxi_col=col,
        pass_loc=pass_loc,
        dest_idx=dest,
        fickle_pending=jnp.full(ids.shape, fickle, bool),
        last_action=jnp.full(ids.shape, -1, jnp.int32),
    )


def pick(states, i):
    """The i-th state of a batch."""
    return jax.tree.map(lambda x: x[i], states)


def keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


# One compiled function for every batch of transitions; params are traced, so dry/rainy/fickle share it.
step_env_batch = jax.jit(jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None)))
reset_batch = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))
step_env_one = jax.jit(ENV.step_env)


def gym_dist(env, s, a):
    """Gymnasium's P[s][a] summed per next state: {s2: (prob, reward, terminated)}."""
    out = {}
    for p, s2, r, t in env.P[s][a]:
        prev = out.get(s2, (0.0, r, t))
        assert prev[1:] == (r, t)
        out[s2] = (prev[0] + p, r, t)
    return out


def within_sigma(count, n, p, k=5.0):
    """|count - n p| within k binomial standard deviations (plus one count of slack for p near 0 or 1)."""
    return abs(count - n * p) <= k * np.sqrt(n * p * (1 - p)) + 1


def test_encode_decode_roundtrip(gym_dry):
    row, col, pass_loc, dest = taxi.decode(ALL_STATES)
    assert np.array_equal(taxi.encode(row, col, pass_loc, dest), ALL_STATES)
    for s in range(0, 500, 7):
        assert tuple(int(x) for x in taxi.decode(s)) == gym_dry.decode(s)
        assert taxi.encode(*gym_dry.decode(s)) == s
    jrow, jcol, jpass, jdest = taxi.decode(jnp.asarray(ALL_STATES))
    assert np.array_equal(np.asarray(taxi.encode(jrow, jcol, jpass, jdest)), ALL_STATES)
    assert taxi.LOCS == tuple(gym_dry.locs)


def test_all_dry_transitions_equal_gymnasium(gym_dry):
    s = np.repeat(ALL_STATES, taxi.NUM_ACTIONS)
    a = np.tile(np.arange(taxi.NUM_ACTIONS), taxi.NUM_STATES)
    obs, nxt, reward, terminated, info = step_env_batch(
        keys(s.size), states_of(s), jnp.asarray(a), EnvParams()
    )
    expected = np.array([gym_dry.P[si][ai][0] for si, ai in zip(s, a)], dtype=object)
    assert all(len(gym_dry.P[si][ai]) == 1 for si, ai in zip(s, a))
    assert obs.dtype == jnp.int32 and obs.shape == (3000,)
    assert reward.dtype == jnp.float32 and terminated.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(obs), expected[:, 1].astype(int))
    np.testing.assert_array_equal(np.asarray(reward), expected[:, 2].astype(float))
    np.testing.assert_array_equal(np.asarray(terminated), expected[:, 3].astype(bool))
    np.testing.assert_array_equal(np.asarray(info["prob"]), 1.0)
    np.testing.assert_array_equal(np.asarray(nxt.time), 1)
    gym_masks = np.stack([gym_dry.action_mask(int(x)) for x in expected[:, 1]])
    np.testing.assert_array_equal(np.asarray(info["action_mask"]), gym_masks)
    # Reward counts as in Gymnasium: 4 successful drop-off states, -10 for every illegal pickup/drop-off.
    assert int(np.sum(np.asarray(terminated))) == 4


def test_action_mask_equals_gymnasium_for_all_states(gym_dry):
    mask = taxi.action_mask(jnp.asarray(ALL_STATES))
    assert mask.dtype == jnp.int8 and mask.shape == (500, 6)
    np.testing.assert_array_equal(np.asarray(mask), np.stack([gym_dry.action_mask(s) for s in ALL_STATES]))


def test_start_states_and_uniform_start_distribution(gym_dry):
    starts = taxi.start_states()
    assert starts.shape == (300,)
    np.testing.assert_array_equal(starts, np.flatnonzero(gym_dry.initial_state_distrib))
    n = 60_000
    obs, state = reset_batch(keys(n, seed=1), EnvParams())
    obs = np.asarray(obs)
    assert obs.dtype == np.int32 and obs.shape == (n,)
    assert np.isin(obs, starts).all()
    assert not np.asarray(state.fickle_pending).any() and (np.asarray(state.time) == 0).all()
    counts = np.bincount(obs, minlength=500)[starts]
    expected = n / 300
    chi2 = np.sum((counts - expected) ** 2 / expected)
    dof = 299
    assert abs(chi2 - dof) < 6 * np.sqrt(2 * dof), chi2  # chi-square(299): mean 299, sd 24.5
    # Same key, same start.
    assert int(ENV.reset(jax.random.key(7))[0]) == int(ENV.reset(jax.random.key(7))[0])


RAINY_CASES = [  # (row, col, pass_loc, dest, action): what each exercises
    (2, 2, 4, 1, taxi.SOUTH),  # open square: three distinct outcomes
    (0, 1, 0, 3, taxi.SOUTH),  # lateral east blocked by the wall R:|
    (0, 0, 1, 2, taxi.NORTH),  # intended way blocked by the edge: no lateral drift either
    (4, 1, 2, 0, taxi.WEST),  # intended way blocked by a wall: stays
    (4, 4, 4, 2, taxi.NORTH),  # lateral east blocked by the edge, west open
    (3, 1, 3, 1, taxi.EAST),  # east open, laterals north and south open
    (0, 2, 4, 3, taxi.EAST),  # east open, lateral north blocked by the edge
    (3, 2, 1, 0, taxi.WEST),  # west open between two walls
    (0, 0, 0, 1, taxi.PICKUP),  # deterministic in the rain
    (0, 4, 4, 1, taxi.DROPOFF),  # deterministic, terminates
]


@pytest.mark.parametrize("p", [0.8, 0.55])
def test_rainy_frequencies_match_gymnasium(p):
    gym_rainy = gym_taxi(is_rainy=True, rainy_probability=p)
    n = 20_000
    ids = np.array([taxi.encode(r, c, pl, d) for r, c, pl, d, _ in RAINY_CASES])
    actions = np.array([case[-1] for case in RAINY_CASES])
    s = np.repeat(ids, n)
    a = np.repeat(actions, n)
    params = taxi.make_params(is_rainy=True, rainy_probability=p)
    obs, _, reward, terminated, info = step_env_batch(
        keys(s.size, seed=2), states_of(s), jnp.asarray(a), params
    )
    obs, reward, terminated = (np.asarray(x).reshape(len(RAINY_CASES), n) for x in (obs, reward, terminated))
    prob = np.asarray(info["prob"]).reshape(len(RAINY_CASES), n)
    for i, (si, ai) in enumerate(zip(ids, actions)):
        dist = gym_dist(gym_rainy, int(si), int(ai))
        assert set(np.unique(obs[i])) <= set(dist), (si, ai)
        for s2, (q, r, t) in dist.items():
            hit = obs[i] == s2
            assert within_sigma(int(hit.sum()), n, q), (si, ai, s2, hit.sum() / n, q)
            assert (reward[i][hit] == r).all() and (terminated[i][hit] == t).all()
        # info["prob"] is the probability of the sampled entry of Gymnasium's list.
        assert set(np.round(np.unique(prob[i]).astype(float), 5)) <= set(
            np.round([e[0] for e in gym_rainy.P[si][ai]], 5)
        )


def test_one_compilation_serves_all_params():
    step = jax.jit(ENV.step)
    _, state = ENV.reset(jax.random.key(0))
    for params in (
        EnvParams(),
        taxi.make_params(is_rainy=True, rainy_probability=0.3),
        taxi.make_params(fickle_passenger=True, fickle_probability=0.9, max_steps_in_episode=17),
    ):
        step(jax.random.key(1), state, 0, params)
    assert step._cache_size() == 1


# ------------------------------------------------------------------------------------------ fickle passenger

R_PASSENGER_TO_G = taxi.encode(0, 0, 0, 1)  # taxi at R with the passenger, who wants to go to G


def gym_fickle_destinations(n, p, actions):
    """Destination after ``actions`` from R_PASSENGER_TO_G in Gymnasium's fickle env, over n seeded resets."""
    env = gym_taxi(fickle_passenger=True, fickle_probability=p)
    dests = np.empty(n, int)
    for i in range(n):
        env.reset(seed=i)  # the fickle draw is made here
        env.s = R_PASSENGER_TO_G
        for a in actions:
            s, *_ = env.step(a)
        dests[i] = env.decode(s)[3]
    return dests


N_JAX = 20_000  # one batch size for every jax fickle run: one compilation


def jax_fickle_destinations(p, actions, fickle_passenger=True, seed=3):
    n = N_JAX
    params = taxi.make_params(fickle_passenger=fickle_passenger, fickle_probability=p)
    _, state = reset_batch(keys(n, seed), params)
    start = states_of(np.full(n, R_PASSENGER_TO_G))
    state = start.replace(fickle_pending=state.fickle_pending)  # keep the reset's fickle draw
    for i, a in enumerate(actions):
        _, state, *_ = step_env_batch(keys(n, seed + 100 + i), state, jnp.full(n, a), params)
    return np.asarray(state.dest_idx)


def test_fickle_destination_change_matches_gymnasium():
    p = 0.3
    actions = [taxi.PICKUP, taxi.SOUTH]
    n_gym, n_jax = 3000, N_JAX
    g = np.bincount(gym_fickle_destinations(n_gym, p, actions), minlength=4) / n_gym
    j = np.bincount(jax_fickle_destinations(p, actions), minlength=4) / n_jax
    theory = np.array([p / 3, 1 - p, p / 3, p / 3])  # stays G (1) with 1 - p, else uniform over R, Y, B
    for freq, n in ((g, n_gym), (j, n_jax)):
        for d in range(4):
            assert within_sigma(freq[d] * n, n, theory[d]), (d, freq, theory)
    for d in range(4):  # the two implementations agree with each other too
        sd = np.sqrt(theory[d] * (1 - theory[d]) * (1 / n_gym + 1 / n_jax))
        assert abs(g[d] - j[d]) <= 5 * sd


def test_fickle_happens_at_most_once_and_only_when_enabled():
    n = N_JAX
    actions = [
        taxi.PICKUP,
        taxi.SOUTH,
        taxi.NORTH,
        taxi.SOUTH,
        taxi.SOUTH,
    ]  # several moves with the passenger
    dests = jax_fickle_destinations(1.0, actions)
    assert (dests != 1).all()  # probability 1: always leaves G, once, to a uniform other destination
    freq = np.bincount(dests, minlength=4) / n
    for d in (0, 2, 3):
        assert within_sigma(freq[d] * n, n, 1 / 3)
    assert (jax_fickle_destinations(1.0, actions, fickle_passenger=False) == 1).all()
    assert (jax_fickle_destinations(0.0, actions) == 1).all()


FICKLE_SCRIPTS = [
    # Blocked moves with the passenger aboard do not trigger it; the first real move does.
    [taxi.NORTH, taxi.PICKUP, taxi.NORTH, taxi.WEST, taxi.SOUTH, taxi.NORTH, taxi.SOUTH],
    # Moving without the passenger does not trigger it; pickup, drop-off at the source, pickup, move does.
    [taxi.SOUTH, taxi.NORTH, taxi.PICKUP, taxi.DROPOFF, taxi.SOUTH, taxi.NORTH, taxi.PICKUP, taxi.EAST],
    # Pickup then the move: the change lands on the step that moves, not on the pickup.
    [taxi.PICKUP, taxi.EAST, taxi.EAST, taxi.SOUTH, taxi.DROPOFF],
]


@pytest.mark.parametrize("script", range(len(FICKLE_SCRIPTS) + 3))
def test_fickle_step_by_step_like_gymnasium(script):
    """Lock-step with Gymnasium's env, both with the fickle draw forced on: the change fires on the same step."""
    rng = np.random.default_rng(script)
    if script < len(FICKLE_SCRIPTS):
        actions = FICKLE_SCRIPTS[script]
        start = R_PASSENGER_TO_G
    else:  # random walk from a random start, pickups tried often
        actions = list(rng.choice(6, size=120, p=[0.15, 0.15, 0.15, 0.15, 0.3, 0.1]))
        start = int(rng.choice(taxi.start_states()))
    env = gym_taxi(fickle_passenger=True, fickle_probability=0.5)
    env.reset(seed=script)
    env.s, env.fickle_step = start, True
    params = taxi.make_params(fickle_passenger=True, fickle_probability=0.5)
    state = pick(states_of([start], fickle=True), 0)
    fired_gym, fired_jax = [], []
    for t, a in enumerate(actions):
        old = env.s
        s_gym, r_gym, term_gym, _, info_gym = env.step(int(a))
        obs, state, r, term, _ = step_env_one(jax.random.key(1000 * script + t), state, int(a), params)
        fired_gym.append(env.decode(s_gym)[3] != env.decode(old)[3])
        fired_jax.append(int(state.dest_idx) != int(taxi.decode(old)[3]))
        assert (float(r), bool(term)) == (r_gym, term_gym)
        assert taxi.decode(int(obs))[:3] == taxi.decode(s_gym)[:3]
        state = state.replace(dest_idx=jnp.int32(env.decode(s_gym)[3]))  # follow Gymnasium's random new dest
        np.testing.assert_array_equal(np.asarray(taxi.action_mask(s_gym)), info_gym["action_mask"])
        if term_gym:
            break
    assert fired_jax == fired_gym
    assert sum(fired_gym) <= 1
    if script < len(FICKLE_SCRIPTS):
        assert sum(fired_gym) == 1  # each script reaches the first move with the passenger


# ------------------------------------------------------------------------------------------ episodes


def test_truncation_at_200_with_auto_reset_through_step():
    def rollout(key, params, length):
        _, state = ENV.reset(key, params)

        def body(state, k):
            obs, state, _, terminated, truncated, info = ENV.step(k, state, taxi.NORTH, params)
            return state, (
                obs,
                state.time,
                terminated,
                truncated,
                info["final_observation"],
                info["action_mask"],
            )

        return jax.lax.scan(body, state, jax.random.split(key, length))[1]

    run = jax.jit(rollout, static_argnums=2)
    for max_steps, length in ((200, 405), (7, 405)):
        obs, time, terminated, truncated, final_obs, mask = (
            np.asarray(x)
            for x in run(jax.random.key(5), taxi.make_params(max_steps_in_episode=max_steps), length)
        )
        ends = np.flatnonzero(truncated)
        np.testing.assert_array_equal(ends, np.arange(max_steps - 1, length, max_steps))
        assert not terminated.any()
        assert (time[ends] == 0).all() and (time[ends - 1] == max_steps - 1).all()
        assert np.isin(obs[ends], taxi.start_states()).all()  # auto-reset to a start state
        # North never changes pass_loc/dest: the final observation keeps the episode's passenger and goal.
        assert (final_obs[ends] % 20 == obs[ends - 1] % 20).all()
        np.testing.assert_array_equal(mask, np.asarray(taxi.action_mask(obs)))


def test_correct_dropoff_terminates_and_auto_resets(gym_dry):
    state = pick(states_of([taxi.encode(0, 4, 4, 1)], time=199), 0)
    obs, new_state, reward, terminated, truncated, info = ENV.step(jax.random.key(0), state, taxi.DROPOFF)
    final = taxi.encode(0, 4, 1, 1)
    assert (float(reward), bool(terminated), bool(truncated)) == (20.0, True, True)  # both on step 200
    assert int(info["final_observation"]) == final and int(new_state.time) == 0
    assert int(obs) in set(taxi.start_states().tolist())
    np.testing.assert_array_equal(np.asarray(info["final_action_mask"]), gym_dry.action_mask(final))
    np.testing.assert_array_equal(np.asarray(info["action_mask"]), gym_dry.action_mask(int(obs)))
    assert bool(ENV.is_terminated(pick(states_of([final]), 0), EnvParams()))


# ------------------------------------------------------------------------------------------ tables, render, API


@pytest.mark.parametrize("rainy,p", [(False, 0.8), (True, 0.8), (True, 0.55)])
def test_transition_table_matches_gymnasium(rainy, p):
    env = gym_taxi(is_rainy=rainy, rainy_probability=p)
    P, R, T = taxi.transition_table(rainy, p)
    assert P.shape == (500, 6, 500) and R.shape == (500, 6) and T.shape == (500, 6)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    P_gym, R_gym, T_gym = np.zeros_like(P), np.zeros_like(R), np.zeros_like(T)
    for s in range(500):
        for a in range(6):
            for q, s2, r, t in env.P[s][a]:
                P_gym[s, a, s2] += q
                R_gym[s, a] += q * r
                T_gym[s, a] |= t
    np.testing.assert_allclose(P, P_gym, atol=1e-12)
    np.testing.assert_allclose(R, R_gym, atol=1e-12)
    np.testing.assert_array_equal(T, T_gym)


def test_render_matches_gymnasium_ansi():
    env = gym_taxi(render_mode="ansi")
    env.reset(seed=0)
    states = states_of(ALL_STATES)
    for s in range(0, 500, 3):
        one = pick(states, s)
        env.s, env.lastaction = s, None
        assert taxi.render(one, color=True) == env.render()
        plain = ENV.render(one).splitlines()
        assert len(plain) == len(taxi.MAP) + 1
        for line, map_line in zip(plain, taxi.MAP):  # the map with only the taxi and passenger cells marked
            diff = [i for i, (x, y) in enumerate(zip(line, map_line)) if x != y]
            assert len(line) == len(map_line) and len(diff) <= 2 and all(i % 2 == 1 for i in diff)
    env.s, env.lastaction = 0, taxi.EAST
    assert taxi.render(one.replace(taxi_row=0, taxi_col=0, pass_loc=0, dest_idx=0, last_action=2), True) == (
        env.render()
    )
    text = ENV.render(pick(states_of([taxi.encode(2, 2, 4, 3)]), 0))
    assert "@" in text and "destination B" in text and "in taxi" in text
    assert ANSI.sub("", taxi.render(one, color=True)).splitlines()[0] == taxi.MAP[0]


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"rainy_probability": 1.5}, "rainy_probability"),
        ({"rainy_probability": -0.01}, "rainy_probability"),
        ({"fickle_probability": 2}, "fickle_probability"),
        ({"max_steps_in_episode": 0}, "max_steps_in_episode"),
        ({"max_steps_in_episode": -5}, "max_steps_in_episode"),
        ({"max_steps_in_episode": 2.5}, "max_steps_in_episode"),
        ({"is_rainy": 0.8}, "is_rainy"),
    ],
)
def test_invalid_params_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        EnvParams(**kwargs)
    with pytest.raises(ValueError, match=r"\[0, 1\]|positive|bool"):
        Taxi.make_params(**kwargs)


def test_unknown_param_and_bad_table_args_raise():
    with pytest.raises(ValueError, match="allowed: max_steps_in_episode, is_rainy, rainy_probability"):
        taxi.make_params(rainy=True)
    with pytest.raises(ValueError, match="rainy_probability"):
        taxi.transition_table(True, 1.2)
    params = ENV.make_params(is_rainy=True, rainy_probability=1.0, max_steps_in_episode=1)
    assert params.rainy_probability == 1.0 and params.max_steps_in_episode == 1


def test_spaces_and_names():
    params = ENV.default_params
    assert ENV.name == "Taxi-v4" and ENV.num_actions == 6 == taxi.NUM_ACTIONS
    assert ENV.action_space(params).n == 6 and ENV.observation_space(params).n == 500 == taxi.NUM_STATES
    assert params == EnvParams(200, False, 0.8, False, 0.3)
    obs, state = ENV.reset(jax.random.key(0), params)
    assert obs.shape == () and obs.dtype == jnp.int32 and bool(ENV.observation_space(params).contains(obs))
    space = ENV.state_space(params)
    assert all(bool(space.spaces[k].contains(getattr(state, k))) for k in space.spaces if k != "last_action")


def test_uniform_from_bits_slices_words_into_exact_uniforms():
    from synjax.envs.random_bits import uniform_from_bits

    bits = jax.random.bits(jax.random.key(0), (4096,), jnp.uint32)
    words = np.asarray(bits, np.uint64)
    top = np.asarray(uniform_from_bits(bits))
    np.testing.assert_array_equal(top, (words >> 8).astype(np.float64) / 2.0**24)
    high = np.asarray(uniform_from_bits(bits, 16), np.float64)
    low = np.asarray(uniform_from_bits(bits, 16, offset=0), np.float64)
    np.testing.assert_array_equal(high * 2.0**16 * 2.0**16 + low * 2.0**16, words.astype(np.float64))
    assert top.dtype == np.float32 and 0.0 <= top.min() and top.max() < 1.0 and abs(top.mean() - 0.5) < 0.02
    np.testing.assert_array_equal(uniform_from_bits(jnp.uint32(0xFFFFFFFF), 8), np.float32(255 / 256))
    with pytest.raises(ValueError, match="width"):
        uniform_from_bits(bits, 25)
    with pytest.raises(ValueError, match="offset"):
        uniform_from_bits(bits, 16, offset=20)
