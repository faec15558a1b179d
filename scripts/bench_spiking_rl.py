"""Spiking policies trained by deep RL, side by side with their ANN twins (issue 16).

    python scripts/bench_spiking_rl.py speed     # PPO agent steps/s at 1, 16, 64 seeds: ANN MLP, SNN T = 4, 16
    python scripts/bench_spiking_rl.py jelly     # agent steps/s against SpikingJelly's spiking PPO (needs .[bench])
    python scripts/bench_spiking_rl.py cartpole  # PPO on CartPole-v1, 200k: MLP vs SNN (inner, T = 8)
    python scripts/bench_spiking_rl.py pqn       # PQN on CartPole-v1, 500k: MLP (LayerNorm) vs spiking Q-network
    python scripts/bench_spiking_rl.py carried   # spiking PPO, carried membranes, on CartPole-v1, 500k
    python scripts/bench_spiking_rl.py memory    # CartPole-masked-v1, 1M: MLP vs carried spiking PPO
    python scripts/bench_spiking_rl.py minatar --num-seeds 4 [--env SpaceInvaders-MinAtar]  # PQN, PPO: CNN vs SNN
    python scripts/bench_spiking_rl.py atari-firing  # the spiking Nature CNN's firing rates at init, per threshold, T

``speed`` trains each network (SpikingJelly's settings below) for a short budget at 1, 16 and 64 seeds in one jit
and prints the total agent steps/s and each network's 64 / 1 scaling. ``jelly`` times SpikingJelly's spiking PPO (the network and settings of its
``activation_based/examples/spiking_ppo.py``, on Gymnasium CartPole-v1) and synjax's with the same network and
T = 16 at 1 and 64 seeds, and prints the ratios (targets: >= 20x at 1 seed, >= 100x at 64 seeds). The tables
(``cartpole``, ``pqn``, ``carried``, ``memory``, ``minatar``) train each row's preset for 16 seeds (``--num-seeds``)
in one jit and print the median final deterministic return against the target (475 on CartPole, 450 on the
masked one; MinAtar: each spiking row's share of its ANN twin's), the seeds that reach it, the energy per decision
next to the ANN twin's multiply-accumulates, and the speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from importlib.metadata import version

import jax
import numpy as np

from synjax.agents import ppo
from synjax.runner.experiment import run_seeds


def _config(**kw) -> ppo.PPOConfig:
    return dataclasses.replace(ppo.PRESETS["tuned"], progress=False, **kw)


def speed(total: int, repeats: int = 2) -> dict[str, dict[int, float]]:
    """Total agent steps/s of PPO with SpikingJelly's settings (:data:`JELLY`), the ANN MLP and the SNN at T = 4
    and 16, at 1, 16 and 64 seeds in one jit on JAX's default devices (one per core on a CPU, see
    ``synjax.cpu_flags``): the best of ``repeats`` runs each, the runs of one row alternating; prints each
    network's 64 / 1 scaling (target >= 1.5x for the SNN)."""
    ann = {k: v for k, v in JELLY.items() if not k.startswith("snn_")} | {"network": "mlp"}
    rows = {"ANN mlp": ann, "SNN T=4": JELLY | {"snn_time_steps": 4}, "SNN T=16": JELLY | {"snn_time_steps": 16}}
    print(f"PPO, SpikingJelly's settings, {total:,} steps per seed, {jax.device_count()} {jax.default_backend()} "
          f"device(s), best of {repeats}; total agent steps/s", flush=True)  # fmt: skip
    out = {}
    for label, settings in rows.items():
        config = _config(total_timesteps=total, eval_every=10_000, **settings)
        rates: dict[int, float] = {}
        for _ in range(repeats):
            for seeds in (1, 16, 64):
                run = run_seeds(ppo.make_train(config), seeds)
                rates[seeds] = max(rates.get(seeds, 0.0), seeds * config.env_steps / run.wall_time_s)
        out[label] = rates
        scaling = rates[64] / rates[1]
        target = "" if label.startswith("ANN") else f" (target >= 1.5x: {'met' if scaling >= 1.5 else 'NOT met'})"
        print(f"{label:9s}  " + "  ".join(f"{s:2d} seeds {r:9,.0f}" for s, r in rates.items())
              + f"  64/1 x{scaling:.2f}{target}", flush=True)  # fmt: skip
    return out


#: SpikingJelly's spiking_ppo.py: 4 envs, rollouts of 128 steps, 30 epochs of minibatches of 256, Adam 1e-3,
#: GAE 0.99 / 0.95, clip 0.2, value weight 0.5, entropy 0.001, raw advantages; hidden 32 IF, T = 16, read-outs
#: non-spiking LIF with tau 2 (membrane decay 0.5). Both sides read these from one config.
JELLY = {"num_envs": 4, "num_steps": 128, "num_minibatches": 2, "update_epochs": 30, "lr": 1e-3, "anneal_lr": False,
         "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "anneal_clip": False, "ent_coef": 0.001,
         "vf_coef": 0.5, "norm_adv": False, "hidden": (32,), "network": "snn", "snn_neuron": "IF",
         "snn_time_steps": 16, "snn_decoder": "membrane", "snn_beta": 0.5}  # fmt: skip


def jelly_rate(config: ppo.PPOConfig, total: int) -> float:
    """Agent steps/s of SpikingJelly's spiking PPO with ``config``'s settings for ``total`` steps (rounded up to
    whole rollouts, updates included) on Gymnasium CartPole-v1, PyTorch on 1 CPU thread."""
    try:
        import torch
        from spikingjelly.activation_based import functional, layer, neuron
    except ImportError as e:
        raise SystemExit(f'jelly needs torch and spikingjelly ({e}): pip install -e ".[bench]"') from None
    import gymnasium as gym

    torch.set_num_threads(1)
    torch.manual_seed(0)

    class Readout(neuron.SimpleLIFNode):
        """Non-spiking LIF: its membrane is the output."""

        def single_step_forward(self, x):
            self.neuronal_charge(x)
            return self.v

    n, hidden, tau = config.num_envs, config.hidden[0], 1.0 / (1.0 - config.snn_beta)
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * n,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)  # fmt: skip
    obs_dim, actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    actor, critic = (torch.nn.Sequential(layer.Linear(obs_dim, hidden), neuron.IFNode(), layer.Linear(hidden, k),
                                         Readout(tau=tau, decay_input=True)) for k in (actions, 1))  # fmt: skip
    log_std = torch.nn.Parameter(torch.zeros(1, actions))
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters(), log_std], lr=config.lr)

    def policy(x):  # T steps, then the membranes back to rest; the example's Gaussian over the actions
        for _ in range(config.snn_time_steps):
            actor(x), critic(x)
        mu, value = actor[-1].v, critic[-1].v
        functional.reset_net(actor), functional.reset_net(critic)
        return torch.distributions.Normal(mu, log_std.exp().expand_as(mu)), value

    def tensor(a):
        return torch.as_tensor(a, dtype=torch.float32)

    obs, _ = envs.reset(seed=0)
    steps, t0 = 0, time.perf_counter()
    while steps < total:
        rollout = []
        with torch.no_grad():
            for _ in range(config.num_steps):
                x = tensor(obs)
                dist, value = policy(x)
                action = dist.sample()
                obs, reward, term, trunc, _ = envs.step(action.argmax(1).numpy())
                rollout.append((x, action, dist.log_prob(action), value, tensor(reward)[:, None],
                                tensor(1.0 - (term | trunc))[:, None]))  # fmt: skip
            states, acts, old_logp, values, rewards, masks = map(torch.stack, zip(*rollout))
            next_value, gae, adv = policy(tensor(obs))[1], 0.0, torch.zeros_like(values)
            for t in reversed(range(config.num_steps)):
                delta = rewards[t] + config.gamma * next_value * masks[t] - values[t]
                adv[t] = gae = delta + config.gamma * config.gae_lambda * masks[t] * gae
                next_value = values[t]
        batch = (states, acts, old_logp, adv, adv + values)
        states, acts, old_logp, adv, returns = (a.flatten(0, 1) for a in batch)
        for _ in range(config.update_epochs):
            for idx in torch.randperm(config.batch_size).chunk(config.num_minibatches):
                dist, value = policy(states[idx])
                ratio = (dist.log_prob(acts[idx]) - old_logp[idx]).exp()
                clipped = ratio.clamp(1.0 - config.clip_eps, 1.0 + config.clip_eps)
                loss = (-torch.min(ratio * adv[idx], clipped * adv[idx]).mean()
                        + config.vf_coef * (returns[idx] - value).pow(2).mean()
                        - config.ent_coef * dist.entropy().mean())  # fmt: skip
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        steps += config.batch_size
    return steps / (time.perf_counter() - t0)


def jelly(total: int, peer_total: int) -> None:
    """Agent steps/s of synjax's spiking PPO at 1 and 64 seeds against SpikingJelly's, same network, T = 16."""
    config = _config(total_timesteps=total, eval_every=10_000, **JELLY)
    base = jelly_rate(config, peer_total)
    print(f"SpikingJelly {version('spikingjelly')} spiking PPO (torch {version('torch')}, 1 thread, CPU; "
          f"{config.num_envs} envs x {config.num_steps} steps, {config.update_epochs} epochs x "
          f"{config.num_minibatches} minibatches, hidden {config.hidden} IF, T={config.snn_time_steps}, "
          f"{peer_total:,} steps)  {base:10,.0f} agent steps/s", flush=True)  # fmt: skip
    ratios = {}
    for seeds, target in ((1, 20), (64, 100)):
        run = run_seeds(ppo.make_train(config), seeds)
        rate = seeds * config.env_steps / run.wall_time_s
        ratios[seeds] = (rate / base, target)
        print(f"synjax seeds {seeds:3d}  SNN IF T={config.snn_time_steps} ({jax.default_backend()}, "
              f"{config.env_steps:,} steps per seed)  {rate:10,.0f} agent steps/s  x{rate / base:.1f} of "
              f"SpikingJelly (target >= {target}x; compile {run.compile_time_s:.1f}s)", flush=True)  # fmt: skip
    print("targets: " + "; ".join(f"{s} seed{'s' * (s > 1)} x{r:.1f} >= {t}x: {'met' if r >= t else 'NOT met'}"
                                  for s, (r, t) in ratios.items()))  # fmt: skip


#: (experiment, preset, changes) rows of each target table, and the return a seed must reach
TABLES = {
    "cartpole": ([("ppo", "tuned", {"network": "mlp", "total_timesteps": 200_000}),
                  ("ppo", "tuned", {"network": "snn", "snn_time_steps": 8, "total_timesteps": 200_000})], 475),
    "pqn": ([("pqn", "tuned", {}), ("pqn", "snn", {})], 475),
    "carried": ([("ppo", "snn-carried", {})], 475),
    "memory": ([("ppo", "masked-mlp", {}), ("ppo", "masked-snn", {})], 450),
    "minatar": ([("pqn", "minatar", {}), ("pqn", "minatar-snn", {}), ("ppo", "minatar", {}),
                 ("ppo", "minatar-snn", {})], 0),
}  # fmt: skip


def table(name: str, num_seeds: int, total: int, env: str = "") -> None:
    """Train each row of :data:`TABLES` ``name`` (``num_seeds`` seeds in one jit; ``total`` > 0 replaces the
    budget) and print its final deterministic returns, its energy per decision and its speed, side by side."""
    import importlib

    rows, good = TABLES[name]
    twins: dict[str, float] = {}  # the ANN row's median per algorithm, for its spiking twin's ratio
    for experiment, preset, changes in rows:
        module = importlib.import_module(f"synjax.agents.{experiment}")
        config = dataclasses.replace(module.PRESETS[preset], progress=False, num_seeds=num_seeds, **changes)
        if total:
            config = dataclasses.replace(config, total_timesteps=total)
        if env:
            config = dataclasses.replace(config, env=env)
        run = run_seeds(module.make_train(config), num_seeds)
        final = run.output.final
        ret = np.asarray(final["eval_return"])

        label = f"{experiment} --preset {preset} " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changes.items())
        print(f"{label}: {config.env}, {num_seeds} seeds x {config.env_steps:,} steps: median final return "
              f"{np.median(ret):.1f}, mean {ret.mean():.1f}, {int((ret >= good).sum())}/{num_seeds} seeds >= {good}; "
              f"{num_seeds * config.env_steps / run.wall_time_s:,.0f} agent steps/s (train {run.wall_time_s:.0f}s, "
              f"compile {run.compile_time_s:.0f}s)")  # fmt: skip
        print(f"  per seed: {np.round(ret, 1).tolist()}")
        if "synops" in final:
            print(f"  energy per decision: synops median {np.median(final['synops']):,.0f}, ANN twin MACs "
                  f"{float(np.asarray(final['ann_macs'])[0]):,.0f}; firing rates "
                  + ", ".join(f"layer {k[-1]} {np.median(v):.3f}" for k, v in final.items()
                              if k.startswith("firing_rate")))  # fmt: skip
        twin = twins.get(experiment)
        if "synops" not in final:
            twins[experiment] = float(np.median(ret))
        elif twin:
            print(f"  spiking / ANN twin median final return: {np.median(ret) / twin:.2f} (target >= 0.80)")


def atari_firing(thresholds=(1.0, 0.5, 0.25), time_steps=(5, 8)) -> None:
    """Firing rate per layer of the host loop's spiking Nature CNN at initialization (seed 0), on 164 Breakout
    frames of random play (4 envs, steps 20-60), for each threshold and T: which settings let every layer fire."""
    from flax import nnx

    from synjax.host import envs
    from synjax.host.config import HostConfig
    from synjax.host.loop import make_network

    env = envs.AtariEnv(envs.AtariSettings(game="breakout"), 4)
    frames, rng = [env.reset(0)], np.random.default_rng(0)
    for _ in range(60):
        frames.append(env.step(rng.integers(0, env.action_dim, 4)).obs)
    obs = np.concatenate(frames[20:]).reshape(len(frames[20:]) * 4, -1)
    for threshold in thresholds:
        for t in time_steps:
            config = HostConfig(network="snn", snn_time_steps=t, snn_threshold=threshold, progress=False)
            e = make_network(config, env, nnx.Rngs(params=jax.random.key(0))).energy(obs, ())
            rates = ", ".join(f"{float(v):.3f}" for k, v in e.items() if k.startswith("firing_rate"))
            print(f"--snn-threshold {threshold} --snn-time-steps {t}: firing rate per layer {rates}; synops "
                  f"{float(e['synops']):,.0f} vs ANN MACs {float(e['ann_macs']):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "jelly", "atari-firing", *TABLES))
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--total-timesteps", type=int, default=0,
                        help="0: 10,240 for speed, 20,480 for jelly (per seed), each preset's own budget for the tables")  # fmt: skip
    parser.add_argument("--peer-timesteps", type=int, default=8_192, help="SpikingJelly's budget in jelly")
    parser.add_argument("--env", default="", help="another environment for the table's presets (MinAtar games)")
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.total_timesteps or 10_240)
    elif args.what == "jelly":
        jelly(args.total_timesteps or 20_480, args.peer_timesteps)
    elif args.what == "atari-firing":
        atari_firing()
    else:
        table(args.what, args.num_seeds, args.total_timesteps, args.env)


if __name__ == "__main__":
    main()
