"""Environment registry (synjax.envs.make, gymnax.make) and the Gymnasium adapter."""

import gymnasium
import gymnax
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from synjax import envs


def test_make_ours_and_gymnax():
    for name in ("Taxi-v4", "ShowerEnv", "CartPole-v1", "Acrobot-v1"):
        env, params = envs.make(name)
        _, state = env.reset(jax.random.key(0), params)
        out = env.step(jax.random.key(1), state, 0, params)
        assert len(out) == 6


def test_gymnax_make_finds_ours():
    for name in envs.SYNJAX_ENVS:
        assert name in gymnax.registered_envs
        env, _ = gymnax.make(name)
        assert isinstance(env, envs.SYNJAX_ENVS[name])


def test_env_ids_lists_all():
    ids = envs.env_ids()
    assert ids[:2] == ["Taxi-v4", "ShowerEnv"] and "CartPole-v1" in ids and len(ids) == len(set(ids))


def test_unknown_name_lists_valid_ids():
    with pytest.raises(ValueError, match="valid ids: Taxi-v4, ShowerEnv, CartPole-masked-v1, CartPole-v1"):
        envs.make("Taxi-v3")


def test_params_are_passed_and_checked():
    _, p = envs.make("Taxi-v4", is_rainy=True, rainy_probability=0.9)
    assert bool(p.is_rainy) and float(p.rainy_probability) == pytest.approx(0.9)
    _, p = envs.make("CartPole-v1", max_steps_in_episode=100)
    assert p.max_steps_in_episode == 100
    with pytest.raises(ValueError, match="rainy_probability"):
        envs.make("Taxi-v4", rainy_probability=1.5)
    with pytest.raises(ValueError, match="max_steps_in_episode"):
        envs.make("ShowerEnv", max_steps_in_episode=-1)
    with pytest.raises(ValueError, match="its params are"):
        envs.make("CartPole-v1", gravityy=9.8)


@pytest.mark.parametrize("name", ["Taxi-v4", "ShowerEnv", "CartPole-v1"])
def test_to_gymnasium_passes_check_env(name):
    env, params = envs.make(name)
    genv = envs.to_gymnasium(env, params)
    check_env(genv, skip_render_check=True)
    obs, _ = genv.reset(seed=3)
    assert genv.observation_space.contains(obs)


def test_to_gymnasium_episode_semantics_and_render():
    env, params = envs.make("ShowerEnv")
    genv = envs.to_gymnasium(env, params, render_mode="ansi")
    obs, _ = genv.reset(seed=0)
    obs2, _ = genv.reset(seed=0)
    np.testing.assert_array_equal(obs, obs2)  # seeding controls the start state
    total, steps = 0.0, 0
    while True:
        obs, r, terminated, truncated, _ = genv.step(1)
        total += r
        steps += 1
        if terminated or truncated:
            break
    assert steps == 60 and truncated and not terminated  # time limit is truncation
    assert isinstance(genv.render(), str)
    with pytest.raises(ValueError, match="outside the action space"):
        genv.step(3)
    with pytest.raises(ValueError, match="render_mode"):
        envs.to_gymnasium(env, params, render_mode="human")


def test_taxi_through_gymnasium_matches_gymnasium_reward_scale():
    env, params = envs.make("Taxi-v4")
    genv = envs.to_gymnasium(env, params)
    ref = gymnasium.make("Taxi-v4")
    assert genv.observation_space == ref.observation_space and genv.action_space == ref.action_space


def test_to_gymnasium_takes_a_registered_id_and_names_what_it_expects():
    genv = envs.to_gymnasium("ShowerEnv")
    obs, _ = genv.reset(seed=0)
    assert genv.observation_space.contains(obs)
    with pytest.raises(ValueError, match="env='NoSuchEnv' is invalid: must be a JAX environment object or one of"):
        envs.to_gymnasium("NoSuchEnv")
    with pytest.raises(TypeError, match="env must be a gymnax-style environment .* not int"):
        envs.to_gymnasium(3)
