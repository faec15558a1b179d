"""The spiking classifier's config: :class:`ClassifyConfig`, every field checked when it is made."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from synjax.checks import require
from synjax.classify import datasets
from synjax.classify.model import ENCODINGS, LOSSES, READOUTS, SPIKING_ONLY
from synjax.experiment import RunConfig
from synjax.snn.spyx_neurons import KINDS, NEURONS, SURROGATES


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
      surrogate_k: its sharpness (boxcar: width); 0 uses synjax.snn.spyx_neurons.SURROGATE_DEFAULT_K.
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
        require(self.output in KINDS, "output", self.output, f"one of {', '.join(KINDS)}")
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
