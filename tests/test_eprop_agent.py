"""The online spiking actor-critic (``synjax eprop``, :mod:`synjax.agents.eprop`): the traces its network carries
give exactly BPTT's gradient of a decision (one layer without recurrent weights), it learns a probe with no
backpropagation, its BPTT twin trains the same network, the command writes a results folder that ``synjax
eval`` plays, and bad settings are refused at config time."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from synjax import cli
from synjax.agents import eprop as agent
from synjax.agents.config import make_env
from synjax.agents.on_policy import make_network
from synjax.snn import eprop as rule
from tests.test_step_learner import ENV as SIGN_PROBE

OBS, ACTIONS = 4, 2


def _network(time_mode: str, **kw):
    config = agent.EpropConfig(time_mode=time_mode, hidden=12, time_steps=5, norm_obs=False, **kw)
    return config.policy_network(OBS, ACTIONS, False, nnx.Rngs(3))


@pytest.mark.parametrize("time_mode", ["inner", "carried"])
def test_the_carried_traces_give_bptts_gradient_of_a_decision(time_mode):
    """The hidden weights' e-prop gradient of a decision's read-out error (learning signal x the carry's
    filtered eligibility) equals jax.grad of that error through the decision, and in carried mode through the
    decisions before it."""
    net = _network(time_mode)
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    obs = jax.random.normal(jax.random.key(0), (3, 6, OBS)) * 2.0  # 3 decisions of 6 rows
    error = jax.random.normal(jax.random.key(1), (6, ACTIONS + 1))
    no_reset = jnp.zeros((6,), bool)

    def outputs(p):
        model = nnx.merge(graphdef, p, rest)
        carry = model.initial_carry((6,))
        for o in obs:
            carry, _ = model.decide(o, carry, no_reset)
        return carry

    carry = outputs(params)
    grad = jax.grad(lambda p: (error * outputs(p).outputs).sum())(params)["w_in"][...]
    ours = rule.weight_gradient(rule.learning_signal(error, params["w_out"][...]), carry.tag_in).sum(0)
    assert float(jnp.abs(grad).max()) > 1e-3
    np.testing.assert_allclose(ours, grad, rtol=1e-5, atol=1e-5 * float(jnp.abs(grad).max()))


def _probe_config(**kw):
    return agent.EpropConfig(num_seeds=1, total_timesteps=32 * 16 * 40, eval_every=40, eval_episodes=32,
                             hidden=16, time_steps=4, progress=False, **kw)  # fmt: skip


def _train_probe(config):
    """One seed on the sign probe whose reward is its observation (test_step_learner's): return ``(final
    params, the critic's values of +1 and -1)``."""
    trainer = agent.make_train(config, env=SIGN_PROBE, env_params=SIGN_PROBE.default_params)
    out = jax.jit(trainer)(jax.random.key(0))
    net = _network_for(config)
    model = nnx.merge(nnx.graphdef(net), out.params)
    _, value, _ = model(jnp.array([[1.0], [-1.0]]), model.initial_carry((2,)), jnp.ones((2,), bool))
    return out, np.asarray(value)


def _network_for(config):
    return config.policy_network(1, 2, False, nnx.Rngs(0))


@pytest.mark.parametrize("learning", ["eprop", "bptt"])
def test_the_critic_learns_the_probe_values_online_and_by_its_bptt_twin(learning):
    step = {"update_every": "step"} if learning == "eprop" else {}  # 640 optimizer steps, as the twin
    out, value = _train_probe(
        _probe_config(learning=learning, reward_scale=1.0, ent_coef=0.0, lr=1e-2, **step)
    )
    np.testing.assert_allclose(value, [1.0, -1.0], atol=0.15)
    assert np.isfinite(np.asarray(out.final["synops"]))


def test_the_twin_is_the_same_network_and_carries_no_traces():
    eprop_net, bptt_net = _network("carried"), _network("carried", learning="bptt")
    for a, b in zip(
        jax.tree.leaves(nnx.state(eprop_net, nnx.Param)), jax.tree.leaves(nnx.state(bptt_net, nnx.Param))
    ):
        np.testing.assert_array_equal(a, b)
    obs, reset = jnp.ones((2, OBS)), jnp.ones((2,), bool)
    d1, v1, c1 = eprop_net(obs, eprop_net.initial_carry((2,)), reset)
    d2, v2, c2 = bptt_net(obs, bptt_net.initial_carry((2,)), reset)
    np.testing.assert_array_equal(d1.logits, d2.logits)
    np.testing.assert_array_equal(v1, v2)
    assert len(jax.tree.leaves(c2)) == 3 < len(jax.tree.leaves(c1))  # the twin carries only its neurons
    assert _network("inner", learning="bptt").initial_carry((2,)) == ()


def test_the_command_writes_a_run_that_eval_plays(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["eprop", "--num-seeds", "2", "--total-timesteps", "2048", "--hidden", "8", "--time-steps", "2",
            "--recurrent", "--neuron", "ALIF", "--eval-every", "2", "--out", str(out), "--no-progress", "--no-gif"]  # fmt: skip
    assert cli.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"] == "eprop" and summary["num_seeds"] == 2
    assert {"synops", "firing_rate_0", "ann_macs", "eval_return"} <= set(summary["final"])
    assert "td_error" in (out / "metrics.csv").read_text().splitlines()[0]
    assert (out / "spikes.png").stat().st_size > 0  # the spikes of one greedy episode
    capsys.readouterr()
    assert cli.main(["eval", "--run", str(out), "--episodes", "2"]) == 0
    assert "return" in capsys.readouterr().out.lower()
    nir_file = tmp_path / "policy.nir"  # not exported yet: refused with one line, nothing written
    assert cli.main(["export", "--run", str(out), "--out", str(nir_file)]) == 2
    assert "not exported yet" in capsys.readouterr().err and not nir_file.exists()


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--network", "mlp"], "--network"),
        (["--neuron", "CuBaLIF"], "--neuron"),
        (["--time-mode", "both"], "--time-mode"),
        (["--time-steps", "0"], "--time-steps"),
        (["--feedback", "mirror"], "--feedback"),
        (["--learning", "bptt", "--feedback", "random"], "--feedback"),
        (["--learning", "rstdp", "--neuron", "sigmoid"], "--neuron"),
        (["--adapt-decay", "0.5"], "--adapt-decay"),
        (["--env", "Pendulum-v1"], "--env"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_before_any_work(args, flag, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as e:
        cli.main(["eprop", *args, "--out", str(out), "--no-progress"])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if ": note: " not in line]
    assert len(err) == 1 and err[0].startswith("synjax eprop: error: ") and flag in err[0], err
    assert not out.exists()


def test_presets_build():
    for name, config in agent.PRESETS.items():
        env, env_params = make_env(config)
        net = nnx.eval_shape(
            lambda config=config, env=env, env_params=env_params: make_network(
                config, env, env_params, nnx.Rngs(0)
            )
        )
        assert isinstance(net, agent.EpropActorCritic), name
    assert dataclasses.replace(agent.PRESETS["masked"], num_seeds=1).neuron == "ALIF"


def test_a_cut_run_resumes_to_the_same_numbers(tmp_path):
    """The traces, the carried membranes and the optimizer's unroll accumulator are saved and restored: a run
    cut by SIGTERM and resumed ends bit for bit where the uninterrupted run ends."""
    import os
    import signal

    from synjax.runner.experiment import Interrupted, run_experiment
    from synjax.trainer import Trainer

    config = dataclasses.replace(_probe_config(recurrent=True, neuron="ALIF"), num_seeds=2,
                                 total_timesteps=32 * 16 * 8, eval_every=2, num_chunks=4)  # fmt: skip

    def make(c, kill_at=None):
        trainer = agent.make_train(c, env=SIGN_PROBE, env_params=SIGN_PROBE.default_params)
        if kill_at is None:
            return trainer

        def step(state, i):
            jax.lax.cond(i == kill_at, lambda: jax.debug.callback(lambda: os.kill(os.getpid(), signal.SIGTERM)),
                         lambda: None)  # fmt: skip
            return trainer.step(state, i)

        return Trainer(trainer.init, step, trainer.finish, trainer.num_steps, point_ready=trainer.point_ready)

    def run(out, kill_at=None, resume=""):
        c = dataclasses.replace(config, out=str(out) if out else "", resume=resume)
        return run_experiment("eprop", c, lambda c: make(c, kill_at), progress_total=c.env_steps,
                              steps_per_seed=c.env_steps)  # fmt: skip

    _, whole = run(tmp_path / "whole")
    with pytest.raises(Interrupted):
        run(tmp_path / "cut", kill_at=4)
    _, again = run("", resume=str(tmp_path / "cut"))
    for a, b in zip(jax.tree.leaves(whole.output.params), jax.tree.leaves(again.output.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.output.metrics["td_error"], again.output.metrics["td_error"])
