"""Configuration: defaults <- TOML file <- command line, unknown keys fail fast."""

import pytest

from replearn.config import resolve
from replearn.errors import ReplearnError

DEFAULTS = {"epochs": 10, "lr": 0.001, "augment": True, "name": "cnn", "widths": [16, 32], "ae": {"code_dim": 16}}


def test_file_then_command_line_override_defaults(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('epochs = 3\nlr = 1\n[ae]\ncode_dim = 2\n')
    out = resolve(DEFAULTS, cfg, {"epochs": 5, "name": None})
    assert out == {"epochs": 5, "lr": 1.0, "augment": True, "name": "cnn", "widths": [16, 32], "ae": {"code_dim": 2}}
    assert DEFAULTS["epochs"] == 10  # defaults untouched


def test_unknown_key_names_file_key_and_suggestion(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("epoch = 3\n")
    with pytest.raises(ReplearnError, match=r"c.toml: unknown key 'epoch'; did you mean 'epochs'\?"):
        resolve(DEFAULTS, cfg)


def test_unknown_nested_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[ae]\ncode_dimm = 3\n")
    with pytest.raises(ReplearnError, match=r"\[ae\]: unknown key 'code_dimm'; did you mean 'code_dim'"):
        resolve(DEFAULTS, cfg)


@pytest.mark.parametrize(
    "text, message",
    [
        ('epochs = "ten"', "epochs must be int"),
        ("augment = 1", "augment must be true or false"),
        ("widths = 3", "widths must be a list"),
        ("ae = 3", "ae must be a table"),
        ("epochs = true", "epochs must be int"),
    ],
)
def test_wrong_types(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    with pytest.raises(ReplearnError, match=message):
        resolve(DEFAULTS, cfg)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ReplearnError, match="does not exist"):
        resolve(DEFAULTS, tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    with pytest.raises(ReplearnError, match="not valid TOML"):
        resolve(DEFAULTS, bad)


def test_result_is_a_deep_copy_of_the_defaults(tmp_path):
    import copy

    from replearn.workflows._assignment_grid import DEFAULTS as GRID

    before = copy.deepcopy(GRID)
    cfg = resolve(GRID)
    cfg["cnn"]["epochs"] = 1
    cfg["cnn"]["depth"].append(9)
    cfg["autoencoder"]["blocks"][0].append(7)
    del cfg["data"]
    path = tmp_path / "c.toml"
    path.write_text("[cnn]\nepochs = 2\n")
    cfg = resolve(GRID, path)  # tables the file leaves alone are copies too
    cfg["cnn"]["width"].append(5)
    cfg["probes"]["names"].clear()
    assert GRID == before
