"""ShowerEnv: start distribution, rewards, bounds, truncation, noise, dtypes and params."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synjax.envs import shower
from synjax.envs.shower import EnvParams, EnvState, Shower

ENV = Shower()
NOISY = shower.make_params(noise=True)
step_env_batch = jax.jit(jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None)))
reset_batch = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))
N = 3030  # one batch size for every step batch: one compilation


def keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


def states_at(temperatures, time=0):
    temperatures = jnp.asarray(temperatures, jnp.int32)
    return EnvState(time=jnp.full(temperatures.shape, time, jnp.int32), temperature=temperatures)


def test_start_range_reproducible_and_covering():
    n = 7000
    obs, state = reset_batch(keys(n), ENV.default_params)
    assert obs.shape == (n, 1) and obs.dtype == jnp.float32
    assert state.temperature.dtype == jnp.int32 and (np.asarray(state.time) == 0).all()
    t = np.asarray(state.temperature)
    np.testing.assert_array_equal(np.asarray(obs)[:, 0], t)
    counts = np.bincount(t - 35, minlength=7)
    assert t.min() == 35 and t.max() == 41 and counts.size == 7
    assert (np.abs(counts - n / 7) < 5 * np.sqrt(n / 7 * 6 / 7)).all(), counts  # uniform over 35..41
    obs2, _ = reset_batch(keys(n), ENV.default_params)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(obs2))  # same keys, same starts
    assert not np.array_equal(
        np.asarray(obs), np.asarray(reset_batch(keys(n, seed=1), ENV.default_params)[0])
    )


def test_rewards_and_clipping_over_all_temperatures_and_actions():
    temps = np.tile(np.repeat(np.arange(101), 3), N // 303)
    actions = np.tile(np.arange(3), N // 3)
    obs, state, reward, terminated, _ = step_env_batch(
        keys(temps.size), states_at(temps), jnp.asarray(actions), ENV.default_params
    )
    expected_t = np.clip(temps + actions - 1, 0, 100)
    np.testing.assert_array_equal(np.asarray(state.temperature), expected_t)
    np.testing.assert_array_equal(np.asarray(obs)[:, 0], expected_t.astype(np.float32))
    assert reward.dtype == jnp.float32 and obs.dtype == jnp.float32 and obs.shape == (N, 1)
    np.testing.assert_array_equal(
        np.asarray(reward), np.where((expected_t >= 37) & (expected_t <= 39), 1.0, -1.0)
    )
    assert not np.asarray(terminated).any()
    # Bounds: cooling at 0 and warming at 100 stay put, with noise too.
    n = N
    for t, a in ((0, 0), (100, 2)):
        _, state, *_ = step_env_batch(keys(n, seed=t), states_at(np.full(n, t)), jnp.full(n, a), NOISY)
        temps_after = np.asarray(state.temperature)
        assert temps_after.min() >= 0 and temps_after.max() <= 100 and (temps_after == t).any()


def test_truncation_at_60_never_termination():
    def rollout(key, params):
        _, state = ENV.reset(key, params)

        def body(state, k):
            obs, state, reward, terminated, truncated, info = ENV.step(k, state, 1, params)
            return state, (obs, state.time, reward, terminated, truncated, info["final_observation"])

        return jax.lax.scan(body, state, jax.random.split(key, 150))[1]

    obs, time, reward, terminated, truncated, final_obs = (
        np.asarray(x) for x in jax.jit(rollout)(jax.random.key(3), ENV.default_params)
    )
    assert not terminated.any()
    np.testing.assert_array_equal(np.flatnonzero(truncated), [59, 119])
    assert (time[[59, 119]] == 0).all() and time[58] == 59 and time[60] == 1
    assert reward.dtype == np.float32 and set(np.unique(reward)) <= {-1.0, 1.0}
    assert 35 <= obs[59, 0] <= 41 and 35 <= obs[119, 0] <= 41  # auto-reset to a fresh start
    np.testing.assert_array_equal(final_obs[59], obs[58])  # "keep" action: the last temperature is unchanged


def test_noise_adds_at_most_one_degree_and_is_off_by_default():
    n = N
    actions = jnp.asarray(np.tile(np.arange(3), n // 3))
    start = states_at(np.full(n, 50))
    _, noisy, *_ = step_env_batch(keys(n, seed=4), start, actions, NOISY)
    _, quiet, *_ = step_env_batch(keys(n, seed=4), start, actions, ENV.default_params)
    extra = np.asarray(noisy.temperature) - np.asarray(quiet.temperature)
    np.testing.assert_array_equal(np.asarray(quiet.temperature), 50 + np.asarray(actions) - 1)
    assert set(np.unique(extra)) == {-1, 0, 1}
    counts = np.bincount(extra + 1, minlength=3)
    assert (np.abs(counts - n / 3) < 5 * np.sqrt(n * 2 / 9)).all(), counts


def test_optimal_return_constant_by_greedy_rollouts():
    """Steering to 37..39 and staying is optimal without noise; its mean over the 7 starts is 416 / 7."""

    def episode_return(start):
        def body(state, _):
            t = state.temperature
            action = jnp.where(t < 37, 2, jnp.where(t > 39, 0, 1))
            _, state, reward, _, _ = ENV.step_env(jax.random.key(0), state, action, ENV.default_params)
            return state, reward

        return jnp.sum(jax.lax.scan(body, EnvState(time=0, temperature=start), None, length=60)[1])

    returns = np.asarray(jax.jit(jax.vmap(episode_return))(jnp.arange(35, 42)))
    np.testing.assert_array_equal(returns, [58, 60, 60, 60, 60, 60, 58])
    assert returns.mean() == pytest.approx(shower.OPTIMAL_RETURN_NO_NOISE)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_steps_in_episode": 0}, "max_steps_in_episode"),
        ({"max_steps_in_episode": -1}, "max_steps_in_episode"),
        ({"max_steps_in_episode": 1.5}, "max_steps_in_episode"),
        ({"noise": 0.5}, "noise"),
    ],
)
def test_invalid_params_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        EnvParams(**kwargs)
    with pytest.raises(ValueError, match=field):
        Shower.make_params(**kwargs)


def test_unknown_param_raises_and_listing():
    with pytest.raises(ValueError, match="allowed: max_steps_in_episode, noise"):
        shower.make_params(temperature=3)
    assert shower.make_params(max_steps_in_episode=10).max_steps_in_episode == 10


def test_spaces_name_render():
    params = ENV.default_params
    assert ENV.name == "ShowerEnv" and ENV.num_actions == 3 and params.max_steps_in_episode == 60
    assert ENV.action_space(params).n == 3
    space = ENV.observation_space(params)
    assert space.shape == (1,) and space.low == 0 and space.high == 100 and space.dtype == jnp.float32
    obs, state = ENV.reset(jax.random.key(0), params)
    assert bool(space.contains(obs))
    text = ENV.render(state)
    assert "\n" not in text and f"T={int(state.temperature)}" in text and "t=0" in text
    assert "too hot" in shower.render(EnvState(time=3, temperature=jnp.int32(45)))
