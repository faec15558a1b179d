"""The on-policy algorithm contract: what the host loop (and any other driver) looks up instead of branching on an
algorithm's name.

An on-policy algorithm is ``passes`` shuffled passes of ``minibatches`` gradient steps over each rollout's batch
(A2C: one pass of one minibatch, the whole batch; PPO: ``update_epochs`` x ``num_minibatches``), each step a
``minibatch_step`` of its loss. The jitted JAX-environment loop runs the passes as a ``lax.scan`` (``update``);
the host loop runs them from Python, one jitted call per minibatch (convolutions run faster outside loops on CPU).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optax

#: ``minibatch_step(config, apply, tx, params, opt_state, minibatch, i) -> (params, opt_state, metrics)``.
MinibatchStep = Callable[..., tuple[Any, Any, dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class OnPolicyAlgorithm:
    """One on-policy algorithm.

    Attributes:
      name: ``"ppo"``, ``"a2c"``.
      metrics: names of the update's metrics.
      make_optimizer: ``(config, num_updates) -> optax optimizer``.
      update: ``(config, apply, tx, params, opt_state, batch, key, i) -> (params, opt_state, metrics)``, the
        whole update of one rollout (the ``Update`` of :func:`synjax.agents.on_policy.make_actor_critic_train`).
      minibatch_step: one gradient step on a minibatch (:data:`MinibatchStep`).
      passes: ``config -> (passes over the batch, minibatches per pass)``.
    """

    name: str
    metrics: tuple[str, ...]
    make_optimizer: Callable[[Any, int], optax.GradientTransformation]
    update: Callable[..., tuple[Any, Any, dict[str, Any]]]
    minibatch_step: MinibatchStep
    passes: Callable[[Any], tuple[int, int]]

    def make_train(self, config: Any, env: Any = None, env_params: Any = None, network: Any = None):
        """The :class:`synjax.trainer.Trainer` of one seed (``train(key) -> TrainOutput`` when called); ``env``
        (with ``env_params``) and ``network`` (``rngs -> nnx.Module`` keeping :mod:`synjax.agents.policy`'s
        contract) replace the config's own."""
        from synjax.agents import on_policy

        return on_policy.make_actor_critic_train(
            config, self.make_optimizer, self.update, self.metrics, env, env_params, network
        )

    def run(self, config: Any):
        """Train every seed (and every swept value) of ``config``; write the results folder; ``(path, SweepRun)``."""
        from synjax.agents import on_policy

        return on_policy.run_actor_critic(self.name, config, self.make_train)
