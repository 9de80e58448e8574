"""Output locations are checked before any work, and a failed write leaves nothing that looks finished.

Table-driven over the bad output locations of the reliability issue: each case asserts exit code 2, one
line on stderr, and an output location left as it was.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from replearn.cli import main
from replearn.workflows import _run
from replearn.workflows._run import Result
from test_run import toy  # noqa: F401 - the fixture that installs the harness tests' toy workflow


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    return path


def _symlink(tmp_path: Path) -> Path:
    (tmp_path / "real.npz").write_bytes(b"keep")
    path = tmp_path / "link.npz"
    path.symlink_to(tmp_path / "real.npz")
    return path


def _device(tmp_path: Path) -> Path:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    return Path("/dev/full")


@pytest.mark.parametrize("make, message", [
    (_fifo, "not a regular file"),
    (_symlink, "is a symlink"),
    (_device, "not a regular file"),
])
def test_bad_file_outputs_are_refused_before_any_work(make, message, tmp_path, capsys):
    target = make(tmp_path)
    before = target.lstat().st_mode if os.path.lexists(target) else None
    assert main(["synth", "--quick", "--out", str(target)]) == 2
    assert message in _one_line(capsys)
    assert target.lstat().st_mode == before  # the special file is still what it was
    assert stat.S_IFMT(target.lstat().st_mode) != stat.S_IFREG or target.is_symlink()
    if target.is_symlink():
        assert (tmp_path / "real.npz").read_bytes() == b"keep"


def test_a_missing_parent_folder_is_made_with_a_note(tmp_path, capsys):
    target = tmp_path / "new" / "data.npz"
    assert main(["synth", "--quick", "--out", str(target)]) == 0
    assert target.is_file() and f"creating the folder {target.parent}" in capsys.readouterr().out


def test_a_file_where_the_run_folder_should_be(toy, tmp_path, capsys):
    toy()
    (tmp_path / "taken").write_text("x")
    assert main(["toy", "--out", str(tmp_path / "taken")]) == 2
    assert "exists and is not a directory" in _one_line(capsys)
    assert main(["toy", "--out", str(tmp_path / "taken" / "run")]) == 2
    _one_line(capsys)
    assert (tmp_path / "taken").read_text() == "x"


def test_a_second_run_on_a_locked_folder_gets_one_line(toy, tmp_path, capsys):
    toy()
    out = tmp_path / "run"
    out.mkdir()
    with open(out / _run.LOCK, "a+") as fh:  # another run holds the folder
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert main(["toy", "--out", str(out)]) == 2
        assert "another replearn run is writing into this folder" in _one_line(capsys)
    assert not (out / "config.json").exists()
    assert main(["toy", "--out", str(out)]) == 0  # released: the folder is free again


def test_an_earlier_run_is_refused_or_replaced_never_mixed(toy, tmp_path, capsys):
    toy()
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out), "--epochs", "3"]) == 0
    capsys.readouterr()
    assert main(["toy", "--out", str(out), "--epochs", "4"]) == 2
    assert "--overwrite" in _one_line(capsys)
    assert json.loads((out / "config.json").read_text())["epochs"] == 3  # untouched
    assert main(["toy", "--out", str(out), "--epochs", "4", "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 4
    manifest = json.loads((out / _run.MANIFEST).read_text())
    assert set(manifest) == {"table.md", "report.md", "report.html"}


def test_stray_temporary_files_are_cleaned_on_the_next_run(toy, tmp_path):
    toy()
    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")
    assert main(["toy", "--out", str(out)]) == 0
    assert not list(out.glob(".*.tmp"))


def test_a_failing_write_removes_this_runs_outputs(toy, tmp_path, capsys):
    def disk_full(cfg, out):
        result = _run.Result(metrics={"epochs": cfg.epochs}, summary="never")
        result.text("first.md", "written\n")

        def fail(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        result.add("second.bin", fail)
        return result

    toy(recipe=disk_full)
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert "No space left on device" in err and "second.bin" in err
    assert not (out / "first.md").exists() and not (out / "metrics.json").exists()


def test_a_file_size_limit_is_one_line_and_leaves_no_file(tmp_path):
    """A real write error: ``ulimit -f`` in a child process (SIGXFSZ ignored, so the write fails with EFBIG)."""
    target = tmp_path / "data.npz"

    def limit():
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run([sys.executable, "-m", "replearn", "synth", "--quick", "--out", str(target)],
                          capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr
    assert not target.exists() and not list(tmp_path.glob(".*.tmp"))


def test_no_room_is_refused_before_any_work(toy, tmp_path, capsys, monkeypatch):
    toy()
    monkeypatch.setattr(_run, "MIN_FREE_MB", 10**12)  # more than any disk has
    assert main(["toy", "--out", str(tmp_path / "run")]) == 2
    assert "MB free on its disk" in _one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_ctrl_c_is_one_line_that_says_how_to_resume(toy, tmp_path, capsys):
    def interrupted(cfg, out):
        raise KeyboardInterrupt

    toy(recipe=interrupted, RESUMABLE=True)
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out)]) == 130
    err = _one_line(capsys)
    assert "interrupted; no results were written" in err
    assert f"replearn toy --out {out} --resume" in err
    assert not (out / "metrics.json").exists()


def _resumable(toy, recipe):
    """The toy workflow with ``--resume``; its recipe gets ``resume`` and records it."""
    module = toy(RESUMABLE=True)
    module.run = lambda cfg, out, resume=False: recipe(cfg, out, resume)
    return module


def test_ctrl_c_without_out_names_the_folder_to_resume(toy, tmp_path, capsys, monkeypatch):
    def interrupted(cfg, out, resume):
        raise KeyboardInterrupt

    _resumable(toy, interrupted)
    monkeypatch.chdir(tmp_path)
    assert main(["toy"]) == 130
    err = _one_line(capsys)
    folder = err.split("--out ")[1].split(" --resume")[0]
    assert folder.startswith("runs/toy-") and (tmp_path / folder / "config.json").is_file()


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(toy, tmp_path, capsys):
    calls = []

    def recipe(cfg, out, resume):
        calls.append(resume)
        if len(calls) == 1:
            raise KeyboardInterrupt  # as a kill before the first epoch ended: only config.json is there
        return Result(metrics={"epochs": cfg.epochs})

    _resumable(toy, recipe)
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out), "--epochs", "3"]) == 130
    assert sorted(p.name for p in out.iterdir()) == [".replearn.lock", "config.json"]
    assert main(["toy", "--out", str(out), "--resume"]) == 0
    assert calls == [False, True] and json.loads((out / "metrics.json").read_text())["epochs"] == 3
    capsys.readouterr()
    assert main(["toy", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no run to continue" in _one_line(capsys)


def test_overwrite_removes_the_stage_checkpoints_and_a_resume_their_stray_temporary_files(toy, tmp_path):
    def recipe(cfg, out, resume):
        return Result(metrics={"resume": resume})

    _resumable(toy, recipe)
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out)]) == 0
    stage = out / "checkpoints" / "layerwise-1"
    stage.mkdir(parents=True)
    (stage / "checkpoint.pt").write_bytes(b"x")
    (stage / ".checkpoint.pt.abc.tmp").write_bytes(b"half")  # a kill during a checkpoint write
    assert main(["toy", "--out", str(out), "--resume"]) == 0
    assert (stage / "checkpoint.pt").exists() and not (stage / ".checkpoint.pt.abc.tmp").exists()
    assert main(["toy", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "checkpoints").exists()
