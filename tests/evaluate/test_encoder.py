"""The estimators moved to :mod:`replearn.encoders`; the old import paths still give the same classes."""

from __future__ import annotations

import subprocess
import sys

import replearn.encoders as encoders


def test_old_import_paths_are_aliases():
    from replearn.evaluate import AutoEncoderEmbedding, ContrastiveEmbedding
    from replearn.evaluate.contrastive import ContrastiveEmbedding as OldContrastive
    from replearn.evaluate.encoder import AutoEncoderEmbedding as OldAutoEncoder

    assert AutoEncoderEmbedding is OldAutoEncoder is encoders.AutoEncoderEmbedding
    assert ContrastiveEmbedding is OldContrastive is encoders.ContrastiveEmbedding


def test_importing_evaluate_does_not_import_train_or_encoders():
    code = "import sys, replearn.evaluate; print('replearn.train' in sys.modules, 'replearn.encoders' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
