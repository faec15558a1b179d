"""The runner: many seeds (and swept values) of one :class:`synjax.trainer.Trainer` on every device, in
checkpointed chunks (:mod:`synjax.runner.experiment`), with what it needs: the run flags every experiment has
(:mod:`synjax.runner.config`), the devices and sharding (:mod:`synjax.runner.devices`), checkpoints, the
distributed start, size checks, divergence, the progress bar, log sinks and sweeps."""
