"""The IDX reader, the MNIST/Fashion-MNIST file finder and downloader, and the fixed splits (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from synjax.classify import datasets
from synjax.classify.datasets import DataNotFoundError, IDXError, parse_idx, read_idx, read_idx_pair

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    """Encode ``array`` as an IDX file (big-endian)."""
    codes = {
        np.uint8: 0x08,
        np.int8: 0x09,
        np.int16: 0x0B,
        np.int32: 0x0C,
        np.float32: 0x0D,
        np.float64: 0x0E,
    }
    code = codes[array.dtype.type] if code is None else code
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist_like(folder: Path, n_train: int = 200, n_test: int = 50, gz: bool = True, seed: int = 0):
    """Four IDX files of 28x28 images whose class c lights up row block c: separable, like MNIST in format."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 3 : 2 * c + 6, 4:24] = 255
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(arr)
            name = f"{part}-{kind}-ubyte" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(raw) if gz else raw)
        out[part] = (images, labels)
    return out


# ------------------------------------------------------------------------------------------------ read_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    raw = idx_bytes(array)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = read_idx(path)
    assert got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)


def test_wrong_magic_number(tmp_path):
    raw = bytearray(idx_bytes(np.zeros((3, 2), np.uint8)))
    raw[0] = 1
    with pytest.raises(IDXError, match="wrong IDX magic number 0x01000802"):
        parse_idx(bytes(raw), "x")
    raw = idx_bytes(np.zeros((3,), np.uint8), code=0x07)  # unknown dtype code
    with pytest.raises(IDXError, match="magic number"):
        parse_idx(raw, "x")
    with pytest.raises(IDXError, match="shorter than the 4-byte magic"):
        parse_idx(b"\x00\x00", "x")


def test_truncated_and_oversized_files(tmp_path):
    raw = idx_bytes(np.ones((4, 5, 5), np.uint8))
    with pytest.raises(
        IDXError, match=r"truncated IDX data: dimensions \(4, 5, 5\) need 100 bytes, file has 99"
    ):
        parse_idx(raw[:-1], "x")
    with pytest.raises(IDXError, match="truncated IDX header"):
        parse_idx(raw[:9], "x")
    with pytest.raises(IDXError, match="3 unexpected bytes"):
        parse_idx(raw + b"abc", "x")


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match=r"truncated\.gz: corrupt or truncated gzip"):
        read_idx(truncated)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF  # CRC32 of the payload
    bad_crc = tmp_path / "crc.gz"
    bad_crc.write_bytes(bytes(flipped))
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        read_idx(bad_crc)


def test_pair_checks(tmp_path):
    images, labels = tmp_path / "i", tmp_path / "l"
    images.write_bytes(idx_bytes(np.zeros((5, 4, 4), np.uint8)))
    labels.write_bytes(idx_bytes(np.zeros((4,), np.uint8)))
    with pytest.raises(IDXError, match="holds 4 labels but .* holds 5 images"):
        read_idx_pair(images, labels)
    labels.write_bytes(idx_bytes(np.array([0, 1, 2, 3, 12], np.uint8)))
    with pytest.raises(IDXError, match="label 12 outside 0..9"):
        read_idx_pair(images, labels)
    labels.write_bytes(idx_bytes(np.zeros((5, 1), np.uint8)))
    with pytest.raises(IDXError, match=r"expected uint8 labels of shape \(N,\)"):
        read_idx_pair(images, labels)
    images.write_bytes(idx_bytes(np.zeros((5, 16), np.uint8)))
    with pytest.raises(IDXError, match=r"expected uint8 images of shape \(N, H, W\)"):
        read_idx_pair(images, labels)


# ----------------------------------------------------------------------------------- finding and downloading


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any download attempt fails as offline; the cache is an empty temporary folder."""
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("SYNJAX_DATA", str(tmp_path / "cache"))
    return calls


def test_mnist_from_data_dir(tmp_path, no_network):
    made = write_mnist_like(tmp_path / "mnist", gz=False)
    data = datasets.load("mnist", (3, 7), tmp_path / "mnist")
    assert no_network == []
    assert data.image_shape == (28, 28) and data.num_features == 784 and data.class_names == ("3", "7")
    _, train_labels = made["train"]
    # split: 10% of the 200 official training images are validation, whatever the classes
    assert len(data.train) + len(data.val) == int(np.isin(train_labels, (3, 7)).sum())
    assert len(data.test) == int(np.isin(made["t10k"][1], (3, 7)).sum())
    assert set(np.unique(data.train.y)) == {0, 1}
    assert data.train.x.dtype == np.float32 and data.train.x.min() == -1.0 and data.train.x.max() == 1.0
    # labels renumbered in the order given: images of 3 (label 0) light up rows 9..11
    first3 = data.train.x[data.train.y == 0][0].reshape(28, 28)
    assert (first3[9:12, 4:24] == 1.0).all()
    full = datasets.load("mnist", tuple(range(10)), tmp_path / "mnist")
    assert len(full.train) == 180 and len(full.val) == 20 and len(full.test) == 50
    assert datasets.load("mnist", (3, 7), tmp_path / "mnist").train.x.tobytes() == data.train.x.tobytes()


def test_mnist_cache_folder_is_used(tmp_path, no_network, monkeypatch):
    write_mnist_like(tmp_path / "cache" / "mnist", gz=True)
    data = datasets.load("mnist", (0, 1))
    assert no_network == [] and len(data.test) == 10


def test_missing_files_in_data_dir_say_where_to_put_them(tmp_path, no_network):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError) as e:
        datasets.load("mnist", (0, 1), tmp_path / "empty")
    message = str(e.value)
    assert str(tmp_path / "empty") in message and "train-images-idx3-ubyte[.gz]" in message
    assert "--data-dir" in message
    assert no_network == []  # an explicit --data-dir is never replaced by a download


def test_offline_download_error(tmp_path, no_network):
    with pytest.raises(DataNotFoundError) as e:
        datasets.find_idx_files("mnist")
    message = str(e.value)
    assert "Download failed (offline?)" in message and "network is unreachable" in message
    assert str(tmp_path / "cache" / "mnist") in message
    assert len(no_network) == len(datasets.MNIST_MIRRORS)  # every mirror tried for the first file
    with pytest.raises(DataNotFoundError, match="not found"):
        datasets.find_idx_files("mnist", download=False)
    assert len(no_network) == len(datasets.MNIST_MIRRORS)


def _serve(files: dict[str, bytes], monkeypatch):
    """Make urlopen return ``files[name]`` for any URL ending in ``name``."""
    served = []

    def fake_urlopen(url, timeout=None):
        served.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[-1]])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return served


def test_download_verifies_checksums(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNJAX_DATA", str(tmp_path / "cache"))
    src = tmp_path / "src"
    write_mnist_like(src, gz=True)
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    # the real MNIST checksums do not match these files: every mirror is refused, nothing is kept
    _serve(files, monkeypatch)
    with pytest.raises(
        DataNotFoundError, match="MD5 [0-9a-f]{32} != expected f68b3c2dcbeaaa9fbdd348bbdeb94873"
    ):
        datasets.find_idx_files("mnist")
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []
    # with checksums that match, the files land in the cache and load
    monkeypatch.setattr(datasets, "MNIST_MD5", {n: hashlib.md5(b).hexdigest() for n, b in files.items()})
    served = _serve(files, monkeypatch)
    data = datasets.load("mnist", (0, 1))
    assert len(served) == 4 and served[0].startswith(datasets.MNIST_MIRRORS[0])
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(files)
    assert len(data.test) == 10
    served.clear()
    datasets.load("mnist", (0, 1))
    assert served == []  # cached now


def test_fashion_is_never_downloaded(tmp_path, no_network, monkeypatch):
    monkeypatch.setattr(
        datasets, "SYSTEM_DIRS", {**datasets.SYSTEM_DIRS, "fashion-mnist": (str(tmp_path / "x"),)}
    )
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load("fashion-mnist", (0, 1))
    assert no_network == []


def test_bad_dataset_and_classes():
    with pytest.raises(ValueError, match="dataset='cifar' is invalid"):
        datasets.load("cifar", (0, 1))
    with pytest.raises(ValueError, match="classes=.* is invalid"):
        datasets.load("digits", (0, 10))


# ------------------------------------------------------------------------------------------ real data sets


def test_digits_fixed_stratified_split():
    data = datasets.load("digits", tuple(range(10)))
    assert data.image_shape == (8, 8) and data.num_features == 64
    assert (len(data.train), len(data.val), len(data.test)) == (1078, 269, 450)
    for part in (data.train, data.val, data.test):
        assert part.x.min() >= -1.0 and part.x.max() <= 1.0
    per_class = sum(np.bincount(p.y, minlength=10) for p in (data.train, data.val, data.test))
    assert per_class.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # all 1,797 images
    # stratified: 25% of each class in test, 15% in validation
    assert np.bincount(data.test.y).tolist() == [round(0.25 * n) for n in per_class]
    assert np.bincount(data.val.y).tolist() == [round(0.15 * n) for n in per_class]
    again = datasets.load("digits", tuple(range(10)))
    np.testing.assert_array_equal(again.test.x, data.test.x)
    parts = datasets._stratified_split(np.repeat(np.arange(10), 180), test_fraction=0.25, val_fraction=0.15)
    everything = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(everything), np.arange(1800))  # disjoint and complete
    # the 0-vs-1 subset is exactly the 0 and 1 images of the full split
    pair = datasets.load("digits", (1, 0))
    np.testing.assert_array_equal(pair.test.x, data.test.x[np.isin(data.test.y, (0, 1))])
    np.testing.assert_array_equal(pair.test.y, 1 - data.test.y[np.isin(data.test.y, (0, 1))])


@pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST IDX files absent: `apt-get install dataset-fashion-mnist` installs them",
)
def test_fashion_mnist_real_files(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNJAX_DATA", str(tmp_path))  # empty cache: the Debian folder is found
    data = datasets.load("fashion-mnist", tuple(range(10)), download=False)
    assert data.image_shape == (28, 28)
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    assert np.bincount(data.test.y).tolist() == [1000] * 10
    assert data.class_names[:2] == ("T-shirt/top", "Trouser")
    assert data.train.x.min() == -1.0 and data.train.x.max() == 1.0
