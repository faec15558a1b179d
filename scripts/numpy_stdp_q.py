"""The STDP + Q hybrid as a plain NumPy loop over Gymnasium's Taxi-v4: one agent, one step at a time.

This is the reference a user would write without synjax (and what ``scripts/bench_taxi.py`` times against
``synjax stdp-q``): the same network, read-out, learning window, R-STDP eligibility and TD modulation as
:mod:`synjax.snn.stdp_q`, for one seed, with NumPy arrays and Python loops over SNN time steps. The eligibility
is the dense (500, 6) trace (synjax keeps only the recently tagged rows, which equals it to 1e-6).

    python scripts/numpy_stdp_q.py --episodes 2000 --seed 0 [--preset tuned] [--rule td_only]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import gymnasium as gym
import numpy as np

from synjax.snn.stdp_q import StdpQConfig

NUM_STATES, NUM_ACTIONS = 500, 6


def _lif_window(currents: np.ndarray, c: StdpQConfig):
    """LIF action neurons over a window: (spikes (T, 6), first-spike times (6,), final potentials (6,))."""
    v = np.zeros(NUM_ACTIONS)
    last = np.zeros(NUM_ACTIONS)
    first = np.full(NUM_ACTIONS, np.inf)
    spikes = np.zeros_like(currents)
    for t in range(currents.shape[0]):
        inhibition = -c.inhibition * (last.sum() - last)
        potential = c.beta * v + currents[t] + inhibition
        spike = (potential >= c.threshold).astype(np.float64)
        new = (spike > 0) & np.isinf(first)
        if new.any():
            rise = np.maximum(potential - v, np.finfo(np.float64).tiny)
            first[new] = t - 1.0 + np.clip((c.threshold - v[new]) / rise[new], 0.0, 1.0)
        v = potential - c.threshold * spike if c.reset == "subtract" else potential * (1.0 - spike)
        spikes[t], last = spike, spike
    return spikes, first, v


def _winner(spikes: np.ndarray, first: np.ndarray, v_final: np.ndarray) -> int:
    """Most spikes; ties to the earliest first spike; then the highest final potential; then the lowest index."""
    counts = spikes.sum(0)
    tied = counts == counts.max()
    t_first = np.where(tied, first, np.inf)
    tied &= t_first == t_first.min()
    return int(np.argmax(np.where(tied, v_final, -np.inf)))


def _train(rng: np.random.Generator, c: StdpQConfig, regular: np.ndarray) -> np.ndarray:
    if c.encoding == "regular":
        return regular
    return (rng.random(c.snn_steps) < c.input_rate).astype(np.float64)


def _stdp_tag(pre: np.ndarray, post: np.ndarray, c: StdpQConfig) -> np.ndarray:
    """Pair-STDP of one pre neuron (T,) against the 6 post neurons (T, 6), summed over the window: (6,)."""
    d_plus = math.exp(-1.0 / c.tau_plus) if c.tau_plus > 0 else 0.0
    d_minus = math.exp(-1.0 / c.tau_minus) if c.tau_minus > 0 else 0.0
    x_pre, x_post = 0.0, np.zeros(NUM_ACTIONS)
    tag = np.zeros(NUM_ACTIONS)
    for t in range(pre.shape[0]):
        x_pre = x_pre * d_plus + pre[t]
        x_post = x_post * d_minus
        tag += c.a_plus * x_pre * post[t] - c.a_minus * pre[t] * x_post
        x_post = x_post + post[t]
    return tag


def _bounded(w: np.ndarray, change: np.ndarray, c: StdpQConfig) -> np.ndarray:
    if c.bounds == "soft":
        change = np.maximum(change, 0) * (c.w_max - w) - np.maximum(-change, 0) * (w - c.w_min)
    return np.clip(w + change, c.w_min, c.w_max)


def run(config: StdpQConfig, seed: int, num_episodes: int) -> tuple[np.ndarray, int]:
    """Train one agent for ``num_episodes`` episodes; returns (weights (500, 6), agent steps taken)."""
    c = config
    rng = np.random.default_rng(seed)
    env = gym.make(
        "Taxi-v4", max_episode_steps=c.max_steps, is_rainy=c.is_rainy, rainy_probability=c.rainy_probability
    )
    w = rng.uniform(c.w_init_low, c.w_init_high, (NUM_STATES, NUM_ACTIONS))
    e = np.zeros_like(w)
    d_e = math.exp(-1.0 / c.tau_e) if c.tau_e > 0 else 0.0
    d_plus = math.exp(-1.0 / c.tau_plus) if c.tau_plus > 0 else 0.0
    tag_scale = 1.0 / (c.a_plus * sum(sum(d_plus**k for k in range(t + 1)) for t in range(c.snn_steps)))
    t = np.arange(c.snn_steps)
    regular = (np.floor((t + 1) * c.input_rate + 1e-5) > np.floor(t * c.input_rate + 1e-5)).astype(np.float64)
    if c.exploration == "epsilon":
        sched = (c.epsilon_start, c.epsilon_decay, c.epsilon_end)
    else:
        sched = (c.noise_start, c.noise_decay, c.noise_end)
    steps = 0
    s, _ = env.reset(seed=seed)
    for episode in range(num_episodes):
        explore = max(sched[2], sched[0] * sched[1] ** episode)
        done = False
        while not done:
            # Decision window.
            currents = _train(rng, c, regular)[:, None] * w[s][None, :]
            if c.exploration == "noise":
                currents = currents + explore * rng.standard_normal(currents.shape)
            a = _winner(*_lif_window(currents, c))
            if c.exploration == "epsilon" and rng.random() < explore:
                a = int(rng.integers(NUM_ACTIONS))
            greedy = int(np.argmax(w[s]))
            s2, r, terminated, truncated, _ = env.step(a)
            steps += 1
            done = terminated or truncated
            bootstrap = 0.0 if terminated else float(w[s2].max())
            delta = c.reward_scale * r + c.gamma * bootstrap - w[s, a]
            if c.rule == "rstdp":
                pre = _train(rng, c, regular)
                drive = pre[:, None] * w[s][None, :]
                drive[:, a] += c.efference
                post, _, _ = _lif_window(drive, c)
                tag = tag_scale * _stdp_tag(pre, post, c)
                e *= d_e
                e[s] = e[s] + tag if c.trace == "accumulate" else np.where(tag != 0, tag, e[s])
                np.clip(e, -c.eligibility_max, c.eligibility_max, out=e)
                w = _bounded(w, c.eta * delta * e, c)
                if done:
                    e[:] = 0.0
            else:
                change = np.zeros(NUM_ACTIONS)
                change[a] = c.eta * delta
                if c.rule == "original":
                    change += c.original_lr * (2.0 * (np.arange(NUM_ACTIONS) == greedy) - 1.0)
                w[s] = _bounded(w[s], change, c)
            s = s2
        s, _ = env.reset()
    env.close()
    return w.astype(np.float32), steps


def main(argv: list[str] | None = None) -> int:
    from synjax.snn.experiment import PRESETS
    from synjax.tabular import evaluate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default=next(iter(PRESETS)), choices=list(PRESETS))
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", choices=["rstdp", "td_only", "original"], default=None)
    args = parser.parse_args(argv)
    config = PRESETS[args.preset]
    if args.rule:
        config = dataclasses.replace(config, rule=args.rule)
    t0 = time.perf_counter()
    w, steps = run(config, args.seed, args.episodes)
    dt = time.perf_counter() - t0
    greedy = float(np.mean(np.asarray(evaluate.greedy_returns_all_starts(w))))
    print(
        f"{args.episodes} episodes, {steps} agent steps in {dt:.1f}s = {steps / dt:.0f} steps/s; "
        f"greedy mean return over the 300 starts {greedy:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
