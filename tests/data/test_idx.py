"""IDX reader: the real MNIST / Fashion-MNIST files, raw and gzip, and damaged headers."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from replearn.data import parse_idx, read_idx
from replearn.errors import ReplearnError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def idx_bytes(arr: np.ndarray, type_code: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    """Encode a uint8 array as IDX; ``dims`` overrides the header's sizes."""
    dims = arr.shape if dims is None else dims
    header = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def mnist_train(shared_datasets):
    images = read_idx(shared_datasets / "mnist" / "train-images-idx3-ubyte.gz", expect_ndim=3)
    labels = read_idx(shared_datasets / "mnist" / "train-labels-idx1-ubyte.gz", expect_ndim=1)
    return images, labels


def test_mnist_train_from_gz(mnist_train):
    images, labels = mnist_train
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS
    # The normalisation constant every MNIST tutorial uses: mean 0.1307 in [0, 1].
    assert images.mean() / 255 == pytest.approx(0.1307, abs=5e-4)
    assert images.min() == 0 and images.max() == 255
    assert images.flags.writeable


def test_mnist_test_split(shared_datasets):
    images = read_idx(shared_datasets / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_fashion_train_and_test(shared_datasets):
    folder = shared_datasets / "fashion-mnist"
    train_labels = read_idx(folder / "train-labels-idx1-ubyte.gz", expect_ndim=1)
    test_images = read_idx(folder / "t10k-images-idx3-ubyte.gz", expect_ndim=3)
    test_labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", expect_ndim=1)
    assert train_labels.shape == (60000,)
    assert train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert test_images.shape == (10000, 28, 28)
    assert test_labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert test_images.mean() / 255 == pytest.approx(0.2868, abs=1e-3)


def test_raw_file_matches_gz(shared_datasets, tmp_path):
    gz = shared_datasets / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = tmp_path / "t10k-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress(gz.read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), read_idx(gz))
    # Compression is recognised from the content, not the name.
    misnamed = tmp_path / "raw-but-named.gz"
    misnamed.write_bytes(raw.read_bytes())
    assert read_idx(misnamed).shape == (10000, 28, 28)


def test_parse_small_array_keeps_order():
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(arr))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\x12\x34\x08\x03" + bytes(12), "not an IDX file"),  # bad magic: must start with two zero bytes
        (bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + bytes(4), "0x0D (float32) is not supported"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (bytes([0, 0, 8]), "truncated IDX header"),
        (bytes([0, 0, 8, 3]) + struct.pack(">I", 2), "truncated IDX header"),
        (idx_bytes(np.zeros((3, 4, 4)), dims=(4, 4, 4)), "truncated IDX file"),  # header claims more images
        (idx_bytes(np.zeros((3, 4, 4)), dims=(2, 4, 4)), "longer than its header declares"),
        (idx_bytes(np.zeros((3, 4, 4)), dims=(3, 4, 5)), "truncated IDX file"),  # wrong image size
    ],
)
def test_damaged_headers_name_file_and_problem(tmp_path, data, needle):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(ReplearnError, match="broken-idx3-ubyte") as info:
        read_idx(path)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_real_file_raw_and_gz(shared_datasets, tmp_path):
    raw = gzip.decompress((shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    cut = tmp_path / "t10k-labels-idx1-ubyte"
    cut.write_bytes(raw[:-10])
    with pytest.raises(ReplearnError, match=r"truncated IDX file: header declares shape \(10000,\)"):
        read_idx(cut)
    cut_gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    cut_gz.write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(ReplearnError, match="t10k-labels-idx1-ubyte.gz: corrupted or truncated gzip"):
        read_idx(cut_gz)


def test_swapped_files_caught_by_expected_rank(shared_datasets):
    path = shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(ReplearnError, match=r"magic number 2049 declares 1-D data where 3-D was expected \(magic 2051\)"):
        read_idx(path, expect_ndim=3)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ReplearnError, match="nope-idx1-ubyte: IDX file not found"):
        read_idx(tmp_path / "nope-idx1-ubyte")
    with pytest.raises(ReplearnError, match="is not a file"):
        read_idx(tmp_path)
