"""``UnitStore``: finished units kept atomically, loaded (not recomputed) on resume, exactly as computed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import replearn
from replearn.errors import ReplearnError
from replearn.train import STAGES_DIR
from replearn.utils.units import UNITS_DIR, Unit, UnitStore


def _unit(seed: int) -> Unit:
    rng = np.random.default_rng(seed)
    return Unit(record={"accuracy": float(rng.random()), "history": (0.5, 0.25), "n": np.int64(3)},
                arrays={"predicted": rng.integers(0, 3, 7), "codes": rng.random((7, 2)).astype(np.float32),
                        "flag": np.asarray(True)},
                state={"w": torch.randn(3, 2, generator=torch.Generator().manual_seed(seed)), "n": torch.tensor(4)})


def _same(a: Unit, b: Unit) -> bool:
    return (a.record == b.record and a.arrays.keys() == b.arrays.keys()
            and all(a.arrays[k].dtype == b.arrays[k].dtype and np.array_equal(a.arrays[k], b.arrays[k])
                    for k in a.arrays)
            and a.state.keys() == b.state.keys() and all(torch.equal(a.state[k], b.state[k]) for k in a.state))


def test_a_resumed_store_loads_finished_units_instead_of_computing_them(tmp_path):
    calls = []

    def compute(seed):
        calls.append(seed)
        return _unit(seed)

    first = UnitStore(tmp_path, fingerprint={"lr": 0.1})
    made = {r: first.unit({"part": "cnn", "point": "d2-w16", "split": r}, lambda r=r: compute(r)) for r in range(3)}
    assert calls == [0, 1, 2] and first.loaded == 0
    files = sorted((tmp_path / UNITS_DIR).glob("*.safetensors"))
    assert len(files) == 3 and all(f.name.startswith("part=cnn-point=d2-w16-split=") for f in files)

    again = UnitStore(tmp_path, resume=True, fingerprint={"lr": 0.1})
    loaded = {r: again.unit({"part": "cnn", "point": "d2-w16", "split": r}, lambda r=r: compute(r)) for r in range(4)}
    assert calls == [0, 1, 2, 3] and again.loaded == 3  # only the unfinished split was computed
    assert all(_same(made[r], loaded[r]) for r in range(3))


def test_a_computed_unit_comes_back_as_a_loaded_one_would(tmp_path):
    made = UnitStore(tmp_path).unit({"k": 1}, lambda: _unit(5))
    loaded = UnitStore(tmp_path, resume=True).get({"k": 1})
    assert _same(made, loaded)
    assert made.record["history"] == [0.5, 0.25] and type(made.record["n"]) is int  # through JSON, as when loaded
    assert loaded.arrays["codes"].dtype == np.float32 and loaded.arrays["predicted"].dtype == np.int64
    assert loaded.arrays["flag"].shape == () and loaded.state["n"].dtype == torch.int64


def test_units_are_not_reused_without_resume_or_under_another_fingerprint_or_key(tmp_path):
    UnitStore(tmp_path, fingerprint="a").put({"split": 0}, _unit(0))
    assert UnitStore(tmp_path, fingerprint="a").get({"split": 0}) is None  # a fresh run recomputes
    assert UnitStore(tmp_path, resume=True, fingerprint="b").get({"split": 0}) is None
    assert UnitStore(tmp_path, resume=True, fingerprint="a").get({"split": 1}) is None
    assert UnitStore(tmp_path, resume=True, fingerprint="a").get({"split": 0}) is not None
    # keys that differ only in characters the file name cannot hold are different units
    store = UnitStore(tmp_path)
    assert store.path({"p": "a/b"}) != store.path({"p": "a_b"})
    assert "/" not in store.path({"p": "../../x"}).name


def test_without_a_run_folder_nothing_is_kept(tmp_path):
    store = UnitStore(None, resume=True)
    assert _same(store.unit({"k": 0}, lambda: _unit(1)), UnitStore(tmp_path).put({"k": 0}, _unit(1)))
    assert store.get({"k": 0}) is None


def test_an_unreadable_unit_is_computed_again(tmp_path):
    store = UnitStore(tmp_path)
    store.put({"k": 0}, _unit(0))
    path = store.path({"k": 0})
    path.write_bytes(path.read_bytes()[:40])  # truncated
    again = UnitStore(tmp_path, resume=True)
    assert _same(again.unit({"k": 0}, lambda: _unit(0)), UnitStore(None).put({"k": 0}, _unit(0)))
    assert again.loaded == 0 and UnitStore(tmp_path, resume=True).get({"k": 0}) is not None  # rewritten whole


def test_bad_units_are_refused_in_one_line(tmp_path):
    store = UnitStore(tmp_path)
    with pytest.raises(ReplearnError, match="Python objects"):
        store.put({"k": 0}, Unit(arrays={"names": np.asarray(["a", None], dtype=object)}))
    with pytest.raises(ReplearnError, match="JSON-able"):
        store.put({"k": 0}, Unit(record={"f": object()}))
    with pytest.raises(ReplearnError, match="not a Unit"):
        store.unit({"k": 0}, lambda: {"accuracy": 1.0})
    assert not (tmp_path / UNITS_DIR).exists() or not list((tmp_path / UNITS_DIR).iterdir())


def test_units_live_with_the_checkpoints_that_overwrite_clears():
    assert UNITS_DIR.parts[0] == STAGES_DIR


def test_a_kill_at_any_moment_leaves_whole_units(tmp_path):
    """A process that stores units in a loop is SIGKILLed mid-way: every file left is a whole, loadable unit."""
    script = textwrap.dedent(f"""
        import numpy as np
        from replearn.utils.units import Unit, UnitStore
        store = UnitStore({str(tmp_path)!r})
        for i in range(100000):
            store.put({{"i": i}}, Unit(record={{"i": i}}, arrays={{"x": np.full(20000, i, dtype=np.int64)}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(replearn.__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    folder = tmp_path / UNITS_DIR
    while proc.poll() is None and len(list(folder.glob("*.safetensors"))) < 30:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(folder.glob("*.safetensors"))
    assert len(done) >= 30
    store = UnitStore(tmp_path, resume=True)
    for path in done:
        i = int(path.name.split("-")[0].split("=")[1])
        unit = store.get({"i": i})
        assert unit is not None and unit.record == {"i": i} and np.all(unit.arrays["x"] == i)


def test_a_store_that_does_not_write_reads_finished_units_and_keeps_new_ones_in_memory(tmp_path):
    """--ddp: ranks other than 0 train alike but write nothing; they still load what rank 0 kept."""
    written = UnitStore(tmp_path).put({"split": 0}, _unit(0))
    reader = UnitStore(tmp_path, resume=True, write=False)
    assert _same(reader.get({"split": 0}), written)
    made = reader.keep({"split": 1}, _unit(1))
    assert _same(reader.unit({"split": 1}, lambda: _unit(9)), made)  # this run's unit, from memory
    assert not reader.path({"split": 1}).exists() and len(list((tmp_path / UNITS_DIR).iterdir())) == 1
