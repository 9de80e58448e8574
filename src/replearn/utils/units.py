"""A store of finished units of work, so that a resumed run loads them instead of redoing them.

A long run that is a loop over many small, independent pieces of work (the assignment: every grid point
on every split, every probe on every split) keeps each finished piece, a *unit*, in its run folder as
soon as it finishes: one file per unit, written atomically, named by the unit's identity (a small
table such as ``{"part": "cnn", "point": "d2-w16", "split": 3}``). A run killed at any moment leaves
whole units or none; ``--resume`` loads the finished ones and computes the rest. How a workflow uses it::

    store = UnitStore(out, resume=resume, fingerprint=config)     # out: the run folder (None: keep nothing)

    def fit_predict(tr, va, r):                                   # the protocol's function of one split
        def train() -> Unit:
            clf = cnn_estimator(point, config, n_classes, seed + r, device, augment).fit(x[tr], y[tr])
            return Unit(record={"history": clf.history_.history, "n_params": count_params(clf.model_)[0]},
                        arrays={"predicted": clf.predict(x[va])},
                        state=clf.model_.state_dict() if r == 0 else {})
        unit = store.unit({"part": "cnn", "point": point.name, "split": r}, train)
        rec.histories.append(unit.record["history"])
        return unit.arrays["predicted"]

For a resumed run to end exactly as an uninterrupted one:

- every unit seeds its own randomness (as ``seed + r`` above): a loaded unit draws no random numbers;
- the workflow uses what :meth:`UnitStore.unit` returns, never its own objects: a computed unit comes
  back in the form a loaded one has (the record through JSON: tuples become lists, numpy numbers
  Python numbers; arrays and tensors exactly, dtype and all);
- the ``fingerprint`` (e.g. the run's config) names what the units depend on: a unit stored under
  another fingerprint is computed again, never reused.

Files: ``<run>/checkpoints/units/<name>-<hash>.safetensors``: the arrays and tensors, with the identity,
the fingerprint's hash and the record (JSON) in the metadata; nothing is unpickled. ``--overwrite``
removes them with the run's other checkpoints. A unit file that cannot be read is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from replearn.errors import ReplearnError
from replearn.utils.atomic import atomic_path, to_jsonable

UNITS_DIR = Path("checkpoints") / "units"
"""Where a run folder keeps its units (inside the folder of the training checkpoints)."""
FORMAT = "replearn-unit/1"


@dataclass
class Unit:
    """One finished unit of work.

    Attributes:
        record: JSON-able values (numbers, strings, lists, tables): metrics, histories, timings.
        arrays: named numpy arrays of any shape, e.g. ``predicted`` (N,) int64.
        state: named tensors, e.g. a model's ``state_dict()`` (kept on the CPU).
    """

    record: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, torch.Tensor] = field(default_factory=dict)


def _canonical(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=to_jsonable, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ReplearnError(f"UnitStore: the {what} must be JSON-able ({exc})") from None


class UnitStore:
    """Finished units of one run, each kept atomically in the run folder under its identity.

    Args:
        run_dir: the run folder; None keeps nothing (every unit is computed).
        resume: load units that a previous, interrupted run of this folder finished.
        fingerprint: what every unit depends on (JSON-able, e.g. the config); units stored under
            another fingerprint are not reused.
        write: False: read stored units but write none (``--ddp``: every rank trains alike, rank 0 alone writes).
    """

    def __init__(self, run_dir: str | os.PathLike | None, resume: bool = False, fingerprint: Any = None,
                 write: bool = True) -> None:
        self.folder = None if run_dir is None else Path(run_dir) / UNITS_DIR
        self.write = bool(write)
        self.resume = bool(resume)
        self.fingerprint = hashlib.sha256(_canonical(fingerprint, "fingerprint").encode()).hexdigest()
        self.loaded = 0
        """How many units :meth:`unit` loaded instead of computing (for the run's log)."""
        self._kept: dict[str, Unit] = {}  # units computed ahead (e.g. in parallel) by this run: key -> unit

    def path(self, key: Mapping[str, Any]) -> Path | None:
        """The file of the unit named ``key`` (None without a run folder)."""
        if self.folder is None:
            return None
        text = _canonical(dict(key), "unit key")
        slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(f"{k}={v}" for k, v in key.items()))[:80].strip("._")
        return self.folder / f"{slug or 'unit'}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.safetensors"

    def get(self, key: Mapping[str, Any]) -> Unit | None:
        """The stored unit ``key`` when resuming and it was finished under this fingerprint; else None."""
        path = self.path(key)
        if not self.resume or path is None or not path.is_file():
            return None
        try:
            with safe_open(str(path), "pt") as fh:
                meta = fh.metadata() or {}
                tensors = {name: fh.get_tensor(name) for name in fh.keys()}
            if (meta.get("format") != FORMAT or meta.get("fingerprint") != self.fingerprint
                    or meta.get("key") != _canonical(dict(key), "unit key")):
                return None
            record = json.loads(meta["record"])
        except (OSError, ValueError, KeyError, SafetensorError):
            return None  # unreadable: computed again
        arrays = {k[len("array/"):]: t.numpy() for k, t in tensors.items() if k.startswith("array/")}
        state = {k[len("state/"):]: t for k, t in tensors.items() if k.startswith("state/")}
        return Unit(record, arrays, state)

    def put(self, key: Mapping[str, Any], unit: Unit) -> Unit:
        """Keep ``unit`` under ``key`` (atomically; nothing without a run folder); return it as :meth:`get` would."""
        record = json.loads(_canonical(unit.record, "unit record"))
        arrays = {str(k): np.asarray(v) for k, v in unit.arrays.items()}
        state = {str(k): v.detach().cpu() for k, v in unit.state.items()}
        for name, a in arrays.items():
            if a.dtype == object:
                raise ReplearnError(f"UnitStore: array {name!r} holds Python objects; store numbers only")
        path = self.path(key)
        if path is not None and self.write:
            tensors = {f"array/{k}": torch.from_numpy(np.array(a, order="C")) for k, a in arrays.items()}
            tensors.update({f"state/{k}": t.contiguous().clone() for k, t in state.items()})
            meta = {"format": FORMAT, "fingerprint": self.fingerprint, "key": _canonical(dict(key), "unit key"),
                    "record": json.dumps(record)}
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata=meta)
        return Unit(record, {k: a.copy() for k, a in arrays.items()}, {k: t.clone() for k, t in state.items()})

    def keep(self, key: Mapping[str, Any], unit: Unit) -> Unit:
        """:meth:`put` a unit computed ahead of its use (e.g. by a worker process); :meth:`unit` returns it."""
        kept = self._kept[_canonical(dict(key), "unit key")] = self.put(key, unit)
        return kept

    def has(self, key: Mapping[str, Any]) -> bool:
        """Whether :meth:`unit` would return ``key`` without computing it (kept by this run, or resumed)."""
        return _canonical(dict(key), "unit key") in self._kept or self.get(key) is not None

    def unit(self, key: Mapping[str, Any], compute: Callable[[], Unit]) -> Unit:
        """The unit ``key``: computed ahead by this run, loaded when a previous run finished it, else
        ``compute()``d and kept."""
        kept = self._kept.get(_canonical(dict(key), "unit key"))
        if kept is not None:
            return kept
        found = self.get(key)
        if found is not None:
            self.loaded += 1
            return found
        made = compute()
        if not isinstance(made, Unit):
            raise ReplearnError(f"UnitStore: compute() for {dict(key)} returned {type(made).__name__}, not a Unit")
        return self.put(key, made)
