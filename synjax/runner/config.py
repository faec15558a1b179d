"""The flags every experiment has (:class:`RunConfig`: seeds, the results folder, resuming, chunks, checkpoints,
the distributed start, log sinks) and the ``--gif`` flag of those that learn a policy (:class:`GifFlag`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from synjax.checks import at_least, check_fields, integer_in, one_of, require
from synjax.runner import log_sinks


@dataclasses.dataclass(frozen=True)
class GifFlag:
    """The flag of the experiments that learn a policy on an environment (every one but ``snn-classify``).

    Attributes:
      gif: write ``episode.gif`` into the results folder: one episode of seed 0's final policy (the greedy one
        of the JAX experiments, the host loop's first evaluation game); ``--no-gif`` saves its 1-16 s.
    """

    gif: bool = True


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Flags every experiment has.

    Attributes:
      num_seeds: independent training runs, vmapped in one jit.
      seed: root seed; seed i of the sweep uses ``jax.random.split(jax.random.key(seed), num_seeds)[i]``.
      out: results folder; empty means ``runs/<experiment>-<date>-<time>``.
      overwrite: replace ``out`` if it already holds results.
      progress: draw a live progress bar.
      distributed: one of several processes (hosts, or GPUs) that run this sweep together, the runs split
        between them (see docs/scale-out.md); JAX's distributed runtime starts before anything else.
      coordinator: ``HOST:PORT`` where process 0 listens (``--distributed``); empty: ``$JAX_COORDINATOR_ADDRESS``,
        else detected (SLURM, Cloud TPU).
      num_processes: processes in a ``--distributed`` run; 0: ``$JAX_NUM_PROCESSES``, else detected.
      process_id: this process's number, 0 .. num_processes - 1; -1: ``$JAX_PROCESS_ID``, else detected.
      coordinator_timeout: seconds a ``--distributed`` process waits for the others before it fails.
      resume: continue the interrupted run whose results folder (holding ``checkpoint.msgpack``) this is; the
        run's own flags are read from the checkpoint, so ``synjax <experiment> --resume DIR`` is enough.
      num_chunks: the training steps run in this many jitted chunks (fewer if the run has fewer steps); a
        SIGTERM or Ctrl-C stops the run at the end of the current chunk, after saving a checkpoint.
      checkpoint_every: write ``checkpoint.msgpack`` every this many chunks; 0 only on SIGTERM or Ctrl-C.
      log: also stream the metrics.csv rows while training runs, one run per seed, into the results folder:
        ``tensorboard`` (``<out>/tb/seed_<i>``) or ``wandb`` (``<out>/wandb``; ``WANDB_MODE=offline`` works
        offline); each needs its package (``pip install -e ".[log]"``). See :mod:`synjax.runner.log_sinks`.
    """

    #: whether several processes can run one sweep together (``--distributed``); the host loop cannot
    multi_process: ClassVar[bool] = True

    num_seeds: Annotated[int, at_least(1)] = 8
    seed: Annotated[int, integer_in(0, 2**32 - 1)] = 0
    out: str = ""
    overwrite: bool = False
    progress: bool = True
    distributed: bool = False
    coordinator: str = ""
    num_processes: Annotated[int, at_least(0)] = 0
    process_id: Annotated[int, at_least(-1)] = -1
    coordinator_timeout: Annotated[int, at_least(1)] = 60
    resume: str = ""
    num_chunks: Annotated[int, at_least(1)] = 20
    checkpoint_every: Annotated[int, at_least(0)] = 1
    log: Annotated[str, one_of(*log_sinks.SINKS)] = "none"

    def __post_init__(self) -> None:
        check_fields(self)  # every field's declared range (the subclasses' fields too)
        log_sinks.check_available(self.log)  # a missing optional package, before any work
        for name in ("coordinator", "num_processes", "process_id"):
            given = getattr(self, name) != getattr(RunConfig, name)
            require(self.distributed or not given, name, getattr(self, name),
                    "left unset without --distributed (add --distributed for a multi-process run)")  # fmt: skip
