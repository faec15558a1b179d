"""Training and inference speed of the ``notebook`` spiking classifier: synjax (spyx, JAX) versus snntorch.

Both run the original network: 784 -> Linear -> 1000 LIF (beta 0.95, threshold 1, subtractive reset, arctan
surrogate) -> Linear -> 2 LIF, 25 time steps with the image as a constant input current, loss = cross-entropy of the
output membrane summed over the steps, Adam 5e-4, batch 128, on the same random images in [-1, 1]. Timings are
the median of ``--repeats`` runs of ``--batches`` minibatches each (after a warm-up that also compiles the JAX
code); synjax and snntorch runs alternate so that a busy machine slows both alike.

snntorch is measured twice: as the original notebook wrote it (``fc1`` applied to the image at every time step)
and with ``fc1`` hoisted out of the time loop (the same trick synjax's direct encoding uses), so the table shows
how much of the speed-up is that trick and how much is XLA.

    python scripts/bench_snn.py [--batches 10] [--repeats 3] [--threads 1,2] [--torch-device cpu] [--out bench.json]

Needs the optional benchmark dependencies ``torch`` (CPU, or CUDA with ``--torch-device cuda``) and ``snntorch``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

BATCH, STEPS, IN, HIDDEN, OUT = 128, 25, 784, 1000, 2


def synjax_runners(xs: np.ndarray, ys: np.ndarray):
    """Jitted synjax train / inference over all batches: returns (train(), infer()) that block until done."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from synjax.classify.experiment import PRESETS
    from synjax.classify.model import predict
    from synjax.classify.train import build_model, make_forward, make_loss, param_filter

    config = PRESETS["notebook"]
    model = build_model(config, IN, OUT, jax.random.key(0))
    graphdef, params, frozen = nnx.split(model, param_filter(config), ...)
    forward = make_forward(config, graphdef, frozen)
    grad_fn = jax.value_and_grad(make_loss(config, forward), has_aux=True)
    optimizer = optax.adam(config.lr)
    xs_d, ys_d = jnp.asarray(xs), jnp.asarray(ys)
    mask = jnp.ones((BATCH,), bool)
    key = jax.random.key(1)

    @jax.jit
    def train_all(params, opt_state):
        def step(carry, batch):
            params, opt_state = carry
            x, y = batch
            (loss, _), grads = grad_fn(params, x, y, mask, key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        return jax.lax.scan(step, (params, opt_state), (xs_d, ys_d))

    @jax.jit
    def infer_all(params):
        def step(_, x):
            spikes, membrane, _ = forward(params, x, key)
            return None, predict(config.readout, spikes, membrane)

        return jax.lax.scan(step, None, xs_d)[1]

    opt_state = optimizer.init(params)

    def train():
        jax.block_until_ready(train_all(params, opt_state))

    def infer():
        jax.block_until_ready(infer_all(params))

    return train, infer


def snntorch_runners(xs: np.ndarray, ys: np.ndarray, hoist: bool, device: str = "cpu"):
    """snntorch train / inference over all batches, the notebook's network and loop, on torch ``device``."""
    import snntorch as snn
    import torch
    from snntorch import surrogate
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            grad = surrogate.atan()
            self.fc1 = nn.Linear(IN, HIDDEN)
            self.lif1 = snn.Leaky(beta=0.95, spike_grad=grad)
            self.fc2 = nn.Linear(HIDDEN, OUT)
            self.lif2 = snn.Leaky(beta=0.95, spike_grad=grad)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spk_rec, mem_rec = [], []
            cur1_once = self.fc1(x) if hoist else None
            for _ in range(STEPS):
                cur1 = cur1_once if hoist else self.fc1(x)
                spk1, mem1 = self.lif1(cur1, mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spk_rec.append(spk2)
                mem_rec.append(mem2)
            return torch.stack(spk_rec), torch.stack(mem_rec)

    torch.manual_seed(0)
    net = Net().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999))
    loss_fn = nn.CrossEntropyLoss()
    xs_t, ys_t = torch.from_numpy(xs).to(device), torch.from_numpy(ys).long().to(device)

    def wait():  # CUDA kernels run asynchronously: a timed run ends when they are done
        if device != "cpu":
            torch.cuda.synchronize()

    def train():
        net.train()
        for x, y in zip(xs_t, ys_t):
            _, mem = net(x)
            loss = torch.zeros((), dtype=torch.float32, device=device)
            for t in range(STEPS):
                loss = loss + loss_fn(mem[t], y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        wait()

    def infer():
        net.eval()
        with torch.no_grad():
            for x in xs_t:
                spk, _ = net(x)
                spk.sum(0).argmax(1)
        wait()

    return train, infer


def timed(fn, repeats_out: list[float]) -> None:
    """Run ``fn`` once and append its wall time in seconds."""
    t0 = time.perf_counter()
    fn()
    repeats_out.append(time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=10, help="minibatches per timed run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per system (median reported)")
    ap.add_argument(
        "--threads",
        default="1,2",
        help="comma-separated torch thread counts to try; the ratio uses the fastest",
    )
    ap.add_argument("--no-hoisted", action="store_true", help="skip the hoisted snntorch variant")
    ap.add_argument("--torch-device", default="cpu", help="torch device of snntorch (cpu, cuda)")
    ap.add_argument("--out", default="", help="also write the numbers to this JSON file")
    args = ap.parse_args()
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        threads = []
    if args.batches < 1 or args.repeats < 1:
        ap.error("--batches and --repeats must be >= 1")
    if not threads or min(threads) < 1:
        ap.error(f"--threads {args.threads!r}: give comma-separated integers >= 1")

    import torch

    if args.torch_device != "cpu" and not torch.cuda.is_available():
        ap.error(f"--torch-device {args.torch_device!r}: this torch sees no CUDA device; allowed: cpu")

    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, (args.batches, BATCH, IN)).astype(np.float32)
    ys = rng.integers(0, OUT, (args.batches, BATCH)).astype(np.int32)

    # name -> (torch threads or None, train, infer)
    systems = {"synjax": (None, *synjax_runners(xs, ys))}
    on_cpu = args.torch_device == "cpu"
    for n in threads if on_cpu else threads[:1]:
        where = f"{n} thread(s)" if on_cpu else args.torch_device
        systems[f"snntorch, {where}"] = (n, *snntorch_runners(xs, ys, False, args.torch_device))
        if not args.no_hoisted:
            systems[f"snntorch fc1 hoisted, {where}"] = (
                n,
                *snntorch_runners(xs, ys, True, args.torch_device),
            )
    times: dict[str, dict[str, list[float]]] = {name: {"train": [], "infer": []} for name in systems}
    for n, train, infer in systems.values():  # warm-up: JAX compilation, torch allocator
        if n:
            torch.set_num_threads(n)
        train()
        infer()
    for _ in range(args.repeats):
        for name, (n, train, infer) in systems.items():
            if n:
                torch.set_num_threads(n)
            timed(train, times[name]["train"])
            timed(infer, times[name]["infer"])

    samples = args.batches * BATCH
    rows = {
        name: {kind: samples / statistics.median(ts) for kind, ts in kinds.items()}
        for name, kinds in times.items()
    }
    print(
        f"notebook SNN 784-1000-2 LIF, batch {BATCH}, {STEPS} steps, {samples} samples per run, "
        f"median of {args.repeats} runs"
    )
    print(f"{'system':<34} {'train samples/s':>16} {'infer samples/s':>16}")
    for name, r in rows.items():
        print(f"{name:<34} {r['train']:>16.0f} {r['infer']:>16.0f}")
    ratios = {}
    for label, prefix in (("snntorch", "snntorch, "), ("snntorch fc1 hoisted", "snntorch fc1 hoisted, ")):
        peers = {name: r for name, r in rows.items() if name.startswith(prefix)}
        if not peers:
            continue
        best = {kind: max(r[kind] for r in peers.values()) for kind in ("train", "infer")}
        ratios[f"synjax / best {label}"] = {kind: rows["synjax"][kind] / best[kind] for kind in best}
    for name, r in ratios.items():
        print(f"ratio {name}: train {r['train']:.2f}x, infer {r['infer']:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"samples_per_s": rows, "ratios": ratios, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
