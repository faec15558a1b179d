"""Divergence is reported, not averaged away: seeds with non-finite metrics or parameters are named in summary.json
(which, from which step), kept out of the means (with the count said) and marked on the curves."""

import dataclasses
import json
import sys
import types
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from synjax import cli
from synjax.checks import above
from synjax.runner import divergence, sweep
from synjax.runner.config import RunConfig
from synjax.runner.experiment import run_experiment, seed_keys
from synjax.runs import results
from synjax.trainer import Trainer, TrainOutput

NAN = float("nan")


def _strict(text: str):
    """json.loads that refuses NaN and Infinity (which json.dumps writes by default but JSON does not allow)."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _arrays():
    """3 seeds, 5 points: seed 1's loss NaN from point 2 on and its params NaN, seed 2's params hold an inf;
    ``ret`` is NaN at point 0 for every seed and NaN in the middle for seed 0 (not measured: no divergence)."""
    steps = np.arange(5) * 100
    loss = np.ones((3, 5))
    loss[1, 2:] = NAN
    ret = np.arange(15.0).reshape(3, 5)
    ret[:, 0] = NAN
    ret[0, 2] = NAN
    params = {
        "w": np.zeros((3, 2, 2), np.float32),
        "count": np.arange(3),
        "key": jax.random.split(jax.random.key(0), 3),
    }
    params["w"][2, 1, 0] = np.inf
    params["w"][1, 0, 0] = NAN
    return steps, {"loss": loss, "ret": ret}, params


def test_find_names_the_seed_the_step_and_the_metrics():
    steps, metrics, params = _arrays()
    found = divergence.find(steps, metrics, params)
    assert sorted(found.runs) == [1, 2]
    assert found.runs[1] == divergence.Diverged(
        first_point=2, first_step=200, metrics=("loss",), params_finite=False
    )
    assert found.runs[2] == divergence.Diverged(None, None, (), params_finite=False)
    np.testing.assert_array_equal(found.keep, [True, False, False])
    assert found.summary() == {
        "seeds": [1, 2], "count": 2, "kept": 1,
        "by_seed": {"1": {"first_step": 200, "metrics": ["loss"], "params_finite": False},
                    "2": {"first_step": None, "metrics": [], "params_finite": False}},
    }  # fmt: skip


def test_find_inf_anywhere_and_the_earliest_of_several_metrics():
    a = np.array([[1.0, 2.0, np.inf, 3.0], [1.0, 1.0, 1.0, 1.0]])
    b = np.array([[1.0, NAN, NAN, NAN], [1.0, 1.0, 1.0, 1.0]])
    found = divergence.find(np.array([0, 5, 10, 15]), {"a": a, "b": b})
    assert found.runs == {0: divergence.Diverged(1, 5, ("a", "b"), True)}


def test_a_nan_tail_with_finite_params_is_not_divergence():
    """PPO's train_return is NaN at the last point when no episode ended there (a policy balancing CartPole)."""
    steps, metrics, params = _arrays()
    params["w"][1] = 0.0
    assert sorted(divergence.find(steps, metrics, params).runs) == [2]


def test_find_none_diverged():
    steps, metrics, params = _arrays()
    metrics["loss"][1] = 1.0
    params["w"][1:] = 0.0
    found = divergence.find(steps, metrics, params)
    assert found.runs == {} and found.keep.all()
    assert found.summary() == {"seeds": [], "count": 0, "kept": 3, "by_seed": {}}
    assert divergence.describe({"diverged": found.summary()}) is None


def test_stats_over_kept_seeds_and_none_left():
    s = results.stats(np.array([1.0, NAN, 3.0]), keep=np.array([True, False, True]))
    assert s["mean"] == 2.0 and s["n"] == 2 and np.isnan(s["per_seed"][1])
    assert results.stats(np.array([1.0, 2.0]))["n"] == 2
    empty = results.stats(np.array([NAN]), keep=np.array([False]))
    assert empty["mean"] is None and empty["std"] is None and empty["ci95"] is None and empty["n"] == 0


def _write(tmp_path, **kw):
    steps, metrics, params = _arrays()
    del params["key"]  # params.msgpack holds arrays only
    final = {"loss": metrics["loss"][:, -1], "ret": np.array([10.0, 20.0, 40.0])}
    return results.write_run(
        tmp_path / "run", experiment="toy", config={"a": 1}, steps=steps, metrics=metrics, final=final,
        params=params, wall_time_s=1.0, compile_time_s=1.0, total_steps=30, extra={"median": NAN}, **kw,
    )  # fmt: skip


def test_write_run_reports_diverged_seeds_and_keeps_them_out_of_the_means(tmp_path):
    path = _write(tmp_path)
    summary = _strict((path / "summary.json").read_text())  # valid JSON: NaN written as null
    assert summary["diverged"]["seeds"] == [1, 2] and summary["diverged"]["kept"] == 1
    assert summary["diverged"]["by_seed"]["1"] == {
        "first_step": 200,
        "metrics": ["loss"],
        "params_finite": False,
    }
    assert summary["final"]["ret"]["per_seed"] == [10.0, 20.0, 40.0]  # every seed's value stays listed
    assert summary["final"]["ret"]["mean"] == 10.0 and summary["final"]["ret"]["n"] == 1
    assert (
        summary["final"]["loss"]["per_seed"] == [1.0, None, 1.0] and summary["final"]["loss"]["mean"] == 1.0
    )
    assert summary["median"] is None
    assert (path / "curves.png").stat().st_size > 0
    line = divergence.describe(summary)
    assert line == (
        "diverged: seed 1 (loss non-finite from step 200; params non-finite), seed 2 (params non-finite); "
        "kept out of the means, which use 1 of 3 seeds"
    )


def test_every_seed_diverged_gives_null_means(tmp_path):
    steps = np.arange(3)
    metrics = {"loss": np.array([[1.0, NAN, NAN], [np.inf, 1.0, 1.0]])}
    path = results.write_run(
        tmp_path / "run", experiment="toy", config={}, steps=steps, metrics=metrics,
        final={"loss": metrics["loss"][:, -1]}, params={"w": np.array([[NAN], [0.0]])}, wall_time_s=1.0,
        compile_time_s=0.0, total_steps=6,
    )  # fmt: skip
    summary = _strict((path / "summary.json").read_text())
    assert summary["diverged"]["count"] == 2 and summary["diverged"]["kept"] == 0
    assert summary["final"]["loss"] == {
        "per_seed": [None, 1.0],
        "mean": None,
        "std": None,
        "ci95": None,
        "n": 0,
    }


NUM_STEPS = 10


@dataclasses.dataclass(frozen=True)
class _Config(RunConfig):
    lr: Annotated[sweep.Floats, above(0.0)] = 1.0


def _make_train(config, bad_seed: int = 1, from_step: int = 6) -> Trainer:
    """``x`` grows by ``lr`` per step; the seed whose key is seed ``bad_seed``'s turns NaN at step ``from_step``."""
    bad_key = jax.random.key_data(seed_keys(config.seed, config.num_seeds)[bad_seed])

    def init(key):
        return jnp.float32(0.0), jnp.all(jax.random.key_data(key) == bad_key)

    def step(state, i):
        x, bad = state
        x = jnp.where(bad & (i >= from_step), jnp.nan, x + config.lr)
        return (x, bad), {"loss": x, "ret": jnp.where(i == 0, jnp.nan, 2 * x)}  # ret: not measured at 0

    def finish(state, metrics):
        x, _ = state
        return TrainOutput(params={"w": jnp.full((2,), x)}, steps=jnp.arange(NUM_STEPS) * 100, metrics=metrics,
                           final={"loss": x, "ret": 2 * x})  # fmt: skip

    return Trainer(init, step, finish, NUM_STEPS)


def test_run_experiment_names_the_seed_that_turned_nan(tmp_path):
    config = _Config(num_seeds=3, out=str(tmp_path / "run"), progress=False, num_chunks=2)
    path, _ = run_experiment("toy", config, _make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)
    summary = _strict((path / "summary.json").read_text())
    assert summary["diverged"] == {
        "seeds": [1], "count": 1, "kept": 2,
        "by_seed": {"1": {"first_step": 600, "metrics": ["loss", "ret"], "params_finite": False}},
    }  # fmt: skip
    assert summary["final"]["loss"] == {"per_seed": [10.0, None, 10.0], "mean": 10.0, "std": 0.0,
                                        "ci95": [10.0, 10.0], "n": 2}  # fmt: skip


def test_a_sweep_reports_diverged_runs_per_point(tmp_path):
    config = _Config(num_seeds=2, lr=(1.0, 2.0), out=str(tmp_path / "run"), progress=False, num_chunks=1)
    path, _ = run_experiment("toy", config, _make_train, progress_total=NUM_STEPS, steps_per_seed=NUM_STEPS)
    summary = _strict((path / "summary.json").read_text())
    assert summary["diverged"]["seeds"] == [1, 3]  # run = point * num_seeds + seed
    points = summary["sweep"]["points"]
    assert [p["diverged"] for p in points] == [{"seeds": [1], "count": 1, "kept": 1}] * 2
    assert points[1]["final"]["loss"]["mean"] == 20.0 and points[1]["final"]["loss"]["n"] == 1
    assert summary["final"]["loss[lr=2]"] == points[1]["final"]["loss"]
    assert points[1]["final_median"]["loss"] == 20.0
    assert (path / "curves.png").stat().st_size > 0


def test_cli_prints_the_diverged_line(tmp_path, monkeypatch, capsys):
    module = types.ModuleType("_diverging_experiment")
    module.PRESETS = {"default": RunConfig(num_seeds=3, progress=False)}
    module.run = lambda config: (_write(tmp_path), None)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.EXPERIMENTS, "diverging", (module.__name__, "a run whose seeds 1 and 2 diverge"))
    assert cli.main(["diverging"]) == 0
    out = capsys.readouterr().out
    assert "  diverged: seed 1 (loss non-finite from step 200; params non-finite), seed 2 (params non-finite); " in out
    assert "  ret: 10 (95% CI 10..10)" in out


def test_describe_caps_the_list():
    entry = divergence.Divergence(
        4, {r: divergence.Diverged(0, 0, ("x",), False) for r in range(3)}
    ).summary()
    line = divergence.describe({"diverged": entry, "sweep": {}}, limit=1)
    assert line == (
        "diverged: run 0 (x non-finite from step 0; params non-finite), and 2 more; "
        "kept out of the means, which use 1 of 4 runs"
    )
