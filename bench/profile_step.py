"""Where a training step's time goes: ``torch.profiler`` over the engine's training loop.

    python bench/profile_step.py --workload cnn --variant bf16,cl --steps 6

Prints the operators by self CPU time (the table used to choose the speed levers).
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from replearn_side import WORKLOADS, build, parse_variant  # noqa: E402

from replearn.train import TrainConfig, fit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="cnn")
    p.add_argument("--variant", default="bf16,cl")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--rows", type=int, default=25)
    args = p.parse_args(argv)
    flags = parse_variant(args.variant)
    spec = WORKLOADS[args.workload]
    n = args.steps * spec["batch"]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=g)  # SYNTHETIC inputs: timing only
    y = torch.randint(0, 10, (n,), generator=g) if args.workload == "cnn" else x
    model = build(args.workload)
    config = TrainConfig(epochs=1, batch_size=spec["batch"], optimizer=spec["optimizer"], lr=spec["lr"],
                         loss=spec["loss"], channels_last="cl" in flags, bf16="bf16" in flags, device="cpu",
                         monitor="loss")
    fit(model, (x, y), config=config, progress=False)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(model, (x, y), config=config, progress=False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
