"""Finished runs: the results folder (:mod:`synjax.runs.results`) and what reads it: learning curves, per-seed
comparisons, the saved policies (:mod:`synjax.runs.saved_policy`), the episode GIF and ``synjax eval``
(:mod:`synjax.runs.evaluate_run`)."""
