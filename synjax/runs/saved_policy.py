"""What playing a saved run's policy needs (:class:`Policy`), and reading one back from a results folder (:func:`load`).

Each experiment that learns a policy owns the builder of its ``Policy`` (``config.json``'s dict -> ``Policy``):
``synjax.agents.on_policy_experiment.saved_policy_builder`` (PPO, A2C, PQN), ``synjax.agents.dqn.saved_policy`` and
``synjax.tabular.experiment.saved_policy_builder`` (tabular-q, stdp-q). ``synjax eval`` finds them by experiment
name (:mod:`synjax.runs.evaluate_run`); each experiment's run draws its ``episode.gif`` with its own
(:mod:`synjax.runs.episode_gif`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from synjax.runs import results


@dataclasses.dataclass
class Policy:
    """What evaluating a saved run needs.

    Attributes:
      env: the environment the run trained on.
      env_params: its params.
      template: one seed's parameter pytree with the saved structure (e.g. an ``nnx.State``), filled in with
        ``nnx.replace_by_pure_dict`` (or given to ``results.load_params`` as template when ``from_dict`` is None).
      act: ``(params of one seed, raw observations (E, *obs_shape), carry) -> (deterministic actions (E, ...),
        carry)``: the stateful policy contract (:mod:`synjax.agents.policy`); a feedforward policy passes the
        carry through.
      initial_carry: ``(params of one seed, batch_shape) -> carry`` at an episode's start (``()`` by default).
      network: ``params of one seed -> nnx.Module``, the trained network itself (for an exporter, or to look
        inside it), rebuilt by the experiment's one network builder; None for a policy without one (a table).
      from_dict: ``(template, loaded nested dict with a leading run axis) -> parameter pytree``; defaults to
        ``nnx.replace_by_pure_dict`` on a copy of ``template``.
      final_eval: the experiment's own final evaluation, recomputed from the saved parameters: ``stacked
        parameters -> {name of a summary.json final metric: (runs,) values}``; None where there is none besides
        the episodes.
    """

    env: Any
    env_params: Any
    template: Any
    act: Callable[[Any, jax.Array, Any], tuple[jax.Array, Any]]
    from_dict: Callable[[Any, Any], Any] | None = None
    initial_carry: Callable[[Any, tuple[int, ...]], Any] = lambda params, batch_shape: ()
    network: Callable[[Any], Any] | None = None
    final_eval: Callable[[Any], dict[str, np.ndarray]] | None = None


#: ``config.json`` as a dict -> the run's :class:`Policy`.
Builder = Callable[[dict[str, Any]], Policy]


def fill_template(template: Any, loaded: Any) -> Any:
    """A copy of the ``nnx.State`` ``template`` holding the arrays of ``loaded`` (params.msgpack's nested dict)."""
    from flax import nnx

    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, loaded)
    return state


def one_run(params: Any, index: int) -> Any:
    """Run ``index`` of parameters stacked on a leading run axis (a ``seed_index``, checked against the runs
    saved)."""
    from synjax.checks import require

    num_runs = jax.tree.leaves(params)[0].shape[0]
    require(0 <= index < num_runs, "seed_index", index, f"an index below the {num_runs} saved runs")
    return jax.tree.map(lambda x: jax.numpy.asarray(x[index]), params)


def load(run_dir: str | os.PathLike, build: Builder) -> tuple[Policy, Any, dict[str, Any]]:
    """``(Policy, stacked parameters with a leading run axis, config dict)`` of the results folder ``run_dir``
    (its config.json and params.msgpack), the policy made by ``build``."""
    data = results.load_config(run_dir)
    policy = build(data)
    loaded = results.load_params(run_dir)
    params = (policy.from_dict or fill_template)(policy.template, loaded)
    return policy, params, data
