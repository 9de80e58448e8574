"""``replearn fewlabels``' runs as units of a parallel sweep: one per (method, label count, draw).

Every unit draws its labelled images and seeds its training from ``seed + draw`` alone, so the records do not
depend on where or in which order the units ran (``--jobs``, ``--scheduler``). The label-free encoders that
some methods share are pretrained once, here, before the units start; the images travel to the workers as
numpy arrays, which joblib memory-maps instead of copying them into every task.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from typing import Any

import numpy as np
import torch

from replearn.utils.parallel import Workers, run_units
from replearn.utils.units import Unit, UnitStore
from replearn.workflows._fewlabels_data import FewLabelData
from replearn.workflows._fewlabels_methods import SHARED, Pretrained, train_and_predict

IMAGES = ("x", "y", "extra", "x_test", "y_test")


def _as_numpy(data: FewLabelData) -> FewLabelData:
    return dataclasses.replace(data, **{f: getattr(data, f).numpy() for f in IMAGES})


def _as_torch(data: FewLabelData) -> FewLabelData:
    return dataclasses.replace(data, **{f: torch.from_numpy(np.array(getattr(data, f))) for f in IMAGES})


def run_one(method: str, data: FewLabelData, k: int | None, r: int, cfg: Any, pre: Pretrained, device: str) -> Unit:
    """One method on draw ``r`` of ``k`` labels per class (seed ``cfg.seed + r``): its test accuracy and times."""
    data = _as_torch(data)
    pre = copy.copy(pre)
    pre.data = data
    start, cpu = time.perf_counter(), time.process_time()
    labelled, unlabelled = data.draw(k, cfg.seed + r)
    predicted = train_and_predict(method, data, labelled, unlabelled, cfg.seed + r, cfg, pre, device)
    return Unit(record={"method": method, "per_class": k, "draw": r, "seed": cfg.seed + r,
                        "n_labelled": int(len(labelled)), "accuracy": float(np.mean(predicted == data.y_test.numpy())),
                        "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu})


def run_all(cfg: Any, data: FewLabelData, counts: list[int | None], pre: Pretrained, device: str,
            workers: Workers) -> list[dict[str, Any]]:
    """Every method on every draw of every label count, on ``workers``; one record each, in (k, draw, method) order."""
    for method in cfg.method_list():  # the shared encoders first, once, here
        if method in SHARED:
            getattr(pre, SHARED[method])()
    shipped, light = _as_numpy(data), copy.copy(pre)
    light.data = None  # the workers get the images once, through ``shipped``
    plan = [({"method": m, "per_class": k, "draw": r}, functools.partial(run_one, m, shipped, k, r, cfg, light, device))
            for k in counts for r in range(cfg.draws) for m in cfg.method_list()]
    store = UnitStore(None)
    run_units(store, plan, workers, desc="fewlabels", unit="run")
    return [store.unit(key, compute).record for key, compute in plan]
