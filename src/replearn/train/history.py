"""Per-epoch record of a training run, shaped like Keras's ``History``."""

from __future__ import annotations

from typing import Any, Iterator, Mapping


class History:
    """Metrics of every finished epoch.

    Attributes:
        history: metric name -> one float per epoch (``"loss"``, ``"accuracy"``,
            ``"val_loss"``, ``"val_accuracy"``, ``"<name>_loss"`` for each eval set,
            ``"lr"``, ``"time"`` in seconds).
        epoch: 0-based indices of the recorded epochs.
        monitor: the metric used for early stopping and best weights.
        best_epoch: 0-based epoch with the best ``monitor`` value, or ``None`` when it is not tracked.
        best_metric: the ``monitor`` value at ``best_epoch``.
        stopped_epoch: epoch after which early stopping ended the run, or ``None``.
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.monitor = monitor
        self.best_epoch: int | None = None
        self.best_metric: float | None = None
        self.stopped_epoch: int | None = None

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Record the metrics ``logs`` of ``epoch``; every epoch must log the same names."""
        if self.epoch:
            assert set(logs) == set(self.history), f"epoch {epoch} logs {sorted(logs)} != {sorted(self.history)}"
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epoch.append(int(epoch))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def __len__(self) -> int:
        return len(self.epoch)

    def last(self) -> dict[str, float]:
        """Metrics of the latest epoch (empty before the first)."""
        return {k: v[-1] for k, v in self.history.items()} if self.epoch else {}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of lists, numbers and strings (JSON- and ``weights_only``-safe)."""
        return {
            "history": {k: list(v) for k, v in self.history.items()},
            "epoch": list(self.epoch),
            "monitor": self.monitor,
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "stopped_epoch": self.stopped_epoch,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "History":
        """Inverse of :meth:`to_dict`."""
        out = cls(monitor=data["monitor"])
        out.history = {k: [float(x) for x in v] for k, v in data["history"].items()}
        out.epoch = [int(e) for e in data["epoch"]]
        out.best_epoch = data.get("best_epoch")
        out.best_metric = data.get("best_metric")
        out.stopped_epoch = data.get("stopped_epoch")
        return out

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, metrics={sorted(self.history)}, best_epoch={self.best_epoch})"
