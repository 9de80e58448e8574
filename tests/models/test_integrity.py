"""Saved models are checked on loading: edited sidecars, replaced weights, NaN weights and absurd sizes are refused."""

from __future__ import annotations

import json
import os
import tracemalloc

import pytest
import torch
from safetensors.torch import save_file

from replearn.errors import ReplearnError
from replearn.models import (
    Network, conv_autoencoder, count_params, load_model, load_weights, minivgg, model_from_config, read_sidecar,
    save_model, small_cnn,
)
from replearn.models import serialization
from replearn.models.spec import spec_size

NAMES = ["a", "b", "c"]
RESAVE = "re-save the model or restore the file"


def _cnn() -> Network:
    torch.manual_seed(0)
    return small_cnn((1, 16, 16), 3, depth=2, width=4, dense=8).eval()


@pytest.fixture
def saved(tmp_path):
    model = _cnn()
    path = save_model(model, tmp_path / "run", {"class_names": NAMES, "normalisation": "x/255"})
    return model, path, path.with_suffix(".json")


def _edit(side, change) -> None:
    data = json.loads(side.read_text())
    change(data)
    side.write_text(json.dumps(data, indent=2))


def _error(fn, *args) -> str:
    with pytest.raises(ReplearnError) as exc:
        fn(*args)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_sidecar_records_three_checksums_and_an_intact_model_loads(saved):
    model, path, side = saved
    integrity = json.loads(side.read_text())["integrity"]
    assert sorted(integrity) == ["meta_sha256", "model_sha256", "weights_sha256"]
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in integrity.values())
    loaded, meta = load_model(path)
    x = torch.rand(2, 1, 16, 16)
    assert meta["class_names"] == NAMES and torch.equal(loaded(x), model(x))
    assert read_sidecar(path)["meta"] == meta
    load_weights(_cnn(), path)


def test_changed_weights_are_refused_by_every_loader(saved):
    _, path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01  # one bit of the last weight: still a readable safetensors file
    path.write_bytes(bytes(raw))
    expected = (f"{path}: the weights were changed after saving (their checksum does not match model.json); "
                f"{RESAVE}")
    assert _error(load_model, path) == expected
    assert _error(load_weights, _cnn(), path) == expected
    assert _error(load_model, path.parent) == expected  # the run folder


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: d["model"]["spec"].__setitem__(d["model"]["spec"].index("relu"), "tanh"), id="relu-to-tanh"),
    pytest.param(lambda d: [d["model"][k].pop(d["model"]["spec"].index("maxpool")) for k in ("names", "spec")],
                 id="pool-removed"),
    pytest.param(lambda d: d["model"].__setitem__("bn_eps", 1e-3), id="bn-eps"),
    pytest.param(lambda d: d["model"].__setitem__("input_shape", [1, 17, 16]), id="input-shape"),
])
def test_changed_architecture_is_refused(saved, change):
    _, path, side = saved
    _edit(side, change)
    expected = f"{side}: the architecture description was changed after saving (its checksum does not match); {RESAVE}"
    assert _error(load_model, path) == expected
    assert _error(read_sidecar, path) == expected
    assert _error(load_weights, _cnn(), path) == expected


def test_changed_meta_is_refused(saved):
    _, path, side = saved
    _edit(side, lambda d: d["meta"].__setitem__("class_names", ["c", "b", "a"]))
    message = _error(load_model, path)
    assert message.startswith(f"{side}: the meta data (class names, normalisation, training facts) were changed")
    assert message.endswith(RESAVE) and "checksum does not match" in message
    assert _error(read_sidecar, path) == message


def test_removing_the_integrity_record_does_not_hide_an_edit(saved):
    # the weights file repeats the architecture's and the meta's checksums
    _, path, side = saved
    _edit(side, lambda d: (d.pop("integrity"), d["model"].__setitem__("bn_eps", 1e-3)))
    assert "the architecture description was changed after saving" in _error(load_model, path)
    _edit(side, lambda d: (d["model"].__setitem__("bn_eps", 1e-5), d["meta"].__setitem__("class_names", ["x"] * 3)))
    assert "the meta data (class names" in _error(load_model, path)


def test_a_malformed_integrity_record_is_refused(saved):
    _, path, side = saved
    _edit(side, lambda d: d["integrity"].pop("meta_sha256"))
    assert _error(load_model, path) == (
        f"{side}: its integrity record is malformed (it needs weights_sha256, model_sha256, meta_sha256); {RESAVE}"
    )


def _old_style(model, path, meta, state=None) -> None:
    """Files as replearn wrote them before the checksums: safetensors' writer, a sidecar without integrity."""
    state = state if state is not None else {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": serialization.FORMAT})
    path.with_suffix(".json").write_text(json.dumps({"format": serialization.FORMAT, "model": model.config(),
                                                     "meta": meta}))


def test_files_saved_before_the_checksums_still_load(tmp_path):
    model = _cnn()
    path = tmp_path / "old.safetensors"
    _old_style(model, path, {"class_names": NAMES})
    loaded, meta = load_model(path)
    x = torch.rand(2, 1, 16, 16)
    assert meta == {"class_names": NAMES} and torch.equal(loaded(x), model(x))
    assert "integrity" not in read_sidecar(path)
    load_weights(_cnn(), path)
    ae = conv_autoencoder((1, 16, 16), code_dim=4, blocks=((4,), (4,))).eval()
    _old_style(ae, tmp_path / "ae.safetensors", {})
    assert torch.equal(load_model(tmp_path / "ae.safetensors")[0](x), ae(x))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, value):
    model = _cnn()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["conv_2.weight"][0, 0, 0, 0] = value
    path = tmp_path / "nan.safetensors"
    _old_style(model, path, {}, state)
    expected = (f"weights {path}: tensor 'conv_2.weight' holds NaN or infinite values, so the model cannot predict; "
                "retrain it (training that diverged needs a lower learning rate)")
    assert _error(load_model, path) == expected
    assert _error(load_weights, _cnn(), path) == expected
    # saving such a model is refused too, before anything is written
    model.load_state_dict(state)
    message = _error(save_model, model, tmp_path / "new")
    assert "tensor 'conv_2.weight' holds NaN or infinite values" in message
    assert not (tmp_path / "new").exists()


def test_declared_size_is_count_params_total_without_building():
    for model in (_cnn(), minivgg((1, 28, 28)), conv_autoencoder((1, 16, 16), code_dim=4, hidden=(8,)),
                  Network(["dense 4", "bn", "dense 3"], (8,))):
        assert serialization.declared_size(model.config()) == count_params(model)[0]
    assert spec_size(["conv 8 k5 s2", "bn", "maxpool", "flatten", "dense 5"], (3, 20, 20)) == \
        count_params(Network(["conv 8 k5 s2", "bn", "maxpool", "flatten", "dense 5"], (3, 20, 20)))[0]


def test_an_absurd_declared_size_is_refused_before_allocating(tmp_path, monkeypatch):
    huge = Network(["dense 4"], (8,)).config()
    huge["input_shape"] = [100_000]
    huge["spec"] = ["dense 100000"]  # 10 billion weights, 40 GB if built

    def build(config):  # were the limit not checked first, this stands in for allocating 40 GB
        raise AssertionError("the network was built")

    monkeypatch.setattr(serialization, "_build", build)
    tracemalloc.start()
    try:
        with pytest.raises(ReplearnError) as exc:
            model_from_config(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # refused from the declared sizes, nothing built (the stub above)
    assert str(exc.value) == (
        "the model description declares 10,000,100,000 parameters, more than the limit of 500,000,000; "
        "refusing to build it (is the file damaged or not from replearn?)"
    )
    # through the loader, the line names the sidecar (an old-style one, so no checksum stops it first)
    path = tmp_path / "huge.safetensors"
    save_file({"dense_1.weight": torch.zeros(1)}, str(path))
    path.with_suffix(".json").write_text(json.dumps({"format": serialization.FORMAT, "model": huge, "meta": {}}))
    message = _error(load_model, path)
    assert message.startswith(f"{path.with_suffix('.json')}: the model description declares 10,000,100,000 parameters")
    # an autoencoder counts both halves; the limit is a module constant
    monkeypatch.undo()
    ae = conv_autoencoder((1, 16, 16), code_dim=4, blocks=((4,), (4,))).config()
    size = serialization.declared_size(ae)
    monkeypatch.setattr(serialization, "MAX_PARAMETERS", size - 1)
    assert "more than the limit of" in _error(model_from_config, ae)
    monkeypatch.setattr(serialization, "MAX_PARAMETERS", size)
    model_from_config(ae)


@pytest.mark.parametrize("config,match", [
    ({"type": "network", "spec": ["dense 3"], "input_shape": [-4]}, "input_shape must be a list of positive"),
    ({"type": "network", "spec": ["dense 3"], "input_shape": ["x"]}, "input_shape must be a list of positive"),
    ({"type": "network", "spec": "dense 3", "input_shape": [4]}, "spec must be a list"),
    ({"type": "network", "spec": ["wobble 3"], "input_shape": [4]}, "unknown layer 'wobble'"),
    ({"type": "network", "input_shape": [4]}, "incomplete or malformed"),
    ({"type": "mystery"}, "unknown type 'mystery'"),
    ([1, 2], "must be a JSON object"),
])
def test_malformed_descriptions_are_one_line_errors(config, match):
    assert match in _error(model_from_config, config)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_weights_and_sidecar_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = save_model(_cnn(), tmp_path / f"m{umask:o}")
    finally:
        os.umask(old)
    weights, side = os.stat(path).st_mode & 0o777, os.stat(path.with_suffix(".json")).st_mode & 0o777
    assert weights == side == 0o666 & ~umask
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.safetensors"]
