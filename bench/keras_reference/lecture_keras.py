"""Keras/TensorFlow side of the benchmark: the lecture's own code, timed.

Runs inside bench/.keras-venv (made by setup_venv.sh), never in the project's
environment, and imports nothing from replearn. The networks are the lecture's
(MiniVGG from exercise 1, the suggested convolutional autoencoder of exercise 2)
written with the functional API exactly as on the slides; the data are the
same IDX files, read here with numpy (``keras.datasets`` would download).

Training throughput: ``model.fit`` for two epochs over a subset of exactly
``steps * batch`` images; the first epoch (graph tracing) is the warm-up and
the second is timed by a callback. Inference: ``model.predict`` on the test
set after one warm-up call. One JSON object is printed on stdout.

    bench/.keras-venv/bin/python bench/keras_reference/lecture_keras.py --workload cnn --steps 20
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras.layers import (  # noqa: E402
    Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Reshape, UpSampling2D,
)
from keras.models import Model  # noqa: E402
from keras.optimizers import SGD, Adam  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1].parent / "shared" / "datasets"
FOLDERS = {"fashion": "fashion-mnist", "mnist": "mnist"}
WORKLOADS = {"cnn": dict(dataset="fashion", batch=512), "ae": dict(dataset="mnist", batch=256)}


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes into an array."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    if data[:3] != b"\x00\x00\x08":
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(data_dir: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) float32 in [0, 1] and labels (N,) int, as the lecture prepares them."""
    stem = "train" if split == "train" else "t10k"
    folder = data_dir / FOLDERS[name]
    x = read_idx(folder / f"{stem}-images-idx3-ubyte.gz")
    y = read_idx(folder / f"{stem}-labels-idx1-ubyte.gz")
    x = x.reshape((x.shape[0], 28, 28, 1)).astype("float32") / 255.0
    return x, y.astype("int64")


def minivgg() -> Model:
    """The lecture's CNN (exercise 1), written as on the slides."""
    inputs = Input(shape=(28, 28, 1), name="inputs")
    layer = Conv2D(32, (3, 3), padding="same")(inputs)
    layer = Activation("relu")(layer)
    layer = BatchNormalization(axis=-1)(layer)
    layer = Conv2D(32, (3, 3), padding="same")(layer)
    layer = Activation("relu")(layer)
    layer = BatchNormalization(axis=-1)(layer)
    layer = MaxPooling2D(pool_size=(2, 2))(layer)
    layer = Dropout(0.25)(layer)
    layer = Conv2D(64, (3, 3), padding="same")(layer)
    layer = Activation("relu")(layer)
    layer = BatchNormalization(axis=-1)(layer)
    layer = Conv2D(64, (3, 3), padding="same")(layer)
    layer = Activation("relu")(layer)
    layer = BatchNormalization(axis=-1)(layer)
    layer = MaxPooling2D(pool_size=(2, 2))(layer)
    layer = Dropout(0.25)(layer)
    features = Flatten(name="features")(layer)
    layer = Dense(512)(features)
    layer = Activation("relu")(layer)
    layer = BatchNormalization()(layer)
    layer = Dropout(0.5)(layer)
    layer = Dense(10)(layer)
    layer = Activation("softmax")(layer)
    return Model(inputs=inputs, outputs=layer)


def _conv(layer, filters: int):
    layer = Conv2D(filters, (3, 3), padding="same")(layer)
    layer = Activation("relu")(layer)
    return BatchNormalization(axis=-1)(layer)


def autoencoder() -> Model:
    """The lecture's suggested autoencoder (three pooled encoder blocks, 28 -> 14 -> 7 -> 3).

    Encoder 32 | 32, 16 | 16, 8 -> Dense(2); decoder Dense(8*7*7) -> (7, 7, 8) -> 8, 16 | 16, 32 | 32 -> 1 (sigmoid).
    """
    inputs = Input(shape=(28, 28, 1), name="inputs")
    layer = _conv(inputs, 32)
    layer = MaxPooling2D(pool_size=(2, 2))(layer)
    layer = _conv(layer, 32)
    layer = _conv(layer, 16)
    layer = MaxPooling2D(pool_size=(2, 2))(layer)
    layer = _conv(layer, 16)
    layer = _conv(layer, 8)
    layer = MaxPooling2D(pool_size=(2, 2))(layer)
    layer = Flatten()(layer)
    features = Dense(2, name="features")(layer)
    layer = Dense(8 * 7 * 7, activation="relu")(features)
    layer = Reshape((7, 7, 8))(layer)
    layer = _conv(layer, 8)
    layer = _conv(layer, 16)
    layer = UpSampling2D(size=(2, 2))(layer)
    layer = _conv(layer, 16)
    layer = _conv(layer, 32)
    layer = UpSampling2D(size=(2, 2))(layer)
    layer = _conv(layer, 32)
    layer = Conv2D(1, (3, 3), padding="same")(layer)
    layer = Activation("sigmoid")(layer)
    return Model(inputs=inputs, outputs=layer)


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    p.add_argument("--steps", type=int, default=20, help="timed training steps (the warm-up epoch has as many)")
    p.add_argument("--infer", type=int, default=10000, help="test images for the inference measurement")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    spec = WORKLOADS[args.workload]
    batch = spec["batch"]
    n_train = args.steps * batch
    t0 = time.perf_counter()
    x, y = load(Path(args.data_dir), spec["dataset"], "train")
    xt, yt = load(Path(args.data_dir), spec["dataset"], "test")
    x, y, xt, yt = x[:n_train], y[:n_train], xt[: args.infer], yt[: args.infer]
    load_s = time.perf_counter() - t0

    if args.workload == "cnn":
        model = minivgg()
        model.compile(loss="categorical_crossentropy", optimizer=SGD(learning_rate=1e-2, momentum=0.9),
                      metrics=["accuracy"])
        targets = keras.utils.to_categorical(y, 10)
    else:
        model = autoencoder()
        model.compile(loss="mse", optimizer=Adam())
        targets = x
    timer = EpochTimer()
    t0 = time.perf_counter()
    history = model.fit(x, targets, batch_size=batch, epochs=2, shuffle=True, verbose=0, callbacks=[timer])
    fit_s = time.perf_counter() - t0
    warm_s, timed_s = timer.times

    model.predict(xt[: 2 * batch], batch_size=batch, verbose=0)  # warm-up (tracing)
    t0 = time.perf_counter()
    out = model.predict(xt, batch_size=batch, verbose=0)
    infer_s = time.perf_counter() - t0
    if args.workload == "cnn":
        metric_name, metric = "test_accuracy", float((out.argmax(1) == yt).mean())
    else:
        metric_name, metric = "test_mse", float(((out - xt) ** 2).mean())

    result = {
        "side": "keras",
        "workload": args.workload,
        "variant": "lecture",
        "batch_size": batch,
        "optimizer": "sgd" if args.workload == "cnn" else "adam",
        "steps_timed": args.steps,
        "train_img_per_s": n_train / timed_s,
        "infer_img_per_s": xt.shape[0] / infer_s,
        "train_seconds_timed": timed_s,
        "warmup_seconds": warm_s,
        "fit_seconds_total": fit_s,
        "load_seconds": load_s,
        "final_train_loss": float(history.history["loss"][-1]),
        metric_name: metric,
        "metric_note": f"after 2 epochs over the {n_train}-image bench subset (a sanity check, not a full run)",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jit_compile": bool(getattr(model, "jit_compile", False)),
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86)"),
        },
        "pid": os.getpid(),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
