"""Read and write the grayscale images of the autoencoder workflows.

:func:`read_images` takes what ``replearn embed`` is given: an ``.npz`` (every
image array in it, or one ``key``), an IDX file (MNIST style, raw or ``.gz``),
one PNG/TIFF image, or a folder of PNG/TIFF crops (sorted by name). It returns
the images (N, H, W), uint8 or float in [0, 1], and one item name per image.
:func:`write_png` writes one image in [0, 1] as an 8-bit PNG, atomically.

Every reader checks what the file declares against the limits of
:mod:`replearn.data.limits` (bytes, images per file or folder, crop side) before
it reads the pixels; see ``docs/reliability.md``.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from replearn.data import limits
from replearn.data.npyfile import NpzArchive, kind_of_file, read_npy
from replearn.errors import ReplearnError
from replearn.utils.atomic import atomic_path

PNG_SUFFIXES = (".png",)
TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = PNG_SUFFIXES + TIFF_SUFFIXES
_IDX_MAGIC = (b"\x00\x00\x08",)


def _as_gray(image: np.ndarray, source: str) -> np.ndarray:
    """One image as (H, W): squeeze a channel axis of 1; RGB(A) only when R = G = B (a saved grayscale)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        rgb = image[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            image = rgb[..., 0]
        else:
            raise ReplearnError(f"{source}: is a colour image (H, W, {image.shape[-1]}); grayscale images are expected")
    if image.ndim == 3 and 1 in (image.shape[0], image.shape[-1]):
        image = image.reshape(image.shape[1:] if image.shape[0] == 1 else image.shape[:2])
    if image.ndim != 2:
        raise ReplearnError(f"{source}: has shape {image.shape}; a grayscale image (H, W) is expected")
    return _check_pixels(image, source)


def _check_pixels(images: np.ndarray, source: str) -> np.ndarray:
    """Keep uint8 and float in [0, 1] / [0, 255] (finite); other integers must lie in 0..255."""
    kind = images.dtype.kind
    if kind == "b":
        return images.astype(np.uint8) * np.uint8(255)
    if kind in "ui":
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ReplearnError(
                f"{source}: {images.dtype} pixels span {images.min()}..{images.max()}; 8-bit values 0..255 "
                "are expected (convert 16-bit crops to 8-bit first)"
            )
        return images.astype(np.uint8, copy=False)
    if kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(images)))
        if bad:
            raise ReplearnError(f"{source}: {bad} pixels are NaN or infinite; pixels must be finite")
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ReplearnError(
                f"{source}: float pixels span {images.min():g}..{images.max():g}; [0, 1] or [0, 255] is expected"
            )
        return images
    raise ReplearnError(f"{source}: pixels have dtype {images.dtype}; uint8 or float images are expected")


def _stack(images: list[np.ndarray], names: list[str], where: str) -> np.ndarray:
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        first = images[0].shape
        odd = next(i for i, im in enumerate(images) if im.shape != first)
        raise ReplearnError(
            f"{where}: images differ in size: {names[0]} is {first[0]}x{first[1]} but {names[odd]} is "
            f"{images[odd].shape[0]}x{images[odd].shape[1]}; all must be the same size"
        )
    dtypes = {im.dtype.kind for im in images}
    return np.stack(images) if len(dtypes) == 1 else np.stack([im.astype(np.float32) / (255.0 if im.dtype == np.uint8 else 1.0) for im in images])


def _image_side(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(H, W) of an image of ``shape`` ((H, W), (H, W, 1/3/4), (1, H, W)), or None when it is no image."""
    dims = [int(s) for s in shape if s != 1]
    if len(shape) == 3 and shape[-1] in (3, 4):
        return int(shape[0]), int(shape[1])
    if len(dims) == 2:
        return dims[0], dims[1]
    return (int(shape[-2]), int(shape[-1])) if len(shape) >= 2 else None


def _png_declared(path: Path) -> tuple[tuple[int, int], int]:
    """(H, W) and the decoded byte size a PNG (or other PIL image) declares, from its header."""
    from PIL import Image

    with Image.open(path) as im:
        width, height = im.size
        bands = len(im.getbands())
        depth = 2 if "16" in im.mode else 4 if im.mode in ("I", "F", "I;32") else 1
    return (height, width), height * width * bands * depth


def _read_file_image(path: Path, max_bytes: int | None = None, max_side: int | None = None) -> np.ndarray:
    """One PNG or TIFF file as (H, W); its declared size is checked before the pixels are decoded."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        from replearn.data.tiff import read_tiff

        image = read_tiff(path, str(path), max_bytes,
                          check=lambda shape: _check_side(_image_side(shape), str(path), max_side))
        return _as_gray(image, str(path))
    try:
        side, nbytes = _png_declared(path)
    except Exception as exc:  # PIL raises many types for broken files (and refuses decompression bombs)
        raise ReplearnError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    _check_side(side, str(path), max_side)
    limits.check_bytes(nbytes, str(path), f"the image ({side[0]}x{side[1]} px)", max_bytes)
    try:
        from skimage.io import imread

        image = imread(path)
    except Exception as exc:  # image libraries raise many types for broken files
        raise ReplearnError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    return _as_gray(image, str(path))


def _check_side(side: tuple[int, int] | None, where: str, max_side: int | None) -> None:
    if side is not None:
        limits.check_side(side[0], side[1], where, "holds images of", max_side)


def _check_arrays(headers: list[tuple[str, tuple[int, ...]]], where: str, max_images: int | None,
                  max_side: int | None) -> None:
    """Image count and size from the declared shapes ``(key, shape)``, before any array is read."""
    count = 0
    for key, shape in headers:
        count += 1 if len(shape) == 2 else int(shape[0]) if shape else 0
        if len(shape) in (2, 3, 4):
            side = shape[-2:] if len(shape) == 2 else shape[1:3]
            limits.check_side(int(side[0]), int(side[1]), where, f"{key} holds images of", max_side)
    limits.check_images(count, where, "images", max_images)


def _read_npz(path: Path, key: str | None, max_bytes: int | None = None, max_images: int | None = None,
              max_side: int | None = None) -> tuple[np.ndarray, list[str]]:
    try:
        kind = kind_of_file(path)
    except OSError as exc:
        raise ReplearnError(f"{path}: cannot read it ({exc.strerror})") from None
    if kind == "npy":
        arr = read_npy(path, str(path), max_bytes=max_bytes,
                       check=lambda h: _check_arrays([("the array", h.shape)], str(path), max_images, max_side))
        arr = _npz_images(arr, str(path))
        return arr, [f"{i}" for i in range(len(arr))]
    if kind != "zip":
        raise ReplearnError(f"{path}: not a readable .npz archive (not a zip archive of NumPy arrays)")
    with NpzArchive(path, str(path), max_bytes=max_bytes) as npz:
        if key is not None:
            if key not in npz.files:
                raise ReplearnError(f"{path}: no key {key!r} (found {', '.join(repr(k) for k in npz.files)})")
            keys = [key]
        else:
            keys = []
            for k in npz.files:
                head = npz.header(k)
                if head.dtype.hasobject:
                    continue  # object arrays would need pickle; they are never images
                shape = head.shape
                if len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1):
                    keys.append(k)
            if not keys:
                raise ReplearnError(
                    f"{path}: holds no image arrays (N, H, W) (keys: {', '.join(npz.files) or 'none'}); "
                    "use --key to pick one"
                )
        _check_arrays([(f"key {k!r}", npz.header(k).shape) for k in keys], str(path), max_images, max_side)
        arrays, items = [], []
        for k in keys:
            arr = _npz_images(npz[k], f"{path} key {k!r}")
            arrays.append(arr)
            items += [f"{k}[{i}]" for i in range(len(arr))]
    if len({a.shape[1:] for a in arrays}) > 1:
        found = ", ".join(f"{k} {a.shape[1]}x{a.shape[2]}" for k, a in zip(keys, arrays))
        raise ReplearnError(f"{path}: image arrays differ in size ({found}); pick one with --key")
    if len({a.dtype.kind for a in arrays}) > 1:
        arrays = [a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0) for a in arrays]
    return np.concatenate(arrays), items


def _npz_images(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ReplearnError(f"{where}: has shape {arr.shape}; images (N, H, W) are expected")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ReplearnError(f"{where}: has shape {arr.shape}; images must be at least 1x1 pixels")
    return _check_pixels(arr, where)


def _is_idx(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] == b"\x1f\x8b":
            import gzip

            with gzip.open(path, "rb") as fh:
                head = fh.read(4)
    except (OSError, EOFError, zlib.error):  # an unreadable gzip stream is no IDX file we can read
        return False
    return head[:3] in _IDX_MAGIC


def _image_files(folder: Path, max_images: int | None) -> list[Path]:
    """The PNG/TIFF files of ``folder`` sorted by name; more than the image limit is refused while listing."""
    limit = limits.max_images(max_images)
    files = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                    files.append(Path(entry.path))
                    if len(files) > limit:
                        limits.check_images(len(files), str(folder), "image files (at least)", limit)
    except OSError as exc:
        raise ReplearnError(f"images {folder}: cannot list the folder ({exc.strerror})") from None
    return sorted(files)


def _warn_blank(images: np.ndarray, names: list[str], where: str) -> None:
    """One warning when some (or all) images are blank: every pixel the same value, nothing to see."""
    from replearn.data.npz import blank_images

    blank = blank_images(images)
    if blank.any():
        shown = ", ".join(names[i] for i in np.flatnonzero(blank)[:5]) + (", ..." if blank.sum() > 5 else "")
        limits.warn(f"{where}: {int(blank.sum())} of {len(images)} images are blank (every pixel the same value: "
                    f"{shown}); their codes and predictions say nothing about cells")


def read_images(
    path: str | os.PathLike,
    key: str | None = None,
    *,
    max_bytes: int | None = None,
    max_images: int | None = None,
    max_side: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Images and item names from an ``.npz``, an IDX file, a PNG/TIFF file or a folder of them.

    Args:
        path: the file or folder.
        key: for an ``.npz``, the one array to read (default: every (N, H, W) array, in order).
        max_bytes, max_images, max_side: raise the limits of :mod:`replearn.data.limits`
            (``$REPLEARN_MAX_BYTES`` or 1 GiB of pixels, ``$REPLEARN_MAX_IMAGES`` or 1,000,000
            images, ``$REPLEARN_MAX_CROP`` or 1024 px per side); each is checked from the
            headers (and the folder listing) before the pixels are read.

    Returns:
        images (N, H, W) uint8 (or float as stored) and N item names: ``key[i]`` for
        npz arrays, ``i`` for IDX rows, the file name for image files. Blank images (a
        single value) give one :class:`~replearn.data.limits.DataWarning` with their count.

    Raises:
        ReplearnError: a missing path, an unreadable file, images of differing sizes,
            colour or 16-bit images, NaN/inf pixels, or a limit exceeded; one line naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ReplearnError(f"images {path}: no such file or folder")
    if key is not None and (path.is_dir() or path.suffix.lower() != ".npz"):
        raise ReplearnError(f"--key {key!r} applies to .npz files only, but {path} is not one")
    if path.is_dir():
        files = _image_files(path, max_images)
        if not files:
            raise ReplearnError(f"images {path}: folder holds no {'/'.join(IMAGE_SUFFIXES)} files")
        names = [p.name for p in files]
        images, total = [], 0
        for p in files:
            image = _read_file_image(p, max_bytes, max_side)
            images.append(image)
            total += image.nbytes
            if len(images) == 1:  # the first image tells what the whole folder will take
                limits.check_bytes(image.nbytes * len(files), str(path), f"{len(files)} images of "
                                   f"{image.shape[0]}x{image.shape[1]} px", max_bytes)
            else:
                limits.check_bytes(total, str(path), "the images read so far", max_bytes)
        stacked = _stack(images, names, str(path))
        _warn_blank(stacked, names, str(path))
        return stacked, names
    suffix = path.suffix.lower()
    if suffix in (".npz", ".npy"):
        images, names = _read_npz(path, key, max_bytes, max_images, max_side)
    elif suffix in IMAGE_SUFFIXES:
        images, names = _read_file_image(path, max_bytes, max_side)[None], [path.name]
    elif _is_idx(path):
        from replearn.data.idx import read_idx

        arr = read_idx(path, max_bytes=max_bytes, max_images=max_images)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ReplearnError(f"{path}: IDX file holds {arr.ndim}-D data {arr.shape}; images (N, H, W) are expected")
        limits.check_side(arr.shape[1], arr.shape[2], str(path), "holds images of", max_side)
        images, names = arr, [str(i) for i in range(len(arr))]
    else:
        raise ReplearnError(
            f"images {path}: unknown kind; give an .npz, an IDX file, a .png/.tif image or a folder of them"
        )
    _warn_blank(images, names, str(path))
    return images, names


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write one image (H, W) with values in [0, 1] as an 8-bit grayscale PNG, atomically."""
    from PIL import Image

    arr = np.asarray(image, dtype=np.float64).squeeze()
    assert arr.ndim == 2, f"write_png needs one (H, W) image, got {arr.shape}"
    pixels = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return Path(path)
