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

from synjax.classify import datasets
from synjax.classify.model import ENCODINGS, LOSSES, NEURONS, OUTPUTS, READOUTS, SPIKING_ONLY, SURROGATES
from synjax.experiment import RunConfig, TrainOutput, require, run_experiment

EXPERIMENT = "snn-classify"


def parse_classes(classes: str, num_classes: int = 10) -> tuple[int, ...]:
    """``"0,1"`` -> (0, 1); ``"all"`` -> (0, ..., num_classes - 1). Raises ValueError on bad text."""
    text = classes.strip().lower()
    if text == "all":
        return tuple(range(num_classes))
    return tuple(int(part) for part in text.split(","))


@dataclasses.dataclass(frozen=True)
class ClassifyConfig(RunConfig):
    """Spiking classifier.

    Attributes:
      dataset: ``digits`` (scikit-learn 8x8, offline), ``mnist`` or ``fashion-mnist`` (IDX files).
      classes: comma-separated labels to keep (``0,1``), or ``all``.
      data_dir: folder holding the IDX files; empty: the cache folder ($SYNJAX_DATA or ~/.cache/synjax/<dataset>),
        then /usr/share/datasets/<dataset>.
      download: download MNIST (checksum-verified) into the cache when its files are absent.
      hidden: hidden layer sizes.
      neuron: hidden neuron, a spyx.nn class (LIF, IF, ALIF, CuBaLIF, RLIF, RIF, RCuBaLIF).
      output: output neuron: one of those or LI (non-spiking leaky integrator).
      beta: membrane decay per time step, in [0, 1].
      alpha: synaptic current decay of CuBaLIF / RCuBaLIF, in [0, 1].
      gamma: threshold adaptation decay of ALIF, in [0, 1].
      threshold: firing threshold (> 0).
      train_decay: also train beta/alpha/gamma (the original kept beta fixed).
      surrogate: surrogate gradient (arctan, superspike, tanh, triangular, boxcar, ste).
      surrogate_k: its sharpness (boxcar: width); 0 uses synjax.classify.model.SURROGATE_DEFAULT_K.
      time_steps: simulation steps per image.
      encoding: direct (constant current, the original), rate (Poisson) or latency (one spike per pixel).
      loss: membrane_ce (the original), count_ce, rate_mse or max_membrane_ce.
      readout: prediction rule: spike_count (the original), membrane_sum or membrane_max.
      batch_size: training minibatch size.
      epochs: passes over the training set.
      lr: Adam learning rate.
      eval_batch_size: chunk size of validation/test evaluation (memory; with the rate encoding each chunk draws
        its own input spikes, so rate-coded evaluation numbers depend on it too).
    """

    dataset: str = "digits"
    classes: str = "0,1"
    data_dir: str = ""
    download: bool = True
    hidden: tuple[int, ...] = (1000,)
    neuron: str = "LIF"
    output: str = "LIF"
    beta: float = 0.95
    alpha: float = 0.9
    gamma: float = 0.9
    threshold: float = 1.0
    train_decay: bool = False
    surrogate: str = "arctan"
    surrogate_k: float = 0.0
    time_steps: int = 25
    encoding: str = "direct"
    loss: str = "membrane_ce"
    readout: str = "spike_count"
    batch_size: int = 128
    epochs: int = 10
    lr: float = 5e-4
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.dataset in datasets.DATASETS,
            "dataset",
            self.dataset,
            f"one of {', '.join(datasets.DATASETS)}",
        )
        size = datasets.DATASETS[self.dataset]
        allowed = f"'all' or at least 2 distinct comma-separated labels in 0..{size - 1} ({self.dataset})"
        try:
            labels = parse_classes(self.classes, size)
        except ValueError:
            labels = ()
        ok = len(labels) >= 2 and len(set(labels)) == len(labels) and all(0 <= c < size for c in labels)
        require(ok, "classes", self.classes, allowed)
        require(
            not self.data_dir or Path(self.data_dir).is_dir(),
            "data_dir",
            self.data_dir,
            "an existing folder or ''",
        )
        require(
            len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
            "hidden",
            self.hidden,
            "one or more layer sizes, each >= 1",
        )
        require(self.neuron in NEURONS, "neuron", self.neuron, f"one of {', '.join(NEURONS)}")
        require(self.output in OUTPUTS, "output", self.output, f"one of {', '.join(OUTPUTS)}")
        for name in ("beta", "alpha", "gamma"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, value, "a decay in [0, 1]")
        require(self.threshold > 0, "threshold", self.threshold, "a number > 0")
        require(self.surrogate in SURROGATES, "surrogate", self.surrogate, f"one of {', '.join(SURROGATES)}")
        require(self.surrogate_k >= 0, "surrogate_k", self.surrogate_k, "a number >= 0 (0: the default)")
        require(self.time_steps >= 1, "time_steps", self.time_steps, "an integer >= 1")
        require(self.encoding in ENCODINGS, "encoding", self.encoding, f"one of {', '.join(ENCODINGS)}")
        require(self.loss in LOSSES, "loss", self.loss, f"one of {', '.join(LOSSES)}")
        require(self.readout in READOUTS, "readout", self.readout, f"one of {', '.join(READOUTS)}")
        if self.output == "LI":
            spiking = [v for v in (self.loss, self.readout) if v in SPIKING_ONLY]
            require(
                not spiking,
                "output",
                self.output,
                f"a spiking neuron when loss/readout is {', '.join(spiking)} (LI emits no spikes)",
            )
        require(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        require(self.epochs >= 1, "epochs", self.epochs, "an integer >= 1")
        require(self.lr > 0, "lr", self.lr, "a number > 0")
        require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "an integer >= 1")

    @property
    def class_list(self) -> tuple[int, ...]:
        """The kept labels as integers."""
        return parse_classes(self.classes, datasets.DATASETS[self.dataset])


# ------------------------------------------------------------------------------------------------- pictures


def write_pictures(stage: Path, outputs: TrainOutput, data: datasets.Dataset, config: ClassifyConfig) -> None:
    """learning.png (per-epoch accuracy and loss), confusion.npy (S, C, C), confusion.png (summed over seeds),
    raster.png and raster.npz (seed 0, test image 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synjax.plots import mean_ci95

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
    from synjax.classify.train import load_data, make_train

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
        make_train(config, data),
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
    from synjax import results
    from synjax.classify.train import restore_model

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
}
