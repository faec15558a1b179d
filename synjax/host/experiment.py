"""``run_host``: a host-loop experiment from config to results folder, with checkpoints and ``--resume``.

The results folder holds, besides the runner's files (config.json, metrics.csv, summary.json, curves.png,
params.msgpack), ``checkpoint.msgpack`` (to continue the run) and ``episode.gif`` (one evaluation game of seed 0).
While training runs, the folder holds only the latest checkpoint; the rest is written atomically at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from synjax.host import loop
from synjax.host.envs import HostEnv
from synjax.runner import checkpoint, log_sinks
from synjax.runner.experiment import default_out, seed_keys
from synjax.runs import episode_gif, results
from synjax.runs.saved_policy import fill_template, one_run

#: ``make_env(config, num_envs, evaluation) -> HostEnv``.
MakeEnv = Callable[[Any, int, bool], HostEnv]


def _out_dir(name: str, config: loop.HostConfig) -> tuple[Path, dict[str, Any] | None]:
    """The results folder and, when resuming, the checkpoint's raw state; every check before any training."""
    if config.resume:
        saved_config, _, raw = checkpoint.read_run(config.resume, name)
        checkpoint.refuse_difference(config.resume, saved_config, results.config_dict(config), checkpoint.MAY_DIFFER)
        _check_schedule(config, saved_config, int(raw["update"]))
        out = Path(config.out or config.resume)
        if out.resolve() != Path(config.resume).resolve():
            results.check_out_dir(out, config.overwrite)
        return out, raw
    out = Path(config.out or default_out(name))
    results.check_out_dir(out, config.overwrite)
    return out, None


def _check_schedule(config: loop.HostConfig, saved_config: dict[str, Any], reached: int) -> None:
    """Refuse a new budget that would change an annealed schedule mid-run.

    ``anneal_lr`` / ``anneal_clip`` decay to 0 over ``num_updates``, which ``total_timesteps`` sets; training on
    with another budget would jump the schedule. A budget the checkpoint has already reached trains nothing (it
    only evaluates the checkpoint) and is allowed, as is any budget for a constant schedule.
    """
    saved_updates = -(-int(saved_config["total_timesteps"]) // config.batch_size)
    annealed = [name for name in ("anneal_lr", "anneal_clip") if getattr(config, name)]
    if annealed and config.num_updates != saved_updates and config.num_updates > reached:
        raise ValueError(
            f"--resume {config.resume}: this run anneals ({', '.join(annealed)}) over its budget of "
            f"{saved_updates} updates (total_timesteps={saved_config['total_timesteps']}); another budget would "
            f"change the schedule mid-run. Continue with --total-timesteps {saved_config['total_timesteps']}, "
            f"or give at most {reached * config.batch_size} (the steps per seed already trained) to only evaluate "
            "the checkpoint"
        )
    if config.num_updates <= reached:
        print(
            f"--resume {config.resume}: the checkpoint already holds {reached} updates (budget {config.num_updates}); "
            "evaluating it without training",
            file=sys.stderr,
        )


def _warm_up(agent: loop.Agent, config: loop.HostConfig, env: HostEnv, state: loop.TrainState) -> float:
    """Compile act, value and mode (run once on zeros) and the update's pieces (ahead of time, not run:
    :meth:`loop.Agent.compile`). Returns the seconds spent."""
    t0 = time.perf_counter()
    s, e, t = config.num_seeds, config.num_envs, config.num_steps
    obs = np.zeros((s, e, *env.obs_shape), np.uint8)
    action, _, _, _ = agent.act(state.params, obs, state.keys)
    agent.value(state.params, obs)
    agent.mode(state.params, obs)
    rollout = {
        "obs": np.zeros((t, *obs.shape), np.uint8),
        "action": np.zeros((t, *action.shape), action.dtype),
        **{k: np.zeros((t, s, e), np.float32) for k in ("log_prob", "value", "reward", "done")},
    }
    agent.compile(state.params, state.opt_state, rollout, obs, state.keys)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Treat SIGTERM (a scheduler's kill, a preemption) like Ctrl-C while training: checkpoint, then stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_host(name: str, config: loop.HostConfig, make_env: MakeEnv) -> tuple[Path, dict[str, Any]]:
    """Train ``config`` on ``make_env``'s environments, evaluate, write the results folder.

    Returns ``(folder, {"eval_scores": (S, E) or None, "history": loop.History})``. On Ctrl-C the latest state
    is saved to ``folder/checkpoint.msgpack`` and KeyboardInterrupt propagates; SIGTERM does the same.
    """
    out, raw = _out_dir(name, config)
    saved_config = {"experiment": name, **results.config_dict(config)}
    sink = log_sinks.open_sink(config.log, out, name, saved_config, log_sinks.run_names(config.num_seeds),
                               resumed=raw is not None)  # fmt: skip
    with log_sinks.closed_on_error(sink):
        return _train_and_write(name, config, make_env, out, raw, saved_config, sink)


def _train_and_write(
    name: str,
    config: loop.HostConfig,
    make_env: MakeEnv,
    out: Path,
    raw: dict[str, Any] | None,
    saved_config: dict[str, Any],
    sink: log_sinks.Sink | None,
) -> tuple[Path, dict[str, Any]]:
    """:func:`run_host` after the checks: train, evaluate, write the results folder; ``sink`` streams the
    curve."""
    env = make_env(config, config.num_seeds * config.num_envs, False)
    try:
        agent = loop.make_agent(config, env)
        state = loop.checkpoint_tree_template(agent, config, seed_keys(config.seed, config.num_seeds))
        if raw is not None:
            state = loop.TrainState.from_tree(state, checkpoint.restore(state.to_tree(), raw, config.resume))
        compile_s = _warm_up(agent, config, env, state)
        if sink is not None and not sink.continues:  # the checkpoint's curve first (a resumed run's new sink)
            sink.write_points(state.history.steps, state.history.metrics, 0, len(state.history.steps))

        saved_update = [state.update]  # the latest checkpoint's update, for the interrupt message

        def save(s: loop.TrainState, folder: Path = out) -> Path:
            saved_update[0] = s.update
            return checkpoint.save(folder, saved_config, s.to_tree())

        from tqdm.auto import tqdm

        total = config.num_seeds * config.env_steps
        with tqdm(total=total, initial=config.num_seeds * state.update * config.batch_size, unit="step",
                  unit_scale=True, desc=name, disable=not config.progress, dynamic_ncols=True) as bar:  # fmt: skip
            try:
                with _terminate_as_interrupt():
                    state = loop.train(config, env, agent, state, on_checkpoint=save, progress=bar,
                                       on_point=None if sink is None else sink.write)  # fmt: skip
            except KeyboardInterrupt:
                print(
                    f"\ninterrupted: checkpoint of update {saved_update[0]} in {out}; continue with "
                    f"--resume {out}",
                    file=sys.stderr,
                )
                raise
    finally:
        env.close()

    scores, frames, spikes_cost = None, [], {}
    if config.eval_episodes:
        eval_env = make_env(config, config.num_seeds * config.eval_episodes, True)
        try:
            if agent.energy is not None:  # on the evaluation games' first frames (the same seed: same frames)
                first = eval_env.reset(loop.env_seed(config, -1))
                first = first.reshape((config.num_seeds, config.eval_episodes, *first.shape[1:]))
                spikes_cost = {k: np.asarray(v) for k, v in agent.energy(state.params, first).items()}
            scores, frames = loop.evaluate(
                eval_env, agent, state.params, config.num_seeds, jax.random.key(config.seed + 1),
                config.eval_deterministic, loop.env_seed(config, -1), record=config.gif,
            )  # fmt: skip
        finally:
            eval_env.close()

    history = state.history

    def extra_files(stage: Path) -> None:
        save(state, stage)
        if frames:
            scale = 2  # 84x84 frames drawn at 168x168, 30 per second
            big = [np.repeat(np.repeat(np.asarray(f), scale, 0), scale, 1) for f in frames]
            episode_gif.write_gif(stage / episode_gif.RUN_GIF, big, frame_ms=1000 // 30)
        if sink is not None:  # closed, and its folder carried into the new results folder
            sink.move_into(stage)

    final = {"train_score": history.metrics["train_score"][:, -1], **spikes_cost}
    if scores is not None:
        final = {"eval_score": scores.mean(axis=1), **final}
    results.write_run(
        out, experiment=name, config=config, steps=history.steps, metrics=history.metrics, final=final,
        params=state.params, wall_time_s=state.wall_time_s, compile_time_s=compile_s,
        total_steps=config.num_seeds * state.update * config.batch_size, overwrite=True,
        extra={"eval_scores": None if scores is None else scores.tolist(), "updates": state.update},
        extra_files=extra_files,
    )  # fmt: skip
    return out, {"eval_scores": scores, "history": history}


def load_network(run_dir: str | os.PathLike, seed_index: int = 0) -> nnx.Module:
    """The trained network of seed ``seed_index`` of a host-loop results folder, rebuilt by
    :func:`synjax.host.loop.make_network` (one environment is made to read the frame shape and action count)."""
    import importlib

    data = results.load_config(run_dir)
    module = importlib.import_module(f"synjax.host.{data['experiment']}")
    config = results.config_from_dict(type(next(iter(module.PRESETS.values()))), {**data, "progress": False})
    env = module.make_env(config, 1, True)
    try:
        graphdef, template = nnx.split(loop.make_network(config, env, nnx.Rngs(0)))
    finally:
        env.close()
    return nnx.merge(graphdef, one_run(fill_template(template, results.load_params(run_dir)), seed_index))
