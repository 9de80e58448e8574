"""Keras-style model summaries and parameter counts."""

from __future__ import annotations

from torch import nn

_BN_STATS = ("running_mean", "running_var")


def count_params(model: nn.Module) -> tuple[int, int, int]:
    """Return (total, trainable, non_trainable) parameters, counted as Keras counts them.

    Trainable: parameters with ``requires_grad``. Non-trainable: frozen
    parameters plus BatchNorm moving mean and variance (Keras stores these as
    non-trainable weights; ``num_batches_tracked`` has no Keras counterpart
    and is not counted).
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(
        b.numel()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for name, b in m.named_buffers(recurse=False)
        if name in _BN_STATS and b is not None
    )
    return trainable + frozen + stats, trainable, frozen + stats


def _own_count(module: nn.Module) -> int:
    total, _, _ = count_params(module)
    return total


def _rows(model: nn.Module) -> list[tuple[str, str, str]]:
    """(name (type), output shape, params) for each layer of a network or autoencoder."""
    from replearn.models.network import Network

    rows = []
    if isinstance(model, Network):
        for name, module in model.named_children():
            shape = "(None, " + ", ".join(str(d) for d in model.layer_shapes[name]) + ")"
            rows.append((f"{name} ({type(module).__name__})", shape, f"{_own_count(module):,}"))
        return rows
    for part_name, part in model.named_children():
        for name, shape, count in _rows(part):
            rows.append((f"{part_name}.{name}", shape, count))
    return rows


def summary(model: nn.Module, title: str | None = None) -> str:
    """A Keras-like table of layers (name, output shape, parameters) with the three totals.

    Works for :class:`~replearn.models.Network` and models made of networks
    (such as :class:`~replearn.models.AutoEncoder`).
    """
    rows = [("Layer (type)", "Output Shape", "Param #")] + _rows(model)
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
    line = "-" * sum(widths)
    out = []
    if title:
        out.append(f'Model: "{title}"')
    out.append("=" * sum(widths))
    for j, row in enumerate(rows):
        out.append(row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2].rjust(widths[2] - 2))
        if j == 0:
            out.append(line)
    total, trainable, non_trainable = count_params(model)
    out.append("=" * sum(widths))
    out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}", f"Non-trainable params: {non_trainable:,}"]
    out.append("_" * sum(widths))
    return "\n".join(out)
