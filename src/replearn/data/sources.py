"""Find (or download) MNIST and Fashion-MNIST and load a split as arrays.

Search order for the four standard IDX files (raw or ``.gz``):

1. the ``data_dir`` argument (the CLI's ``--data-dir``),
2. the folder in the environment variable ``REPLEARN_DATA``,
3. the user cache: ``$REPLEARN_CACHE``, else ``$XDG_CACHE_HOME/replearn``, else ``~/.cache/replearn``,
4. for Fashion-MNIST, Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, flat),
5. a download from the canonical public location (or ``mirror`` / ``$REPLEARN_MIRROR``) into the cache.

Folders 1-3 hold one subfolder per data set: ``mnist/`` and ``fashion-mnist/``.
Downloads are verified against the SHA-256 of the *decompressed* IDX bytes
(robust to re-compression) before they are written, atomically, into the cache;
a download that fails the check leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from replearn.data import limits
from replearn.data.idx import gunzip_if_needed, read_idx
from replearn.errors import ReplearnError
from replearn.utils.atomic import write_bytes


@dataclass(frozen=True)
class _Dataset:
    folder: str
    title: str
    url: str  # canonical base URL; files are <url>/<file>.gz


_DATASETS = {
    "mnist": _Dataset("mnist", "MNIST", "https://storage.googleapis.com/cvdf-datasets/mnist"),
    "fashion": _Dataset("fashion-mnist", "Fashion-MNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
}
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot"),
}
"""The class names of each data set, by label."""

_ALIASES = {"mnist": "mnist", "fashion": "fashion", "fashion-mnist": "fashion", "fashion_mnist": "fashion"}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the decompressed IDX bytes (the published MNIST MD5 of train-images,
# 6bbc9ace898e44ae57da46a324031adb, matches the same bytes).
SHA256 = {
    ("mnist", "train-images-idx3-ubyte"): "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ("mnist", "train-labels-idx1-ubyte"): "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ("mnist", "t10k-images-idx3-ubyte"): "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ("mnist", "t10k-labels-idx1-ubyte"): "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ("fashion-mnist", "train-images-idx3-ubyte"): "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ("fashion-mnist", "train-labels-idx1-ubyte"): "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ("fashion-mnist", "t10k-images-idx3-ubyte"): "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ("fashion-mnist", "t10k-labels-idx1-ubyte"): "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_TIMEOUT_S = 60.0
_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


def cache_dir() -> Path:
    """The download cache: ``$REPLEARN_CACHE``, else ``$XDG_CACHE_HOME/replearn``, else ``~/.cache/replearn``."""
    if os.environ.get("REPLEARN_CACHE"):
        return Path(os.environ["REPLEARN_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "replearn"


def _resolve_name(name: str) -> str:
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise ReplearnError(f"data set {name!r} is unknown; choose 'mnist' or 'fashion' (also 'fashion-mnist')")
    return key


def _find_pair(folder: Path, stems: tuple[str, str]) -> tuple[Path, Path] | None:
    """Both files of a split in ``folder`` (raw preferred over ``.gz``), or None."""
    found = []
    for stem in stems:
        hit = next((folder / f for f in (stem, stem + ".gz") if (folder / f).is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _fetch(url: str, progress: bool) -> bytes:
    """Download ``url`` into memory with a progress bar; no more than the byte limit (``$REPLEARN_MAX_BYTES``)."""
    limit = limits.max_bytes()
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:  # noqa: S310 (http/https only, see caller)
        total = response.headers.get("Content-Length")
        if total and total.isdigit():
            limits.check_bytes(int(total), url, "the download", limit, verb="is")
        else:
            total = None
        buf = io.BytesIO()
        with tqdm(
            total=int(total) if total else None,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=url.rsplit("/", 1)[-1],
            disable=not progress,
            leave=False,
        ) as bar:
            while chunk := response.read(_CHUNK):
                buf.write(chunk)
                bar.update(len(chunk))
                if buf.tell() > limit:
                    limits.check_bytes(buf.tell(), url, "the download", limit, verb="is more than")
    return buf.getvalue()


def _describe(exc: BaseException) -> str:
    """A short reason for a failed download."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTPError: HTTP {exc.code} {exc.reason} for {exc.url}"
    return f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"


def _download_split(ds: _Dataset, stems: tuple[str, str], base_url: str, dest: Path, progress: bool) -> None:
    """Download the split's missing files from ``base_url`` and write verified copies into ``dest``.

    Raises ReplearnError at once when content is not gzip or fails its checksum (nothing
    is written) or the cache is not writable; network errors propagate (``OSError``,
    ``http.client.HTTPException``) for the caller to report.
    """
    if not base_url.startswith(("http://", "https://")):
        raise ReplearnError(f"download mirror {base_url!r} must be an http:// or https:// URL")
    payloads: dict[str, bytes] = {}
    for stem in stems:
        if (dest / stem).is_file() or (dest / f"{stem}.gz").is_file():
            continue
        url = f"{base_url.rstrip('/')}/{stem}.gz"
        raw = _fetch(url, progress)
        try:
            content = gunzip_if_needed(raw, url)
        except ReplearnError as exc:
            raise ReplearnError(f"{exc}; nothing was saved") from exc
        digest = hashlib.sha256(content).hexdigest()
        expected = SHA256[(ds.folder, stem)]
        if digest != expected:
            raise ReplearnError(
                f"{url}: download failed its checksum (SHA-256 of the IDX content {digest}, expected {expected}); "
                "nothing was saved"
            )
        payloads[stem + ".gz" if raw.startswith(_GZIP_MAGIC) else stem] = raw
    # Write only once every file of the split is verified.
    for file_name, raw in payloads.items():
        try:
            write_bytes(dest / file_name, raw)
        except OSError as exc:
            raise ReplearnError(
                f"cannot write {dest / file_name} ({exc}); set REPLEARN_CACHE to a writable folder"
            ) from exc


def locate_dataset(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Return the (images, labels) IDX paths of one split, downloading into the cache if needed.

    Args and search order as in :func:`load_dataset`.
    """
    key = _resolve_name(name)
    ds = _DATASETS[key]
    if split not in _FILES:
        raise ReplearnError(f"split {split!r} is unknown; choose 'train' or 'test'")
    stems = _FILES[split]
    candidates: list[tuple[str, Path | None]] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise ReplearnError(f"--data-dir {root}: no such folder (it should hold mnist/ and fashion-mnist/)")
        candidates.append(("--data-dir", root / ds.folder))
    env_dir = os.environ.get("REPLEARN_DATA")
    candidates.append(("$REPLEARN_DATA", Path(env_dir).expanduser() / ds.folder if env_dir else None))
    cache = cache_dir() / ds.folder
    candidates.append(("cache", cache))
    if key == "fashion":
        candidates.append(("Debian dataset-fashion-mnist", DEBIAN_FASHION_DIR))

    looked: list[str] = []
    for label, folder in candidates:
        if folder is None:
            looked.append(f"{label} (not set)")
            continue
        pair = _find_pair(folder, stems)
        if pair is not None:
            return pair
        looked.append(f"{label} {folder}")

    base_url = mirror or os.environ.get("REPLEARN_MIRROR")
    base_url = f"{base_url.rstrip('/')}/{ds.folder}" if base_url else ds.url
    if download:
        try:
            _download_split(ds, stems, base_url, cache, progress)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            looked.append(f"download from {base_url} failed ({_describe(exc)})")
        else:
            pair = _find_pair(cache, stems)
            assert pair is not None, "verified download was not written to the cache"
            return pair
    else:
        looked.append(f"download from {base_url} (disabled)")

    files = " and ".join(f"{s}[.gz]" for s in stems)
    fetch = "connect to the internet to download them" if download else "allow downloads (download=True)"
    raise ReplearnError(
        f"{ds.title} {split} files ({files}) not found; looked in: {'; '.join(looked)}. "
        f"Point --data-dir (or REPLEARN_DATA) at a folder holding {ds.folder}/ with the IDX files, or {fetch}"
    )


def load_dataset(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of MNIST or Fashion-MNIST from the original IDX files.

    Args:
        name: ``"mnist"`` or ``"fashion"`` (also ``"fashion-mnist"``).
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        data_dir: a folder holding ``mnist/`` and ``fashion-mnist/``; searched first.
        download: fetch missing files into the cache when no folder has them.
        mirror: base URL holding ``mnist/`` and ``fashion-mnist/`` with the ``.gz``
            files, instead of the canonical locations (also ``$REPLEARN_MIRROR``).
        progress: show a progress bar while downloading.

    Returns:
        images: uint8 array (N, 28, 28); labels: int64 array (N,) in 0..9.

    Raises:
        ReplearnError: unknown name/split, corrupted files, a failed checksum, or
            no files anywhere (the message lists every place searched).
    """
    images_path, labels_path = locate_dataset(
        name, split, data_dir, download=download, mirror=mirror, progress=progress
    )
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise ReplearnError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}; MNIST-style images are 28x28")
    if len(images) != len(labels):
        raise ReplearnError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    if labels.size and labels.max() > 9:
        raise ReplearnError(f"{labels_path}: label {int(labels.max())} found; labels must be 0..9")
    return images, labels
