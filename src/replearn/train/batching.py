"""Mini-batches sliced from tensors already in memory.

No per-item ``Dataset``/``DataLoader``: a batch is one ``index_select`` (or a
view for unshuffled data), which is what makes small-image training fast on CPU.
The shuffling order of an epoch depends only on ``(seed, epoch)``, so a run
resumed from a checkpoint sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

#: Separate random streams derived from (seed, epoch).
SHUFFLE_STREAM = 0
AUGMENT_STREAM = 1


def epoch_generator(seed: int, epoch: int, stream: int = SHUFFLE_STREAM) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, epoch, stream)`` alone (well mixed)."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Shuffled order of ``n`` samples for ``epoch``: int64 tensor (n,) on the CPU."""
    return torch.randperm(n, generator=epoch_generator(seed, epoch, SHUFFLE_STREAM))


def num_batches(n: int, batch_size: int, drop_single: bool = False) -> int:
    """Number of batches :func:`iter_batches` yields for ``n`` samples."""
    count = math.ceil(n / batch_size)
    if drop_single and count > 1 and n % batch_size == 1:
        count -= 1
    return count


def iter_batches(
    x: torch.Tensor,
    y: torch.Tensor | None,
    batch_size: int,
    order: torch.Tensor | None = None,
    drop_single: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(x_batch, y_batch)`` pairs of at most ``batch_size`` samples.

    Args:
        x: inputs (N, ...).
        y: targets (N, ...) or ``None``.
        batch_size: samples per batch.
        order: optional int64 (N,) permutation on ``x``'s device; without it the
            batches are contiguous views in the original order.
        drop_single: skip a last batch of a single sample (BatchNorm cannot
            train on one sample; with shuffling no sample is always skipped).
    """
    n = x.shape[0]
    for b in range(num_batches(n, batch_size, drop_single)):
        start, stop = b * batch_size, min((b + 1) * batch_size, n)
        if order is None:
            yield x[start:stop], (None if y is None else y[start:stop])
        else:
            idx = order[start:stop]
            yield x.index_select(0, idx), (None if y is None else y.index_select(0, idx))
