"""Probes of the carried spiking policy that no flag offers: a variant of the network, then the synjax CLI.

    python scripts/probe_carried_snn.py detach -- ppo --preset masked-snn --num-seeds 4
    python scripts/probe_carried_snn.py orth0.5 -- ppo --preset masked-snn --num-seeds 4

Variants:
  detach     no gradient through the carried membranes (``stop_gradient`` on the incoming carry): each decision
             is trained as if its starting membranes were an input, so BPTT across decisions is switched off.
  orthG      recurrent weights of the R kinds drawn orthogonal with gain ``G`` (spyx draws them near 0).

The numbers these gave on the memory task are in docs/spiking_rl.md (2026-12-02).
"""

from __future__ import annotations

import sys

import jax
from flax import nnx

from synjax import cli
from synjax.agents import spiking

VARIANTS = ("detach", "orthG (e.g. orth0.5)")


def patch(variant: str) -> None:
    """Swap the variant's piece of :mod:`synjax.agents.spiking` in place."""
    if variant == "detach":
        run = spiking.SpikingNetwork.run

        def detached_run(self, obs, carry=(), reset=None):
            return run(self, obs, jax.tree.map(jax.lax.stop_gradient, carry), reset)

        spiking.SpikingNetwork.run = detached_run
    elif variant.startswith("orth") and variant[4:].replace(".", "", 1).isdigit():
        gain = float(variant[4:])
        make = spiking.make_neuron

        def make_orthogonal(kind, size, **kw):
            layer = make(kind, size, **kw)
            if hasattr(layer, "recurrent_w"):
                w = jax.nn.initializers.orthogonal(gain)(kw["rngs"].params(), (size, size))
                layer.recurrent_w = nnx.Param(w)
            return layer

        spiking.make_neuron = make_orthogonal
    else:
        raise SystemExit(f"variant={variant!r} is invalid: must be one of {', '.join(VARIANTS)}")


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    patch(sys.argv[1])
    sys.exit(cli.main(sys.argv[3:]))
