"""Read and write the grayscale images of the autoencoder workflows.

:func:`read_images` takes what ``replearn embed`` is given: an ``.npz`` (every
image array in it, or one ``key``), an IDX file (MNIST style, raw or ``.gz``),
one PNG/TIFF image, or a folder of PNG/TIFF crops (sorted by name). It returns
the images (N, H, W), uint8 or float in [0, 1], and one item name per image.
:func:`write_png` writes one image in [0, 1] as an 8-bit PNG, atomically.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

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
    """Keep uint8 and float in [0, 1] / [0, 255]; other integers must lie in 0..255."""
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


def _read_file_image(path: Path) -> np.ndarray:
    """One PNG or TIFF file as (H, W)."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            image = tifffile.imread(path)
        else:
            from skimage.io import imread

            image = imread(path)
    except Exception as exc:  # image libraries raise many types for broken files
        raise ReplearnError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    return _as_gray(image, str(path))


def _read_npz(path: Path, key: str | None) -> tuple[np.ndarray, list[str]]:
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ReplearnError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        arr = np.asarray(npz)
        return _npz_images(arr, str(path)), [f"{i}" for i in range(len(arr))]
    with npz:
        if key is not None:
            if key not in npz.files:
                raise ReplearnError(f"{path}: no key {key!r} (found {', '.join(repr(k) for k in npz.files)})")
            keys = [key]
        else:
            keys = []
            for k in npz.files:
                try:
                    shape = npz[k].shape
                except ValueError:
                    continue  # object arrays would need pickle; they are never images
                if len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1):
                    keys.append(k)
            if not keys:
                raise ReplearnError(
                    f"{path}: holds no image arrays (N, H, W) (keys: {', '.join(npz.files) or 'none'}); "
                    "use --key to pick one"
                )
        arrays, items = [], []
        for k in keys:
            try:
                arr = _npz_images(npz[k], f"{path} key {k!r}")
            except ValueError:
                raise ReplearnError(f"{path}: key {k!r} holds Python objects; plain numeric arrays are expected") from None
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
    return _check_pixels(arr, where)


def _is_idx(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] == b"\x1f\x8b":
        import gzip

        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(4)
        except OSError:
            return False
    return head[:3] in _IDX_MAGIC


def read_images(path: str | os.PathLike, key: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Images and item names from an ``.npz``, an IDX file, a PNG/TIFF file or a folder of them.

    Args:
        path: the file or folder.
        key: for an ``.npz``, the one array to read (default: every (N, H, W) array, in order).

    Returns:
        images (N, H, W) uint8 (or float as stored) and N item names: ``key[i]`` for
        npz arrays, ``i`` for IDX rows, the file name for image files.

    Raises:
        ReplearnError: a missing path, an unreadable file, images of differing sizes,
            colour or 16-bit images; one line naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ReplearnError(f"images {path}: no such file or folder")
    if key is not None and (path.is_dir() or path.suffix.lower() != ".npz"):
        raise ReplearnError(f"--key {key!r} applies to .npz files only, but {path} is not one")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ReplearnError(f"images {path}: folder holds no {'/'.join(IMAGE_SUFFIXES)} files")
        names = [p.name for p in files]
        return _stack([_read_file_image(p) for p in files], names, str(path)), names
    suffix = path.suffix.lower()
    if suffix in (".npz", ".npy"):
        return _read_npz(path, key)
    if suffix in IMAGE_SUFFIXES:
        return _read_file_image(path)[None], [path.name]
    if _is_idx(path):
        from replearn.data.idx import read_idx

        arr = read_idx(path)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ReplearnError(f"{path}: IDX file holds {arr.ndim}-D data {arr.shape}; images (N, H, W) are expected")
        return arr, [str(i) for i in range(len(arr))]
    raise ReplearnError(
        f"images {path}: unknown kind; give an .npz, an IDX file, a .png/.tif image or a folder of them"
    )


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write one image (H, W) with values in [0, 1] as an 8-bit grayscale PNG, atomically."""
    from PIL import Image

    arr = np.asarray(image, dtype=np.float64).squeeze()
    assert arr.ndim == 2, f"write_png needs one (H, W) image, got {arr.shape}"
    pixels = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return Path(path)
