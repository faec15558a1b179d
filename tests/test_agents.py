"""PPO and A2C: networks, GAE, truncation bootstrap, losses, training, determinism, sweeps, config validation."""

import dataclasses
import json
from typing import Annotated

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from synjax.agents import a2c, losses, on_policy, ppo, rollout
from synjax.agents import config as agent_config
from synjax.agents.networks import ActorCritic, QNetwork, action_spec, obs_encoder, orthogonal
from synjax.checks import above
from synjax.envs import registry
from synjax.runner import sweep
from synjax.runner.config import RunConfig
from synjax.runner.experiment import run_experiment, run_seeds
from synjax.trainer import Trainer, TrainOutput

# Tiny settings that still learn CartPole in a few thousand steps (random play scores about 10-20).
PPO_TINY = ppo.PPOConfig(
    num_seeds=2, env="CartPole-v1", total_timesteps=8 * 32 * 24, num_envs=8, num_steps=32, num_minibatches=2,
    update_epochs=4, lr=3e-3, gamma=0.98, gae_lambda=0.9, hidden=(32, 32), eval_every=8, eval_episodes=4,
    progress=False,
)  # fmt: skip
A2C_TINY = a2c.A2CConfig(num_seeds=2, env="CartPole-v1", total_timesteps=8 * 8 * 150, num_envs=8, num_steps=8)
# A2C's end-to-end learning test is in test_eval.py (its run folder serves the eval tests too).


@pytest.fixture(scope="module")
def ppo_compiled():
    """(compiled jit(vmap(train)) of PPO_TINY, its keys, its output)."""
    keys = jax.random.split(jax.random.key(0), 2)
    fn = jax.jit(jax.vmap(ppo.make_train(PPO_TINY))).lower(keys).compile()
    return fn, keys, jax.tree.map(np.asarray, fn(keys))


# ------------------------------------------------------------------------------------------------- networks


def test_qnetwork_shapes():
    q = QNetwork(4, 3, (16, 16), rngs=nnx.Rngs(0))
    assert q(jnp.ones((4,))).shape == (3,)
    assert q(jnp.ones((5, 7, 4))).shape == (5, 7, 3)


def test_actor_critic_discrete_and_continuous_heads():
    ac = ActorCritic(4, 2, (16,), rngs=nnx.Rngs(0))
    pi, v, _ = ac(jnp.ones((5, 4)))
    assert isinstance(pi, distrax.Categorical) and pi.logits.shape == (5, 2) and v.shape == (5,)
    # the policy output layer starts near zero (gain 0.01): a near-uniform policy
    np.testing.assert_allclose(pi.probs, 0.5, atol=0.02)
    ac = ActorCritic(3, 2, (16, 16), continuous=True, log_std_init=-0.5, rngs=nnx.Rngs(0))
    pi, v, _ = ac(jnp.ones((5, 3)))
    assert pi.sample(seed=jax.random.key(0)).shape == (5, 2) and v.shape == (5,)
    np.testing.assert_allclose(pi.stddev(), np.exp(-0.5), rtol=1e-6)


def test_actor_critic_shared_and_separate_torso():
    shared = nnx.to_pure_dict(nnx.state(ActorCritic(4, 2, (8, 8), shared_torso=True, rngs=nnx.Rngs(0))))
    separate = nnx.to_pure_dict(nnx.state(ActorCritic(4, 2, (8, 8), rngs=nnx.Rngs(0))))
    assert set(shared) == {"body", "actor", "critic"} and shared["actor"]["kernel"].shape == (8, 2)
    assert set(separate) == {"actor", "critic"} and separate["actor"]["out"]["kernel"].shape == (8, 2)


def test_obs_norm_lives_in_the_network_state():
    ac = ActorCritic(1, 3, (8,), normalize_obs=True, rngs=nnx.Rngs(0))
    ac.obs_norm.update(jnp.array([[36.0], [40.0]]))
    np.testing.assert_allclose(ac.obs_norm.mean[...], [38.0], rtol=1e-3)
    np.testing.assert_allclose(ac.obs_norm(jnp.array([38.0])), [0.0], atol=1e-2)
    _, params, stats = nnx.split(ac, nnx.Param, ...)
    assert "obs_norm" in stats and "obs_norm" not in params  # statistics are not trained by gradients


def test_orthogonal_init_is_orthogonal_and_vmaps_over_many_seeds():
    for shape in [(4, 64), (64, 2)]:
        w = np.asarray(orthogonal(2.0)(jax.random.key(1), shape), np.float64)
        gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
        np.testing.assert_allclose(gram, 4.0 * np.eye(len(gram)), atol=1e-5)
    # regression: Flax's QR-based initializer deadlocked jaxlib's CPU LAPACK under vmap of several seeds
    kernels = jax.jit(jax.vmap(lambda k: orthogonal()(k, (4, 64))))(jax.random.split(jax.random.key(0), 8))
    assert kernels.shape == (8, 4, 64) and not np.allclose(kernels[0], kernels[1])


def test_obs_encoder_one_hot_and_flatten():
    env, params = registry.make("Taxi-v4")
    dim, encode = obs_encoder(env, params)
    assert dim == 500
    x = encode(jnp.array([3, 499]))
    assert x.shape == (2, 500) and x[0, 3] == 1 and x[1, 499] == 1 and x.sum() == 2
    env, params = registry.make("Breakout-MinAtar")
    dim, encode = obs_encoder(env, params)
    assert dim == 10 * 10 * 4 and encode(jnp.zeros((3, 10, 10, 4))).shape == (3, 400)
    env, params = registry.make("CartPole-v1")
    assert obs_encoder(env, params)[1](jnp.ones(4)).shape == (4,)


def test_action_spec():
    assert action_spec(*registry.make("CartPole-v1"))[:2] == (False, 2)
    continuous, dim, (low, high) = action_spec(*registry.make("Pendulum-v1"))
    assert continuous and dim == 1 and float(low[0]) == -2.0 and float(high[0]) == 2.0


# --------------------------------------------------------------------------------------- GAE and bootstrap


def test_gae_matches_hand_computed_example():
    # two steps, then the episode ends (done after step 1), then one step of a new episode
    gamma, lam = 0.9, 0.8
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.5, 1.0, 2.0])
    d = jnp.array([0.0, 1.0, 0.0])
    last = jnp.array(4.0)
    adv, ret = rollout.gae(r, v, d, last, gamma, lam)
    d2 = 3.0 + 0.9 * 4.0 - 2.0  # 4.6: bootstraps from V(s_3)
    d1 = 2.0 - 1.0  # 1.0: episode ended, no bootstrap, and no advantage flows back from step 2
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    expected = [d0 + gamma * lam * d1, d1, d2]
    np.testing.assert_allclose(adv, expected, rtol=1e-6)
    np.testing.assert_allclose(ret, np.array(expected) + np.array(v), rtol=1e-6)


def test_gae_lambda_one_gives_n_step_returns():
    r = jnp.array([[1.0], [1.0], [1.0]])
    v = jnp.array([[0.3], [0.2], [0.1]])
    _, ret = rollout.gae(r, v, jnp.zeros((3, 1)), jnp.array([10.0]), 0.5, 1.0)
    np.testing.assert_allclose(ret[:, 0], [1 + 0.5 + 0.25 + 0.125 * 10, 1 + 0.5 + 0.25 * 10, 1 + 0.5 * 10])


def test_truncation_bootstraps_from_final_observation_and_termination_does_not():
    reward = jnp.array([1.0, 1.0, 1.0, 1.0])
    final_value = jnp.array([10.0, 10.0, 10.0, 10.0])
    terminated = jnp.array([False, True, False, True])
    truncated = jnp.array([False, False, True, True])
    out = rollout.bootstrap_truncated(reward, final_value, terminated, truncated, 0.9)
    np.testing.assert_allclose(out, [1.0, 1.0, 10.0, 1.0])
    # through GAE: the truncated step's advantage is r + gamma V(final obs) - V(s); the terminated one r - V(s)
    v = jnp.full((4,), 2.0)
    adv, _ = rollout.gae(out, v, (terminated | truncated).astype(jnp.float32), jnp.array(5.0), 0.9, 0.95)
    np.testing.assert_allclose(adv[1:], [1.0 - 2.0, 1.0 + 9.0 - 2.0, 1.0 - 2.0])


def test_rollout_batch_bootstraps_truncation_with_the_final_observation_value():
    apply = lambda p, c, x, r: (None, x[..., 0], c)  # a critic that returns the observation
    encode = lambda obs: obs.astype(jnp.float32)
    obs = jnp.array([[[1.0]], [[2.0]], [[3.0]]])  # T=3, N=1, obs_dim 1
    final_obs = jnp.array([[[2.0]], [[9.0]], [[4.0]]])  # step 1 reached 9, then the env reset to 3
    no = jnp.zeros((3, 1), bool)
    cut = jnp.array([[False], [True], [False]])

    def batch(terminated, truncated):
        traj = rollout.Transition(obs, jnp.zeros((3, 1), jnp.int32), jnp.zeros((3, 1)), jnp.ones((3, 1)),
                                 terminated, truncated, final_obs, no)  # fmt: skip
        return rollout.rollout_batch(apply, None, encode, traj, (), jnp.array([[5.0]]), no[0], 0.5, 1.0)

    b = batch(no, cut)  # truncated: r + gamma V(9) = 5.5 at step 1, and no bootstrap across the reset
    np.testing.assert_allclose(b.advantage, [1 + 0.5 * 2 - 1 + 0.5 * 3.5, 5.5 - 2, 1 + 0.5 * 5 - 3])
    np.testing.assert_allclose(b.value, [1, 2, 3])
    np.testing.assert_allclose(b.returns, b.advantage + b.value)
    assert b.obs.shape == (3, 1)
    b = batch(cut, no)  # terminated: no bootstrap at all
    np.testing.assert_allclose(b.advantage, [1 + 0.5 * 2 - 1 + 0.5 * -1.0, 1 - 2, 1 + 0.5 * 5 - 3])


def test_return_norm_scales_by_return_std():
    rn = rollout.ReturnNorm.zeros(2)
    for _ in range(200):
        scaled, rn = rn(jnp.array([1.0, 1.0]), jnp.array([False, False]), 0.0)
    # gamma 0 and a constant reward: the return's variance goes to 0 and the scaled reward is clipped at 10
    np.testing.assert_allclose(scaled, 10.0)
    rn = rollout.ReturnNorm.zeros(1)
    key = jax.random.key(0)
    for i in range(300):
        r = 3.0 * jax.random.normal(jax.random.fold_in(key, i), (1,))
        scaled, rn = rn(r, jnp.array([True]), 0.99)  # episodes of length 1: return = reward
    np.testing.assert_allclose(float(rn.var), 9.0, rtol=0.25)
    np.testing.assert_allclose(float(scaled[0]), float(r[0]) / np.sqrt(float(rn.var)), rtol=1e-5)


# ------------------------------------------------------------------------------------------------ losses


def _fixed_apply(logits, value):
    """An ``apply`` whose policy is Categorical(params * logits) and value params * value (params a scalar)."""
    return lambda p, c, obs, r: (distrax.Categorical(logits=p * logits), p * value, c)


def _batch(old_log_prob, adv, action=None):
    n = adv.shape[0]
    return rollout.Batch(
        obs=jnp.zeros((n, 1)), action=jnp.zeros((n,), jnp.int32) if action is None else action,
        log_prob=old_log_prob, value=jnp.zeros(n), advantage=adv, returns=jnp.ones(n), first=jnp.zeros(n, bool),
    )  # fmt: skip


def test_ppo_loss_without_policy_change_is_minus_mean_advantage():
    logits = jnp.array([[0.0, 1.0]] * 3)
    apply = _fixed_apply(logits, jnp.array([0.5, 1.0, 1.5]))
    log_prob = distrax.Categorical(logits=logits).log_prob(jnp.zeros(3, jnp.int32))
    adv = jnp.array([1.0, -2.0, 4.0])
    kw = {"clip_eps": 0.2, "vf_clip": 0.0, "ent_coef": 0.01, "vf_coef": 0.5, "norm_adv": False}
    loss, m = ppo.ppo_loss(apply, jnp.float32(1.0), _batch(log_prob, adv), **kw)
    np.testing.assert_allclose(m["policy_loss"], -adv.mean(), rtol=1e-6)
    np.testing.assert_allclose(m["value_loss"], np.mean((np.array([0.5, 1.0, 1.5]) - 1.0) ** 2), rtol=1e-6)
    np.testing.assert_allclose(m["approx_kl"], 0.0, atol=1e-7)
    assert float(m["clip_frac"]) == 0.0
    np.testing.assert_allclose(
        loss, m["policy_loss"] + 0.5 * m["value_loss"] - 0.01 * m["entropy"], rtol=1e-6
    )


def test_ppo_clipping_stops_the_policy_gradient():
    # ratio = e^0.5 > 1 + clip_eps with positive advantages: the clipped term wins, its gradient is zero
    logits = jnp.array([[0.0, 1.0]] * 4)
    apply = _fixed_apply(logits, jnp.zeros(4))
    log_prob = distrax.Categorical(logits=logits).log_prob(jnp.ones(4, jnp.int32)) - 0.5
    batch = _batch(log_prob, jnp.ones(4), action=jnp.ones(4, jnp.int32))
    kw = {"clip_eps": 0.2, "vf_clip": 0.0, "ent_coef": 0.0, "vf_coef": 0.0, "norm_adv": False}
    loss_and_grad = jax.jit(jax.value_and_grad(lambda p, b: ppo.ppo_loss(apply, p, b, **kw), has_aux=True))
    (_, m), grad = loss_and_grad(jnp.float32(1.0), batch)
    assert float(grad) == 0.0
    assert float(m["clip_frac"]) == 1.0 and float(m["approx_kl"]) > 0
    # with negative advantages the unclipped (pessimistic) term is active: non-zero gradient
    batch = _batch(log_prob, -jnp.ones(4), action=jnp.ones(4, jnp.int32))
    assert float(loss_and_grad(jnp.float32(1.0), batch)[1]) != 0.0


def test_value_loss_clipping():
    v, old, ret = jnp.array([3.0]), jnp.array([0.0]), jnp.array([0.0])
    assert float(losses.value_loss(v, old, ret)) == 9.0
    assert float(losses.value_loss(v, old, ret, vf_clip=0.5)) == 9.0  # max(unclipped 9, clipped 0.25)
    v, ret = jnp.array([3.0]), jnp.array([4.0])
    np.testing.assert_allclose(losses.value_loss(v, old, ret, vf_clip=0.5), 3.5**2)  # clipped value 0.5


def test_a2c_loss_matches_formula():
    logits = jnp.array([[0.0, 1.0], [2.0, 0.0]])
    apply = _fixed_apply(logits, jnp.array([0.5, -1.0]))
    action = jnp.array([1, 1])
    adv = jnp.array([2.0, -1.0])
    loss, m = a2c.a2c_loss(
        apply, jnp.float32(1.0), _batch(jnp.zeros(2), adv, action), ent_coef=0.1, vf_coef=0.25, norm_adv=False
    )
    logp = jax.nn.log_softmax(logits)[jnp.arange(2), action]
    np.testing.assert_allclose(m["policy_loss"], -np.mean(adv * logp), rtol=1e-6)
    np.testing.assert_allclose(m["value_loss"], np.mean((np.array([0.5, -1.0]) - 1.0) ** 2), rtol=1e-6)
    np.testing.assert_allclose(
        loss, m["policy_loss"] + 0.25 * m["value_loss"] - 0.1 * m["entropy"], rtol=1e-6
    )


def test_ppo_update_on_a_continuous_head_moves_the_mean_toward_good_actions():
    ac = ActorCritic(2, 1, (8,), continuous=True, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(ac)
    apply = lambda p, c, o, r: nnx.merge(graphdef, p)(o, c, r)
    obs = jnp.zeros((64, 2))
    dist, value, _ = apply(params, (), obs, None)
    action = dist.sample(seed=jax.random.key(1))
    first = jnp.zeros(obs.shape[:1], bool)
    batch = rollout.Batch(obs, action, dist.log_prob(action), value, action[:, 0], value, first)  # adv = action
    tx = optax.adam(1e-2)
    update = jax.jit(
        ppo.ppo_update,
        static_argnums=(0, 1),
        static_argnames=("update_epochs", "num_minibatches", "norm_adv"),
    )
    new, _, m = update(
        apply,
        tx,
        params,
        tx.init(params),
        batch,
        jax.random.key(2),
        update_epochs=4,
        num_minibatches=4,
        clip_eps=0.2,
        vf_clip=0.0,
        ent_coef=0.0,
        vf_coef=0.5,
        norm_adv=True,
    )
    assert float(apply(new, (), obs, None)[0].mean()[0, 0]) > float(dist.mean()[0, 0])
    assert set(m) == set(ppo.METRICS) and all(np.isfinite(float(x)) for x in m.values())


# -------------------------------------------------------------------------------------- training and runs


def test_ppo_tiny_run_learns_cartpole(ppo_compiled):
    _, _, out = ppo_compiled
    ev = out.metrics["eval_return"]  # (seeds, points)
    assert ev.shape == (2, len(out.steps[0]))
    assert out.steps[0, 0] == 0 and out.steps[0, -1] == PPO_TINY.env_steps
    # random play scores about 20; the greedy initial policy may score anything (argmax of near-equal logits)
    assert np.all(ev[:, -1] > 100)
    train = out.metrics["train_return"]  # stochastic-policy episodes: from about random to well above
    assert np.all(train[:, 1] < 60) and np.all(train[:, -1] > 2 * train[:, 1])
    assert set(out.metrics) == {"eval_return", "train_return", *ppo.METRICS}
    assert (
        np.isnan(out.metrics["train_return"][:, 0]).all()
        and np.isfinite(out.metrics["train_return"][:, 1:]).all()
    )


def test_ppo_is_deterministic_and_seeds_differ(ppo_compiled):
    fn, keys, out = ppo_compiled
    again = jax.tree.map(np.asarray, fn(keys))
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(out.metrics["policy_loss"][0], out.metrics["policy_loss"][1])


def test_trained_params_are_the_network_state(ppo_compiled):
    _, _, out = ppo_compiled
    env, env_params = agent_config.make_env(PPO_TINY)
    template = nnx.state(on_policy.make_network(PPO_TINY, env, env_params, nnx.Rngs(0)))
    assert jax.tree.structure(template) == jax.tree.structure(out.params)
    for t, p in zip(jax.tree.leaves(template), jax.tree.leaves(out.params)):
        assert p.shape == (2, *t.shape)


@dataclasses.dataclass(frozen=True)
class _ToyConfig(RunConfig):
    scale: Annotated[sweep.Floats, above(0.0)] = 1.0
    shift: sweep.Floats = 0.0
    steps: int = 3


def _toy_make_train(config):
    def finish(key, _):
        x = jax.random.normal(key, (config.steps,)) * config.scale + config.shift
        return TrainOutput(
            params={"x": x}, steps=jnp.arange(config.steps), metrics={"x": x}, final={"x": x[-1]}
        )

    return Trainer(lambda key: key, lambda key, i: (key, None), finish, 1)


def test_sweep_runs_every_value_times_every_seed_in_one_jit(tmp_path):
    config = _ToyConfig(
        num_seeds=3, scale=(1.0, 2.0), shift=(0.0, 10.0), progress=False, out=str(tmp_path / "s")
    )
    assert sweep.sweepable_fields(_ToyConfig) == ("scale", "shift")
    path, run = run_experiment("toy", config, _toy_make_train, progress_total=1, steps_per_seed=3)
    x = run.output.params["x"]
    assert x.shape == (4 * 3, 3)  # 4 grid points x 3 seeds
    plain = run_seeds(_toy_make_train(sweep.at(config, scale=1.0, shift=0.0)), 3, 0).output.params["x"]
    for g, (scale, shift) in enumerate([(1, 0), (1, 10), (2, 0), (2, 10)]):
        # point g, seed i: row g * num_seeds + i, and seed i uses seed key i at every point
        np.testing.assert_allclose(x[3 * g : 3 * (g + 1)], plain * scale + shift, rtol=1e-6)
    summary = json.loads((path / "summary.json").read_text())
    assert summary["num_seeds"] == 12 and summary["sweep"]["fields"] == ["scale", "shift"]
    point = summary["sweep"]["points"][3]
    assert point["values"] == {"scale": 2.0, "shift": 10.0} and point["runs"] == [9, 12]
    np.testing.assert_allclose(point["final"]["x"]["per_seed"], plain[:, -1] * 2 + 10, rtol=1e-6)
    assert set(summary["final"]) == {f"x[scale={a:g},shift={b:g}]" for a in (1, 2) for b in (0, 10)}
    rows = (path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "seed,step,x,scale,shift" and len(rows) == 1 + 12 * 3
    assert rows[-1].startswith("11,2,") and rows[-1].endswith(",2.0,10.0")
    assert (path / "curves.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"^scale=-1.0 is invalid: must be a float > 0"):
        _ToyConfig(scale=(1.0, -1.0))


def test_a_single_valued_sweep_is_a_plain_run(tmp_path):
    config = _ToyConfig(num_seeds=2, scale=(3.0,), progress=False, out=str(tmp_path / "p"))
    path, run = run_experiment("toy", config, _toy_make_train, progress_total=1, steps_per_seed=3)
    assert "sweep" not in json.loads((path / "summary.json").read_text())
    plain = run_seeds(_toy_make_train(sweep.at(config)), 2, 0).output.params["x"]
    np.testing.assert_allclose(run.output.params["x"], plain)
    assert sweep.at(config).scale == 3.0


def test_every_sweepable_field_can_be_traced():
    for module, config in ((ppo, PPO_TINY), (a2c, A2C_TINY)):
        names = sweep.sweepable_fields(type(config))
        assert {"lr", "gamma", "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm"} <= set(names)
        values = {n: jnp.float32(sweep.values(getattr(config, n))[0]) for n in names}

        def one(hp, key, module=module, config=config):
            return module.make_train(sweep.at(config, **hp))(key)

        shapes = jax.eval_shape(one, values, jax.random.key(0))  # tracing fails on Python use of a tracer
        num_points = len(on_policy.eval_points(config.num_updates, config.eval_every)) + 1
        assert set(shapes.metrics) == {"eval_return", "train_return", *module.METRICS}
        assert all(v.shape == (num_points,) for v in shapes.metrics.values())
        assert shapes.steps.shape == (num_points,) and set(shapes.final) == {"eval_return", "train_return"}


def test_sweep_flag_parses_comma_separated_values():
    from synjax.cli import parse

    _, config = parse("ppo", ["--lr", "1e-4,3e-4", "--gamma", "0.95", "--num-seeds", "3"])
    assert config.lr == (1e-4, 3e-4) and config.gamma == 0.95 and config.num_seeds == 3
    names, grid = sweep.grid(config)
    assert names == ("lr",) and grid.shape == (2, 1)
    _, config = parse("a2c", ["--lr", "1e-3,2e-3", "--ent-coef", "0,0.01"])
    assert sweep.grid(config)[1].shape == (4, 2)


def test_presets_are_valid_and_notebook_matches_sb3_defaults():
    nb = ppo.PRESETS["notebook"]
    assert (nb.num_envs, nb.num_steps, nb.batch_size // nb.num_minibatches, nb.update_epochs) == (
        1,
        2048,
        64,
        10,
    )
    assert (nb.lr, nb.clip_eps, nb.gamma, nb.gae_lambda, nb.total_timesteps) == (
        3e-4,
        0.2,
        0.99,
        0.95,
        20_000,
    )
    nb = a2c.PRESETS["notebook"]
    assert (nb.num_steps, nb.lr, nb.gae_lambda, nb.optimizer, nb.rms_alpha) == (5, 7e-4, 1.0, "rmsprop", 0.99)
    assert ppo.PRESETS["tuned"].total_timesteps == 100_000 and a2c.PRESETS["tuned"].total_timesteps == 500_000


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "cls, kwargs, field",
    [
        (ppo.PPOConfig, {"num_envs": 4, "num_steps": 10, "num_minibatches": 3}, "num_minibatches"),
        (ppo.PPOConfig, {"env": "CartPole-v1", "action_head": "gaussian"}, "action_head"),
        (ppo.PPOConfig, {"env": "Pendulum-v1", "action_head": "discrete"}, "action_head"),
        (ppo.PPOConfig, {"total_timesteps": 0}, "total_timesteps"),
        (ppo.PPOConfig, {"num_envs": 0}, "num_envs"),
        (ppo.PPOConfig, {"num_steps": -1}, "num_steps"),
        (ppo.PPOConfig, {"update_epochs": 0}, "update_epochs"),
        (ppo.PPOConfig, {"lr": (1e-3, -1.0)}, "lr"),
        (ppo.PPOConfig, {"gamma": 1.5}, "gamma"),
        (ppo.PPOConfig, {"clip_eps": 0.0}, "clip_eps"),
        (ppo.PPOConfig, {"env": "NoSuchEnv-v0"}, "env"),
        (ppo.PPOConfig, {"env": "ShowerEnv", "env_params": "max_steps_in_episode=0"}, "env_params"),
        (ppo.PPOConfig, {"env_params": "no_such_field=1"}, "env_params"),
        (ppo.PPOConfig, {"eval_every": 0}, "eval_every"),
        (ppo.PPOConfig, {"hidden": (64, 0)}, "hidden"),
        (a2c.A2CConfig, {"optimizer": "sgd"}, "optimizer"),
        (a2c.A2CConfig, {"rms_alpha": 1.0}, "rms_alpha"),
        (a2c.A2CConfig, {"num_envs": -2}, "num_envs"),
    ],
)
def test_bad_config_fails_naming_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}=.* is invalid: must be"):
        cls(**kwargs)


def test_bad_minibatch_count_message_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"a divisor of num_envs \* num_steps = 4 \* 10 = 40"):
        ppo.PPOConfig(num_envs=4, num_steps=10, num_minibatches=3)


def test_parse_env_params():
    assert agent_config.parse_env_params("noise=true, max_steps_in_episode=30,x=0.5") == {
        "noise": True, "max_steps_in_episode": 30, "x": 0.5,
    }  # fmt: skip
    assert agent_config.parse_env_params("") == {}
    _, params = agent_config.make_env(ppo.PPOConfig(env="ShowerEnv", env_params="noise=true"))
    assert bool(params.noise) is True


def test_advantage_standardization_uses_the_population_std():
    from synjax.agents import losses

    z = losses.normalize(jnp.array([1.0, 2.0, 3.0, 6.0]))
    np.testing.assert_allclose(float(z.mean()), 0.0, atol=1e-6)
    np.testing.assert_allclose(float(z.std()), 1.0, rtol=1e-5)  # jnp.std: ddof=0 (torch's std() has ddof=1)


def test_the_minatar_convolution_as_patches_equals_the_convolution():
    from synjax.agents.cnn import _conv, conv3x3

    conv = _conv(4, 16, 3, 1, nnx.Rngs(0))
    x = (jax.random.uniform(jax.random.key(0), (5, 10, 10, 4)) < 0.3).astype(jnp.float32)
    np.testing.assert_allclose(np.asarray(conv3x3(conv, x)), np.asarray(conv(x)), rtol=1e-5, atol=1e-5)


def test_final_train_return_is_the_last_stretch_with_an_episode_end():
    """Pendulum's episodes all last 200 steps and end together: the last stretch (update 14: steps 208..224 of
    each environment) holds no episode end, so its train_return is NaN and the final one is the stretch before."""
    import jax

    from synjax.agents import ppo

    config = ppo.PPOConfig(env="Pendulum-v1", num_seeds=1, num_envs=2, num_steps=16, num_minibatches=1,
                           update_epochs=1, total_timesteps=2 * 16 * 14, eval_every=13, eval_episodes=1,
                           hidden=(8,), progress=False)  # fmt: skip
    out = jax.device_get(jax.jit(ppo.make_train(config))(jax.random.key(0)))
    curve = out.metrics["train_return"]
    assert curve.shape == (3,) and np.isnan(curve[0]) and np.isnan(curve[2]) and np.isfinite(curve[1])
    assert out.final["train_return"] == curve[1]
