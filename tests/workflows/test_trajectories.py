"""``replearn trajectories``: the groups differ only in pretraining, recorded shapes, summaries, --quick outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from replearn.cli import main
from replearn.workflows import trajectories
from replearn.workflows._trajectories_train import Data, build_network, group_summary, train_one


def tiny_cfg(**kw) -> trajectories.Config:
    values = dict(networks=2, hidden=[16, 8], epochs=2, pretrain_epochs=1, batch_size=20, snapshots=4,
                  probe_size=6, device="cpu", progress=False)
    return trajectories.Config(**{**values, **kw})


def tiny_data(seed: int = 0) -> Data:
    """SYNTHETIC digits-like data: 80 training and 30 test images (1, 28, 28) in [0, 1], 10 classes."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(10, 1, 28, 28, generator=g)
    y_tr, y_te = torch.arange(80) % 10, torch.arange(30) % 10
    x_tr = (0.7 * patterns[y_tr] + 0.3 * torch.rand(80, 1, 28, 28, generator=g)).float()
    x_te = (0.7 * patterns[y_te] + 0.3 * torch.rand(30, 1, 28, 28, generator=g)).float()
    return Data(x_tr, y_tr.long(), x_te, y_te.long(), x_te[:6])


def test_network_i_starts_from_the_same_weights_in_both_groups():
    a, _ = build_network(tiny_cfg(), seed=3)
    b, _ = build_network(tiny_cfg(), seed=3)
    c, _ = build_network(tiny_cfg(), seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.state_dict()["dense_1.weight"], c.state_dict()["dense_1.weight"])


def test_groups_differ_only_in_pretraining():
    """Without pretraining epochs the two groups' runs are bit-identical; with them they differ."""
    data = tiny_data()
    off = [train_one(tiny_cfg(pretrain_epochs=0), data, 5, pretrain=p) for p in (False, True)]
    np.testing.assert_array_equal(off[0]["snapshots"], off[1]["snapshots"])
    assert off[0]["test_loss"] == off[1]["test_loss"]
    on = [train_one(tiny_cfg(pretrain_epochs=1), data, 5, pretrain=p) for p in (False, True)]
    np.testing.assert_array_equal(on[0]["snapshots"], off[0]["snapshots"])  # the 'without' run is unchanged
    assert not np.allclose(on[0]["snapshots"][0], on[1]["snapshots"][0])  # pretraining moved the start
    assert len(on[1]["pretraining"]) == 2 and on[0]["pretraining"] == []  # one stage per hidden layer


def test_recorded_shapes():
    run = train_one(tiny_cfg(), tiny_data(), 0, pretrain=True)
    # 80 images / batch 20 = 4 steps per epoch, 8 in all; 4 snapshots wanted: every 2 steps, plus the start
    assert run["steps"] == [0, 2, 4, 6, 8]
    assert run["snapshots"].shape == (5, 6, 10)  # (snapshots, probe images, classes)


def test_group_summary_spread_and_ci():
    def fake(end, acc):
        return {"snapshots": np.asarray([[[0.0, 0.0]], [end]], dtype=np.float32), "test_accuracy": acc,
                "test_loss": 1 - acc}

    s = group_summary([fake([0.0, 0.0], 0.8), fake([3.0, 4.0], 0.9), fake([0.0, 0.0], 1.0)])
    assert s["end_spread"] == pytest.approx((5 + 0 + 5) / 3)  # mean pairwise distance of the end points
    assert s["accuracy_mean"] == pytest.approx(0.9) and s["accuracy_ci95"] > 0 and s["networks"] == 3


def test_quick_run_writes_figure_paths_and_report(tmp_path, shared_datasets):
    out = tmp_path / "run"
    assert main(["trajectories", "--quick", "--data-dir", str(shared_datasets), "--out", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    for name in ("trajectories.png", "report.md", "report.html", "metrics.json", "trajectories.npz"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    quick = trajectories.QUICK
    assert metrics["quick"] and set(metrics["groups"]) == {"with", "without"}
    assert all(g["networks"] == quick["networks"] and len(g["test_accuracy"]) == quick["networks"]
               for g in metrics["groups"].values())
    with np.load(out / "trajectories.npz", allow_pickle=False) as z:
        n_snap = len(metrics["steps"])
        assert z["tsne"].shape == z["isomap"].shape == (2, quick["networks"], n_snap, 2)
        assert z["final_outputs"].shape == (2, quick["networks"], quick["probe_size"] * 10)
    assert "trajectories.png" in (out / "report.md").read_text()


def test_bad_settings_are_one_line(tmp_path, capsys):
    assert main(["trajectories", "--networks", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--networks" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["trajectories", "--hidden", "", "--out", str(tmp_path / "y")]) == 2
    assert "--hidden" in capsys.readouterr().err


def test_conv_arch_pretrains_one_stage_per_block():
    run = train_one(tiny_cfg(arch="conv", epochs=1), tiny_data(), 0, pretrain=True)
    assert [s["layers"][-1] for s in run["pretraining"]][:3] == ["maxpool_1", "maxpool_2", "maxpool_3"]
    assert run["snapshots"].shape[1:] == (6, 10) and 0 <= run["test_accuracy"] <= 1


def test_networks_in_two_worker_processes_equal_those_trained_here():
    from replearn.utils.parallel import Workers
    from replearn.workflows._trajectories_train import train_groups

    cfg, data = tiny_cfg(), tiny_data()
    here = train_groups(cfg, data, Workers(jobs=1, threads=1, progress=False))
    there = train_groups(cfg, data, Workers(jobs=2, threads=1, progress=False))
    for group in ("with", "without"):
        assert [r["test_accuracy"] for r in here[group]] == [r["test_accuracy"] for r in there[group]]
        assert all(np.array_equal(a["snapshots"], b["snapshots"]) for a, b in zip(here[group], there[group]))
    assert len(here["with"][0]["pretraining"]) > 0 and here["with"][0]["steps"] == there["with"][0]["steps"]
