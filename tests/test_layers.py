"""No layer imports one above it (docs/architecture.md): checked on the source of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "replearn"

# Lower number = lower layer. A module may import its own layer and those below; train and evaluate
# are siblings (neither imports the other), below the encoders.
LAYERS = {
    "errors": 0,
    "config": 1, "utils": 1,
    "data": 2,
    "models": 3,
    "train": 4, "evaluate": 4,
    "encoders": 5,
    "workflows": 6,
    "cli": 7,
    "__main__": 8,
}
# Modules kept only so that old import paths still work: each re-exports a class from the layer above.
ALIASES = {"evaluate/encoder.py", "evaluate/contrastive.py"}


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "replearn"


def _imports(path: Path) -> list[str]:
    """Every replearn module that ``path`` imports, at module level or inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("replearn"):
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("replearn")]
    return out


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in ("__init__.py",))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_layer_above_its_own(path):
    rel = path.relative_to(SRC)
    if rel.as_posix() in ALIASES:
        pytest.skip("an alias of an old import path")
    own = rel.parts[0].removesuffix(".py")
    assert own in LAYERS, f"{rel}: a new top-level module needs a layer in LAYERS and docs/architecture.md"
    for module in _imports(path):
        layer = _layer(module)
        if layer == "replearn":
            continue  # the package itself: version and the error type
        assert layer in LAYERS, f"{rel} imports {module}, which has no layer"
        if layer == own:
            continue
        assert LAYERS[layer] < LAYERS[own], f"{rel} ({own}) imports {module} ({layer}): a layer above or beside it"


def test_evaluate_does_not_import_train_at_import_time():
    import subprocess
    import sys

    code = "import sys, replearn.evaluate; print('replearn.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
