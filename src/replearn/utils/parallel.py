"""Independent units of work in parallel: worker processes on this machine (joblib, loky) or a Dask cluster.

A sweep (the assignment's grid points x splits, its probes, repeated seeds or draws) is many small,
independent trainings. :func:`run_units` computes the missing units of a
:class:`~replearn.utils.units.UnitStore` in ``jobs`` worker processes, each limited to ``threads`` threads
(PyTorch and the BLAS/OpenMP pools, set inside the worker, never at import), and keeps every unit in the
store as it finishes, so ``--resume`` continues an interrupted sweep. With a scheduler address
(``--scheduler tcp://HOST:8786`` or ``$REPLEARN_SCHEDULER``) the same units go to a ``dask.distributed``
cluster through joblib's Dask backend; the results come back to this process, which writes the run folder::

    plan = [({"part": "cnn", "point": p.name, "split": r}, partial(train_one, p, r)) for p in points for r in ...]
    run_units(store, plan, Workers(jobs=2), desc="(a) CNN grid")
    unit = store.unit(key, compute)      # afterwards: loaded from the store, not computed again

Results do not depend on ``jobs`` for a given ``threads``: every unit seeds itself from its own identity (e.g.
``seed + split``), and with ``threads`` T > 0 trains on T threads whatever the number of workers (the thread
count changes the last digits; the default, 0, gives each of N workers cores / N threads: ``docs/performance.md``).
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from tqdm import tqdm

from replearn.errors import ReplearnError
from replearn.utils.units import Unit, UnitStore

SCHEDULER_ENV = "REPLEARN_SCHEDULER"
"""The environment variable that gives the Dask scheduler's address when ``--scheduler`` is not given."""
CONNECT_TIMEOUT = 20
"""Seconds to wait for the Dask scheduler before giving up (one line)."""
DEFAULT_THREADS = 0
"""Threads: 0 shares the cores out, one thread per worker with one worker per core, and every core for the run's
own stages (autoencoders, SimCLR, figures) in this process. Measured on an idle 2-core machine: one thread per
stage made the default assignment run 1.4x slower than two (``docs/performance.md``)."""

Plan = Sequence[tuple[Mapping[str, Any], Callable[[], Unit]]]
"""The units of a sweep: (identity, compute) pairs; ``compute()`` must be picklable (a module-level function
or a ``functools.partial`` of one) to run in a worker process."""


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` PyTorch threads and BLAS/OpenMP threads; restore them after."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        with threadpool_limits(max(1, int(threads))):
            yield
    finally:
        torch.set_num_threads(before)


def with_threads(run: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a workflow's ``run(cfg, ...)`` so that its own stages (outside the units) train with ``cfg.threads``
    threads, every core with 0 (restored after)."""

    @functools.wraps(run)
    def wrapped(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with thread_limit(Workers.of(cfg).threads_per_worker(1)):
            return run(cfg, *args, **kwargs)

    return wrapped


@dataclass
class Workers:
    """Where units run: ``jobs`` local worker processes (0: one per core; 1: in this process, one after another),
    ``threads`` threads in each (0: cores // jobs), or the Dask cluster at ``scheduler``; ``progress``: a bar."""

    jobs: int = 1
    threads: int = DEFAULT_THREADS
    scheduler: str | None = None
    progress: bool = True

    @classmethod
    def of(cls, cfg: Any) -> "Workers":
        """The workers a workflow's Config asks for (its ``jobs``, ``threads``, ``scheduler``, ``progress`` fields)."""
        scheduler = getattr(cfg, "scheduler", None) or os.environ.get(SCHEDULER_ENV) or None
        return cls(int(getattr(cfg, "jobs", 1)), int(getattr(cfg, "threads", DEFAULT_THREADS)), scheduler,
                   bool(getattr(cfg, "progress", True)))

    def local_jobs(self) -> int:
        """Worker processes on this machine (``jobs``, with 0 meaning one per core)."""
        return self.jobs if self.jobs > 0 else cores()

    def threads_per_worker(self, workers: int) -> int:
        """Threads in each of ``workers`` workers: ``threads``, or with 0 the cores shared out (at least 1)."""
        return self.threads if self.threads > 0 else max(1, cores() // max(1, workers))

    def unit_threads(self) -> int:
        """Threads every unit of the run trains with, however many are left to compute (so a resumed run's units
        match): ``threads``, or with 0 the cores shared among the local workers (on a cluster: among none)."""
        return self.threads_per_worker(1 if self.scheduler else self.local_jobs())

    def check(self) -> None:
        """Raise a one-line :class:`ReplearnError` for bad values, or a scheduler without Dask installed."""
        if self.jobs < 0:
            raise ReplearnError(f"--jobs {self.jobs}: give the number of worker processes (0: one per core)")
        if self.threads < 0:
            raise ReplearnError(f"--threads {self.threads}: give threads per worker (0: cores / workers)")
        if self.scheduler:
            check_scheduler(self.scheduler)


def check_scheduler(address: str) -> None:
    """A one-line error when ``address`` is not a scheduler address or Dask is not installed."""
    if "://" not in address and ":" not in address:
        raise ReplearnError(f"--scheduler {address!r}: give the Dask scheduler's address, e.g. tcp://HOST:8786")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ReplearnError(f"--scheduler {address}: Dask is not installed; pip install 'replearn[cluster]' "
                            "(dask and distributed)") from None


def describe(key: Mapping[str, Any]) -> str:
    """A unit's identity in words: ``part=cnn point=d4-w16 split=2``."""
    return " ".join(f"{k}={v}" for k, v in key.items())


def compute_unit(index: int, key: Mapping[str, Any], compute: Callable[[], Unit], threads: int) -> tuple[int, Unit]:
    """Compute one unit with ``threads`` threads (in a worker or here); a failure names the unit.

    A :class:`ReplearnError` becomes one line starting with the unit's identity; any other exception keeps
    its traceback and gains a note naming the unit.
    """
    with thread_limit(threads):
        try:
            unit = compute()
        except ReplearnError as exc:
            raise ReplearnError(f"unit {describe(key)}: {exc}") from None
        except Exception as exc:
            exc.add_note(f"replearn: this failed in unit {describe(key)}")
            raise
    if not isinstance(unit, Unit):
        raise ReplearnError(f"unit {describe(key)}: compute() returned {type(unit).__name__}, not a Unit")
    return index, unit


def run_units(store: UnitStore, plan: Plan, workers: Workers, desc: str = "units", unit: str = "unit") -> int:
    """Compute the units of ``plan`` that ``store`` does not hold, in parallel; keep each as it finishes.

    Afterwards ``store.unit(key, compute)`` returns them without computing. The bar counts units done /
    total across workers (units loaded by ``--resume`` count as done). Returns how many were computed.

    Raises:
        ReplearnError: a unit's user mistake (naming the unit), a worker process that died (one line;
            the units finished before it are kept for ``--resume``), an unreachable scheduler.
    """
    missing = [(key, compute) for key, compute in plan if not store.has(key)]
    bar = tqdm(total=len(plan), initial=len(plan) - len(missing), desc=desc, unit=unit, disable=not workers.progress)
    try:
        if missing and workers.scheduler:
            _on_cluster(store, missing, workers, bar)
        elif min(workers.local_jobs(), len(missing)) > 1:
            _in_processes(store, missing, workers, bar)
        else:  # one worker, or one unit: here, one after another
            threads = workers.unit_threads()
            for i, (key, compute) in enumerate(missing):
                store.keep(key, compute_unit(i, key, compute, threads)[1])
                bar.update(1)
    finally:
        bar.close()
    return len(missing)


def _collect(store: UnitStore, missing: list, results: Any, bar: tqdm) -> None:
    """Keep each finished unit in the store as it comes back (in any order)."""
    for index, made in results:
        store.keep(missing[index][0], made)
        bar.update(1)


def _tasks(missing: list, threads: int) -> Iterator[Any]:
    from joblib import delayed

    return (delayed(compute_unit)(i, key, compute, threads) for i, (key, compute) in enumerate(missing))


def _in_processes(store: UnitStore, missing: list, workers: Workers, bar: tqdm) -> None:
    from joblib import Parallel
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    n = min(workers.local_jobs(), len(missing))
    try:
        results = Parallel(n_jobs=n, backend="loky", return_as="generator_unordered")(
            _tasks(missing, workers.unit_threads()))
        _collect(store, missing, results, bar)
    except TerminatedWorkerError:
        raise ReplearnError(f"a worker process died (killed, or out of memory?) after {bar.n} of {bar.total} units; "
                            "the finished units are kept: rerun with --resume, or with fewer --jobs") from None


def _on_cluster(store: UnitStore, missing: list, workers: Workers, bar: tqdm) -> None:
    check_scheduler(workers.scheduler or "")
    from distributed import Client
    from joblib import Parallel, parallel_config

    try:
        client = Client(workers.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ReplearnError(f"--scheduler {workers.scheduler}: cannot reach the Dask scheduler ({exc}); start one "
                            "with `dask scheduler` and workers with `dask worker ADDRESS --nthreads 1`") from None
    with client, parallel_config(backend="dask", client=client):
        results = Parallel(return_as="generator_unordered")(_tasks(missing, workers.unit_threads()))
        _collect(store, missing, results, bar)
