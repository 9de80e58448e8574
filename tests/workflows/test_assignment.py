"""``replearn assignment``: a --quick run writes a report whose numbers are the metrics JSON; bad input exits 2."""

from __future__ import annotations

import html
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from replearn.cli import main
from replearn.data import synthetic_aureus, to_tensor
from replearn.errors import ReplearnError
from replearn.models import load_model
from replearn.train import predict
from replearn.workflows import _assignment_grid as grid
from replearn.workflows import assignment_report as report
from replearn.workflows.assignment_report import SYNTHETIC_BANNER, fmt

REPO = Path(__file__).resolve().parents[2]

# A config that keeps the bad-input runs to a few seconds.
TINY = """
[data]
repeats = 2
folds = 3
cv_repeats = 1
[cnn]
depth = [1]
augment = [false]
epochs = 2
[autoencoder]
code_dim = [2]
epochs = 1
[ssl]
epochs = 0
[probes]
names = ["logreg", "knn"]
[report]
embedding = "pca"
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """One ``--quick`` run on the built-in synthetic data (shared by the tests below)."""
    out = tmp_path_factory.mktemp("assignment") / "run"
    assert main(["assignment", "--quick", "--out", str(out), "--no-progress", "--seed", "0"]) == 0
    return out


def test_quick_run_writes_report_weights_metrics_and_config(quick_run):
    for name in ("report.md", "report.html", "metrics.json", "config.json", "grid.toml", "model.safetensors",
                 "model.json", "autoencoder-d16.safetensors", "autoencoder-d16.json"):
        assert (quick_run / name).is_file(), name
    figures = {p.name for p in (quick_run / "figures").iterdir()}
    assert {"examples.png", "cnn_learning_curves.png", "confusion_cnn.png", "confusion_probe.png",
            "autoencoder_learning_curves.png", "reconstructions.png", "embedding_2d.png"} <= figures
    assert not list(quick_run.rglob("*.tmp"))
    page = (quick_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures)  # every figure embedded
    # the resolved config is saved and reads back as a grid config
    saved = json.loads((quick_run / "config.json").read_text())  # the grid's tables are fields of the Config
    assert grid.load_grid(quick_run / "grid.toml") == {table: saved[table] for table in grid.DEFAULTS}


def test_quick_run_is_labelled_synthetic_everywhere(quick_run, capsys):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert metrics["synthetic"] is True and metrics["data"]["synthetic"] is True
    assert SYNTHETIC_BANNER in (quick_run / "report.md").read_text()
    assert html.escape(SYNTHETIC_BANNER) in (quick_run / "report.html").read_text()
    meta = json.loads((quick_run / "model.json").read_text())["meta"]
    assert meta["synthetic"] is True and meta["input_size"] == [40, 40]
    assert meta["class_names"] == ["0 before division", "1 septum forming", "2 septum formed"]


def test_quick_run_beats_chance(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    d, p = metrics["data"], metrics["protocol"]
    # 120 crops, not the course's 400: cross-validated automatically (--quick: 3 folds, 1 repeat)
    assert (d["n_labelled"], d["n_unlabelled"], p["kind"], p["folds"], p["repeats"], p["n_val"]) == \
        (120, 300, "cv", 3, 1, 40)
    best = metrics["results"][0]
    assert best["name"] == metrics["best"]["overall"]
    assert best["accuracy_mean"] > 1 / 3 + 0.1
    # every result has one score per split, and mean/CI are those of the scores; every crop scored once
    for group in ("cnn", "probes"):
        for r in metrics[group].values():
            assert len(r["accuracy"]) == 3 and np.isclose(r["accuracy_mean"], np.mean(r["accuracy"]))
            assert np.asarray(r["confusion"]).sum() == d["n_labelled"]
            assert len(r["inner_accuracy"]) == 3


def test_baselines_are_in_the_report_and_the_choice_is_nested(quick_run):
    from replearn.evaluate.baselines import BASELINES

    metrics = json.loads((quick_run / "metrics.json").read_text())
    md = (quick_run / "report.md").read_text()
    rows = {row[0].split(" ⚠")[0]: row for row in table_rows(md, "Baselines: what every learned model must beat")}
    assert list(rows) == [b.title for b in BASELINES]
    for b in BASELINES:
        assert metrics["probes"][b.title]["baseline"] is True
    majority = metrics["probes"]["majority class (always the largest stage)"]
    assert majority["accuracy_mean"] == pytest.approx(54 / 120, abs=0.01)
    v = metrics["verdict"]
    assert v["best_baseline"] in rows and v["recommended"] in metrics["cnn"] or v["recommended"] in metrics["probes"]
    # the recommended model's number is the outer score of the per-split choice by inner score
    sel = v["selection"]
    everything = {**metrics["cnn"], **metrics["probes"]}
    for r, name in enumerate(sel["chosen"]):
        inner = {n: m["inner_accuracy"][r] for n, m in everything.items()}
        assert inner[name] == max(inner.values())
        assert sel["accuracy"][r] == everything[name]["accuracy"][r]
    summary = md.split("## Summary\n", 1)[1].split("## ", 1)[0]
    assert f"Recommended model: **{v['recommended']}**" in summary and "nested selection" in summary
    assert f"Best baseline: {v['best_baseline']}" in summary
    if not v["learned_beating_baseline"]:
        assert "No learned model (a CNN, or a simple classifier on autoencoder, SimCLR or PCA codes) beats" in summary
    assert "too wide to rank models" in summary  # 3 splits
    # the saved CNN is a fold ensemble that predict averages
    saved = metrics["saved"]["cnn"]
    assert saved["ensemble"] == ["model.safetensors", "model-fold2.safetensors", "model-fold3.safetensors"]
    assert all((quick_run / f).is_file() for f in saved["ensemble"])


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading`` in a Markdown report."""
    lines = markdown.split(f"## {heading}\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    stop = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start + 2 : stop]]


def test_report_numbers_equal_the_metrics_json(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    md = (quick_run / "report.md").read_text()
    rows = table_rows(md, "Results: every model, best first")
    assert len(rows) == len(metrics["results"])
    for row, r in zip(rows, metrics["results"]):
        assert row == [r["name"], r["kind"], r["representation"], fmt(r["accuracy_mean"], r["accuracy_ci"], r["runs"]),
                       fmt(r["macro_f1_mean"], r["macro_f1_ci"], r["runs"]), str(r["runs"]),
                       report.stage_recall(r["recall"]),
                       "⚠ not better" if r["not_better_than_majority"] else "better"]
    cnn_rows = {row[0].split(" ⚠")[0]: row for row in table_rows(md, "(a) CNN classifier on the labelled crops")}
    assert set(cnn_rows) == set(metrics["cnn"])
    for name, r in metrics["cnn"].items():
        assert cnn_rows[name][4:6] == [fmt(r["accuracy_mean"], r["accuracy_ci"], r["runs"]),
                                       fmt(r["macro_f1_mean"], r["macro_f1_ci"], r["runs"])]
    probe_rows = {row[0].split(" ⚠")[0]: row for row in table_rows(md, "(c) Simple classifiers on the encoded crops")}
    for name, r in metrics["probes"].items():
        if not r["baseline"]:
            assert probe_rows[name][2] == fmt(r["accuracy_mean"], r["accuracy_ci"], r["runs"])
    # class counts, and every comparison sentence, as in the JSON
    data_rows = {row[0]: row[1] for row in table_rows(md, "Data")}
    for name, count in zip(metrics["data"]["class_names"], metrics["data"]["class_counts"]):
        assert data_rows[name] == str(count)
    assert metrics["comparisons"]
    for c in metrics["comparisons"]:
        assert c["sentence"] in md
        means = [float(v) for v in re.findall(r"\((\d\.\d{3}) vs (\d\.\d{3})", c["sentence"])[0]]
        a = metrics["cnn"].get(c["a"]) or metrics["probes"][c["a"]]
        b = metrics["cnn"].get(c["b"]) or metrics["probes"][c["b"]]
        assert sorted(means) == sorted([round(a["accuracy_mean"], 3), round(b["accuracy_mean"], 3)])


def test_predict_round_trips_the_saved_cnn(quick_run, tmp_path):
    data = synthetic_aureus(12, 5, seed=7)
    npz = tmp_path / "crops.npz"
    data.save_npz(npz)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(quick_run), str(npz), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    assert header[:3] == ["item", "predicted_index", "predicted_stage"] and len(header) == 8
    assert header[6:] == ["shift_ratio", "unlike_training (shift_ratio > 2)"]  # the run saved a reference
    assert len(rows) == 17 and rows[0][0] == "labelled[0]" and rows[-1][0] == "unlabelled[4]"
    probs = np.array([[float(v) for v in r[3:6]] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [int(r[1]) for r in rows] == probs.argmax(axis=1).tolist()
    names = json.loads((quick_run / "model.json").read_text())["meta"]["class_names"]
    assert [r[2] for r in rows] == [names[int(r[1])] for r in rows]


def write_config(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_empty_unlabelled_set_skips_the_autoencoder(tmp_path, capsys):
    data = synthetic_aureus(24, 0, seed=1)
    npz = tmp_path / "data.npz"
    np.savez(npz, labelled=data.labelled, labels=data.labels, unlabelled=data.unlabelled)  # no synthetic marker
    out = tmp_path / "run"
    cfg = write_config(tmp_path, TINY.replace("[data]", "[data]\nn_val = 9") + "[pretrain]\ngenerated = 0\n")
    assert main(["assignment", "--data", str(npz), "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "autoencoder) was skipped" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["synthetic"] is False  # a file given with --data and no marker is taken as real data
    assert SYNTHETIC_BANNER not in (out / "report.md").read_text()
    assert metrics["autoencoder"]["skipped"] and metrics["autoencoder"]["models"] == {}
    assert {r["representation"] for r in metrics["probes"].values()} == {"PCA-2", "raw pixels", "raw pixels + D4 copies",
                                                                          "HOG features"}
    assert not list(out.glob("autoencoder-*"))
    assert "Skipped: the data has no unlabelled crops" in (out / "report.md").read_text()
    assert metrics["ssl"] == {"skipped": "[ssl] epochs = 0", "models": {}} and not list(out.glob("simclr-*"))


def test_quick_run_pretrains_simclr_and_probes_its_features(quick_run):
    assert (quick_run / "simclr-encoder.safetensors").is_file() and (quick_run / "simclr-encoder.json").is_file()
    metrics = json.loads((quick_run / "metrics.json").read_text())
    ssl = metrics["ssl"]["models"]["SimCLR"]
    assert metrics["ssl"]["skipped"] is None
    assert (ssl["epochs"], ssl["feature_dim"]) == (3, 64) and len(ssl["history"]["loss"]) == 3
    probes = [r for r in metrics["probes"].values() if r["representation"] == "SimCLR features"]
    assert len(probes) == len(grid.DEFAULTS["probes"]["names"])
    titles = [c["title"] for c in metrics["comparisons"]]
    assert "SimCLR features vs autoencoder codes (same classifier)" in titles
    assert "SimCLR features vs raw pixels (same classifier)" in titles
    assert "SimCLR features, t-SNE" in metrics["embedding"]["panels"]
    md = (quick_run / "report.md").read_text()
    assert "(b+) Beyond the lecture: self-supervised pretraining (SimCLR)" in md
    assert "simclr-encoder.safetensors: the SimCLR encoder" in md
    # the saved encoder gives the features the probes used
    encoder, meta = load_model(quick_run / "simclr-encoder.safetensors")
    assert meta["task"] == "encoder" and meta["feature_dim"] == 64
    data = synthetic_aureus(metrics["data"]["n_labelled"], metrics["data"]["n_unlabelled"], seed=0)
    assert predict(encoder, to_tensor(data.labelled[:4])).shape == (4, 64)


def test_saved_simclr_encoder_works_with_replearn_embed(quick_run, tmp_path):
    npz = tmp_path / "crops.npz"
    synthetic_aureus(6, 2, seed=3).save_npz(npz)
    out = tmp_path / "features.csv"
    assert main(["embed", "--model", str(quick_run / "simclr-encoder.safetensors"), str(npz), "--key", "labelled",
                 "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 7 and len(lines[0].split(",")) == 1 + 64


def test_file_from_replearn_synth_is_reported_as_synthetic(tmp_path, capsys):
    npz = tmp_path / "data.npz"
    assert main(["synth", "--out", str(npz), "--n-labelled", "24", "--n-unlabelled", "0"]) == 0
    out = tmp_path / "run"
    cfg = write_config(tmp_path, TINY.replace("[data]", "[data]\nn_val = 9"))
    assert main(["assignment", "--data", str(npz), "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "Data: SYNTHETIC crops" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["synthetic"] is True and metrics["data"]["synthetic"] is True
    assert "preset=sim, seed=0" in metrics["data"]["source"]
    assert SYNTHETIC_BANNER in (out / "report.md").read_text()
    assert json.loads((out / "model.json").read_text())["meta"]["synthetic"] is True


def test_report_describes_the_configured_cnn_augmentation_and_data_size(tmp_path):
    data = synthetic_aureus(30, 0, seed=2)
    npz = tmp_path / "data.npz"
    data.save_npz(npz)
    spec = ["conv 4", "relu", "maxpool", "gap as features", "dense 3"]
    cfg = write_config(tmp_path, TINY.replace("[data]", "[data]\nn_val = 9").replace(
        "augment = [false]", f"augment = [true]\nspec = {json.dumps(spec)}") + "[augment]\nflips = false\nrot90 = false\n")
    out = tmp_path / "run"
    assert main(["assignment", "--data", str(npz), "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    md = " ".join((out / "report.md").read_text().split())
    assert "30 labelled crops (not the course's 400)" in md and "400 labelled" not in md
    part_a = md[md.index("## (a) CNN"):md.index("## (b)")]
    assert "A CNN built from the config's layer spec (conv 4; relu; maxpool; gap as features; dense 3;" in part_a
    assert "small CNN" not in part_a and "flips" not in part_a and "90-degree" not in part_a
    assert "Augmentation (points marked +aug) suits cells: small brightness changes (gain ±0.1, offset ±0.05)." in part_a


def test_cnn_text_follows_the_config():
    cfg = grid.load_grid()
    text = report.cnn_text(cfg, 3)
    assert text.startswith("A small CNN (") and "dense 64, dropout 0.25, softmax over 3 stages" in text
    assert "random flips and 90-degree rotations" in text and "gain ±0.1, offset ±0.05" in text
    cfg["augment"].update(flips=True, rot90=False, scale=0.0, offset=0.0)
    assert report.cnn_text(cfg, 3).endswith("suits cells: random mirror flips (a cell has no preferred orientation, "
                                            "and neither interpolates pixels).")
    cfg["augment"]["flips"] = False
    assert report.cnn_text(cfg, 3).endswith("is on, but [augment] turns every change off.")
    cfg["cnn"]["augment"] = [False]
    assert report.cnn_text(cfg, 3).endswith("No augmentation ([cnn] augment = [false]).")


def test_unknown_config_key_exits_2_with_did_you_mean(tmp_path, capsys):
    cfg = write_config(tmp_path, "[cnn]\ndepht = [2]\n")
    out = tmp_path / "run"
    assert main(["assignment", "--quick", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown key 'depht'; did you mean 'depth'?" in err and "grid.toml" in err
    assert not out.exists()


@pytest.mark.parametrize("n_unlabelled, printed, reported", [
    (5, "on the 5 unlabelled crops plus 40 SYNTHETIC crops generated with the 'widefield' preset",
     "5 unlabelled crops + 40 SYNTHETIC crops from the built-in generator (45 images"),
    (0, "on 40 SYNTHETIC crops generated with the 'widefield' preset (the data has no unlabelled crops)",
     "40 SYNTHETIC crops from the built-in generator (the data has no unlabelled crops)"),
])
def test_few_or_no_unlabelled_crops_are_topped_up_with_generated_ones(tmp_path, capsys, n_unlabelled, printed,
                                                                      reported):
    data = synthetic_aureus(30, n_unlabelled, seed=2)
    npz = tmp_path / "data.npz"
    np.savez(npz, labelled=data.labelled, labels=data.labels, unlabelled=data.unlabelled)
    out = tmp_path / "run"
    cfg = write_config(tmp_path, TINY + "[pretrain]\nmin_unlabelled = 10\ngenerated = 40\npreset = \"widefield\"\n")
    assert main(["assignment", "--data", str(npz), "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert printed in said and "the 0 unlabelled crops" not in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["autoencoder"]["models"]["AE-2"]["seen"] == {"unlabelled": n_unlabelled, "generated": 40}
    report = " ".join((out / "report.md").read_text().split())
    assert reported in report and "0 unlabelled crops +" not in report


def test_a_single_stage_is_one_line(tmp_path, capsys):
    labelled = np.random.default_rng(0).integers(0, 255, (30, 40, 40), dtype=np.uint8)
    npz = tmp_path / "one.npz"
    np.savez(npz, labelled=labelled, labels=np.zeros(30, int), unlabelled=labelled[:5])
    out = tmp_path / "run"
    assert main(["assignment", "--data", str(npz), "--config", str(write_config(tmp_path)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "only stage 0 is present" in err and "at least two stages" in err
    assert not out.exists()


def test_class_with_one_example_exits_2_in_one_line(tmp_path, capsys):
    labelled = np.random.default_rng(0).integers(0, 255, (21, 40, 40), dtype=np.uint8)
    labels = np.array([0] * 10 + [1] * 10 + [2])
    npz = tmp_path / "one.npz"
    np.savez(npz, labelled=labelled, labels=labels, unlabelled=labelled[:5])
    out = tmp_path / "run"
    assert main(["assignment", "--data", str(npz), "--config", str(write_config(tmp_path)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "class 2 has only 1 example" in err and "one.npz" in err
    labels[-2] = 2  # two crops of stage 2: too few for a cross-validation that trains on two thirds
    np.savez(npz, labelled=labelled, labels=labels, unlabelled=labelled[:5])
    assert main(["assignment", "--data", str(npz), "--config", str(write_config(tmp_path)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "class 2 has only 2 labelled crops;" in err and "at least 3 per class" in err
    assert not out.exists()
    assert not out.exists()


def test_ssl_depth_too_deep_for_the_crops_is_refused_before_any_work(tmp_path, capsys):
    cfg = write_config(tmp_path, "[ssl]\ndepth = 7\n")
    out = tmp_path / "run"
    assert main(["assignment", "--quick", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "[ssl] depth = 7 halves 40x40 crops" in err and "at most 5" in err, err
    assert not out.exists()


def test_crops_of_an_unusable_size_are_refused_in_one_line(tmp_path, capsys):
    data = synthetic_aureus(30, 10, seed=0, size=42)
    npz = tmp_path / "big.npz"
    data.save_npz(npz)
    assert main(["assignment", "--data", str(npz), "--config", str(write_config(tmp_path)),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "crops are 42x42 pixels; the models need sides divisible by 4" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------------- the grid config
def test_example_config_file_is_the_defaults():
    assert grid.load_grid(REPO / "configs" / "grid.toml") == grid.DEFAULTS


def test_grid_expands_the_cnn_axes_and_quick_cuts_them(tmp_path):
    cfg = write_config(tmp_path, "[cnn]\ndepth = [2, 3]\nwidth = [8, 16]\ndropout = [0.0, 0.5]\n")
    points = grid.cnn_points(grid.load_grid(cfg))
    assert len(points) == 2 * 2 * 2 * 2 and len({p.name for p in points}) == 16
    assert "cnn d3 w8 p0.5 +aug" in {p.name for p in points}
    quick = grid.load_grid(cfg, quick=True)
    assert [p.name for p in grid.cnn_points(quick)] == ["cnn d2 w8 p0 +aug", "cnn d2 w8 p0 +aug +sim2real widefield"]
    assert (quick["data"]["repeats"], quick["data"]["n_labelled"], quick["data"]["n_val"]) == (2, 120, 30)
    assert grid.code_dims(quick) == [16]
    assert tomllib.loads(grid.to_toml(quick)) == quick


@pytest.mark.parametrize(
    "text, message",
    [
        ("[cnn]\ndepth = []\n", r"\[cnn\] depth: the list is empty"),
        ("[cnn]\ndropout = [1.5]\n", r"\[cnn\] dropout: got 1.5 in \[1.5\]; allowed: floats >= 0 and < 1"),
        ("[cnn]\ndepth = 3\n", r"depth must be a list"),
        ("[probes]\nnames = [\"svm\"]\n", r"\[probes\] names: unknown probe 'svm'"),
        ("[autoencoder]\nblocks = [[32], []]\n", r"\[autoencoder\] blocks: got"),
        ("[report]\nembedding = \"umap\"\n", r"\[report\] embedding: got 'umap'; allowed: 'tsne', 'isomap', 'pca'"),
        ("[data]\nrepeats = 0\n", r"\[data\] repeats: got 0"),
        ("[ssl]\nbatch_size = 1\n", r"\[ssl\] batch_size: got 1; allowed: a number >= 2"),
        ("[ssl]\ntemperature = 0\n", r"\[ssl\] temperature: got 0"),
        ("[ssl]\nbf16 = \"yes\"\n", r"\[ssl\] bf16: got 'yes'"),
    ],
)
def test_bad_values_name_table_and_key(tmp_path, text, message):
    with pytest.raises(ReplearnError, match=message):
        grid.load_grid(write_config(tmp_path, text))


@pytest.mark.parametrize(
    "spec, message",
    [
        (["conv 4", "relu", "pool", "gap", "dense 3"], "unknown layer 'pool'"),
        (["conv 4", "dense 3"], "dense needs flat (N,) vectors"),
        (["conv 4", "gap", "dense 5"], "the spec's output has 5 units but the data has 3 classes"),
        (["conv 4"], "the spec's output has shape (4, 40, 40), but a classifier needs 3 logits"),
    ],
)
def test_bad_cnn_spec_exits_2_before_the_run_folder(tmp_path, capsys, spec, message):
    cfg = write_config(tmp_path, f"[cnn]\nspec = {json.dumps(spec)}\n")
    out = tmp_path / "run"
    assert main(["assignment", "--quick", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and f"{cfg} [cnn] spec:" in err
    assert not out.exists()


def test_check_spec_accepts_a_good_spec_and_keeps_the_random_state():
    import torch

    cfg = grid.load_grid()
    cfg["cnn"]["spec"] = ["conv 4", "relu", "gap as features", "dense 3"]
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    grid.check_spec(cfg, (1, 40, 40), 3)
    assert torch.equal(torch.rand(3), expected)
    with pytest.raises(ReplearnError, match=r"^grid config \[cnn\] spec: the spec's output has 3 units but the data has 2"):
        grid.check_spec(cfg, (1, 40, 40), 2)


@pytest.mark.parametrize(
    "n_labelled, n_val, expected",
    [(400, 100, 30), (240, 60, 30), (120, 40, 40), (30, 20, 20), (60, 2, 2), (1000, 5, 3)],
)
def test_quick_never_increases_n_val(tmp_path, n_labelled, n_val, expected):
    cfg = write_config(tmp_path, f"[data]\nn_labelled = {n_labelled}\nn_val = {n_val}\n")
    quick = grid.load_grid(cfg, quick=True)["data"]
    assert quick["n_val"] == expected and quick["n_labelled"] == min(n_labelled, 120)


def test_small_data_is_cross_validated_automatically_and_cv_can_be_asked(tmp_path, capsys):
    cfg = write_config(tmp_path, TINY.replace("[data]", "[data]\nn_labelled = 30\nn_val = 12\nn_unlabelled = 0")
                       + "[pretrain]\ngenerated = 0\n")
    out = tmp_path / "run"
    assert main(["assignment", "--quick", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "protocol: 3-fold cross-validation, 1 repeat(s) (3 splits)" in capsys.readouterr().out
    p = json.loads((out / "metrics.json").read_text())["protocol"]
    assert (p["kind"], p["folds"], p["splits"]) == ("cv", 3, 3) and p["n_train"] >= 20
    md = " ".join((out / "report.md").read_text().split())
    assert "Why this protocol: 30 labelled crops (not the course's 400): repeated stratified 3-fold" in md
    out2 = tmp_path / "run2"
    assert main(["assignment", "--quick", "--cv", "4", "--config", str(cfg), "--out", str(out2), "--no-progress"]) == 0
    p = json.loads((out2 / "metrics.json").read_text())["protocol"]
    assert (p["kind"], p["folds"], p["splits"]) == ("cv", 4, 4) and "(--cv 4)" in p["reason"]


def test_simclr_comparisons_are_not_repeated():
    from replearn.evaluate.protocol import Scores
    from replearn.workflows._assignment_metrics import comparisons
    from replearn.workflows._assignment_models import CnnResult, ProbeResult

    def rec(acc, representation=None, probe=None, point=None):  # typed records: a CNN's or a probe's scores
        scores = Scores(accuracy=acc, macro_f1=acc)
        if point is not None:
            return CnnResult(point, scores)
        kind = {"SimCLR features": "ssl", "raw pixels": "pixels"}[representation]
        return ProbeResult(probe, representation, kind, scores=scores)

    cnn = {"cnn d2 w16 p0.25": rec([0.80, 0.90, 0.85], point=grid.CnnPoint(2, 16, 0.25, False))}
    ssl_best = {"logistic regression on SimCLR features": rec([0.70, 0.75, 0.72], representation="SimCLR features",
                                                              probe="logreg"),
                "logistic regression on raw pixels": rec([0.60, 0.62, 0.61], representation="raw pixels",
                                                         probe="logreg")}
    titles = [c.title for c in comparisons(cnn, ssl_best)]
    assert titles == ["Best CNN vs best simple classifier", "SimCLR features vs raw pixels (same classifier)"]
    raw_best = {**ssl_best, "logistic regression on raw pixels": rec([0.74, 0.76, 0.75], representation="raw pixels",
                                                                     probe="logreg")}
    titles = [c.title for c in comparisons(cnn, raw_best)]
    assert "Best CNN vs SimCLR features + simple classifier" in titles


def test_predict_averages_the_fold_ensemble_over_the_symmetries_and_scores_labels(quick_run, tmp_path, capsys):
    import torch

    from replearn.encoders import load_classifier
    from replearn.evaluate.tta import d4_views

    clf = load_classifier(quick_run)
    assert len(clf.members) == 2 and clf.meta["tta"] == "d4"
    data = synthetic_aureus(12, 0, seed=7)
    x = to_tensor(data.labelled)
    expected = np.mean([torch.softmax(predict(m, v).double(), dim=1).numpy()
                        for m in (clf.model, *clf.members) for v in d4_views(x)], axis=0)
    np.testing.assert_allclose(clf.probabilities(data.labelled), expected, atol=1e-6)
    # a member file alone is that one model
    assert load_classifier(quick_run / "model-fold2.safetensors").members == ()
    # predict on a file with labels reports the accuracy against them
    npz = tmp_path / "labelled.npz"
    data.save_npz(npz)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(quick_run), str(npz), "--out", str(out)]) == 0
    side = json.loads(out.with_suffix(".json").read_text())["accuracy_against_labels"]
    predicted = expected.argmax(axis=1)
    assert side["n"] == 12 and side["correct"] == int((predicted == data.labels).sum())
    assert f"accuracy against the file's labels {side['accuracy']:.3f} ({side['correct']} of 12)" in capsys.readouterr().out


def test_the_pretrain_axis_names_sim_to_real_rows_and_is_checked(tmp_path):
    cfg = write_config(tmp_path, "[cnn]\ndepth = [4]\naugment = [true]\npretrain = [\"none\", \"widefield\"]\n")
    points = grid.cnn_points(grid.load_grid(cfg))
    assert [p.name for p in points] == ["cnn d4 w16 p0.25 +aug", "cnn d4 w16 p0.25 +aug +sim2real widefield"]
    assert points[1].params()["pretrain"] == "widefield" and points[1].twin(False).pretrain == "widefield"
    from replearn.workflows._assignment_models import cnn_estimator

    est = cnn_estimator(points[1], grid.load_grid(cfg), 3, 0, "cpu", None)
    assert (est.pretrain, est.pretrain_n, est.pretrain_epochs) == ("widefield", 1000, 3)
    assert cnn_estimator(points[0], grid.load_grid(cfg), 3, 0, "cpu", None).pretrain is None
    with pytest.raises(ReplearnError, match=r"\[cnn\] pretrain: got \['real'\]; allowed.*'widefield-septa'"):
        grid.load_grid(write_config(tmp_path, "[cnn]\npretrain = [\"real\"]\n"))
    septa = grid.cnn_points(grid.load_grid(write_config(tmp_path, "[cnn]\npretrain = [\"widefield-septa\"]\n")))
    assert {p.name.split(" +sim2real ")[-1] for p in septa} == {"widefield-septa"}


def test_resume_loads_finished_fits_and_redoes_only_the_missing_ones(tmp_path, monkeypatch):
    """``--resume``: the CNN and probe fits kept in the run folder are loaded, not redone; the metrics are the same."""
    from test_kill_resume import _metrics

    from replearn.encoders import CNNClassifier
    from replearn.utils.units import UNITS_DIR
    from replearn.workflows import _assignment_models as models

    fits = {"cnn": 0, "probe": 0}
    cnn_fit, probe_fit = CNNClassifier.fit, models.fit_predict_views

    def count_cnn(self, *args, **kwargs):
        fits["cnn"] += 1
        return cnn_fit(self, *args, **kwargs)

    def count_probe(*args, **kwargs):
        fits["probe"] += 1
        return probe_fit(*args, **kwargs)

    monkeypatch.setattr(CNNClassifier, "fit", count_cnn)
    monkeypatch.setattr(models, "fit_predict_views", count_probe)
    cfg = write_config(tmp_path, TINY)
    out = tmp_path / "run"
    assert main(["assignment", "--quick", "--config", str(cfg), "--out", str(out), "--no-progress", "--device",
                 "cpu", "--jobs", "1"]) == 0  # in this process, where the fits are counted
    expected = _metrics(out)
    n_points = len(grid.cnn_points(grid.load_grid(cfg, quick=True)))
    assert fits["cnn"] == n_points * 3 * 2  # 120 crops: 3 folds x 1 repeat, each split and its inner split
    units = sorted((out / UNITS_DIR).glob("*.safetensors"))
    cnn_units = [p for p in units if p.name.startswith("part=cnn")]
    probe_units = [p for p in units if p.name.startswith("part=probe")]
    assert len(cnn_units) == fits["cnn"] and len(probe_units) == fits["probe"] > 0

    # An interrupted run: its last fits never finished, and it wrote no results.
    lost = cnn_units[::3] + probe_units[::4]
    for path in lost + [out / "metrics.json", out / "report.md", out / "model.safetensors"]:
        path.unlink()
    fits.update(cnn=0, probe=0)
    assert main(["assignment", "--out", str(out), "--resume", "--no-progress", "--jobs", "1"]) == 0
    assert fits == {"cnn": len(cnn_units[::3]), "probe": len(probe_units[::4])}
    assert _metrics(out) == expected

    fits.update(cnn=0, probe=0)  # resuming a finished run trains nothing again
    assert main(["assignment", "--out", str(out), "--resume", "--no-progress", "--jobs", "1"]) == 0
    assert fits == {"cnn": 0, "probe": 0} and _metrics(out) == expected


def test_report_says_how_to_open_the_explorer_on_this_run(quick_run):
    assert "replearn explore RUN --out RUN/explore.html" in (quick_run / "report.md").read_text()


@pytest.mark.parametrize("preset", ["widefield", "widefield-septa"])
def test_generated_pretraining_crops_follow_the_synthetic_data_s_own_preset(preset):
    """SYNTHETIC data made with a preset top their few unlabelled crops up with crops of that same preset."""
    from replearn.workflows._assignment_models import pretraining_crops

    data = synthetic_aureus(12, 3, seed=0, preset=preset)
    config = grid.complete({}, None, False)
    config["pretrain"].update(preset="sim", generated=5)
    crops, seen, sentence = pretraining_crops(data, config, 0)
    assert seen == {"unlabelled": 3, "generated": 5} and len(crops) == 8
    assert f"generated with the {preset!r} preset" in sentence
    np.testing.assert_array_equal(crops[3:], synthetic_aureus(0, 5, seed=7919, preset=preset).unlabelled)
