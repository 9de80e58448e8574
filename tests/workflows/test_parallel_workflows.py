"""``--jobs`` and ``--scheduler``: the assignment's grid in worker processes or on a Dask cluster ends exactly as
one after another; ``--resume`` computes only the missing units; a scheduler without Dask is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from replearn.cli import main
from replearn.utils.units import UNITS_DIR
from test_equivalence import VOLATILE  # keys that hold times and facts of the machine

# Seconds per run: 2 grid points (with and without augmentation) x 3 folds x (inner + outer), 1 autoencoder epoch.
TINY = """
[data]
n_labelled = 60
n_unlabelled = 40
folds = 3
cv_repeats = 1
[cnn]
depth = [1]
augment = [false, true]
pretrain = ["none"]
epochs = 2
[autoencoder]
code_dim = [2]
epochs = 1
[ssl]
epochs = 0
[pretrain]
generated = 100
[probes]
names = ["logreg", "knn"]
[report]
embedding = "pca"
"""


def _results(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _results(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_results(v) for v in value]
    return value


def _run(tmp: Path, name: str, *flags: str) -> dict:
    config = tmp / "tiny.toml"
    config.write_text(TINY)
    assert main(["assignment", "--config", str(config), "--out", str(tmp / name), "--no-progress", "--device", "cpu",
                 "--threads", "1", *flags]) == 0
    return json.loads((tmp / name / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny grid one unit after another (--jobs 1), the reference."""
    tmp = tmp_path_factory.mktemp("parallel")
    return tmp, _run(tmp, "jobs1", "--jobs", "1")


def test_two_workers_give_the_metrics_of_one(runs):
    tmp, one = runs
    two = _run(tmp, "jobs2", "--jobs", "2")
    assert _results(two) == _results(one)
    assert one["cnn"] and one["probes"]  # the comparison covered the CNN grid and the probes
    n_units = len(list((tmp / "jobs1" / UNITS_DIR).iterdir()))
    assert n_units == len(list((tmp / "jobs2" / UNITS_DIR).iterdir())) > 12


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_dask_cluster_gives_the_metrics_of_one_worker(runs, processes):
    """In CI one in-process worker thread (the whole Dask path, fast); with ``-m slow`` two worker processes."""
    distributed = pytest.importorskip("distributed")
    tmp, one = runs
    with distributed.LocalCluster(n_workers=1 + processes, threads_per_worker=1, processes=processes, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        dask = _run(tmp, f"dask-{processes}", "--scheduler", cluster.scheduler_address)
    assert _results(dask) == _results(one)
    assert (tmp / f"dask-{processes}" / "report.html").is_file()  # the client wrote the run folder


def test_resume_computes_only_the_missing_units(runs):
    tmp, one = runs
    _run(tmp, "resumed", "--jobs", "2")
    units = sorted((tmp / "resumed" / UNITS_DIR).iterdir())
    cnn = [u for u in units if u.name.startswith("part=cnn")]
    for u in cnn[:3]:  # as if the run had been killed before these finished
        u.unlink()
    (tmp / "resumed" / "metrics.json").unlink()
    untouched = {u: u.stat().st_mtime_ns for u in units if u.exists()}
    assert main(["assignment", "--out", str(tmp / "resumed"), "--resume", "--no-progress", "--jobs", "2"]) == 0
    after = sorted((tmp / "resumed" / UNITS_DIR).iterdir())
    assert after == units  # the 3 missing units were computed again ...
    assert all(u.stat().st_mtime_ns == t for u, t in untouched.items())  # ... and no other
    assert _results(json.loads((tmp / "resumed" / "metrics.json").read_text())) == _results(one)


def test_a_scheduler_without_dask_is_one_line_before_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    out = tmp_path / "run"
    assert main(["assignment", "--quick", "--out", str(out), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err.strip()
    assert "replearn[cluster]" in err and "\n" not in err and not out.exists()


def test_the_help_says_how_to_change_workers_and_threads(capsys):
    with pytest.raises(SystemExit):
        main(["assignment", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--jobs N" in text and "--threads T" in text and "small models train fastest on 1" in text
    assert "--scheduler ADDRESS" in text and "REPLEARN_SCHEDULER" in text
