"""``replearn synth``: writes a loadable SYNTHETIC data.npz; bad options exit with code 2."""

from __future__ import annotations

import numpy as np
import pytest

import replearn.workflows
from replearn.cli import main
from replearn.data.npz import load_assignment
from replearn.data.synthetic import synthetic_aureus
from replearn.workflows import synth


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """Make sure ``synth`` is a registered workflow (it is once listed in WORKFLOWS)."""
    if synth not in replearn.workflows.WORKFLOWS:
        monkeypatch.setattr(replearn.workflows, "WORKFLOWS", [*replearn.workflows.WORKFLOWS, synth])


def load(path):
    """The file through replearn's loader."""
    data = load_assignment(path)
    return data.labelled, data.labels, data.unlabelled


def test_quick_writes_small_loadable_file(tmp_path, capsys):
    out = tmp_path / "data.npz"
    assert main(["synth", "--out", str(out), "--quick"]) == 0
    labelled, labels, unlabelled = load(out)
    assert labelled.shape == (60, 40, 40) and labelled.dtype == np.uint8
    assert unlabelled.shape == (200, 40, 40) and unlabelled.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels), [27, 18, 15])
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "SYNTHETIC" in line and str(out) in line
    assert "60 labelled" in line and "200 unlabelled" in line and "27/18/15" in line


def test_options_match_the_python_api(tmp_path):
    out = tmp_path / "wf.npz"
    argv = ["synth", "--out", str(out), "--n-labelled", "12", "--n-unlabelled", "5", "--preset", "widefield"]
    assert main([*argv, "--seed", "3"]) == 0
    expected = synthetic_aureus(n_labelled=12, n_unlabelled=5, seed=3, preset="widefield")
    with np.load(out, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["labelled"], expected.labelled)
        np.testing.assert_array_equal(npz["labels"], expected.labels)
        np.testing.assert_array_equal(npz["unlabelled"], expected.unlabelled)


def test_default_name_and_folder_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--quick", "--n-unlabelled", "0"]) == 0
    made = list(tmp_path.glob("runs/synth-*/synthetic_aureus.npz"))
    assert len(made) == 1, "the default is a new run folder under runs/, as every workflow's"
    folder = tmp_path / "sub"
    folder.mkdir()
    assert main(["synth", "--quick", "--n-unlabelled", "0", "--out", str(folder)]) == 0
    assert (folder / "synthetic_aureus.npz").is_file()
    assert not list(folder.glob("*.tmp")), "no temporary file left behind"


def test_unknown_preset_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", str(tmp_path / "x.npz"), "--preset", "confocal"])
    assert exc.value.code == 2
    assert "confocal" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-labelled", "-4"], "--n-labelled"),
        (["--n-labelled", "2"], "--n-labelled"),
        (["--n-unlabelled", "-1"], "--n-unlabelled"),
        (["--out", "data.txt"], "--out"),
    ],
)
def test_bad_values_exit_2_with_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["synth", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not list(tmp_path.iterdir()), "nothing written on error"


def test_file_is_marked_synthetic_and_loads_as_synthetic(tmp_path):
    out = tmp_path / "data.npz"
    assert main(["synth", "--out", str(out), "--quick", "--n-unlabelled", "0", "--seed", "2"]) == 0
    with np.load(out, allow_pickle=False) as npz:
        assert bool(npz["synthetic"]) and "seed=2" in str(npz["source"])
    data = load_assignment(out)
    assert data.synthetic is True and "preset=sim, seed=2" in data.source
