"""What ``replearn label`` remembers: the crops, the labels given so far, skips, and the file they are saved to.

The saved file is the course's format (``labelled``, ``labels``, ``unlabelled``, ``class_names``) that
``replearn assignment --data`` reads, plus provenance that lets a later session continue:
``crops_file`` and ``crops_sha256`` (which crops), ``label_index`` (N,) (the position of each labelled
crop among the input's unlabelled crops; -1 for crops that came labelled), ``label_time`` (N,) (UTC,
ISO 8601; the rows are in the order they were labelled), ``unlabelled_index``, ``skipped`` and the
action history (``action_kind``, ``action_index``) that undo walks back. It is written atomically after
every change, so a killed server loses no confirmed label.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError


class LabelError(ValueError):
    """A request that cannot be applied (an index out of range, a crop labelled twice, nothing to undo)."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LabelSession:
    """The crops to label (the input's ``unlabelled``, (M, H, W)) and the labels given, saved to ``out``.

    Thread-safe: the server's threads call :meth:`label`, :meth:`skip` and :meth:`undo` under one lock.
    """

    def __init__(self, crops: str | Path, out: str | Path) -> None:
        from replearn.data import load_assignment

        self.crops_path, self.out = Path(crops), Path(out)
        data = load_assignment(self.crops_path, require_labelled=False)
        if len(data.unlabelled) == 0:
            raise ReplearnError(f"{crops}: has no unlabelled crops to label")
        self.data, self.pool, self.class_names = data, data.unlabelled, list(data.class_names)
        self.sha256 = file_sha256(self.crops_path)
        self.order: list[int] = []
        self.stages: list[int] = []
        self.times: list[str] = []
        self.skipped: list[int] = []
        self.actions: list[tuple[str, int]] = []
        self.lock = threading.RLock()
        self.version = 0
        if self.out.exists():
            self._resume()

    # ------------------------------------------------------------------ state
    @property
    def n_classes(self) -> int:
        """K, the number of stages (buttons)."""
        return len(self.class_names)

    def remaining(self) -> np.ndarray:
        """Pool indices neither labelled nor skipped, ascending."""
        done = np.zeros(len(self.pool), bool)
        done[self.order + self.skipped] = True
        return np.flatnonzero(~done)

    def counts(self) -> list[int]:
        """Labels per class, the input's labelled crops included."""
        all_labels = np.concatenate([self.data.labels, np.asarray(self.stages, dtype=np.int64)])
        return np.bincount(all_labels, minlength=self.n_classes).tolist()

    # ------------------------------------------------------------------ changes
    def _check_index(self, index: object) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.pool):
            raise LabelError(f"index: expected an integer 0..{len(self.pool) - 1}, got {index!r}")
        if index in self.order:
            raise LabelError(f"crop {index} is labelled already; undo first to change it")
        return index

    def label(self, index: object, stage: object) -> None:
        """Give pool crop ``index`` the class ``stage`` and save."""
        with self.lock:
            i = self._check_index(index)
            if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < self.n_classes:
                raise LabelError(f"stage: expected an integer 0..{self.n_classes - 1}, got {stage!r}")
            if i in self.skipped:
                self.skipped.remove(i)
            self.order.append(i)
            self.stages.append(stage)
            self.times.append(datetime.now(UTC).isoformat(timespec="seconds"))
            self.actions.append(("label", i))
            self._changed()

    def skip(self, index: object) -> None:
        """Leave pool crop ``index`` unlabelled and do not offer it again; save."""
        with self.lock:
            i = self._check_index(index)
            if i not in self.skipped:
                self.skipped.append(i)
                self.actions.append(("skip", i))
                self._changed()

    def undo(self) -> tuple[str, int]:
        """Take back the last label or skip; save; return what was undone."""
        with self.lock:
            if not self.actions:
                raise LabelError("nothing to undo")
            kind, i = self.actions.pop()
            if kind == "label":
                k = len(self.order) - 1 - self.order[::-1].index(i)
                del self.order[k], self.stages[k], self.times[k]
            else:
                self.skipped.remove(i)
            self._changed()
            return kind, i

    def _changed(self) -> None:
        self.version += 1
        self.save()

    # ------------------------------------------------------------------ the file
    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the saved file holds (see the module docstring)."""
        d, picked = self.data, np.asarray(self.order, dtype=np.int64)
        rest = self.remaining_unlabelled()
        n_prior = len(d.labelled)
        arrays = {
            "labelled": np.concatenate([d.labelled, self.pool[picked]]) if n_prior else self.pool[picked],
            "labels": np.concatenate([d.labels, np.asarray(self.stages, dtype=np.int64)]),
            "unlabelled": self.pool[rest], "class_names": np.asarray(self.class_names, dtype=str),
            "crops_file": np.array(str(self.crops_path.resolve())), "crops_sha256": np.array(self.sha256),
            "label_index": np.concatenate([np.full(n_prior, -1, np.int64), picked]),
            "label_time": np.asarray([""] * n_prior + self.times, dtype=str),
            "unlabelled_index": rest, "skipped": np.asarray(self.skipped, dtype=np.int64),
            "action_kind": np.asarray([k for k, _ in self.actions], dtype=str),
            "action_index": np.asarray([i for _, i in self.actions], dtype=np.int64),
        }
        if d.synthetic:
            arrays.update(synthetic=np.array(True), source=np.array(f"labelled with replearn label from {d.source}"))
        return arrays

    def remaining_unlabelled(self) -> np.ndarray:
        """Pool indices not labelled (skipped ones included), ascending."""
        keep = np.ones(len(self.pool), bool)
        keep[self.order] = False
        return np.flatnonzero(keep)

    def save(self) -> None:
        """Write :meth:`arrays` to ``out`` atomically."""
        from replearn.utils.atomic import atomic_path

        arrays = self.arrays()
        with atomic_path(self.out) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def _resume(self) -> None:
        """Continue from ``out``: the same crops (by checksum), its labels, skips and history."""
        where = f"--out {self.out}"
        try:
            with np.load(self.out, allow_pickle=False) as f:
                saved = {k: f[k] for k in ("crops_sha256", "label_index", "labels", "label_time", "skipped",
                                           "action_kind", "action_index")}
        except (OSError, ValueError, KeyError) as exc:
            raise ReplearnError(f"{where}: exists but is not a file replearn label wrote ({exc}); choose another "
                                "--out") from None
        if str(saved["crops_sha256"]) != self.sha256:
            raise ReplearnError(f"{where}: was labelled from other crops than {self.crops_path} (checksums differ); "
                                "choose another --out")
        ours = saved["label_index"] >= 0
        self.order = saved["label_index"][ours].tolist()
        self.stages = saved["labels"][ours].tolist()
        self.times = saved["label_time"][ours].tolist()
        self.skipped = saved["skipped"].tolist()
        self.actions = list(zip(saved["action_kind"].tolist(), saved["action_index"].tolist()))
        if any(not 0 <= i < len(self.pool) for i in self.order + self.skipped) or \
                any(not 0 <= s < self.n_classes for s in self.stages):
            raise ReplearnError(f"{where}: holds indices or stages that do not fit {self.crops_path}")
