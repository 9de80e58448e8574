"""``run_units``: units computed in workers with the asked threads, kept as they finish, named when they fail."""

from __future__ import annotations

import functools
import os
import signal
import sys

import cloudpickle
import numpy as np
import pytest
import torch

from replearn.errors import ReplearnError
from replearn.utils.parallel import Workers, run_units, thread_limit
from replearn.utils.units import UNITS_DIR, Unit, UnitStore

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the units below run in worker processes


def _report(i: int) -> Unit:
    """A unit that says where it ran and with how many threads; its numbers depend on its identity only."""
    rng = np.random.default_rng(i)
    return Unit(record={"threads": torch.get_num_threads(), "pid": os.getpid()},
                arrays={"x": rng.random(3)})


def _fail(i: int, kind: str) -> Unit:
    if i == 2 and kind == "user":
        raise ReplearnError("the crops are 7x7 pixels; the models need 8x8")
    if i == 2 and kind == "bug":
        raise ValueError("a real bug")
    if i == 2 and kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return _report(i)


def _plan(n: int, compute=_report, *args) -> list:
    return [({"part": "test", "split": i}, functools.partial(compute, i, *args)) for i in range(n)]


@pytest.mark.parametrize("threads", [1, 2])
def test_each_worker_trains_with_the_asked_threads(threads):
    store = UnitStore(None)
    plan = _plan(4)
    assert run_units(store, plan, Workers(jobs=2, threads=threads, progress=False)) == 4
    records = [store.unit(key, compute).record for key, compute in plan]
    assert {r["threads"] for r in records} == {threads}
    assert os.getpid() not in {r["pid"] for r in records}  # computed in worker processes, not here


def test_one_job_runs_here_with_the_asked_threads_and_restores_them():
    before = torch.get_num_threads()
    store = UnitStore(None)
    plan = _plan(2)
    run_units(store, plan, Workers(jobs=1, threads=2, progress=False))
    records = [store.unit(key, compute).record for key, compute in plan]
    assert {r["pid"] for r in records} == {os.getpid()} and {r["threads"] for r in records} == {2}
    assert torch.get_num_threads() == before
    with thread_limit(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before


def test_results_do_not_depend_on_the_number_of_workers():
    plan = _plan(5)
    arrays = []
    for jobs in (1, 2):
        store = UnitStore(None)
        run_units(store, plan, Workers(jobs=jobs, progress=False))
        arrays.append([store.unit(key, compute).arrays["x"] for key, compute in plan])
    assert all(np.array_equal(a, b) for a, b in zip(*arrays))


def test_resume_computes_only_the_missing_units(tmp_path):
    plan = _plan(6)
    assert run_units(UnitStore(tmp_path), plan, Workers(jobs=2, progress=False)) == 6
    files = sorted((tmp_path / UNITS_DIR).iterdir())
    assert len(files) == 6  # each kept in the run folder as it finished
    for f in files[:2]:
        f.unlink()
    kept = {f: f.stat().st_mtime_ns for f in files[2:]}
    again = UnitStore(tmp_path, resume=True)
    assert run_units(again, plan, Workers(jobs=2, progress=False)) == 2
    assert all(f.stat().st_mtime_ns == t for f, t in kept.items())  # the finished units were not rewritten
    assert len(list((tmp_path / UNITS_DIR).iterdir())) == 6
    assert run_units(UnitStore(tmp_path, resume=True), plan, Workers(jobs=2, progress=False)) == 0


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_unit_is_named_once(jobs):
    with pytest.raises(ReplearnError) as caught:
        run_units(UnitStore(None), _plan(4, _fail, "user"), Workers(jobs=jobs, progress=False))
    message = str(caught.value)
    assert message == "unit part=test split=2: the crops are 7x7 pixels; the models need 8x8"
    with pytest.raises(ValueError, match="a real bug") as bug:  # a bug keeps its type and traceback
        run_units(UnitStore(None), _plan(4, _fail, "bug"), Workers(jobs=jobs, progress=False))
    assert bug.value.__notes__ == ["replearn: this failed in unit part=test split=2"]


def test_a_killed_worker_fails_the_run_in_one_line(tmp_path):
    with pytest.raises(ReplearnError, match="a worker process died") as caught:
        run_units(UnitStore(tmp_path), _plan(3, _fail, "kill"), Workers(jobs=2, progress=False))
    assert "\n" not in str(caught.value) and "--resume" in str(caught.value)


def test_bad_workers_and_a_missing_dask_are_one_line(monkeypatch):
    with pytest.raises(ReplearnError, match="--jobs -1"):
        Workers(jobs=-1).check()
    with pytest.raises(ReplearnError, match="tcp://HOST:8786"):
        Workers(scheduler="nowhere").check()
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    with pytest.raises(ReplearnError, match=r"replearn\[cluster\]"):
        Workers(scheduler="tcp://127.0.0.1:8786").check()


def test_an_unreachable_scheduler_is_one_line(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("replearn.utils.parallel.CONNECT_TIMEOUT", 1)
    with pytest.raises(ReplearnError, match="cannot reach the Dask scheduler") as caught:
        run_units(UnitStore(None), _plan(2), Workers(scheduler="tcp://127.0.0.1:9", progress=False))
    assert "\n" not in str(caught.value) and "dask scheduler" in str(caught.value)


def test_the_scheduler_comes_from_the_environment(monkeypatch):
    class Cfg:
        jobs, threads, scheduler, progress = 3, 1, None, False

    monkeypatch.setenv("REPLEARN_SCHEDULER", "tcp://10.0.0.1:8786")
    assert Workers.of(Cfg()).scheduler == "tcp://10.0.0.1:8786"
    Cfg.scheduler = "tcp://127.0.0.1:8786"
    assert Workers.of(Cfg()) == Workers(3, 1, "tcp://127.0.0.1:8786", False)


def test_shared_out_threads_do_not_depend_on_how_many_units_are_left(monkeypatch):
    """--threads 0 with 2 workers: every unit trains on cores / 2 threads, also the last one left (run here)."""
    monkeypatch.setattr("replearn.utils.parallel.cores", lambda: 4)
    workers = Workers(jobs=2, threads=0, progress=False)
    assert workers.unit_threads() == 2 and Workers(jobs=1, threads=0).unit_threads() == 4
    assert Workers(jobs=0, threads=0).unit_threads() == 1 and Workers(jobs=3, threads=5).unit_threads() == 5
    store = UnitStore(None)
    plan = _plan(1)  # one unit: computed here, not in a worker
    run_units(store, plan, workers)
    assert store.unit(*plan[0]).record["threads"] == 2
