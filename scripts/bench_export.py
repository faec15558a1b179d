"""A spiking CartPole policy out of synjax and into other simulators: NIR export agreement, side by side.

    python scripts/bench_export.py --run RUN [--seed-index 0] [--episodes 10] [--json OUT.json]
    python scripts/bench_export.py              # trains one seed first (the NIR discretization, 200k steps)

For one saved seed of an inner-mode spiking PPO run on CartPole-v1 (``synjax ppo --network snn ...``):
1. plays ``--episodes`` deterministic episodes with synjax's own policy and keeps every observation it decided on
   (10 x 500 = 5,000 decisions for a solved policy);
2. exports the actor to a NIR file (:mod:`synjax.export.to_nir`), reads it back with ``nir.read``, and decides on
   each observation from rest with: synjax's import (:mod:`synjax.export.from_nir`); the independent NumPy
   interpreter of the tests (``tests/nir_reference.py``, NIR's forward Euler with the metadata's reset: it ignores
   spyx's spike timing); and Sinabs 3.1.3's ``from_nir`` (``scripts/nir_peer.py`` in its own venv, made on first
   use: the graph's Euler values turned into Sinabs's exponential decay, its spike function set to the graph's
   ``v > threshold``, and also as Sinabs imports it untouched, ``--spike-fn multi``);
3. prints each one's action agreement with synjax and the return of ``--episodes`` gymnasium episodes played by
   the Sinabs network.
With ``--snn-discretization nir`` the export is exact (targets: 100% with the reference, >= 99% with Sinabs, return
>= 475 there); with spyx's default discretization the agreement is measured, not targeted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the independent NumPy interpreter

from nir_reference import ReferenceGraph
from peer_venv import clean_env, peer_python

from synjax.envs import registry
from synjax.export.from_nir import import_graph
from synjax.export.to_nir import to_nir
from synjax.runs.saved_network import load_network

SINABS = ("sinabs-3.1.3", ["torch>=2.3", "nir==1.0.8", "nirtorch==2.6", "gymnasium>=1.3", "numpy", "pbr", "matplotlib"],
          ["--no-deps", "sinabs==3.1.3"])  # fmt: skip: sinabs pins nir <= 1.0.4 and samna; nirtorch 2.6 needs >= 1.0.6
PEER = Path(__file__).resolve().parent / "nir_peer.py"
TRAIN = ["ppo", "--network", "snn", "--snn-discretization", "nir", "--snn-time-steps", "8", "--total-timesteps",
         "200000", "--num-seeds", "1"]  # fmt: skip


def observations(net, episodes: int, seed: int = 0) -> np.ndarray:
    """Every observation synjax's deterministic policy decided on in ``episodes`` CartPole-v1 episodes: (N, 4)."""
    env, params = registry.make("CartPole-v1")
    keys = jax.random.split(jax.random.key(seed), episodes)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    @jax.jit
    def play(obs, state):
        def body(c, key):
            obs, state, alive = c
            action = jnp.argmax(net.run(obs)[0][0], -1)
            nxt, state, _, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key, episodes), state, action, params)
            return (nxt, state, alive & ~(term | trunc)), (obs, alive)

        steps = jax.random.split(jax.random.key(seed + 1), int(params.max_steps_in_episode))
        return jax.lax.scan(body, (obs, state, jnp.ones(episodes, bool)), steps)[1]

    seen, alive = play(obs, state)
    return np.asarray(seen)[np.asarray(alive)].astype(np.float32)


def sinabs(graph_path: Path, obs: np.ndarray, episodes: int, spike_fn: str) -> tuple[np.ndarray, dict]:
    """Sinabs's actions on ``obs`` (each a decision from rest) and its own ``episodes`` gymnasium episodes."""
    python = peer_python(SINABS[0], *SINABS[1:])
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/obs.npy", obs)
        common = [str(python), str(PEER), str(graph_path), "--spike-fn", spike_fn]
        subprocess.run([*common, "--observations", f"{tmp}/obs.npy", "--out", f"{tmp}/a.npy"], check=True,
                       env=clean_env())  # fmt: skip
        subprocess.run([*common, "--episodes", str(episodes), "--out", f"{tmp}/r.json"], check=True, env=clean_env())
        return np.load(f"{tmp}/a.npy"), json.loads(Path(f"{tmp}/r.json").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a CartPole-v1 spiking PPO/A2C results folder (inner mode); default: train one")
    p.add_argument("--seed-index", type=int, default=0)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--skip-sinabs", action="store_true")
    a = p.parse_args(argv)
    run = a.run
    if run is None:
        run = tempfile.mkdtemp(prefix="bench-export-")
        print(f"training: synjax {' '.join(TRAIN)} --out {run}", flush=True)
        from synjax.cli import main as synjax

        if synjax([*TRAIN, "--out", run]) != 0:
            return 1
    net = load_network(run, a.seed_index)
    if net.time_mode != "inner":
        p.error(f"--run {run}: a {net.time_mode}-mode network; this benchmark decides from rest (inner mode)")
    obs = observations(net, a.episodes)
    ours = np.asarray(jnp.argmax(net.run(jnp.asarray(obs))[0][0], -1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.nir"
        nir.write(str(path), to_nir(net, env="CartPole-v1"))
        graph = nir.read(str(path))
        imported = import_graph(graph)
        theirs, _ = jax.jit(imported.act)(imported.params, imported.initial_state(len(obs)), jnp.asarray(obs))
        reference = ReferenceGraph(graph)
        t0 = time.perf_counter()
        ref = np.array([reference.act(o) for o in obs])
        ref_s = time.perf_counter() - t0
        rows = {"synjax import (from_nir)": np.asarray(theirs), "NumPy reference (NIR Euler)": ref}
        played = {}
        if not a.skip_sinabs:
            for spike_fn, label in (("strict", "Sinabs 3.1.3, spike v > thr"), ("multi", "Sinabs 3.1.3 as imported")):
                actions, episodes = sinabs(path, obs, a.episodes, spike_fn)
                rows[label], played[label] = actions, episodes
    timing = graph.metadata["spike_timing"]
    print(f"\nrun {run}, seed {a.seed_index}: {net.neuron}, T = {net.time_steps}, discretization "
          f"{net.discretization} (spike_timing {timing}); {len(obs)} decisions from {a.episodes} episodes of "
          f"synjax's policy (NumPy reference: {len(obs) / ref_s:.0f} decisions/s)")  # fmt: skip
    print(f"{'simulator':34s} {'agreement':>10s} {'return (mean of episodes)':>26s}")
    out = {"run": str(run), "seed_index": a.seed_index, "decisions": len(obs), "discretization": net.discretization,
           "spike_timing": str(timing), "rows": {}}  # fmt: skip
    for label, actions in rows.items():
        agree = float(np.mean(actions == ours))
        ret = played.get(label, {}).get("mean_return")
        print(f"{label:34s} {agree:10.4%} {'' if ret is None else f'{ret:26.1f}'}")
        out["rows"][label] = {"agreement": agree, "mean_return": ret,
                              "returns": played.get(label, {}).get("returns")}  # fmt: skip
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
