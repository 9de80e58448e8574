"""``replearn autoencoder --objective umap|recon+umap|tsne|recon+tsne``: the new rows, the saved model, bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replearn.cli import main
from replearn.encoders import load_encoder
from replearn.evaluate import knn_accuracy

from tests.workflows.test_autoencoder import toy_npz


@pytest.fixture(scope="module")
def umap_run(tmp_path_factory):
    """--objective umap --compare on the SYNTHETIC two-cluster npz, a small dense network."""
    tmp = tmp_path_factory.mktemp("umap")
    toy_npz(tmp / "toy.npz")
    out = tmp / "run"
    argv = ["autoencoder", "--dataset", str(tmp / "toy.npz"), "--objective", "umap", "--model", "dense_autoencoder",
            "--hidden", "32", "--compare", "--epochs", "6", "--batch-size", "32", "--out", str(out), "--no-progress",
            "--device", "cpu"]
    return out, main(argv)


def test_compare_has_the_new_rows(umap_run, capsys):
    out, code = umap_run
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = {r["method"]: r for r in metrics["methods"]}
    assert set(rows) == {"parametric UMAP", "parametric UMAP (subset)", "PCA", "t-SNE", "ISOMAP"}
    ours = rows["parametric UMAP"]
    assert "UMAP cross-entropy" in ours["note"] and "edges" in ours["note"]
    assert ours["knn5"] >= 0.9  # two well-separated clusters; chance 0.5
    assert all(0 < r["trustworthiness_k10"] <= 1 for r in rows.values())
    report = (out / "report.md").read_text()
    assert "| parametric UMAP |" in report and "| parametric UMAP (subset) |" in report
    assert metrics["config"]["objective"] == "umap"


def test_saved_model_gives_the_reported_codes(umap_run):
    out, _ = umap_run
    metrics = json.loads((out / "metrics.json").read_text())
    encoder = load_encoder(out)
    assert encoder.code_dim == 2 and json.loads((out / "model.json").read_text())["meta"]["synthetic"] is True
    data = np.load(out.parent / "toy.npz", allow_pickle=False)
    codes = encoder.codes(data["labelled"])
    half = np.arange(len(codes)) % 4 < 2  # labels alternate 0, 1: both classes on each side
    assert knn_accuracy(codes[half], data["labels"][half], codes[~half], data["labels"][~half], k=5) >= 0.9
    assert metrics["reconstruction"]["mse"] < 0.1


@pytest.mark.parametrize("objective, row", [("recon+umap", "parametric UMAP + reconstruction"),
                                             ("tsne", "parametric t-SNE (InfoNC)"),
                                             ("recon+tsne", "parametric t-SNE (InfoNC) + reconstruction")])
def test_other_neighbourhood_objectives_print_their_rows(tmp_path, capsys, objective, row):
    toy_npz(tmp_path / "toy.npz", n_labelled=40, n_unlabelled=64)
    argv = ["autoencoder", "--dataset", str(tmp_path / "toy.npz"), "--objective", objective, "--model",
            "dense_autoencoder", "--hidden", "16", "--epochs", "3", "--batch-size", "32", "--out",
            str(tmp_path / "run"), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    assert f"| {row} |" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["methods"][0]["knn5"] >= 0.8  # two well-separated clusters; chance 0.5


@pytest.mark.parametrize("options, message", [
    (["--objective", "umap", "--noise", "0.3"], "--noise is only for --objective recon"),
    (["--objective", "umap", "--layerwise", "2"], "--layerwise is only for --objective recon"),
])
def test_bad_objective_options_exit_2_with_one_line(tmp_path, capsys, options, message):
    argv = ["autoencoder", "--quick", *options, "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("objective, kind, joint", [("umap", "umap", False), ("recon+umap", "umap", True),
                                                   ("tsne", "tsne", False), ("recon+tsne", "tsne", True)])
def test_each_objective_trains_its_loss(objective, kind, joint):
    from replearn.workflows import autoencoder
    from replearn.workflows._autoencoder_umap import umap_estimator

    cfg = autoencoder.Config(objective=objective, device="cpu")
    cfg.check()
    est = umap_estimator(cfg)
    assert est.kind == kind and (est.recon_weight > 0) == joint


@pytest.mark.parametrize("objective, model, epochs, batch_size", [
    ("recon", "conv_autoencoder", 40, 128), ("umap", "umap_autoencoder", 40, 1000),
    ("recon+umap", "umap_autoencoder", 40, 1000)])
def test_unset_options_take_the_objectives_defaults(objective, model, epochs, batch_size):
    from replearn.workflows import autoencoder

    cfg = autoencoder.Config(objective=objective)
    cfg.check()
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.lr) == (model, epochs, batch_size, 0.01)
    given = autoencoder.Config(objective=objective, model="dense_autoencoder", epochs=3, batch_size=64, lr=0.1)
    given.check()
    assert (given.model, given.epochs, given.batch_size, given.lr) == ("dense_autoencoder", 3, 64, 0.1)
