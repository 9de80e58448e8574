"""Tiny synthetic data and models for the training tests (seconds on a CPU)."""

from __future__ import annotations

import torch
from torch import nn


def blobs(n: int = 192, classes: int = 3, seed: int = 0, noise: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic separable classes: x float32 (n, 1, 8, 8) = class pattern + noise, y int64 (n,)."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 1, 8, 8, generator=torch.Generator().manual_seed(1234))
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=g)]
    x = patterns[y] + noise * torch.randn(n, 1, 8, 8, generator=g)
    return x.float(), y.long()


def tiny_classifier(classes: int = 3, seed: int = 0, dropout: float = 0.25) -> nn.Sequential:
    """Conv -> BatchNorm -> ReLU -> Dropout -> Linear on (N, 1, 8, 8) inputs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, classes),
    )


def tiny_autoencoder(seed: int = 0, sigmoid: bool = False) -> nn.Sequential:
    """Dense autoencoder (N, 1, 8, 8) -> (N, 1, 8, 8) with a 16-unit code."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [
        nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 64), nn.Unflatten(1, (1, 8, 8)),
    ]
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def low_rank_images(n: int = 128, seed: int = 0) -> torch.Tensor:
    """Synthetic images in [0, 1] lying near a 4-dimensional subspace: float32 (n, 1, 8, 8)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(4, 64, generator=g)
    codes = torch.randn(n, 4, generator=g)
    return torch.sigmoid(codes @ basis / 2).reshape(n, 1, 8, 8)


def states_equal(a: nn.Module | dict, b: nn.Module | dict) -> bool:
    """Whether two modules (or state dicts) hold bit-identical tensors under the same keys."""
    sa = a.state_dict() if isinstance(a, nn.Module) else a
    sb = b.state_dict() if isinstance(b, nn.Module) else b
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_time(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """The history minus the wall-clock ``time`` entries."""
    return {k: v for k, v in history.items() if k != "time"}
