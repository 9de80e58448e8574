"""``replearn transfer``: frozen base stays bit-identical, the head learns, every variant is reported,
bad bases fail with one line and leave no results."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from safetensors.torch import load_file

from replearn.cli import main
from replearn.models import save_model, small_cnn
from replearn.train import TrainConfig, fit
from replearn.workflows._mnist_like import load_tensors
from replearn.workflows.transfer import (
    frozen_transfer,
    from_scratch,
    locate_base,
    unfreeze_for_fine_tuning,
)

BASE_KEYS_PREFIXES = ("conv_", "bn_1.", "bn_2.", "bn_3.", "bn_4.")
SMALL = ["--train-size", "600", "--test-size", "200", "--epochs", "1", "--batch-size", "64", "--no-progress"]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, shared_datasets):
    """A tiny Fashion-MNIST base (1,000 images, 2 epochs)."""
    out = tmp_path_factory.mktemp("base") / "fashion"
    args = ["fashion", "--out", str(out), "--data-dir", str(shared_datasets), "--train-size", "1000",
            "--test-size", "200", "--epochs", "2", "--batch-size", "64", "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, shared_datasets, base_dir):
    """One CLI run with every variant and two seeds; returns (run dir, printed output)."""
    out = tmp_path_factory.mktemp("transfer") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["transfer", "--base", str(base_dir), "--out", str(out), "--data-dir", str(shared_datasets),
                     "--compare", "--fine-tune", "--fine-tune-epochs", "1", "--seeds", "2", *SMALL])
    assert code == 0
    return out, buf.getvalue()


def _is_base_key(key: str) -> bool:
    return key.startswith(BASE_KEYS_PREFIXES)


def test_summary_prints_the_lectures_counts(comparison):
    _, printed = comparison
    assert "Total params: 1,679,082" in printed
    assert "Trainable params: 1,612,298" in printed
    assert "Non-trainable params: 66,784" in printed


def test_comparison_reports_every_variant_and_seed(comparison):
    out, _ = comparison
    metrics = json.loads((out / "metrics.json").read_text())
    variants = metrics["variants"]
    assert set(variants) == {"frozen", "fine-tuned", "scratch"}
    for name, v in variants.items():
        assert [r["seed"] for r in v["runs"]] == [0, 1], name
        assert 0.0 <= v["test_accuracy_mean"] <= 1.0
        assert len(v["runs"][0]["history"]["test_accuracy"]) == (2 if name == "fine-tuned" else 1)
        assert (out / f"{name}_seed0.safetensors").is_file() and (out / f"{name}_seed1.json").is_file()
    assert variants["frozen"]["trainable_params"] == 1_612_298
    assert variants["scratch"]["trainable_params"] == variants["fine-tuned"]["trainable_params"] == 1_677_674
    table = (out / "results.md").read_text()
    for name in variants:
        assert f"| {name} |" in table
    assert (out / "transfer_curves.png").stat().st_size > 1000
    assert json.loads((out / "config.json").read_text())["seeds"] == 2


def test_cli_frozen_base_is_bit_identical_to_the_fashion_weights(comparison, base_dir):
    out, _ = comparison
    base = load_file(str(base_dir / "model.safetensors"))
    frozen = load_file(str(out / "frozen_seed1.safetensors"))
    keys = [k for k in frozen if _is_base_key(k)]
    assert len(keys) == 4 * 2 + 4 * 5  # conv weight+bias; bn weight, bias, mean, var, count
    assert all(torch.equal(frozen[k], base[k]) for k in keys)
    assert not torch.equal(frozen["dense_1.weight"], base["dense_1.weight"])  # a new head
    tuned = load_file(str(out / "fine-tuned_seed0.safetensors"))
    assert not torch.equal(tuned["conv_1.weight"], base["conv_1.weight"])  # fine-tuning moved the base ...
    assert torch.equal(tuned["bn_1.running_mean"], base["bn_1.running_mean"])  # ... but not its BN statistics


def test_frozen_parameters_and_statistics_unchanged_head_learns_well(base_dir, shared_datasets):
    weights, side = locate_base(str(base_dir))
    model = frozen_transfer(weights, side, momentum=0.1, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train = load_tensors("mnist", "train", shared_datasets, limit=1500, seed=0, progress=False)
    test = load_tensors("mnist", "test", shared_datasets, limit=300, seed=0, progress=False)
    history = fit(model, train, config=TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9),
                  progress=False, eval_sets={"test": test})
    after = model.state_dict()
    base_keys = [k for k in after if _is_base_key(k)]
    assert base_keys and all(torch.equal(before[k], after[k]) for k in base_keys)
    for key in ("dense_1.weight", "bn_5.weight", "bn_5.running_mean", "dense_2.weight", "dense_2.bias"):
        assert not torch.equal(before[key], after[key]), key
    assert history["test_accuracy"][-1] > 0.6  # chance is 0.1


def test_fine_tuning_trains_the_base_weights_but_not_its_statistics(base_dir):
    weights, side = locate_base(str(base_dir))
    model = unfreeze_for_fine_tuning(frozen_transfer(weights, side, momentum=0.1, seed=0))
    assert all(p.requires_grad for p in model.parameters())
    x = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, (x, y), config=TrainConfig(epochs=1, batch_size=32, optimizer="sgd", lr=0.01), progress=False)
    after = model.state_dict()
    assert not torch.equal(before["conv_1.weight"], after["conv_1.weight"])
    assert torch.equal(before["bn_2.running_var"], after["bn_2.running_var"])
    assert not torch.equal(before["bn_5.running_var"], after["bn_5.running_var"])  # the head's BN trains


def test_scratch_model_is_fully_trainable_and_seeded():
    a, b = from_scratch(0.01, seed=3), from_scratch(0.01, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert all(p.requires_grad for p in a.parameters())
    assert a.get_layer("bn_5").momentum == 0.01


def test_bn_momentum_both_runs_each_variant_twice(tmp_path, shared_datasets, base_dir):
    out = tmp_path / "run"
    args = ["transfer", "--base", str(base_dir / "model.safetensors"), "--out", str(out), "--data-dir",
            str(shared_datasets), "--bn-momentum", "both", "--train-size", "300", "--test-size", "100",
            "--epochs", "1", "--batch-size", "64", "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    variants = json.loads((out / "metrics.json").read_text())["variants"]
    assert set(variants) == {"frozen (BN torch)", "frozen (BN keras)"}
    keras = json.loads((out / "frozen_BN_keras_seed0.json").read_text())
    assert keras["model"]["bn_momentum"] == 0.01


# ----------------------------------------------------------------------------- bad input


def _bad(tmp_path, base, capsys) -> str:
    out = tmp_path / "run"
    code = main(["transfer", "--base", str(base), "--out", str(out), "--train-size", "100", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert not (out / "metrics.json").exists() and not (out / "results.md").exists()
    return err


def test_base_of_another_architecture_names_the_layer_and_shapes(tmp_path, capsys):
    other = tmp_path / "other"
    save_model(small_cnn(input_shape=(1, 28, 28), n_classes=10), other, {"normalisation": "x/255"})
    err = _bad(tmp_path, other, capsys)
    assert "'conv_1.weight'" in err and "(16, 1, 3, 3)" in err and "(32, 1, 3, 3)" in err


def test_missing_and_corrupt_weights_exit_2(tmp_path, base_dir, capsys):
    assert "no such file" in _bad(tmp_path, tmp_path / "nope.safetensors", capsys)
    assert "model.safetensors does not exist" in _bad(tmp_path, tmp_path, capsys)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.json").write_text((base_dir / "model.json").read_text())
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage, not safetensors" * 10)
    assert "not a readable safetensors file" in _bad(tmp_path, corrupt, capsys)


def test_without_a_base_says_how_to_make_one(tmp_path, capsys):
    assert main(["transfer", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "replearn fashion" in err and "--train-base" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_quick_train_base_and_compare_end_to_end(tmp_path, shared_datasets):
    out = tmp_path / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["transfer", "--train-base", "--compare", "--quick", "--out", str(out),
                     "--data-dir", str(shared_datasets), "--no-progress"]) == 0
    assert (out / "base" / "model.safetensors").is_file() and (out / "base" / "metrics.json").is_file()
    variants = json.loads((out / "metrics.json").read_text())["variants"]
    assert set(variants) == {"frozen", "scratch"}
    assert variants["frozen"]["test_accuracy_mean"] > 0.5


# ----------------------------------------------------------------------------- --jobs, --resume of the units
# Every variant x 2 seeds on 200 images, 1 epoch: 4 units, then the 2 fine-tuned ones.
UNITS = ["--train-size", "200", "--test-size", "100", "--epochs", "1", "--fine-tune-epochs", "1", "--batch-size",
         "64", "--compare", "--fine-tune", "--seeds", "2", "--threads", "1", "--no-progress", "--device", "cpu"]


def _units_run(out, base_dir, shared_datasets, *flags) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["transfer", "--base", str(base_dir), "--out", str(out), "--data-dir", str(shared_datasets),
                     *UNITS, *flags]) == 0
    return json.loads((out / "metrics.json").read_text())


def _results(value):
    """``metrics.json`` without times and machine facts."""
    from test_equivalence import VOLATILE

    if isinstance(value, dict):
        return {k: _results(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_results(v) for v in value]
    return value


@pytest.fixture(scope="module")
def one_job(tmp_path_factory, shared_datasets, base_dir):
    """The reference: every unit one after another in this process (--jobs 1)."""
    out = tmp_path_factory.mktemp("jobs") / "jobs1"
    return out, _units_run(out, base_dir, shared_datasets, "--jobs", "1")


def test_two_workers_give_the_metrics_and_weights_of_one(one_job, tmp_path, shared_datasets, base_dir):
    from replearn.utils.units import UNITS_DIR

    out1, one = one_job
    two = _units_run(tmp_path / "jobs2", base_dir, shared_datasets, "--jobs", "2")
    assert _results(two) == _results(one)
    assert [r["seed"] for r in one["variants"]["fine-tuned"]["runs"]] == [0, 1]
    assert "jobs" not in one["config"] and one["config"]["threads"] == 1
    for name in ("frozen_seed1", "fine-tuned_seed0", "scratch_seed1"):
        a, b = load_file(str(out1 / f"{name}.safetensors")), load_file(str(tmp_path / "jobs2" / f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert len(list((out1 / UNITS_DIR).iterdir())) == len(list((tmp_path / "jobs2" / UNITS_DIR).iterdir())) == 6


def test_resume_trains_only_the_missing_units(one_job, tmp_path, shared_datasets):
    import shutil

    from replearn.train import stage_dir
    from replearn.utils.units import UNITS_DIR

    out1, one = one_job
    out = tmp_path / "resumed"
    shutil.copytree(out1, out)
    units = sorted((out / UNITS_DIR).iterdir())
    missing = [u for u in units if "variant=frozen" in u.name and "seed=1" in u.name]
    missing += [u for u in units if "variant=fine-tuned" in u.name and "seed=0" in u.name]
    assert len(missing) == 2
    for u in missing:  # as if the run had been killed before these two started
        u.unlink()
    for stage in ("frozen_seed1", "fine-tuned_seed0"):
        shutil.rmtree(stage_dir(out, stage))
    (out / "metrics.json").unlink()
    untouched = {u: u.stat().st_mtime_ns for u in units if u.exists()}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["transfer", "--out", str(out), "--resume", "--no-progress", "--jobs", "2",
                     "--data-dir", str(shared_datasets)]) == 0
    assert "4 finished training(s) loaded" in buf.getvalue()
    assert sorted((out / UNITS_DIR).iterdir()) == units  # the 2 missing units were trained again ...
    assert all(u.stat().st_mtime_ns == t for u, t in untouched.items())  # ... and no other
    assert _results(json.loads((out / "metrics.json").read_text())) == _results(one)


def test_a_unit_kept_with_other_threads_is_trained_again(tmp_path, base_dir):
    from replearn.utils.units import Unit
    from replearn.workflows._transfer_units import unit_store
    from replearn.workflows.transfer import Config

    weights, _ = locate_base(str(base_dir))
    key = {"variant": "frozen", "bn": "torch", "seed": 0}
    one = Config(base=str(base_dir), threads=1)
    unit_store(one, tmp_path, False, weights, "cpu", one.workers()).put(key, Unit(record={"a": 1}))
    assert unit_store(one, tmp_path, True, weights, "cpu", one.workers()).has(key)
    two = Config(base=str(base_dir), threads=2)
    assert not unit_store(two, tmp_path, True, weights, "cpu", two.workers()).has(key)


def test_the_help_says_how_to_run_seeds_in_workers(capsys):
    with pytest.raises(SystemExit):
        main(["transfer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--jobs N" in text and "--threads T" in text and "--scheduler ADDRESS" in text and "--jobs 4" in text
