"""``replearn embed``: codes equal the encoder's for npz, IDX, PNG and TIFF inputs; bad inputs exit 2."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest
import tifffile
import torch

from replearn.cli import main
from replearn.evaluate import AutoEncoderEmbedding
from replearn.models import Network, save_model
from replearn.workflows._images import read_images, write_png

SIZE = 16


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """SYNTHETIC uint8 images (12, 16, 16)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, size=(12, SIZE, SIZE)).astype(np.uint8)
    x[::2, :, : SIZE // 2] += 180
    return x


@pytest.fixture(scope="module")
def trained(tmp_path_factory, images):
    """A tiny autoencoder saved as a run folder, and its estimator."""
    est = AutoEncoderEmbedding(blocks=((4,), (4,)), code_dim=3, epochs=1, batch_size=8, device="cpu").fit(images)
    run = tmp_path_factory.mktemp("ae-run")
    save_model(est.model_, run / "model.safetensors", meta={"workflow": "test"})
    return run, est


def read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]], np.float32)


def test_npz_key_to_csv_round_trip(tmp_path, images, trained):
    run, est = trained
    data = tmp_path / "data.npz"
    np.savez(data, labelled=images[:5], unlabelled=images[5:], labels=np.arange(5))
    out = tmp_path / "codes.csv"
    assert main(["embed", "--model", str(run), str(data), "--key", "labelled", "--out", str(out)]) == 0
    header, items, codes = read_csv(out)
    assert header == ["item", "z0", "z1", "z2"]
    assert items == [f"labelled[{i}]" for i in range(5)]
    np.testing.assert_array_equal(codes, est.transform(images[:5]))


def test_codes_of_a_synthetic_npz_say_so(tmp_path, images, trained, capsys):
    from replearn.data import AssignmentData

    run, est = trained
    data = tmp_path / "syn.npz"
    AssignmentData(images[:6], np.arange(6) % 3, images[6:], synthetic=True).save_npz(data)
    out = tmp_path / "codes.npz"
    assert main(["embed", "--model", str(run), str(data), "--out", str(out)]) == 0
    assert "the images are SYNTHETIC" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as npz:
        assert bool(npz["synthetic"]) and npz["codes"].shape == (12, 3)
        np.testing.assert_array_equal(npz["codes"], est.transform(images))


def test_npz_all_arrays_to_npz(tmp_path, images, trained):
    run, est = trained
    data = tmp_path / "data.npz"
    np.savez(data, labelled=images[:5], unlabelled=images[5:], labels=np.arange(5))
    out = tmp_path / "codes.npz"
    assert main(["embed", "--model", str(run / "model.safetensors"), str(data), "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as npz:
        assert npz["codes"].shape == (12, 3) and npz["codes"].dtype == np.float32
        assert list(npz["items"][:6]) == [f"labelled[{i}]" for i in range(5)] + ["unlabelled[0]"]
        np.testing.assert_allclose(npz["codes"], est.transform(images), atol=1e-6)


def test_png_and_tiff_folders(tmp_path, images, trained):
    run, est = trained
    pngs, tifs = tmp_path / "pngs", tmp_path / "tifs"
    for i, im in enumerate(images[:4]):
        write_png(pngs / f"cell_{i:02d}.png", im / 255.0)
        tifs.mkdir(exist_ok=True)
        tifffile.imwrite(tifs / f"cell_{i:02d}.tif", im)
    for folder in (pngs, tifs):
        loaded, names = read_images(folder)
        np.testing.assert_array_equal(loaded, images[:4])
        out = tmp_path / f"{folder.name}.csv"
        assert main(["embed", "--model", str(run), str(folder), "--format", "csv", "--out", str(out)]) == 0
        _, items, codes = read_csv(out)
        assert items == [f"cell_{i:02d}.{folder.name[:3]}" for i in range(4)]
        np.testing.assert_array_equal(codes, est.transform(images[:4]))


def test_idx_file(tmp_path, images, trained):
    run, est = trained
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    idx = tmp_path / "images-idx3-ubyte.gz"
    idx.write_bytes(gzip.compress(header + images.tobytes()))
    out = tmp_path / "codes.csv"
    assert main(["embed", "--model", str(run), str(idx), "--out", str(out)]) == 0
    _, items, codes = read_csv(out)
    assert items == [str(i) for i in range(12)]
    np.testing.assert_array_equal(codes, est.transform(images))


def test_classifier_features_layer(tmp_path, images):
    torch.manual_seed(0)
    net = Network(["conv 4", "relu", "maxpool", "flatten as features", "dense 3"], (1, SIZE, SIZE))
    save_model(net, tmp_path / "clf", meta={})
    data = tmp_path / "x.npz"
    np.savez(data, x=images)
    out = tmp_path / "f.npz"
    assert main(["embed", "--model", str(tmp_path / "clf"), str(data), "--out", str(out)]) == 0
    with torch.no_grad():
        expected = net.eval().forward_features(torch.from_numpy(images[:, None] / np.float32(255)))
    with np.load(out) as npz:
        assert npz["codes"].shape == (12, 4 * 8 * 8)
        np.testing.assert_allclose(npz["codes"], expected.numpy().reshape(12, -1), atol=1e-5)


def test_bad_inputs_exit_2_with_one_line(tmp_path, trained, capsys):
    run, _ = trained
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((2, 28, 28), np.uint8))
    colour = tmp_path / "colour.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(colour)
    cases = [
        (["--model", str(run), str(wrong)], "are 28x28 px but the model expects 16x16 px"),
        (["--model", str(tmp_path / "nope"), str(wrong)], "no such run folder"),
        (["--model", str(run), str(tmp_path / "missing.npz")], "no such file"),
        (["--model", str(run), str(wrong), "--key", "y"], "no key 'y'"),
        (["--model", str(run), str(colour)], "colour image"),
        (["--model", str(run), str(wrong), "--out", str(tmp_path / "c.csv"), "--format", "npz"], "make them agree"),
    ]
    for argv, needle in cases:
        assert main(["embed", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err, err


def test_default_out_is_a_new_run_folder(tmp_path, images, trained, monkeypatch):
    """Without --out the codes go to runs/embed-<stamp>/codes.csv (codes.npz with --format npz), as every workflow's
    outputs go to a new run folder (it was ./codes.csv)."""
    run, est = trained
    data = tmp_path / "data.npz"
    np.savez(data, x=images)
    monkeypatch.chdir(tmp_path)
    for fmt, name in ((None, "codes.csv"), ("npz", "codes.npz")):
        assert main(["embed", "--model", str(run), str(data), *(["--format", fmt] if fmt else [])]) == 0
    files = sorted(p.relative_to(tmp_path / "runs").parts for p in (tmp_path / "runs").rglob("*") if p.is_file())
    assert [f[1] for f in files] == ["codes.csv", "codes.npz"] and all(f[0].startswith("embed-") for f in files)
    _, _, codes = read_csv(tmp_path / "runs" / files[0][0] / "codes.csv")
    np.testing.assert_array_equal(codes, est.transform(images))


def test_a_run_folder_names_the_model_used_and_the_others_and_warns_on_unlike_images(tmp_path, images, capsys):
    from replearn.evaluate.domain_shift import reference_meta

    torch.manual_seed(0)
    net = Network(["conv 4", "relu", "maxpool", "flatten as features", "dense 3"], (1, SIZE, SIZE))
    run = tmp_path / "assignment-run"
    dim = np.random.default_rng(1).integers(0, 40, (100, SIZE, SIZE), dtype=np.uint8)
    save_model(net, run / "model.safetensors", meta=reference_meta(dim, seed=0))
    save_model(net, run / "autoencoder-d16.safetensors", meta={})
    save_model(net, run / "simclr-encoder.safetensors", meta={})
    bright = tmp_path / "bright.npz"
    np.savez(bright, x=np.random.default_rng(2).integers(150, 256, (40, SIZE, SIZE), dtype=np.uint8))
    out = tmp_path / "codes.npz"
    assert main(["embed", "--model", str(run), str(bright), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"model: {run / 'model.safetensors'} (classifier network, layer 'features'" in printed
    assert (f"{run} also holds autoencoder-d16.safetensors, simclr-encoder.safetensors: choose one with --model "
            f"{run / 'autoencoder-d16.safetensors'}") in printed
    assert "WARNING: these crops do not look like the model's training crops" in printed
    with np.load(out) as npz:
        assert npz["shift_ratio"].shape == (40,) and (npz["shift_ratio"] > 2).all()
