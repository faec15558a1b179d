"""An on-policy algorithm as an experiment: its run (the results folder with ``episode.gif`` and, for a spiking
network, ``spikes.png``) and its saved policy (the network rebuilt from ``config.json``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

from synjax.agents import spike_raster
from synjax.agents.config import make_env
from synjax.agents.evaluation import deterministic_action
from synjax.agents.networks import action_spec, obs_encoder
from synjax.agents.on_policy import OnPolicyAlgorithm, make_network
from synjax.runner import sweep
from synjax.runner.experiment import run_experiment
from synjax.runs import episode_gif, results
from synjax.runs.saved_policy import Builder, Policy
from synjax.trainer import TrainOutput


def run(algorithm: OnPolicyAlgorithm, config: Any):
    """Train every seed (and every swept value) of ``config``; write the results folder; ``(path, SweepRun)``."""

    def pictures(stage, output: TrainOutput) -> None:  # episode.gif; a spiking policy's spikes (spikes.png)
        episode_gif.write_run_gif(stage, saved_policy_builder(type(config)))
        if config.network != "snn":
            return
        first = sweep.first_point(config)
        env, env_params = make_env(first)
        template = make_network(first, env, env_params, nnx.Rngs(0))
        spike_raster.write_run_picture(stage, template, output.params, env, env_params,
                                       f"{algorithm.name} {config.env}")  # fmt: skip

    return run_experiment(
        algorithm.name, config, algorithm.make_train, progress_total=config.env_steps,
        progress_unit_metric="train return", steps_per_seed=config.env_steps, extra_summary=results.final_medians,
        extra_files=pictures,
    )  # fmt: skip


def saved_policy_builder(config_type: type) -> Builder:
    """The builder of a saved run's :class:`~synjax.runs.saved_policy.Policy` for runs of ``config_type`` (an
    on-policy algorithm's config): the network rebuilt from config.json by :func:`make_network`, its
    deterministic action, its carry."""

    def build(data: dict[str, Any]) -> Policy:
        config = sweep.first_point(results.config_from_dict(config_type, data))  # the structure is shared
        env, env_params = make_env(config)
        _, encode = obs_encoder(env, env_params)
        _, _, bounds = action_spec(env, env_params)
        graphdef, template = nnx.split(make_network(config, env, env_params, nnx.Rngs(0)))

        def network(state) -> nnx.Module:
            return nnx.merge(graphdef, state)

        def act(state, obs, carry):
            reset = jnp.zeros(obs.shape[:1], bool)
            dist, _, carry = network(state)(encode(obs), carry, reset)
            return deterministic_action(dist, bounds), carry

        return Policy(env, env_params, template, act, network=network,
                      initial_carry=lambda state, batch_shape: network(state).initial_carry(batch_shape))  # fmt: skip

    return build
