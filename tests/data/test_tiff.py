"""Reading single-channel microscopy TIFFs: accepted types and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from replearn.data.tiff import read_channel
from replearn.errors import ReplearnError


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_reads_8_and_16_bit(tmp_path, dtype):
    image = (np.arange(64 * 80) % 251).astype(dtype).reshape(64, 80)
    tifffile.imwrite(tmp_path / "a.tif", image)
    out = read_channel(tmp_path / "a.tif", "membrane")
    assert out.dtype == dtype and np.array_equal(out, image)


def test_singleton_axis_is_squeezed(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((1, 40, 50), dtype=np.uint16))
    assert read_channel(tmp_path / "a.tif").shape == (40, 50)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: tifffile.imwrite(p, np.zeros((40, 50, 3), np.uint8), photometric="rgb"), "RGB or multi-channel"),
        (lambda p: tifffile.imwrite(p, np.zeros((3, 40, 50), np.uint16), photometric="minisblack"), "3 pages"),
        (
            lambda p: tifffile.imwrite(p, np.zeros((3, 40, 50), np.uint16), photometric="rgb", planarconfig="separate"),
            "3 sample",
        ),
        (lambda p: tifffile.imwrite(p, np.zeros((40, 50), np.float32)), "pixel type float32"),
        (lambda p: tifffile.imwrite(p, np.zeros((8, 8), np.uint8)), "too small"),
        (lambda p: p.write_bytes(b"not a tiff at all"), "not a readable TIFF"),
    ],
)
def test_refusals_are_one_line(tmp_path, make, message):
    path = tmp_path / "bad.tif"
    make(path)
    with pytest.raises(ReplearnError, match=message) as info:
        read_channel(path, "phase")
    text = str(info.value)
    assert "\n" not in text and "phase image" in text and "bad.tif" in text


def test_missing_file(tmp_path):
    with pytest.raises(ReplearnError, match="dna image .*nope.tif: file not found"):
        read_channel(tmp_path / "nope.tif", "dna")
