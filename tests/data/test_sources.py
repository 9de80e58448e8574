"""Finding MNIST / Fashion-MNIST: search order, offline error, and real downloads from a local server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from replearn.data import cache_dir, load_dataset, locate_dataset
from replearn.data import sources
from replearn.errors import ReplearnError

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_split(folder: Path, marker: int, n: int = 3, split: str = "test", gz: bool = True) -> Path:
    """Write a tiny valid split whose labels all equal ``marker`` (to tell locations apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "t10k" if split == "test" else "train"
    images = np.full((n, 28, 28), marker, dtype=np.uint8)
    labels = np.full(n, marker, dtype=np.uint8)
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return folder


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def env(monkeypatch, tmp_path):
    """An isolated environment: empty cache in tmp_path, no $REPLEARN_DATA/$REPLEARN_MIRROR, no Debian folder, no proxy."""
    for var in ("REPLEARN_DATA", "REPLEARN_MIRROR", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REPLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_DIR", tmp_path / "debian" / "fashion-mnist")
    return tmp_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


@pytest.fixture
def serve():
    """Start HTTP servers on 127.0.0.1 for folders; yields a function folder -> base URL."""
    servers = []

    def start(root: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- real files ---------------------------------------------------------------------------------


def test_load_real_splits_from_data_dir(env, shared_datasets):
    images, labels = load_dataset("mnist", "test", shared_datasets)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    f_images, f_labels = load_dataset("fashion-mnist", "test", data_dir=shared_datasets)
    assert f_labels[:5].tolist() == [9, 2, 1, 1, 6]
    same_images, _ = load_dataset("fashion", "test", shared_datasets)
    np.testing.assert_array_equal(f_images, same_images)
    assert not np.array_equal(images, f_images)
    assert files_under(env / "cache") == []


def test_checksum_table_matches_shared_files(shared_datasets):
    for (folder, stem), expected in sources.SHA256.items():
        content = gzip.decompress((shared_datasets / folder / f"{stem}.gz").read_bytes())
        assert hashlib.sha256(content).hexdigest() == expected, (folder, stem)
    raw = gzip.decompress((shared_datasets / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"  # the published MNIST value


# --- search order -------------------------------------------------------------------------------


def test_explicit_dir_beats_env_beats_cache_beats_debian(env, monkeypatch):
    write_split(env / "explicit" / "fashion-mnist", marker=1)
    write_split(env / "envdir" / "fashion-mnist", marker=2)
    write_split(env / "cache" / "fashion-mnist", marker=3)
    write_split(env / "debian" / "fashion-mnist", marker=4)  # Debian's folder is flat
    monkeypatch.setenv("REPLEARN_DATA", str(env / "envdir"))

    assert load_dataset("fashion", "test", env / "explicit")[1].tolist() == [1, 1, 1]
    assert load_dataset("fashion", "test")[1].tolist() == [2, 2, 2]
    monkeypatch.delenv("REPLEARN_DATA")
    assert load_dataset("fashion", "test")[1].tolist() == [3, 3, 3]
    shutil.rmtree(env / "cache")
    images, labels = load_dataset("fashion", "test", download=False)
    assert labels.tolist() == [4, 4, 4] and images.shape == (3, 28, 28)


def test_explicit_dir_without_the_files_falls_through(env, monkeypatch):
    (env / "explicit" / "mnist").mkdir(parents=True)
    write_split(env / "envdir" / "mnist", marker=5, gz=False)  # raw files work too
    monkeypatch.setenv("REPLEARN_DATA", str(env / "envdir"))
    images_path, labels_path = locate_dataset("mnist", "test", env / "explicit")
    assert images_path == env / "envdir" / "mnist" / "t10k-images-idx3-ubyte"
    assert load_dataset("mnist", "test", env / "explicit")[1].tolist() == [5, 5, 5]


def test_split_needs_both_files_in_one_place(env, monkeypatch):
    write_split(env / "explicit" / "mnist", marker=1)
    (env / "explicit" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_split(env / "cache" / "mnist", marker=3)
    assert load_dataset("mnist", "test", env / "explicit")[1].tolist() == [3, 3, 3]


def test_debian_folder_is_for_fashion_only(env):
    write_split(env / "debian" / "fashion-mnist", marker=4)
    with pytest.raises(ReplearnError, match="MNIST test files") as info:
        load_dataset("mnist", "test", download=False)
    assert "Debian" not in str(info.value)


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("REPLEARN_CACHE", str(tmp_path / "c1"))
    assert cache_dir() == tmp_path / "c1"
    monkeypatch.delenv("REPLEARN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "replearn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "replearn"


# --- user mistakes and the offline error --------------------------------------------------------


def test_offline_error_lists_every_place(env, monkeypatch):
    (env / "explicit").mkdir()
    monkeypatch.setenv("REPLEARN_DATA", str(env / "envdir"))
    with pytest.raises(ReplearnError) as info:
        load_dataset("fashion", "train", env / "explicit", download=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert "Fashion-MNIST train files (train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]) not found" in msg
    for place in (
        f"--data-dir {env / 'explicit' / 'fashion-mnist'}",
        f"$REPLEARN_DATA {env / 'envdir' / 'fashion-mnist'}",
        f"cache {env / 'cache' / 'fashion-mnist'}",
        f"Debian dataset-fashion-mnist {env / 'debian' / 'fashion-mnist'}",
        f"download from {sources._DATASETS['fashion'].url} (disabled)",
    ):
        assert place in msg
    assert "Point --data-dir (or REPLEARN_DATA) at a folder holding fashion-mnist/" in msg
    # The order of the search is the order of the message.
    assert msg.index("--data-dir /") < msg.index("$REPLEARN_DATA") < msg.index("cache ") < msg.index("Debian")


def test_offline_with_download_reports_network_failure(env):
    url = closed_port_url()
    with pytest.raises(ReplearnError) as info:
        load_dataset("mnist", "test", mirror=url, progress=False)
    msg = str(info.value)
    assert "$REPLEARN_DATA (not set)" in msg
    assert f"download from {url}/mnist failed (URLError" in msg
    assert "Point --data-dir (or REPLEARN_DATA)" in msg
    assert files_under(env / "cache") == []


def test_missing_data_dir_is_an_error(env):
    with pytest.raises(ReplearnError, match="--data-dir .*does-not-exist: no such folder"):
        load_dataset("mnist", "test", env / "does-not-exist")


def test_unknown_name_and_split(env):
    with pytest.raises(ReplearnError, match="data set 'cifar' is unknown; choose 'mnist' or 'fashion'"):
        load_dataset("cifar", "train")
    with pytest.raises(ReplearnError, match="split 'val' is unknown; choose 'train' or 'test'"):
        load_dataset("mnist", "val")


def test_inconsistent_files_are_refused(env):
    folder = write_split(env / "d" / "mnist", marker=1)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4))))
    with pytest.raises(ReplearnError, match="4 labels for 3 images"):
        load_dataset("mnist", "test", env / "d")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((4, 32, 32)))))
    with pytest.raises(ReplearnError, match="images are 32x32; MNIST-style images are 28x28"):
        load_dataset("mnist", "test", env / "d")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4))))
    with pytest.raises(ReplearnError, match="t10k-images-idx3-ubyte.gz: magic number 2049"):
        load_dataset("mnist", "test", env / "d")


# --- downloads from a local server --------------------------------------------------------------


def test_download_into_cache_with_progress(env, shared_datasets, serve, capsys):
    url = serve(shared_datasets)  # the shared folder has the mirror layout: mnist/, fashion-mnist/
    images, labels = load_dataset("mnist", "test", mirror=url, progress=True)
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err  # the tqdm bar
    assert labels[:5].tolist() == [7, 2, 1, 0, 4] and images.shape == (10000, 28, 28)
    assert files_under(env / "cache") == [f"mnist/{stem}.gz" for stem in TEST_FILES]  # no temp files left
    for stem in TEST_FILES:
        cached = (env / "cache" / "mnist" / f"{stem}.gz").read_bytes()
        assert cached == (shared_datasets / "mnist" / f"{stem}.gz").read_bytes()
    reference, _ = load_dataset("mnist", "test", shared_datasets)
    np.testing.assert_array_equal(images, reference)
    # Later calls use the cache: the mirror is gone and downloads are off.
    again, _ = load_dataset("mnist", "test", mirror=closed_port_url(), download=False)
    np.testing.assert_array_equal(again, reference)


def test_download_mirror_from_env_var(env, shared_datasets, serve, monkeypatch):
    monkeypatch.setenv("REPLEARN_MIRROR", serve(shared_datasets) + "/")
    _, labels = load_dataset("fashion", "test", progress=False)
    assert labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert files_under(env / "cache") == [f"fashion-mnist/{stem}.gz" for stem in TEST_FILES]


def test_corrupted_download_is_refused_and_nothing_is_kept(env, shared_datasets, serve):
    mirror = env / "mirror" / "mnist"
    mirror.mkdir(parents=True)
    shutil.copy(shared_datasets / "mnist" / "t10k-images-idx3-ubyte.gz", mirror)  # good
    labels = bytearray(gzip.decompress((shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10  # still a well-formed IDX file and a valid gzip stream: only the checksum can tell
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    url = serve(env / "mirror")
    with pytest.raises(ReplearnError) as info:
        load_dataset("mnist", "test", mirror=url, progress=False)
    msg = str(info.value)
    assert f"{url}/mnist/t10k-labels-idx1-ubyte.gz: download failed its checksum" in msg
    assert "nothing was saved" in msg and "\n" not in msg
    assert files_under(env / "cache") == []  # not even the good images file, nor a temp file


def test_truncated_download_is_refused(env, shared_datasets, serve):
    mirror = env / "mirror" / "mnist"
    mirror.mkdir(parents=True)
    data = (shared_datasets / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (mirror / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    shutil.copy(shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz", mirror)
    with pytest.raises(ReplearnError, match="corrupted or truncated gzip data .*nothing was saved"):
        load_dataset("mnist", "test", mirror=serve(env / "mirror"), progress=False)
    assert files_under(env / "cache") == []


def test_missing_file_on_mirror_reports_http_error(env, shared_datasets, serve):
    mirror = env / "mirror" / "mnist"
    mirror.mkdir(parents=True)
    shutil.copy(shared_datasets / "mnist" / "t10k-images-idx3-ubyte.gz", mirror)
    url = serve(env / "mirror")
    expected = rf"download from {url}/mnist failed \(HTTPError: HTTP 404 .* for {url}/mnist/t10k-labels"
    with pytest.raises(ReplearnError, match=expected):
        load_dataset("mnist", "test", mirror=url, progress=False)
    assert files_under(env / "cache") == []
