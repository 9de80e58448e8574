"""Property-based tests of the readers: any input either loads or raises ReplearnError, never anything else.

Covered: the assignment's ``.npz`` (``load_assignment``, ``marked_synthetic``), the image reader of
embed/predict (``read_images``: npz, npy, IDX, TIFF, PNG), the IDX reader, the TIFF reader of the crops
workflow, the TOML config reader and the model sidecar reader. Inputs are random bytes, valid files
with bytes changed or cut, and well-formed files holding the wrong things (shapes, dtypes, keys,
declared sizes). Every property runs 40-80 examples, the file well under 30 s on one thread.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib import format as npy_format

from replearn.config import load_toml, resolve
from replearn.data import load_assignment, marked_synthetic, parse_idx, read_idx
from replearn.data.tiff import read_channel
from replearn.errors import ReplearnError
from replearn.models import read_sidecar
from replearn.workflows._images import read_images

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

_DIR = Path(tempfile.mkdtemp(prefix="replearn-fuzz-"))


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


def _write(name: str, data: bytes) -> Path:
    path = _DIR / name
    path.write_bytes(data)
    return path


def loads_or_refuses(fn, *args, **kwargs):
    """Call ``fn``; a ReplearnError (one line) is fine, any other exception fails the property."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataWarnings (blank crops...) are legal answers
        try:
            return fn(*args, **kwargs)
        except ReplearnError as exc:
            assert "\n" not in str(exc), str(exc)
            assert len(str(exc)) < 2000, str(exc)[:300]
            return exc


def mutate(data: bytes, draw_edits) -> bytes:
    """``data`` with bytes overwritten at the drawn positions, then maybe cut."""
    out = bytearray(data)
    edits, cut = draw_edits
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out[: len(out) - cut % max(len(out), 1)] if cut else out)


edits = st.tuples(
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 4096) | st.just(0),
)

# ----------------------------------------------------------------------------- npz


def _valid_npz(compressed: bool) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    arrays = {
        "labelled": rng.integers(0, 256, (6, 8, 8), dtype=np.uint8),
        "labels": np.array([0, 1, 2, 0, 1, 2]),
        "unlabelled": rng.integers(0, 256, (3, 8, 8), dtype=np.uint8),
        "synthetic": np.array(True),
        "source": np.array("fuzz"),
    }
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


VALID_NPZ = {False: _valid_npz(False), True: _valid_npz(True)}

dtypes = st.sampled_from(
    [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_,
     np.complex64, "U3", "S2", "M8[s]", [("a", "u1"), ("b", "<f4")]]
)
keys = st.sampled_from(["labelled", "labels", "unlabelled", "class_names", "synthetic", "source", "x", "images"])
arrays = dtypes.flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
)


def _check_npz(path: Path) -> None:
    loads_or_refuses(load_assignment, path)
    loads_or_refuses(load_assignment, path, require_labelled=False)
    loads_or_refuses(load_assignment, path, n_classes=3)
    assert isinstance(marked_synthetic(path), bool)
    loads_or_refuses(read_images, path)


@FUZZ
@given(st.binary(max_size=512), st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"]))
def test_npz_any_bytes(data, prefix):
    _check_npz(_write("bytes.npz", prefix + data))


@FUZZ
@given(st.booleans(), edits)
def test_npz_damaged_valid_file(compressed, change):
    _check_npz(_write("damaged.npz", mutate(VALID_NPZ[compressed], change)))


@FUZZ
@given(st.dictionaries(keys, arrays, max_size=6), st.booleans())
def test_npz_wrong_arrays(content, compressed):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **content)
    _check_npz(_write("wrong.npz", buf.getvalue()))


def _npy(shape, descr: str, data: bytes, version=(1, 0)) -> bytes:
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        npy_format.write_array_header_1_0(buf, header)
    else:
        npy_format.write_array_header_2_0(buf, header)
    return buf.getvalue() + data


shapes = st.lists(st.integers(0, 1 << 40) | st.integers(0, 9), min_size=0, max_size=5).map(tuple)


@FUZZ
@given(shapes, st.sampled_from(["|u1", "<f8", ">i4", "<U5", "|b1", "|V0", "<c16"]), st.binary(max_size=256),
       st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), st.sampled_from(["labelled", "unlabelled", "x"]))
def test_npz_forged_headers(shape, descr, data, method, key):
    """Headers declaring any size (up to 10^60 bytes) beside data of another size: refused before allocation."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.writestr(f"{key}.npy", _npy(shape, descr, data))
        zf.writestr("labels.npy", _npy((3,), "<i8", np.arange(3).tobytes()))
        if key != "unlabelled":
            zf.writestr("unlabelled.npy", _npy((0, 4, 4), "|u1", b""))
    path = _write("forged.npz", buf.getvalue())
    _check_npz(path)
    loads_or_refuses(read_images, _write("forged.npy", _npy(shape, descr, data)))


# ----------------------------------------------------------------------------- IDX


def _idx(dims, data: bytes, type_code: int = 8) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


idx_dims = st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), min_size=0, max_size=9)


@FUZZ
@given(st.binary(max_size=300))
def test_idx_any_bytes(data):
    loads_or_refuses(parse_idx, data)
    loads_or_refuses(read_idx, _write("bytes-idx3-ubyte", data))
    loads_or_refuses(read_idx, _write("bytes-idx3-ubyte.gz", gzip.compress(data)), expect_ndim=3)


@FUZZ
@given(idx_dims, st.binary(max_size=200), st.sampled_from([8, 8, 9, 13]), st.booleans())
def test_idx_declared_dimensions(dims, data, type_code, compress):
    """Any declared dimensions (up to 2^32-1 each, up to 9 of them) beside data of any length."""
    raw = _idx(dims, data, type_code)
    loads_or_refuses(parse_idx, raw, "<fuzz>")
    path = _write("dims-idx3-ubyte" + (".gz" if compress else ""), gzip.compress(raw) if compress else raw)
    loads_or_refuses(read_idx, path)
    loads_or_refuses(read_images, path)


@FUZZ
@given(edits)
def test_idx_damaged_gzip(change):
    good = gzip.compress(_idx((3, 4, 4), bytes(range(48))))
    path = _write("damaged-idx3-ubyte.gz", mutate(good, change))
    loads_or_refuses(read_idx, path, expect_ndim=3)
    loads_or_refuses(read_images, path)


# ----------------------------------------------------------------------------- TIFF


def _tiff(image: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile's notes on how it stores odd shapes
        tifffile.imwrite(buf, image, **kwargs)
    return buf.getvalue()


VALID_TIFFS = [
    _tiff((np.arange(32 * 40) % 251).astype(np.uint8).reshape(32, 40)),
    _tiff((np.arange(32 * 40) * 7).astype(np.uint16).reshape(32, 40), compression="zlib"),
    _tiff(np.zeros((2, 20, 20), np.uint16)),
]


def _check_tiff(path: Path) -> None:
    loads_or_refuses(read_channel, path, "membrane")
    loads_or_refuses(read_images, path)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from([b"", b"II*\x00", b"MM\x00*", b"II+\x00"]))
def test_tiff_any_bytes(data, prefix):
    _check_tiff(_write("bytes.tif", prefix + data))


@FUZZ
@given(st.sampled_from(range(len(VALID_TIFFS))), edits)
def test_tiff_damaged_valid_file(which, change):
    _check_tiff(_write("damaged.tif", mutate(VALID_TIFFS[which], change)))


@FEW
@given(dtypes.filter(lambda d: not isinstance(d, (str, list)) and d is not np.bool_).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=20))))
def test_tiff_wrong_images(image):
    try:
        data = _tiff(image)
    except Exception:  # tifffile cannot write every array; nothing to read then
        return
    _check_tiff(_write("wrong.tif", data))


# ----------------------------------------------------------------------------- PNG folders


@FEW
@given(st.binary(max_size=200), edits)
def test_png_damaged(data, change):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(64) * 3).astype(np.uint8).reshape(8, 8)).save(buf, format="PNG")
    folder = _DIR / "pngs"
    folder.mkdir(exist_ok=True)
    (folder / "a.png").write_bytes(mutate(buf.getvalue(), change))
    (folder / "b.png").write_bytes(data)
    loads_or_refuses(read_images, folder / "a.png")
    loads_or_refuses(read_images, folder)


# ----------------------------------------------------------------------------- TOML config

DEFAULTS = {"epochs": 10, "lr": 0.001, "augment": True, "name": "cnn", "widths": [16, 32], "ae": {"code_dim": 16}}

toml_keys = st.sampled_from(["epochs", "lr", "augment", "name", "widths", "ae", "code_dim", "x", "a.b", '"q"'])
toml_scalars = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),  # beyond Python's 4300-digit conversion limit
    st.floats(allow_nan=True).map(lambda f: repr(f).replace("inf", "inf").replace("nan", "nan")),
    st.sampled_from(["true", "false", "inf", "-nan", "1979-05-27T07:32:00Z", "0x_1", "1__0", '"\\u00e9"', "'x'"]),
    st.text(max_size=20).map(json.dumps),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda v: "[" + ", ".join(v) + "]"),
        st.lists(st.tuples(toml_keys, inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in kv) + "}"),
    ),
    max_leaves=12,
)
toml_lines = st.one_of(
    st.tuples(toml_keys, toml_values).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    toml_keys.map(lambda k: f"[{k}]"),
    st.integers(1, 5000).map(lambda n: "deep = " + "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: "deep = " + "{a = " * n + "1" + "}" * n),
    st.text(max_size=30),
)


def _check_toml(path: Path) -> None:
    loads_or_refuses(load_toml, path)
    out = loads_or_refuses(resolve, DEFAULTS, path)
    assert isinstance(out, (dict, ReplearnError))


@FUZZ
@given(st.binary(max_size=300))
def test_toml_any_bytes(data):
    _check_toml(_write("bytes.toml", data))


@FUZZ
@given(st.lists(toml_lines, max_size=6))
def test_toml_structured(lines):
    _check_toml(_write("structured.toml", "\n".join(lines).encode("utf-8", errors="surrogatepass")))


# ----------------------------------------------------------------------------- model sidecar

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
sidecar_like = st.fixed_dictionaries(
    {"format": st.sampled_from(["replearn-model-1", "other", 1])},
    optional={"model": json_values, "meta": json_values, "integrity": json_values},
)


def _check_sidecar(text: bytes) -> None:
    folder = _DIR / "model"
    folder.mkdir(exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (folder / "model.json").write_bytes(text)
    loads_or_refuses(read_sidecar, folder / "model.safetensors")
    loads_or_refuses(read_sidecar, folder)


@FUZZ
@given(st.binary(max_size=300))
def test_sidecar_any_bytes(data):
    _check_sidecar(data)


@FUZZ
@given(sidecar_like | json_values)
def test_sidecar_structured_json(value):
    _check_sidecar(json.dumps(value).encode())


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "9" * 10_000, '{"format": ' + "1" * 5000 + "}"])
def test_sidecar_deep_nesting_and_huge_numbers(text):
    _check_sidecar(text.encode())
