"""A finished run's trained network as an NNX module, for every family (the one way an exporter or an analysis
gets it): ``load_network(run_dir, seed_index)``.

Each family rebuilds its network with the builder it trains with: the on-policy agents and DQN through their
saved :class:`~synjax.runs.saved_policy.Policy` (``Policy.network``), the host loop through
:func:`synjax.host.loop.make_network`, the classifier through :func:`synjax.classify.experiment.load_model`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from flax import nnx

from synjax.checks import require
from synjax.runs import results
from synjax.runs.saved_policy import one_run


def _classifier(run_dir: str | os.PathLike, seed_index: int) -> nnx.Module:
    from synjax.classify.experiment import load_model

    return load_model(run_dir, seed_index)[0]


def _host(run_dir: str | os.PathLike, seed_index: int) -> nnx.Module:
    from synjax.host.experiment import load_network as load_host_network

    return load_host_network(run_dir, seed_index)


#: experiment name -> ``(run_dir, seed_index) -> nnx.Module`` for the families without a saved policy
LOADERS: dict[str, Callable[[str | os.PathLike, int], nnx.Module]] = {
    "snn-classify": _classifier, "atari": _host, "carracing": _host,
}  # fmt: skip


def load_network(run_dir: str | os.PathLike, seed_index: int = 0) -> nnx.Module:
    """The trained network of saved run ``seed_index`` (a row of params.msgpack) of the results folder
    ``run_dir``, its parameters filled in."""
    experiment = results.load_config(run_dir).get("experiment")
    if experiment in LOADERS:
        return LOADERS[experiment](run_dir, seed_index)
    from synjax.runs.evaluate_run import evaluable, load_policy

    require(experiment in evaluable(), "run", str(run_dir),
            f"a run of an experiment with a saved network ({', '.join([*evaluable(), *LOADERS])})")  # fmt: skip
    policy, params, _ = load_policy(run_dir)
    require(policy.network is not None, "run", str(run_dir),
            f"a run with a network ({experiment} saves a table, not a network)")  # fmt: skip
    return policy.network(one_run(params, seed_index))
