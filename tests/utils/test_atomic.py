"""Atomic writes leave either the old file or the complete new one, never a temp file."""

import json

import pytest

from replearn.utils.atomic import atomic_path, save_json, write_text
from replearn.utils.rundir import make_run_dir
from replearn.errors import ReplearnError


def test_write_and_replace(tmp_path):
    p = write_text(tmp_path / "sub" / "a.txt", "one")
    assert p.read_text() == "one"
    write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.txt"]


def test_failure_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_save_json_handles_numpy(tmp_path):
    import numpy as np

    save_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(3), "p": tmp_path})
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["a"] == 0.5 and data["b"] == [0, 1, 2] and data["p"] == str(tmp_path)


def test_run_dir_default_and_explicit(tmp_path):
    a = make_run_dir(None, "fashion", root=tmp_path)
    b = make_run_dir(None, "fashion", root=tmp_path)
    assert a != b and a.name.startswith("fashion-") and a.is_dir() and b.is_dir()
    assert make_run_dir(tmp_path / "x", "w") == tmp_path / "x"
    (tmp_path / "file").write_text("")
    with pytest.raises(ReplearnError, match="not a directory"):
        make_run_dir(tmp_path / "file", "w")


def test_written_files_get_normal_permissions(tmp_path):
    import os

    p = write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask
