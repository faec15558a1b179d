"""The spikes of a trained spiking policy over one evaluation episode: ``spikes.png`` in a run's results folder.

One greedy episode of the first run's network on a fresh environment (the network's own deterministic action,
its carry threaded in ``carried`` mode) records every layer's spikes at every SNN step; the picture shows the
raster of the first decisions per layer (rows: neurons, columns: SNN steps, decision boundaries marked) and
each layer's firing rate per decision over the whole episode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from synjax.agents.evaluation import deterministic_action
from synjax.agents.networks import action_spec, obs_encoder
from synjax.agents.spiking import SpikingQNetwork, spiking_core

#: decisions drawn in the raster (the rates cover the whole episode)
RASTER_DECISIONS = 40


def record_episode(model: nnx.Module, env: Any, env_params: Any, key: jax.Array, max_steps: int = 1000):
    """One greedy episode of ``model`` (a policy, or a spiking Q-network acting greedily) on ``env``.

    Returns:
      (spikes per layer, each ``(decisions, T, width)`` uint8, the episode's return).
    """
    core = spiking_core(model)
    if core is None:  # a network that records its own spikes (synjax eprop's)
        trains = model.spike_trains
    else:
        trains = lambda x, carry: core.simulate(x, tuple(carry) or None)[2]
    _, encode = obs_encoder(env, env_params)
    _, _, bounds = action_spec(env, env_params)
    max_steps = min(max_steps, int(getattr(env_params, "max_steps_in_episode", max_steps)))
    k_reset, k_run = jax.random.split(key)
    obs, state = env.reset(k_reset, env_params)
    carry = model.initial_carry((1,)) if hasattr(model, "initial_carry") else ()

    def step(c, k):
        obs, state, carry, done, ret = c
        x = encode(obs)[None]
        spikes = trains(x, carry)
        if isinstance(model, SpikingQNetwork):
            action = jnp.argmax(model(x), -1)
        else:
            dist, _, carry = model(x, carry, jnp.zeros((1,), bool))
            action = deterministic_action(dist, bounds)
        obs, state, reward, terminated, truncated, _ = env.step(k, state, action[0], env_params)
        ret = ret + jnp.where(done, 0.0, reward.astype(jnp.float32))
        was_done = done
        done = done | terminated | truncated
        return (obs, state, carry, done, ret), (tuple(s[:, 0] for s in spikes), was_done)

    init = (obs, state, carry, jnp.bool_(False), jnp.float32(0.0))
    (_, _, _, _, ret), (spikes, after_end) = jax.jit(
        lambda i, ks: jax.lax.scan(step, i, ks)
    )(init, jax.random.split(k_run, max_steps))
    length = int(np.argmax(np.asarray(after_end))) if bool(np.asarray(after_end).any()) else max_steps
    return [np.asarray(s[:length], np.uint8) for s in spikes], float(ret)


def write_picture(path: Path, model: nnx.Module, env: Any, env_params: Any, title: str, seed: int = 0) -> None:
    """``path`` (a PNG): the raster of the first :data:`RASTER_DECISIONS` decisions and the firing rates per
    decision of one greedy episode (:func:`record_episode`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spikes, ret = record_episode(model, env, env_params, jax.random.key(seed))
    layers = len(spikes)
    fig, axes = plt.subplots(layers + 1, 1, figsize=(10, 2.2 * layers + 2.4), squeeze=False)
    for i, s in enumerate(spikes):
        ax = axes[i, 0]
        shown = s[:RASTER_DECISIONS]
        decisions, steps, width = shown.shape
        t, n = np.nonzero(shown.reshape(decisions * steps, width))
        ax.scatter(t, n, s=6, c="k", marker="|", linewidths=0.8)
        for d in range(1, decisions):
            ax.axvline(d * steps - 0.5, color="0.85", lw=0.5, zorder=0)
        ax.set_xlim(-0.5, decisions * steps - 0.5)
        ax.set_ylim(-0.5, width - 0.5)
        ax.set_ylabel(f"layer {i}\nneuron")
        ax.set_title(f"layer {i}: spikes of the first {decisions} decisions ({steps} SNN steps each)", fontsize=9)
    axes[layers - 1, 0].set_xlabel("SNN step")
    ax = axes[layers, 0]
    for i, s in enumerate(spikes):
        ax.plot(s.mean((1, 2)), lw=1, label=f"layer {i} (mean {s.mean():.3f})")
    ax.set_xlabel("decision (environment step)")
    ax.set_ylabel("spikes / neuron / step")
    ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{title}: one greedy episode of run 0 (return {ret:g}, {len(spikes[0])} decisions)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_run_picture(stage: Path, template: nnx.Module, params: Any, env: Any, env_params: Any, title: str) -> None:
    """``stage / "spikes.png"`` for the first run of stacked ``params`` (leading run axis; the state of
    ``template``'s structure) if ``template`` is spiking (a spiking network, or one with ``spike_trains(obs,
    carry)``); nothing otherwise."""
    if spiking_core(template) is None and not hasattr(template, "spike_trains"):
        return
    graphdef = nnx.graphdef(template)
    model = nnx.merge(graphdef, jax.tree.map(lambda x: x[0], params))
    write_picture(stage / "spikes.png", model, env, env_params, title)
