"""replearn course: stages as child processes, one combined report, time and memory per stage."""

import json

import pytest

from replearn.cli import main


def test_quick_fashion_then_transfer_writes_combined_report(tmp_path, shared_datasets, capsys):
    out = tmp_path / "course"
    code = main(["course", "--quick", "--stages", "transfer,fashion", "--no-compare", "--no-progress",
                 "--data-dir", str(shared_datasets), "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["stages"]) == ["fashion", "transfer"]  # course order, whatever the order given
    for stage in ("fashion", "transfer"):
        info = metrics["stages"][stage]
        assert info["exit_code"] == 0 and info["wall_s"] > 0
        assert 50 < info["peak_rss_mb"] < 4000
        assert (out / stage / "metrics.json").is_file()
    fashion = json.loads((out / "fashion" / "metrics.json").read_text())
    assert metrics["stages"]["fashion"]["headline"] == f"Fashion-MNIST test accuracy {100 * fashion['test_accuracy']:.2f}%"
    assert "transferred" in metrics["stages"]["transfer"]["headline"].lower() or "MNIST test" in metrics["stages"]["transfer"]["headline"]
    assert metrics["total_wall_s"] == pytest.approx(sum(s["wall_s"] for s in metrics["stages"].values()), abs=0.2)
    html = (out / "report.html").read_text()
    assert "QUICK RUN" in html and "data:image/png;base64," in html
    assert "| fashion |" in (out / "report.md").read_text()


def test_transfer_without_fashion_stage_is_a_one_line_error(tmp_path, capsys):
    assert main(["course", "--stages", "transfer", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "needs the fashion stage's model" in err and err.count("\n") == 1
    assert not (tmp_path / "c" / "metrics.json").exists()


def test_unknown_stage_and_missing_data(tmp_path, capsys):
    assert main(["course", "--stages", "fashion,bogus", "--out", str(tmp_path / "c")]) == 2
    assert "unknown stage 'bogus'" in capsys.readouterr().err
    assert main(["course", "--assignment-data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "c")]) == 2
    assert "no such file" in capsys.readouterr().err
