"""Input validation shared by the encoder estimators: images in, float32 tensors (N, C, H, W) out.

Every estimator of :mod:`replearn.encoders` takes images as (N, H, W) or
(N, C, H, W) arrays or tensors, or -- with an ``image_shape`` -- flattened as
(N, C*H*W), the way scikit-learn's digits examples and most transformers hand
data on. Pixels follow :func:`replearn.data.to_tensor`: uint8 (and other
integer) images are divided by 255; float images are kept when their maximum is
at most 1 and divided by 255 otherwise; negative values are refused.

Bad data raise :class:`ImageInputError` (or :class:`ImageInputTypeError` for
sparse or otherwise unusable containers). Each is a :class:`ReplearnError` -- the
CLI prints it as one line -- and also the ``ValueError`` / ``TypeError``
scikit-learn's conventions (and its estimator checks) expect.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.utils.validation import check_array, validate_data

from replearn.data.tensors import to_tensor
from replearn.errors import ReplearnError

ImageArray = np.ndarray | torch.Tensor


def image_tags(tags: Any, float32_out: bool = False) -> Any:
    """scikit-learn's tags of an image estimator: non-negative pixels, images or flattened rows.

    ``float32_out``: a transformer whose outputs are float32 whatever comes in.
    """
    tags.input_tags.positive_only = True  # pixels: uint8 0..255 or float in [0, 1] / [0, 255]
    tags.input_tags.three_d_array = True  # images (N, H, W) as well as flattened rows
    if float32_out:
        tags.transformer_tags.preserves_dtype = ["float32"]
    return tags


class ImageInputError(ReplearnError, ValueError):
    """Bad data given to an encoder estimator (a :class:`ReplearnError` and a ``ValueError``)."""


class ImageInputTypeError(ReplearnError, TypeError):
    """Data of a kind an encoder estimator cannot take, e.g. sparse matrices (also a ``TypeError``)."""


def one_line(message: str) -> str:
    """scikit-learn's validation message in one line: its first line (and its "Reshape your data ..." advice)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0][:-1] + "." if lines[0].endswith(":") else lines[0]
    advice = next((line for line in lines[1:] if line.startswith("Reshape your data")), None)
    return f"{first} {advice}" if advice else first


def normalise_image_shape(image_shape: Any, who: str) -> tuple[int, int, int] | None:
    """``image_shape`` (H, W) or (C, H, W) of positive integers -> (C, H, W); None stays None."""
    if image_shape is None:
        return None
    try:
        dims = tuple(int(d) for d in image_shape)
        ok = len(dims) in (2, 3) and all(d >= 1 and d == float(e) for d, e in zip(dims, image_shape))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ReplearnError(
            f"{who}: image_shape {image_shape!r} is not allowed; give (H, W) or (C, H, W) of positive integers, or None"
        )
    return dims if len(dims) == 3 else (1, dims[0], dims[1])


def _describe(shape: Sequence[int]) -> str:
    c, h, w = shape
    return f"{h}x{w} with {c} channel(s)"


def as_images(
    est: Any,
    X: Any,
    *,
    name: str = "X",
    reset: bool = False,
    shape: Sequence[int] | None = None,
    fitted: bool = False,
    takes: str = "model",
    source: str | None = None,
    min_samples: int = 1,
    min_reason: str = "",
) -> tuple[torch.Tensor, bool]:
    """Validate images for ``est`` and scale them: -> (float32 tensor (N, C, H, W) in [0, 1], given flattened?).

    Args:
        est: the estimator (its class name starts every message; with ``name == "X"``
            its ``n_features_in_`` / ``feature_names_in_`` are set (``reset``) or checked).
        X: (N, H, W), (N, C, H, W) or flattened (N, C*H*W) numbers; array, tensor, list or DataFrame.
        name: what the data is called in messages (``"X"``, ``"validation_data"`` ...).
        reset: fit: set ``n_features_in_`` from ``X``.
        shape: (C, H, W) the images must have: the fitted input shape (``fitted=True``) or the
            ``image_shape`` parameter; flattened data are reshaped to it. None: images must be 3-D/4-D.
        fitted: ``shape`` is what a fitted model takes (the message then says what it ``takes``).
        takes: ``"model"`` or ``"encoder"``, for the size message after fit.
        source: where an unfitted ``shape`` comes from, for messages (default ``"image_shape (...)"``).
        min_samples: fewest images allowed (the message adds ``min_reason``).

    Raises:
        ImageInputError: NaN/inf, complex, empty, negative, too few samples, wrong size, ...
        ImageInputTypeError: sparse data and other containers ``check_array`` refuses with a TypeError.
    """
    who = type(est).__name__
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    nd = isinstance(X, np.ndarray) and X.ndim >= 3
    count = name == "X"
    try:
        if nd or not count:
            arr = check_array(X, allow_nd=True, dtype="numeric", estimator=est, input_name=name)
        else:
            arr = validate_data(est, X, reset=reset, dtype="numeric", accept_sparse=False)
    except TypeError as exc:
        raise ImageInputTypeError(f"{who}: {one_line(exc)}") from None
    except ValueError as exc:
        raise ImageInputError(f"{who}: {one_line(exc)}") from None
    if arr.dtype.kind in "biuf" and arr.size and arr.min() < 0:
        raise ImageInputError(
            f"{who}: Negative values in data passed to {who} ({name} has minimum {arr.min():g}); pixels are "
            "uint8 0..255 or float in [0, 1] or [0, 255]"
        )
    n = int(arr.shape[0])
    if n < min_samples:
        reason = f" ({min_reason})" if min_reason else ""
        raise ImageInputError(f"{who}: {name} holds {n} sample(s); at least {min_samples} are needed{reason}")
    expected = tuple(int(d) for d in shape) if shape is not None else None
    source = source or f"image_shape {tuple(shape) if shape is not None else None}"
    if arr.ndim == 2:
        features = int(arr.shape[1])
        if expected is None:
            raise ImageInputError(
                f"{who}: {name} has shape {arr.shape}, flattened images of unknown size; give image_shape=(H, W) "
                "or (C, H, W), or images (N, H, W) / (N, C, H, W)"
            )
        if features != math.prod(expected):
            if fitted:
                raise ImageInputError(
                    f"{who}: {name} has {features} features, but {who} is expecting {math.prod(expected)} features "
                    f"as input (images {_describe(expected)}, flattened)"
                )
            raise ImageInputError(
                f"{who}: {name} has {features} feature(s), but {source} needs "
                f"{math.prod(expected)} values per image ({_describe(expected)})"
            )
        images = arr.reshape((n, *expected))
    elif arr.ndim in (3, 4):
        images = arr[:, None] if arr.ndim == 3 else arr
        got = tuple(int(d) for d in images.shape[1:])
        if expected is not None and got != expected:
            if fitted:
                raise ImageInputError(
                    f"{who}: {name} images are {_describe(got)}; the {takes} takes {_describe(expected)}"
                )
            raise ImageInputError(
                f"{who}: {name} images are {_describe(got)}, but {source} asks for {_describe(expected)}"
            )
        if count:
            validate_data(est, images.reshape(n, -1), reset=reset, skip_check_array=True)
    else:
        raise ImageInputError(
            f"{who}: {name} has shape {arr.shape}; expected images (N, H, W) or (N, C, H, W), or (N, C*H*W) "
            "with image_shape"
        )
    c, h, w = images.shape[1:]
    try:
        x = to_tensor(images.reshape(n * c, h, w))
    except ReplearnError as exc:
        raise ImageInputError(f"{who}: {name}: {exc}") from None
    return x.reshape(n, c, h, w), arr.ndim == 2


def image_layout(images: np.ndarray, flat: bool) -> np.ndarray:
    """Images (N, C, H, W) as the caller gave them: flattened (N, C*H*W), else (N, H, W) for C = 1."""
    if flat:
        return images.reshape(len(images), -1)
    return images[:, 0] if images.ndim == 4 and images.shape[1] == 1 else images
