"""The harness: flags from a Config, one resolution order, outputs written only after the recipe succeeded."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

import pytest

from replearn.cli import main
from replearn.errors import ReplearnError
from replearn.evaluate import Report
from replearn.workflows import _run
from replearn.workflows._run import QUICK_BANNER, Result, option, quick_option, seed_option


def _module(recipe=None, **attrs):
    """A toy workflow module: two options, a check, a recipe that records what it got."""

    @dataclass
    class Config:
        epochs: int = option(5, "passes")
        widths: list = option([8, 4], "layer widths", parse=_run.parse_int_list, metavar="W,W")
        mode: str = option("fast", "how", choices=("fast", "slow"))
        flip: bool = option(True, "random flips")
        seed: int = seed_option()
        quick: bool = quick_option()

        def check(self) -> None:
            if self.epochs < 1:
                raise ReplearnError(f"--epochs: must be at least 1, got {self.epochs}")

    seen = {}

    def run(cfg, out):
        seen["cfg"], seen["out"] = cfg, out
        if recipe is not None:
            return recipe(cfg, out)
        report = Report("toy")
        report.text("hello")
        result = Result(metrics={"epochs": cfg.epochs}, report=report, summary="toy done")
        result.text("table.md", "| a |\n")
        return result

    module = types.SimpleNamespace(COMMAND="toy", HELP="a toy workflow", __doc__="A toy workflow.",
                                   Config=Config, run=run, QUICK={"epochs": 1}, CONFIG_FILE=True, seen=seen,
                                   **attrs)
    return module


@pytest.fixture
def toy(monkeypatch):
    def install(**kwargs):
        module = _module(**kwargs)
        monkeypatch.setattr("replearn.workflows.WORKFLOWS", [module])
        return module
    return install


def test_flags_come_from_the_fields(toy, capsys):
    toy()
    with pytest.raises(SystemExit):
        main(["toy", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS passes (default: 5; 1 with --quick)" in text
    assert "--widths W,W layer widths (default: [8, 4])" in text
    assert "--mode {fast,slow}" in text and "--flip, --no-flip random flips (default: on)" in text
    assert "--config TOML" in text and "--data-dir" not in text and "--ddp" not in text


def test_resolution_order_defaults_quick_file_flags(toy, tmp_path):
    module = toy()
    toml = tmp_path / "c.toml"
    toml.write_text("epochs = 7\nmode = 'slow'\n")
    assert main(["toy", "--out", str(tmp_path / "a"), "--quick"]) == 0
    assert module.seen["cfg"].epochs == 1  # QUICK over the defaults
    assert main(["toy", "--out", str(tmp_path / "b"), "--quick", "--config", str(toml)]) == 0
    assert module.seen["cfg"].epochs == 7 and module.seen["cfg"].mode == "slow"  # the file over QUICK
    assert main(["toy", "--out", str(tmp_path / "c"), "--config", str(toml), "--epochs", "9", "--widths", "3,2",
                 "--no-flip"]) == 0
    cfg = module.seen["cfg"]
    assert (cfg.epochs, cfg.widths, cfg.flip, cfg.mode) == (9, [3, 2], False, "slow")  # flags over the file
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved == {"epochs": 9, "widths": [3, 2], "mode": "slow", "flip": False, "seed": 0, "quick": False}


def test_bad_file_key_and_value_are_one_line_before_any_folder(toy, tmp_path, capsys):
    toy()
    toml = tmp_path / "c.toml"
    toml.write_text("epoch = 7\n")
    assert main(["toy", "--out", str(tmp_path / "r"), "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'epoch'; did you mean 'epochs'?" in err and err.count("\n") == 1
    toml.write_text("mode = 'medium'\n")
    assert main(["toy", "--out", str(tmp_path / "r"), "--config", str(toml)]) == 2
    assert "mode: got 'medium'; allowed: 'fast', 'slow'" in capsys.readouterr().err
    assert main(["toy", "--out", str(tmp_path / "r"), "--epochs", "0"]) == 2
    assert not (tmp_path / "r").exists()


def test_outputs_written_after_success_with_report_config_and_quick_banner(toy, tmp_path, capsys):
    toy()
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out), "--quick"]) == 0
    assert json.loads((out / "metrics.json").read_text()) == {"epochs": 1, "quick": True}
    assert (out / "table.md").read_text() == "| a |\n"
    md = (out / "report.md").read_text()
    assert QUICK_BANNER in md and "## Configuration" in md and "| epochs | 1 |" in md
    assert QUICK_BANNER in (out / "report.html").read_text()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"toy done [{QUICK_BANNER}]"


def test_a_failing_recipe_leaves_no_finished_looking_files(toy, tmp_path):
    def fail(cfg, out):
        raise ReplearnError("the data ran out")

    out = tmp_path / "run"
    toy()
    assert main(["toy", "--out", str(out)]) == 0
    toy(recipe=fail)
    assert main(["toy", "--out", str(out)]) == 2  # refused: the folder holds another run
    assert (out / "metrics.json").exists()
    assert main(["toy", "--out", str(out), "--overwrite"]) == 2  # the earlier run is cleared, then the recipe fails
    assert not (out / "metrics.json").exists() and not (out / "report.html").exists()
    assert not (out / "table.md").exists(), "the earlier run's outputs went with it"


def test_a_run_that_fails_before_any_checkpoint_does_not_block_its_folder(toy, tmp_path):
    def fail(cfg, out):
        raise ReplearnError("--data-dir: no MNIST here")

    def fail_after_a_checkpoint(cfg, out):
        (out / "checkpoints").mkdir()
        raise ReplearnError("the disk is full")

    out = tmp_path / "run"
    toy(recipe=fail)
    assert main(["toy", "--out", str(out)]) == 2
    assert not (out / "config.json").exists()
    toy()
    assert main(["toy", "--out", str(out)]) == 0  # the corrected rerun needs no --overwrite
    assert json.loads((out / "metrics.json").read_text()) == {"epochs": 5, "quick": False}
    with pytest.raises(ReplearnError):
        _run.execute(_module(recipe=fail_after_a_checkpoint), _module().Config(), tmp_path / "other")
    assert (tmp_path / "other" / "config.json").exists(), "kept: --resume needs it beside the checkpoint"


def test_file_workflow_defaults_to_a_new_run_folder(toy, tmp_path, monkeypatch):
    def write(cfg, out):
        result = Result(summary=f"wrote {out}")
        result.text(out, "x\n")
        return result

    monkeypatch.chdir(tmp_path)
    toy(recipe=write, OUTPUT=("file", "thing.txt"))
    assert main(["toy"]) == 0
    made = list(tmp_path.glob("runs/toy-*/thing.txt"))
    assert len(made) == 1 and made[0].read_text() == "x\n"
    assert not list(tmp_path.glob("runs/toy-*/config.json"))


def test_python_api_without_argparse(tmp_path):
    module = _module()
    result = _run.execute(module, module.Config(epochs=3), tmp_path / "py")
    assert result.metrics == {"epochs": 3, "quick": False} or result.metrics == {"epochs": 3}
    assert json.loads((tmp_path / "py" / "metrics.json").read_text())["epochs"] == 3
