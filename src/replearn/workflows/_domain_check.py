"""The domain-shift warning of ``replearn predict`` and ``replearn embed``: its closing-line words and JSON.

The check itself is :func:`replearn.encoders.loading.domain_check` (the model's
codes of the new crops against those of the sample of training crops stored
with it, :func:`replearn.evaluate.domain_shift.shift_check`).
"""

from __future__ import annotations

from typing import Any


def shift_line(check: dict[str, Any] | None) -> str:
    """The domain-shift part of a closing line (``check`` from :func:`~replearn.encoders.loading.domain_check`)."""
    if check is None:
        return ("no domain-shift check: the model was saved without a sample of its training crops "
                "(save it again with this replearn)")
    return check["sentence"]


def shift_json(check: dict[str, Any] | None) -> dict[str, Any]:
    """The sidecar's ``domain_shift`` entry (JSON-ready, without the per-crop ratios, which are in the CSV)."""
    if check is None:
        return {"checked": False, "why": shift_line(None)}
    return {"checked": True, **{k: v for k, v in check.items() if k != "crop_ratio"},
            "method": "domain-classifier AUC (StandardScaler + LogisticRegression, 5-fold CV) between the model's "
                      "codes of the crops and of a stored sample of its training crops; 0.5 = alike"}
