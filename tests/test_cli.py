"""The command line: workflow listing, common options, one-line errors."""

import subprocess
import sys
import types

import pytest

from replearn.cli import build_parser, main
from replearn.errors import ReplearnError
from replearn.workflows import WORKFLOWS


def test_every_workflow_has_the_common_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {m.COMMAND for m in WORKFLOWS}
    for name, p in sub.choices.items():
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"--out", "--debug"} <= opts, name
    for name in ("fashion", "transfer", "autoencoder", "assignment"):
        opts = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert {"--seed", "--quick", "--device", "--no-progress"} <= opts, name
        if name != "assignment":  # the MNIST-like workflows read IDX files and train with DDP
            assert {"--data-dir", "--ddp"} <= opts, name


def test_help_lists_only_the_options_a_command_uses():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("synth", "embed", "predict", "crops"):
        opts = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert not {"--data-dir", "--ddp"} & opts, name
    synth = {o for a in sub.choices["synth"]._actions for o in a.option_strings}
    assert "--device" not in synth and "--quick" in synth


def test_help_lists_workflows(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for module in WORKFLOWS:
        assert module.COMMAND in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "workflows" in capsys.readouterr().out


def _fake_workflow(monkeypatch, exc):
    from dataclasses import dataclass

    @dataclass
    class Config:
        pass

    def run(cfg, out):
        raise exc

    fake = types.SimpleNamespace(COMMAND="fake", HELP="a fake workflow", __doc__="A fake workflow.",
                                 Config=Config, run=run, OUTPUT=("file", "fake.txt"))
    monkeypatch.setattr("replearn.workflows.WORKFLOWS", [fake])


def test_user_error_is_one_line_and_exit_2(monkeypatch, capsys):
    _fake_workflow(monkeypatch, ReplearnError("data.npz: key 'labels' is missing"))
    assert main(["fake"]) == 2
    err = capsys.readouterr().err
    assert err == "replearn fake: error: data.npz: key 'labels' is missing\n"


def test_debug_shows_the_traceback(monkeypatch):
    _fake_workflow(monkeypatch, ReplearnError("boom"))
    with pytest.raises(ReplearnError):
        main(["fake", "--debug"])


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "replearn", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("replearn ")


def test_ddp_without_torchrun_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert main(["fashion", "--quick", "--ddp", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "torchrun --nproc-per-node N -m replearn <workflow> --ddp" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
