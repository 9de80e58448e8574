"""Replearn side of the benchmark: the lecture's CNN and autoencoder trained through ``replearn.train.fit``.

One process measures one workload in one setting and prints one JSON object on
stdout (the driver ``bench/run.py`` collects them). Training throughput is
timed with the engine's own per-epoch clock: ``fit`` runs two epochs over a
subset of exactly ``steps * batch`` images, the first epoch is the warm-up and
the second is timed. Inference throughput is :func:`replearn.train.predict` on
the test set after one warm-up pass over a slice.

    python bench/replearn_side.py --workload cnn --variant bf16,cl --steps 20
    python bench/replearn_side.py --workload ae --variant cl --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from replearn.data import load_dataset, to_tensor
from replearn.models import KERAS_BN_MOMENTUM, create_model
from replearn.train import TrainConfig, fit, predict

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets"

#: Settings of each workload, as in the lecture (batch 512 SGD for the CNN, batch 256 Adam for the autoencoder).
WORKLOADS = {
    "cnn": dict(dataset="fashion", batch=512, optimizer="sgd", lr=1e-2, momentum=0.9, loss="cross_entropy"),
    "ae": dict(dataset="mnist", batch=256, optimizer="adam", lr=1e-3, momentum=0.9, loss="mse"),
}
#: Flags a variant may combine (comma-separated): channels-last, bf16 autocast, torch.compile,
#: and ``torchdrop`` (PyTorch's own ``nn.Dropout`` instead of replearn's byte-mask dropout, to measure that lever).
FLAGS = ("fp32", "cl", "bf16", "compile", "torchdrop")


def parse_variant(text: str) -> set[str]:
    """``"bf16,cl"`` -> ``{"bf16", "cl"}``; ``"fp32"`` alone means no flag."""
    flags = {f.strip() for f in text.split(",") if f.strip()}
    unknown = flags - set(FLAGS)
    if unknown or not flags:
        raise SystemExit(f"--variant {text!r}: unknown flags {sorted(unknown)}; allowed: {', '.join(FLAGS)}")
    return flags - {"fp32"}


def build(workload: str) -> torch.nn.Module:
    """The lecture's network with Keras's BatchNorm settings (momentum 0.99, epsilon 1e-3)."""
    if workload == "cnn":
        return create_model("minivgg", bn_momentum=KERAS_BN_MOMENTUM, bn_eps=1e-3)
    return create_model("conv_autoencoder", bn_momentum=KERAS_BN_MOMENTUM, bn_eps=1e-3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    p.add_argument("--variant", default="fp32", help=f"comma-separated flags from {FLAGS}")
    p.add_argument("--steps", type=int, default=20, help="timed training steps (the warm-up epoch has as many)")
    p.add_argument("--infer", type=int, default=10000, help="test images for the inference measurement")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    flags = parse_variant(args.variant)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    spec = WORKLOADS[args.workload]
    batch = spec["batch"]
    n_train = args.steps * batch

    t0 = time.perf_counter()
    train_images, train_labels = load_dataset(spec["dataset"], "train", args.data_dir, download=False, progress=False)
    test_images, test_labels = load_dataset(spec["dataset"], "test", args.data_dir, download=False, progress=False)
    x = to_tensor(train_images[:n_train])
    xt = to_tensor(test_images[: args.infer])
    if args.workload == "cnn":
        y, yt = torch.from_numpy(train_labels[:n_train]), torch.from_numpy(test_labels[: args.infer])
    else:
        y, yt = x, xt
    load_s = time.perf_counter() - t0

    torch.manual_seed(args.seed)
    model = build(args.workload)
    if "torchdrop" in flags:
        for parent in model.modules():
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Dropout):
                    setattr(parent, name, torch.nn.Dropout(child.p))
    net: torch.nn.Module = model
    compile_s = 0.0
    if "compile" in flags:
        net = torch.compile(model)
    config = TrainConfig(
        epochs=2, batch_size=batch, optimizer=spec["optimizer"], lr=spec["lr"], momentum=spec["momentum"],
        loss=spec["loss"], channels_last="cl" in flags, bf16="bf16" in flags, seed=args.seed, device="cpu",
        monitor="loss",
    )
    t0 = time.perf_counter()
    history = fit(net, (x, y), config=config, progress=False)
    fit_s = time.perf_counter() - t0
    warm_s, timed_s = history.history["time"]
    if "compile" in flags:
        compile_s = warm_s - timed_s  # the first epoch's extra time is (mostly) compilation

    infer_kw = dict(batch_size=batch, channels_last="cl" in flags, bf16="bf16" in flags)
    predict(net, xt[: 2 * batch], **infer_kw)  # warm-up
    t0 = time.perf_counter()
    out = predict(net, xt, **infer_kw)
    infer_s = time.perf_counter() - t0
    if args.workload == "cnn":
        metric_name, metric = "test_accuracy", float((out.argmax(1) == yt).double().mean())
    else:
        metric_name, metric = "test_mse", float(((out - xt) ** 2).mean())
    train_metric = history.history["loss"][-1]

    result = {
        "side": "replearn",
        "workload": args.workload,
        "variant": ",".join(sorted(flags)) or "fp32",
        "batch_size": batch,
        "optimizer": spec["optimizer"],
        "steps_timed": args.steps,
        "train_img_per_s": n_train / timed_s,
        "infer_img_per_s": xt.shape[0] / infer_s,
        "train_seconds_timed": timed_s,
        "warmup_seconds": warm_s,
        "compile_seconds": compile_s,
        "fit_seconds_total": fit_s,
        "load_seconds": load_s,
        "final_train_loss": train_metric,
        metric_name: metric,
        "metric_note": f"after 2 epochs over the {n_train}-image bench subset (a sanity check, not a full run)",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "pid": os.getpid(),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
