"""``replearn domain``: end to end in-process on small SYNTHETIC data and a fake 'real' set; bad inputs exit 2."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from replearn.cli import main
from replearn.data import AssignmentData, synthetic_aureus, to_tensor
from replearn.evaluate.domain_shift import domain_classifier_score, nearest_neighbour_ratio
from replearn.models import conv_autoencoder, save_model, small_cnn
from replearn.workflows._domain_data import model_preset
from replearn.workflows._domain_stats import STATISTICS, crop_statistics
from replearn.workflows.domain_report import _leans_on, statistics_figure

SIZE = 24
NAMES = ["0 before division", "1 septum forming", "2 septum formed"]
COMMON = ["--n-synthetic", "60", "--method", "pca", "--no-progress", "--device", "cpu"]


def save_crops(path, labelled: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray) -> str:
    AssignmentData(labelled, labels, unlabelled).save_npz(path)
    return str(path)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """An untrained 3-class CNN for 24x24 crops, saved like `replearn assignment` saves its best CNN."""
    torch.manual_seed(0)
    model = small_cnn((1, SIZE, SIZE), 3, depth=2, width=4, dense=8).eval()
    run = tmp_path_factory.mktemp("assignment-run")
    save_model(model, run / "model.safetensors", {
        "task": "classifier", "class_names": NAMES, "input_size": [SIZE, SIZE], "synthetic": True,
        "data_source": "synthetic S. aureus (replearn.data.synthetic_aureus, preset=widefield, seed=0)"})
    return run, model


@pytest.fixture(scope="module")
def ae_file(tmp_path_factory):
    """An untrained autoencoder (4-D codes) for 24x24 crops, saved as a .safetensors file."""
    torch.manual_seed(0)
    ae = conv_autoencoder((1, SIZE, SIZE), code_dim=4, blocks=((4,), (4,))).eval()
    path = tmp_path_factory.mktemp("ae") / "autoencoder-d4.safetensors"
    save_model(ae, path, {"task": "autoencoder", "synthetic": True,
                          "data_source": "synthetic S. aureus (replearn.data.synthetic_aureus, preset=sim, seed=0)"})
    return path, ae


@pytest.fixture(scope="module")
def fake_real(tmp_path_factory):
    """'Real' cells stand-ins: widefield-preset crops (12 labelled, 28 not) and sim-preset crops (no labels)."""
    root = tmp_path_factory.mktemp("real")
    wf = synthetic_aureus(12, 28, seed=7, preset="widefield", size=SIZE)
    sim = synthetic_aureus(0, 40, seed=8, preset="sim", size=SIZE)
    return {
        "widefield": save_crops(root / "widefield.npz", wf.labelled, wf.labels, wf.unlabelled),
        "sim": save_crops(root / "sim.npz", sim.labelled, sim.labels, sim.unlabelled),
        "small": save_crops(root / "small.npz", np.zeros((0, 16, 16), np.uint8), np.zeros(0, np.int64),
                            wf.unlabelled[:5, :16, :16]),
        "wf_images": np.concatenate([wf.labelled, wf.unlabelled]), "wf_labels": wf.labels,
    }


def test_classifier_end_to_end(tmp_path, cnn_run, fake_real, capsys):
    run, model = cnn_run
    out = tmp_path / "dom"
    assert main(["domain", "--model", str(run), "--real", fake_real["widefield"], "--out", str(out), *COMMON]) == 0
    for name in ("domain_embedding.png", "domain_neighbours.png", "domain_stages.png", "domain_statistics.png",
                 "metrics.json", "codes.npz", "config.json", "report.md", "report.html"):
        assert (out / name).is_file(), name
    assert not (out / "domain_reconstructions.png").exists()  # only for autoencoders
    m = json.loads((out / "metrics.json").read_text())
    # The built-in source uses the model's training preset (from its metadata) and a fresh seed.
    assert m["data"]["synthetic"]["preset"] == "widefield" and "seed=1000" in m["data"]["synthetic"]["source"]
    assert m["data"]["synthetic"]["n"] == 60 and m["data"]["real"] == {
        "source": fake_real["widefield"], "n": 40, "synthetic": False, "n_labelled": 12}
    assert m["model"]["kind"] == "classifier" and m["code_dim"] == 8 and "SYNTHETIC" in m["model"]["trained_on"]

    # Codes are the network's 'features' (forward_features, flattened), real crops in file order (labelled first).
    codes = np.load(out / "codes.npz")
    with torch.no_grad():
        expected = model.forward_features(to_tensor(fake_real["wf_images"])).flatten(1).numpy()
    np.testing.assert_allclose(codes["real_codes"], expected, atol=1e-5)
    assert codes["synthetic_codes"].shape == (60, 8) and codes["synthetic_labels"].shape == (60,)

    # Metrics are recomputable from the saved codes.
    again = domain_classifier_score(codes["synthetic_codes"], codes["real_codes"], seed=0)
    assert m["domain_classifier"]["codes"]["auc"] == pytest.approx(again["auc"])
    assert m["domain_classifier"]["codes"]["n_per_domain"] == 40
    assert m["nearest_neighbour"]["ratio"] == pytest.approx(
        nearest_neighbour_ratio(codes["synthetic_codes"], codes["real_codes"])["ratio"])
    knn, cnn = m["knn_guess"], m["classifier"]
    assert sum(knn["counts"]) == 40 and sum(cnn["real"]["counts"]) == 40
    assert np.bincount(codes["real_classifier_guess"], minlength=3).tolist() == cnn["real"]["counts"]
    assert 0.0 <= cnn["synthetic"]["accuracy"] <= 1.0 and 1 / 3 <= cnn["real"]["mean_confidence"] <= 1.0
    # The labelled 'real' crops are scored against their labels.
    guess = codes["real_classifier_guess"][:12]
    assert cnn["real"]["labelled_accuracy"] == pytest.approx(np.mean(guess == fake_real["wf_labels"]))
    assert knn["real_labelled_n"] == 12

    # Every output says which data are synthetic and which are real; stages of real cells are a guess.
    report = (out / "report.md").read_text()
    assert "SYNTHETIC" in report and "REAL" in report and "GUESS" in report
    assert "replearn domain --model" in report
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "REAL" in printed and "not ground truth" in printed

    # The simple image statistics of both sets: those of the crops themselves, largest difference first.
    st = m["image_statistics"]
    real_stats = crop_statistics(fake_real["wf_images"])
    for key in STATISTICS:
        assert st["real"][key]["mean"] == pytest.approx(real_stats[key]["mean"], rel=1e-5, abs=1e-6), key
    apart = list(st["sds_apart"].values())
    assert set(st["sds_apart"]) == set(STATISTICS) and apart == sorted(apart, reverse=True)
    top = next(iter(st["sds_apart"]))
    assert f"image statistics furthest apart (pooled SDs; table in the report): {top}" in printed
    assert "pooled SDs apart" in report and st["what"]["ring_radius"] in report
    # ... and how well all of them together tell the sets apart, with the statistic that matters most among them.
    sc = st["classifier"]
    assert 0.0 <= sc["auc"] <= 1.0 and sc["n_per_domain"] == 40 and set(sc["without"]) == set(STATISTICS)
    assert f"| the {len(STATISTICS)} image statistics below, together | {sc['accuracy']:.3f}" in report
    assert f"all together tell the sets apart with AUC {sc['auc']:.3f} (without " in printed


@pytest.mark.parametrize("without, axes", [
    ({"noise": 0.75, "background": 0.80, "mean": 0.84}, ("noise", "background")),  # leans on noise, then background
    ({"noise": 0.99, "background": 1.0, "mean": 1.0}, ("ring_radius", "centre")),  # no single one: furthest apart
])
def test_statistics_figure_plots_every_crop_on_the_two_statistics_that_matter(without, axes):
    what = dict(STATISTICS)
    st = {"what": what, "sds_apart": {"ring_radius": 3.0, "centre": 2.0, "noise": 0.1},
          "classifier": {"auc": 1.0 if axes[0] == "ring_radius" else 0.85, "without": without}}
    rng = np.random.default_rng(0)
    arrays = {"statistics_synthetic": rng.random((30, len(what))), "statistics_real": rng.random((20, len(what)))}
    fig = statistics_figure(arrays, st)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith(axes[0] + ":") and ax.get_ylabel().startswith(axes[1] + ":")
    synthetic, real = (c.get_offsets() for c in ax.collections)
    names = list(what)
    np.testing.assert_allclose(synthetic, arrays["statistics_synthetic"][:, [names.index(a) for a in axes]])
    assert len(real) == 20 and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "SYNTHETIC crops (30)", "REAL cells (20)"]
    plt.close(fig)


@pytest.mark.parametrize("auc, without, says", [
    (0.85, {"noise": 0.75, "mean": 0.84}, "without noise, the one it leans on most, 0.750"),
    (1.0, {"mean": 0.995, "noise": 1.0}, "without any one of them, 0.995 or more: no single statistic carries"),
])
def test_the_statistic_leaned_on_is_named_only_when_dropping_it_matters(auc, without, says):
    assert _leans_on({"auc": auc, "without": without}).startswith(says)


def test_autoencoder_and_shift_between_presets(tmp_path, ae_file, fake_real):
    """Same image model (sim vs sim): little shift; other preset (widefield): clear shift, on raw pixels."""
    path, _ = ae_file
    results = {}
    for name in ("sim", "widefield"):
        out = tmp_path / name
        assert main(["domain", "--model", str(path), "--real", fake_real[name], "--out", str(out), *COMMON]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())
    assert (tmp_path / "sim" / "domain_reconstructions.png").is_file()
    same, other = results["sim"], results["widefield"]
    assert same["data"]["synthetic"]["preset"] == "sim"  # from the autoencoder's metadata
    assert same["domain_classifier"]["raw_pixels_pca"]["auc"] < 0.8
    assert other["domain_classifier"]["raw_pixels_pca"]["auc"] > 0.9
    assert other["domain_classifier"]["raw_pixels_pca"]["auc"] > same["domain_classifier"]["raw_pixels_pca"]["auc"]
    # The statistics say the same: the other preset's crops differ more than the same preset's.
    assert max(other["image_statistics"]["sds_apart"].values()) > max(same["image_statistics"]["sds_apart"].values())
    for r in results.values():
        assert r["model"]["kind"] == "autoencoder" and r["code_dim"] == 4
        assert r["reconstruction"]["real_mse"] > 0 and r["reconstruction"]["synthetic_mse"] > 0
        assert "classifier" not in r


def test_own_labelled_source_npz(tmp_path, ae_file, fake_real):
    path, _ = ae_file
    src = synthetic_aureus(30, 0, seed=3, preset="sim", size=SIZE)
    npz = save_crops(tmp_path / "data.npz", src.labelled, src.labels, src.unlabelled)
    out = tmp_path / "own"
    assert main(["domain", "--model", str(path), "--real", fake_real["sim"], "--synthetic", npz, "--out", str(out),
                 "--k", "3", *COMMON]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["synthetic"]["n"] == 30 and m["data"]["synthetic"]["preset"] is None
    assert m["knn_guess"]["k"] == 3 and m["data"]["synthetic"]["class_counts"] == np.bincount(src.labels).tolist()


def test_real_npz_marked_synthetic_is_labelled_synthetic(tmp_path, fake_real):
    from replearn.workflows._domain_data import load_real

    assert load_real(fake_real["sim"], quick=False, seed=0).synthetic is False  # no marker: real
    syn = synthetic_aureus(3, 5, seed=1, size=SIZE)
    syn.save_npz(tmp_path / "syn.npz")
    crops = load_real(str(tmp_path / "syn.npz"), quick=False, seed=0)
    assert crops.synthetic is True and "preset=sim, seed=1" in crops.source and len(crops.images) == 8


@pytest.mark.parametrize(
    "case, message",
    [
        ("size", "crops are 16x16 px but the model"),
        ("missing_model", "no such run folder or weights file"),
        ("empty_folder", "folder has no model.safetensors; it holds no .safetensors file"),
        ("missing_real", "no such file or folder"),
        ("preset_with_synthetic", "--preset applies to the built-in synthetic crops"),
        ("bad_layer", "has no layer 'nope'"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, cnn_run, fake_real, case, message):
    run, _ = cnn_run
    out = tmp_path / "never"
    args = {"size": ["--model", str(run), "--real", fake_real["small"]],
            "missing_model": ["--model", str(tmp_path / "nothing"), "--real", fake_real["sim"]],
            "empty_folder": ["--model", str(tmp_path), "--real", fake_real["sim"]],
            "missing_real": ["--model", str(run), "--real", str(tmp_path / "cells.npz")],
            "preset_with_synthetic": ["--model", str(run), "--real", fake_real["sim"], "--synthetic",
                                      fake_real["widefield"], "--preset", "sim"],
            "bad_layer": ["--model", str(run), "--real", fake_real["sim"], "--layer", "nope"]}[case]
    assert main(["domain", *args, "--out", str(out), *COMMON]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    if case == "size":
        assert "takes 24x24 px" in err
    assert not out.exists()  # nothing written before the inputs are checked


@pytest.mark.parametrize("source, preset", [
    ("synthetic S. aureus (replearn.data.synthetic_aureus, preset=widefield, seed=0)", "widefield"),
    ("synthetic S. aureus (replearn.data.synthetic_aureus, preset=widefield-septa, seed=0)", "widefield-septa"),
    ("synthetic S. aureus (replearn.data.synthetic_aureus, preset=sim, seed=3)", "sim"),
    ("synthetic S. aureus (preset=confocal, seed=0)", None),
    ("cells.npz (REAL cells)", None),
])
def test_model_preset_reads_the_exact_preset_name(source, preset):
    assert model_preset({"data_source": source}) == preset
