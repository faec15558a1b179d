"""``synjax tabular-q``: tabular Q-learning on Taxi-v4, many seeds in one jit, against the value-iteration optimum.

Presets (numbers in docs/taxi.md):

- ``notebook``: the original script (alpha 0.9, gamma 0.95, epsilon 1.0 x0.9995 per episode down to 0.01,
  10,000 episodes of at most 100 steps, epsilon-greedy), with correct terminal targets.
- ``tuned``: the same budget with slower exploration decay (x0.9998 per episode): exploring is cheap in a
  deterministic world and Q-learning is off-policy, so the greedy policy becomes optimal sooner and on every seed.
- ``softmax``: Boltzmann exploration, temperature 10 x0.9995 per episode down to 0.1 (reward units).
- ``rainy``: ``notebook`` on the rainy variant (moves slip sideways with probability 0.2); alpha 0.9 is far too
  large for stochastic transitions and this preset shows it.
- ``rainy-tuned``: rainy with alpha 0.1 and the ``tuned`` exploration.

Besides the runner's files the results folder holds ``q_values.npy`` (num_seeds, 500, 6) float32, whose row
argmax is each seed's greedy policy, ``policy_map.png`` (seed 0's greedy action per taxi cell for the
passenger at R going to G: pickup phase and delivery phase) and ``episode.gif`` (one greedy episode of seed 0).
``synjax eval --run DIR`` plays the saved tables on the Taxi variant the run trained on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from synjax.envs import taxi
from synjax.runner.experiment import run_experiment
from synjax.runs import episode_gif
from synjax.runs.results import config_from_dict, stats
from synjax.runs.saved_policy import Builder, Policy
from synjax.tabular.config import TaxiAgentConfig
from synjax.tabular.plots import plot_policy_map
from synjax.tabular.qlearning import TabularQConfig, make_train
from synjax.tabular.taxi_agent import EvalConfig, greedy_eval, solve_threshold
from synjax.tabular.value_iteration import optimal_start_return
from synjax.trainer import Trainer, TrainOutput

#: passenger location and destination drawn in policy_map.png (R -> G).
POLICY_MAP_PAIR = (0, 1)


def summary_extras(config: EvalConfig, out: TrainOutput, target_return: float | None = None) -> dict:
    """summary.json entries beyond the runner's, for any Taxi agent: the optimum, the solve threshold, with
    ``target_return`` it and the fraction of seeds whose final greedy return reaches it, agent steps, and the
    episodes-to-solve statistics of the solved seeds."""
    ets = np.asarray(out.final["episodes_to_solve"], np.float64)
    solved = ets[np.isfinite(ets)]
    target = {}
    if target_return is not None:
        greedy = np.asarray(out.final["greedy_return"], np.float64)
        target = {
            "target_return": target_return,
            "fraction_seeds_at_target": float(np.mean(greedy >= target_return)),
        }
    return {
        "optimal_return": optimal_start_return(
            config.eval_max_steps, config.is_rainy, config.rainy_probability
        ),
        "solve_threshold": solve_threshold(config),
        **target,
        "agent_steps_per_seed": np.asarray(out.extras["agent_steps"]).astype(np.int64).tolist(),
        "episodes_to_solve_solved_seeds": stats(solved) if solved.size else None,
    }


def saved_policy_builder(config_type: type) -> Builder:
    """The builder of a saved Taxi agent's :class:`~synjax.runs.saved_policy.Policy` for runs of ``config_type``
    (tabular-q's, stdp-q's): ``argmax`` of its (500, 6) table (Q-values, synaptic weights) on the Taxi variant it
    trained on (``config.env_params``: rainy, ...), episodes capped at ``eval_max_steps`` as in the run's own
    evaluation; ``final_eval`` is that evaluation (``greedy_return``, exact over the 300 starts)."""

    def build(data: dict[str, Any]) -> Policy:
        config = config_from_dict(config_type, data)
        env_params = config.env_params.replace(max_steps_in_episode=config.eval_max_steps)

        def act(q, obs, carry):
            return jnp.argmax(q[obs], axis=-1).astype(jnp.int32), carry

        def final_eval(tables):
            returns = jax.jit(jax.vmap(lambda q: greedy_eval(q, config)[0]))(jnp.asarray(tables, jnp.float32))
            return {"greedy_return": np.asarray(returns)}

        template = jnp.zeros((taxi.NUM_STATES, taxi.NUM_ACTIONS), jnp.float32)
        from_dict = lambda t, loaded: jnp.asarray(loaded, t.dtype)  # params.msgpack holds the bare tables
        return Policy(taxi.Taxi(), env_params, template, act, from_dict=from_dict, final_eval=final_eval)

    return build


def write_extra_files(stage: Path, out: TrainOutput, title: str, config: TaxiAgentConfig) -> None:
    """q_values.npy (num_seeds, 500, 6), policy_map.png and (unless ``--no-gif``) episode.gif of seed 0 into the
    results folder ``stage``."""
    q = np.asarray(out.params, np.float32)
    np.save(stage / "q_values.npy", q)
    pass_loc, dest = POLICY_MAP_PAIR
    plot_policy_map(
        stage / "policy_map.png", q[0], (pass_loc, 4), dest, title=f"{title}: seed 0 greedy policy"
    )
    episode_gif.write_run_gif(stage, saved_policy_builder(type(config)))


def count_agent_steps(out: TrainOutput) -> int:
    """Agent (environment) steps that all seeds took together: episodes vary in length, so it is counted."""
    return int(np.asarray(out.extras["agent_steps"]).astype(np.int64).sum())


def run_taxi_agent(
    experiment: str,
    config: TaxiAgentConfig,
    make_train: Callable[[Any], Trainer],
    title: str = "",
    target_return: float | None = None,
):
    """Train every seed of a Taxi agent, write the results folder (with :func:`summary_extras` and
    :func:`write_extra_files`, titled ``title`` or ``experiment``), return ``(path, SweepRun)``."""
    return run_experiment(
        experiment,
        config,
        make_train,
        progress_total=config.num_episodes,
        progress_unit_metric="greedy_return",
        steps_per_seed=count_agent_steps,
        extra_summary=lambda o: summary_extras(config, o, target_return=target_return),
        extra_files=lambda stage, o: write_extra_files(stage, o, title or experiment, config),
    )


def run(config: TabularQConfig):
    """Train every seed, write the results folder, return ``(path, SweepRun)``."""
    return run_taxi_agent("tabular-q", config, make_train)


NOTEBOOK = TabularQConfig()
TUNED = dataclasses.replace(NOTEBOOK, epsilon_decay=0.9998)
PRESETS = {
    "notebook": NOTEBOOK,
    "tuned": TUNED,
    "softmax": dataclasses.replace(
        NOTEBOOK, exploration="softmax", temperature_start=10.0, temperature_decay=0.9995, temperature_end=0.1
    ),
    "rainy": dataclasses.replace(NOTEBOOK, is_rainy=True),
    "rainy-tuned": dataclasses.replace(TUNED, is_rainy=True, alpha=0.1),
}
