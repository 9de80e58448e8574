"""``replearn predict``: softmax probabilities per crop to CSV, from npz files or folders of PNG/TIFF crops."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from replearn.cli import main
from replearn.models import conv_autoencoder, save_model, small_cnn
from replearn.train import predict
from replearn.data import to_tensor

NAMES = ["0 before division", "1 septum forming", "2 septum formed"]


@pytest.fixture()
def model_dir(tmp_path):
    """An (untrained) 3-class CNN for 16x16 crops, saved as a run folder with the assignment's metadata."""
    torch.manual_seed(0)
    model = small_cnn((1, 16, 16), 3, depth=2, width=4, dense=8).eval()
    with torch.no_grad():  # make predictions differ between images
        model.get_layer("dense_2").bias.copy_(torch.tensor([0.3, 0.0, -0.3]))
    run = tmp_path / "run"
    save_model(model, run / "model.safetensors", {"task": "classifier", "class_names": NAMES,
                                                  "input_size": [16, 16], "synthetic": True})
    return run, model


def crops(n: int = 7, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_npz_rows_probabilities_and_argmax(model_dir, tmp_path, capsys):
    run, model = model_dir
    images = crops()
    npz = tmp_path / "x.npz"
    np.savez(npz, labelled=images[:4], labels=np.array([0, 1, 2, 0]), unlabelled=images[4:])
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(run), str(npz), "--out", str(out)]) == 0
    header, rows = read_csv(out)
    assert header == ["item", "predicted_index", "predicted_stage"] + [f"p({n})" for n in NAMES]
    assert [r[0] for r in rows] == [f"labelled[{i}]" for i in range(4)] + [f"unlabelled[{i}]" for i in range(3)]
    probs = np.array([[float(v) for v in r[3:]] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    expected = torch.softmax(predict(model, to_tensor(images)), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=2e-6)
    assert [int(r[1]) for r in rows] == expected.argmax(axis=1).tolist()
    assert [r[2] for r in rows] == [NAMES[int(r[1])] for r in rows]
    assert "SYNTHETIC" in capsys.readouterr().out
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["model_trained_on_synthetic_data"] is True and sum(side["predicted_counts"]) == 7


def test_crops_marked_synthetic_are_reported(model_dir, tmp_path, capsys):
    from replearn.data import AssignmentData

    run, _ = model_dir
    images = crops()
    plain, marked = tmp_path / "plain.npz", tmp_path / "marked.npz"
    np.savez(plain, labelled=images[:3], labels=np.arange(3), unlabelled=images[3:])
    AssignmentData(images[:3], np.arange(3), images[3:], synthetic=True).save_npz(marked)
    for npz, expected in ((plain, False), (marked, True)):
        out = tmp_path / f"{npz.stem}.csv"
        assert main(["predict", "--model", str(run), str(npz), "--out", str(out)]) == 0
        assert json.loads(out.with_suffix(".json").read_text())["images_synthetic"] is expected
        assert ("the crops are SYNTHETIC" in capsys.readouterr().out) is expected
        assert len(read_csv(out)[1]) == 7  # the marker keys are not read as crops


def test_key_picks_one_array(model_dir, tmp_path):
    run, _ = model_dir
    npz = tmp_path / "x.npz"
    np.savez(npz, labelled=crops(3), labels=np.zeros(3), unlabelled=crops(5))
    out = tmp_path / "u.csv"
    assert main(["predict", "--model", str(run / "model.safetensors"), str(npz), "--key", "unlabelled",
                 "--out", str(out)]) == 0
    assert [r[0] for r in read_csv(out)[1]] == [f"unlabelled[{i}]" for i in range(5)]


def test_folder_of_png_and_tiff_crops_in_name_order(model_dir, tmp_path):
    run, model = model_dir
    folder = tmp_path / "crops"
    folder.mkdir()
    images = crops(3)
    Image.fromarray(images[0]).save(folder / "b.png")
    tifffile.imwrite(folder / "a.tif", images[1])
    Image.fromarray(np.stack([images[2]] * 3, axis=-1)).save(folder / "c.png")  # grayscale saved as RGB
    (folder / "notes.txt").write_text("not an image")
    out_dir = tmp_path / "outdir"
    assert main(["predict", "--model", str(run), str(folder), "--out", str(out_dir)]) == 0
    header, rows = read_csv(out_dir / "predictions.csv")
    assert [r[0] for r in rows] == ["a.tif", "b.png", "c.png"]
    expected = torch.softmax(predict(model, to_tensor(images[[1, 0, 2]])), dim=1).numpy()
    np.testing.assert_allclose(np.array([[float(v) for v in r[3:]] for r in rows]), expected, atol=2e-6)


def test_wrong_size_autoencoder_and_missing_model_exit_2(model_dir, tmp_path, capsys):
    run, _ = model_dir
    npz = tmp_path / "big.npz"
    np.savez(npz, images=crops(2, size=20))
    assert main(["predict", "--model", str(run), str(npz), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "crops are 20x20 px but the model was trained on 16x16 px crops" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.csv").exists()

    ae_path = save_model(conv_autoencoder((1, 16, 16), 2), tmp_path / "ae.safetensors", {"task": "autoencoder"})
    assert main(["predict", "--model", str(ae_path), str(npz)]) == 2
    assert "holds an autoencoder, not a classifier" in capsys.readouterr().err

    assert main(["predict", "--model", str(tmp_path / "nope"), str(npz)]) == 2
    assert "no such run folder or weights file" in capsys.readouterr().err


def test_help_describes_out_as_the_csv_file(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    # The default moved from ./predictions.csv to a new run folder, as for every workflow (issue "One shape").
    assert ("--out PATH the CSV file to write, or a folder for predictions.csv "
            "(default: runs/predict-<stamp>/predictions.csv)") in text
    assert "run directory" not in text and "runs/<workflow>" not in text


def test_default_out_is_a_new_run_folder(model_dir, tmp_path, monkeypatch):
    """Without --out the CSV and its sidecar go to runs/predict-<stamp>/ (it was ./predictions.csv)."""
    run, _ = model_dir
    npz = tmp_path / "x.npz"
    np.savez(npz, images=crops(4))
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--model", str(run), str(npz)]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("predict-")
    assert sorted(p.name for p in folder.iterdir()) == ["predictions.csv", "predictions.json"]
    assert len(read_csv(folder / "predictions.csv")[1]) == 4


# ----------------------------------------------------------------------------- the domain-shift warning
def saved_with_reference(tmp_path, training: np.ndarray):
    """The fixture's kind of network saved with a reference of ``training`` crops, as the assignment saves it."""
    from replearn.evaluate.domain_shift import reference_meta

    torch.manual_seed(0)
    model = small_cnn((1, 16, 16), 3, depth=2, width=4, dense=8).eval()
    run = tmp_path / "ref-run"
    save_model(model, run / "model.safetensors", {"task": "classifier", "class_names": NAMES,
                                                  "input_size": [16, 16], **reference_meta(training, seed=0)})
    return run


def dark(n: int, seed: int) -> np.ndarray:
    """Dim crops (0..59)."""
    return np.random.default_rng(seed).integers(0, 60, (n, 16, 16), dtype=np.uint8)


def test_crops_unlike_the_training_crops_get_a_warning_in_the_line_the_csv_and_the_sidecar(tmp_path, capsys):
    run = saved_with_reference(tmp_path, dark(200, 0))
    for name, images, warned in (("alike", dark(60, 1), False), ("unlike", crops(60, seed=2), True)):
        npz, out = tmp_path / f"{name}.npz", tmp_path / f"{name}.csv"
        np.savez(npz, unlabelled=images)
        assert main(["predict", "--model", str(run), str(npz), "--out", str(out)]) == 0
        line = capsys.readouterr().out
        assert ("WARNING: these crops do not look like the model's training crops" in line) is warned
        assert ("no large shift from the model's training crops" in line) is not warned
        header, rows = read_csv(out)
        assert header[-2:] == ["shift_ratio", "unlike_training (shift_ratio > 2)"]
        flagged = sum(int(r[-1]) for r in rows)
        assert (flagged > 50) is warned and (flagged < 10) is not warned
        side = json.loads(out.with_suffix(".json").read_text())["domain_shift"]
        assert side["checked"] is True and side["threshold"] == 0.8 and side["shifted"] is warned
        assert (side["auc"] > 0.8) is warned
        assert "training_reference" not in json.loads(out.with_suffix(".json").read_text())["model_meta"]


def test_a_model_saved_without_a_reference_says_it_cannot_check(model_dir, tmp_path, capsys):
    run, _ = model_dir
    npz, out = tmp_path / "x.npz", tmp_path / "x.csv"
    np.savez(npz, unlabelled=crops(30))
    assert main(["predict", "--model", str(run), str(npz), "--out", str(out)]) == 0
    assert "no domain-shift check: the model was saved without a sample of its training crops" in \
        capsys.readouterr().out
    assert read_csv(out)[0][-1] == "p(2 septum formed)"  # no shift columns
    assert json.loads(out.with_suffix(".json").read_text())["domain_shift"]["checked"] is False
