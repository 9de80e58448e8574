"""``replearn autoencoder``: outputs, numbers consistent with the saved model, toy clusters, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from replearn.cli import main
from replearn.data import AssignmentData, load_dataset, seeded_subset
from replearn.evaluate import AutoEncoderEmbedding, knn_accuracy, reconstruction_errors
from replearn.workflows.autoencoder import QUICK_EVAL, QUICK_TRAIN


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, shared_datasets):
    """One --quick run on MNIST (2,000 train / 500 test images, 3 epochs)."""
    out = tmp_path_factory.mktemp("ae")
    code = main(["autoencoder", "--quick", "--epochs", "3", "--data-dir", str(shared_datasets), "--out", str(out),
                 "--no-progress", "--device", "cpu"])
    assert code == 0
    return out


def png(path):
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def toy_npz(path, size: int = 20, n_labelled: int = 80, n_unlabelled: int = 160, seed: int = 0) -> None:
    """SYNTHETIC data: class 0 has a bright left half, class 1 a bright right half (well-separated clusters)."""
    rng = np.random.default_rng(seed)

    def draw(n, labels):
        x = rng.integers(0, 30, size=(n, size, size)).astype(np.uint8)
        x[labels == 0, :, : size // 2] += 200
        x[labels == 1, :, size // 2:] += 200
        return x

    labels = np.arange(n_labelled) % 2
    unl = rng.integers(0, 2, n_unlabelled)
    AssignmentData(draw(n_labelled, labels), labels.astype(np.int64), draw(n_unlabelled, unl), synthetic=True,
                   class_names=["left", "right"]).save_npz(path)


def test_writes_model_figures_pairs_and_reports(mnist_run):
    for name in ("model.safetensors", "model.json", "metrics.json", "config.json", "report.md", "report.html"):
        assert (mnist_run / name).stat().st_size > 0, name
    for name in ("autoencoder_codes.png", "autoencoder_reconstructions.png", "autoencoder_curves.png"):
        image = png(mnist_run / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0  # not a blank canvas
    # the lecture's per-image pairs: the first 10 (quick-subset) test images, 28x28 8-bit
    pairs = sorted((mnist_run / "reconstructions").glob("*.png"))
    assert len(pairs) == 20
    for i in range(10):
        original = png(mnist_run / "reconstructions" / f"test_{i}_original.png")
        restored = png(mnist_run / "reconstructions" / f"test_{i}_restored.png")
        assert original.shape == restored.shape == (28, 28) and original.dtype == np.uint8


def test_pairs_are_the_test_images(mnist_run, shared_datasets):
    x_te, _ = load_dataset("mnist", "test", shared_datasets, download=False)
    first = x_te[seeded_subset(len(x_te), QUICK_EVAL, 0)][:10]
    for i in range(10):
        np.testing.assert_array_equal(png(mnist_run / "reconstructions" / f"test_{i}_original.png"), first[i])


def test_metrics_match_the_saved_model(mnist_run, shared_datasets):
    metrics = json.loads((mnist_run / "metrics.json").read_text())
    x_tr, y_tr = load_dataset("mnist", "train", shared_datasets, download=False)
    x_te, y_te = load_dataset("mnist", "test", shared_datasets, download=False)
    i, j = seeded_subset(len(x_tr), QUICK_TRAIN, 0), seeded_subset(len(x_te), QUICK_EVAL, 0)
    est = AutoEncoderEmbedding.from_pretrained(mnist_run, device="cpu")
    row = metrics["methods"][0]
    assert row["method"] == "autoencoder" and (row["n_reference"], row["n_queries"]) == (QUICK_TRAIN, QUICK_EVAL)
    ref, query = est.transform(x_tr[i]), est.transform(x_te[j])
    assert row["knn5"] == pytest.approx(knn_accuracy(ref, y_tr[i], query, y_te[j], 5), abs=2e-3)
    assert row["knn1"] == pytest.approx(knn_accuracy(ref, y_tr[i], query, y_te[j], 1), abs=2e-3)
    assert 0.0 <= row["trustworthiness"] <= 1.0
    recon = reconstruction_errors(x_te[j] / 255.0, est.reconstruct(x_te[j]))
    assert metrics["reconstruction"]["mse"] == pytest.approx(recon["mse"], rel=1e-4)
    assert metrics["reconstruction"]["bce"] == pytest.approx(recon["bce"], rel=1e-4)
    assert 0 < recon["mse"] < recon["bce"]


def test_reconstruction_error_falls(mnist_run):
    history = json.loads((mnist_run / "metrics.json").read_text())["history"]
    assert len(history["loss"]) == 3
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_compare_on_toy_clusters(tmp_path, capsys):
    data = tmp_path / "toy.npz"
    toy_npz(data)
    out = tmp_path / "run"
    argv = ["autoencoder", "--dataset", str(data), "--compare", "--epochs", "8", "--batch-size", "32",
            "--blocks", "8/8", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| PCA |" in printed and "| t-SNE |" in printed and "embedded together" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    rows = {r["method"]: r for r in metrics["methods"]}
    assert set(rows) == {"autoencoder", "autoencoder (subset)", "PCA", "t-SNE", "ISOMAP"}
    # npz data: reference/queries are a 75/25 stratified split of the 80 labelled crops
    assert (rows["autoencoder"]["n_reference"], rows["autoencoder"]["n_queries"]) == (60, 20)
    # two well-separated clusters: every neighbour-based score is perfect for PCA
    assert rows["PCA"]["knn1"] == rows["PCA"]["knn5"] == 1.0
    assert rows["t-SNE"]["knn5"] == 1.0
    assert "160 unlabelled crops" in metrics["train"]
    png(out / "autoencoder_compare.png")
    assert len(list((out / "reconstructions").glob("labelled_*_restored.png"))) == 10
    assert png(out / "reconstructions" / "labelled_0_original.png").shape == (20, 20)
    # the npz is marked synthetic (save_npz of synthetic data): every output says so
    assert metrics["synthetic"] is True and "data: SYNTHETIC" in printed
    assert json.loads((out / "model.json").read_text())["meta"]["synthetic"] is True
    assert "SYNTHETIC DATA" in (out / "report.md").read_text()


def toy_run(tmp_path, *options: str):
    """``replearn autoencoder`` on a small SYNTHETIC npz with two tiny blocks and the given options; the run folder."""
    data = tmp_path / "toy.npz"
    toy_npz(data, n_labelled=40, n_unlabelled=64)
    out = tmp_path / "run"
    argv = ["autoencoder", "--dataset", str(data), *options, "--batch-size", "32", "--blocks", "4/4",
            "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    return out


def test_denoising_run_records_its_corruption(tmp_path):
    out = toy_run(tmp_path, "--noise", "0.3", "--epochs", "2")
    config = json.loads((out / "config.json").read_text())
    assert (config["noise"], config["noise_kind"]) == (0.3, "gaussian")
    note = "denoising: inputs corrupted by Gaussian noise sigma 0.3, clean targets"
    assert note in (out / "report.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert note in metrics["methods"][0]["note"]
    assert json.loads((out / "model.json").read_text())["meta"]["config"]["noise"] == 0.3


def test_layerwise_run_records_its_stages(tmp_path):
    out = toy_run(tmp_path, "--layerwise", "2", "--epochs", "1")
    assert json.loads((out / "config.json").read_text())["layerwise_epochs"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    stages = metrics["layerwise"]
    assert [s["input_shape"] for s in stages] == [[1, 20, 20], [4, 10, 10], [4, 5, 5]]
    assert all(len(s["epoch_losses"]) == 2 for s in stages)
    note = "after greedy layer-wise pretraining of the encoder, 2 epochs per stage"
    assert note in metrics["methods"][0]["note"]
    report = (out / "report.md").read_text()
    assert "Greedy layer-wise pretraining" in report and "stage 3: flatten_1, features (4x5x5 -> 2)" in report


def test_hidden_dense_layers_run_saves_a_reloadable_model(tmp_path):
    out = toy_run(tmp_path, "--hidden", "8", "--epochs", "1")
    assert json.loads((out / "config.json").read_text())["hidden"] == [8]
    est = AutoEncoderEmbedding.from_pretrained(out)
    assert est.model_.encoder.get_layer("dense_1").out_features == 8
    labelled = np.load(tmp_path / "toy.npz", allow_pickle=False)["labelled"]
    assert est.transform(labelled).shape == (len(labelled), 2)


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    cases = [
        (["--dataset", str(tmp_path / "missing.npz")], "missing.npz"),
        (["--dataset", "cifar"], "--dataset"),
        (["--blocks", "32/x"], "--blocks"),
        (["--epochs", "0"], "epochs"),
        (["--noise", "-0.1"], "noise"),
        (["--noise", "1", "--noise-kind", "dropout"], "[0, 1)"),
        (["--layerwise", "-1"], "layerwise"),
        (["--hidden", "64,x"], "--hidden"),
    ]
    for extra, needle in cases:
        assert main(["autoencoder", "--quick", "--out", str(tmp_path / "r"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err, err
    for toml, needle in [('hidden = ["a"]', "hidden: expected a list of positive integers"),
                         ("hidden = [0]", "hidden: expected"), ('blocks = [["a"]]', "blocks: expected"),
                         ("blocks = []", "blocks: expected"),
                         ("blocks = [[4], [4], [4], [4]]", "4 pooling blocks needs image sizes divisible by 8, got 20x20")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(toml + "\n")
        data = tmp_path / "toy.npz"  # 20x20 crops: the network is checked against them once they are read
        toy_npz(data, n_labelled=40, n_unlabelled=64)
        argv = ["autoencoder", "--dataset", str(data), "--config", str(bad), "--out", str(tmp_path / "r")]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err, err
    assert not (tmp_path / "r").exists()  # every mistake above is refused before any run folder is made
    config = tmp_path / "ae.toml"
    config.write_text("epoch = 3\n")
    assert main(["autoencoder", "--quick", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean 'epochs'" in err and "\n" not in err


def test_report_says_how_to_open_the_explorer_on_this_run(mnist_run):
    assert "replearn explore RUN --out RUN/explore.html" in (mnist_run / "report.md").read_text()
