"""``synjax stdp-q``: the spiking STDP + Q-learning hybrid on Taxi-v4, many seeds in one jit.

Presets (see ``docs/stdp_q.md`` for the measured results):

- ``tuned``: reward-modulated STDP with a short eligibility (tau_e = 0.5 environment steps), eta 0.5, regular input,
  lateral inhibition and an efference copy in the learning window; 10,000 episodes of at most 100 steps.
- ``notebook``: the original notebook's declared hyperparameters where they make sense: gamma 0.95,
  eta = alpha_td = 0.005, tau_e 20, weights in [-1, 1], epsilon 1.0 x0.998 per episode to 0.01, 10,000
  episodes, 100 steps, 10 SNN steps, beta 0.9; alpha_stdp = 0.002 as the STDP amplitudes (immaterial after the
  tag normalization) and as ``original_lr``. Not usable as declared: the 64 hidden units (the notebook never
  used them; the network here is state -> action), the softmax temperature (the notebook acted
  epsilon-greedily), and raw rewards (Q* spans -13..20 in reward units, outside the [-1, 1] bounds, so rewards
  are scaled by 1/20 as everywhere here).
- ``td-only``, ``original-rule``: ``tuned`` with the ablation rules ("td_only": plain TD on the taken synapse;
  "original": the notebook's fixed +lr/-lr on the greedy action plus its TD step).
- ``long-tau``: ``tuned`` with the notebook's tau_e = 20 environment steps.
- ``rainy``: ``tuned`` on the rainy variant (moves slip sideways with probability 0.2), with eta 0.2: the TD
  targets are noisy there, and eta 0.5 leaves some seeds' final policies failing a start.

Besides the runner's files the results folder holds ``q_values.npy`` (num_seeds, 500, 6) float32, the weights
whose row argmax is each seed's greedy policy, ``policy_map.png`` (seed 0, passenger at R going to G) and
``episode.gif`` (one greedy episode of seed 0). ``synjax eval --run DIR`` plays the saved weights greedily.
"""

from __future__ import annotations

import dataclasses

from synjax.snn.stdp_q import StdpQConfig, make_train
from synjax.tabular.experiment import run_taxi_agent


def run(config: StdpQConfig):
    """Train every seed, write the results folder, return ``(path, SweepRun)``."""
    return run_taxi_agent(
        "stdp-q", config, make_train, title=f"stdp-q ({config.rule})", target_return=config.target_return
    )


TUNED = StdpQConfig()
PRESETS = {
    "tuned": TUNED,
    "notebook": dataclasses.replace(
        TUNED, eta=0.005, tau_e=20.0, a_plus=0.002, a_minus=0.002, original_lr=0.002, epsilon_decay=0.998
    ),
    "td-only": dataclasses.replace(TUNED, rule="td_only"),
    "original-rule": dataclasses.replace(TUNED, rule="original"),
    "long-tau": dataclasses.replace(TUNED, tau_e=20.0),
    "rainy": dataclasses.replace(TUNED, is_rainy=True, eta=0.2),
}
