"""Freeze and unfreeze parts of a model.

Frozen parameters stop receiving gradients; frozen BatchNorm layers are
marked ``frozen = True`` so the training engine keeps them in inference mode
(their moving statistics stay fixed), as Keras does for ``trainable = False``.
"""

from __future__ import annotations

from torch import nn


def _set(module: nn.Module, frozen: bool) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(not frozen)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.frozen = frozen
            if frozen:
                m.eval()
    return module


def freeze(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place (parameters and BatchNorm statistics); return it."""
    return _set(module, True)


def unfreeze(module: nn.Module) -> nn.Module:
    """Undo :func:`freeze` in place; return the module."""
    return _set(module, False)


def keep_frozen_in_eval(model: nn.Module) -> None:
    """Put every submodule marked ``frozen`` into eval mode (call after ``model.train()``)."""
    for m in model.modules():
        if getattr(m, "frozen", False):
            m.eval()
