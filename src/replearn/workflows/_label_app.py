"""What the labelling server answers: the session, the background learner and the pictures, glued together."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from replearn.workflows._label_learner import BackgroundLearner
from replearn.workflows._label_session import LabelError, LabelSession

CROP_PX = 320
"""Side of the enlarged crop on the page."""
OVERLAY_ZOOM = 1.25
"""``replearn crops`` draws its overlay PNG at 1.25 px per field pixel (data/crops.py, render_overlay)."""


def png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) uint8/float-in-[0, 1] grey image or an (H, W, 3) uint8 colour image."""
    from PIL import Image

    pixels = image if image.dtype == np.uint8 else np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def field_context(crops: Path, n_pool: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The overlay (H', W', 3) and the (n_pool, 2) centres (row, col) of the pool crops in it, when the crops
    came from ``replearn crops`` (its ``_cells.csv`` and ``_overlay.png`` beside the ``.npz``); else None."""
    import csv

    from PIL import Image

    from replearn.data.crops import output_paths

    paths = output_paths(crops)
    if not (paths["csv"].is_file() and paths["overlay"].is_file()):
        return None
    with open(paths["csv"], newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r.get("stage") or -1) < 0]  # the unlabelled cells, by id
    if len(rows) != n_pool:
        return None
    with Image.open(paths["overlay"]) as im:
        overlay = np.asarray(im.convert("RGB"))
    centres = np.array([[float(r["centroid_row"]), float(r["centroid_col"])] for r in rows]) * OVERLAY_ZOOM
    return overlay, centres


class LabelApp:
    """The state and pictures behind the page (the server calls these; each returns JSON-ready data)."""

    def __init__(self, session: LabelSession, learner: BackgroundLearner, features: str,
                 context: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.session, self.learner, self.features, self.context = session, learner, features, context
        self.current: int | None = None
        self.picked_with = -2  # the learner's version the current pick came from
        learner.update(session.version, session.order, session.stages)

    def page(self) -> str:
        """The HTML page."""
        from replearn.workflows._label_page import PAGE

        return PAGE.replace("__NAMES__", json.dumps(self.session.class_names).replace("<", "\\u003c"))

    def state(self) -> dict[str, Any]:
        """Progress per class, the next crop, the estimated accuracy and the class balance."""
        s = self.session
        with s.lock:
            remaining = s.remaining()
            trained_on = self.learner.trained_on
            if self.current is None or self.current not in remaining or self.picked_with != trained_on:
                self.current, self.picked_with = self.learner.next(remaining), trained_on
            counts, total = s.counts(), len(s.pool)
            accuracy = self.learner.accuracy
            return {
                "next": self.current, "remaining": len(remaining), "pool": total, "labelled": len(s.order),
                "skipped": len(s.skipped), "counts": counts, "class_names": s.class_names,
                "balance": [c / max(1, sum(counts)) for c in counts],
                "cv_accuracy": None if accuracy is None else accuracy[0],
                "cv_folds": None if accuracy is None else accuracy[1],
                "model_labels": self.learner.trained_on, "version": s.version, "rule": self.learner.rule,
                "features": self.features, "context": self.context is not None, "out": str(s.out),
                "synthetic": bool(s.data.synthetic), "can_undo": bool(s.actions),
            }

    def _after_change(self) -> dict[str, Any]:
        self.current = None
        self.learner.update(self.session.version, self.session.order, self.session.stages)
        return self.state()

    def label(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"index": i, "stage": s}``: label, save, retrain in the background."""
        self.session.label(body.get("index"), body.get("stage"))
        return self._after_change()

    def skip(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"index": i}``: skip, save."""
        self.session.skip(body.get("index"))
        return self._after_change()

    def undo(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{}``: take back the last label or skip, save."""
        if body:
            raise LabelError("undo takes an empty JSON object")
        self.session.undo()
        return self._after_change()

    def crop_png(self, index: int) -> bytes:
        """Pool crop ``index`` enlarged to about ``CROP_PX`` px (nearest neighbour, no smoothing)."""
        crop = self.session.pool[index]
        k = max(1, CROP_PX // max(crop.shape))
        return png(np.kron(crop, np.ones((k, k), dtype=crop.dtype)))

    def context_png(self, index: int) -> bytes | None:
        """Pool crop ``index``'s neighbourhood in the field overlay (4 crops wide), its crop boxed in yellow."""
        if self.context is None:
            return None
        overlay, centres = self.context
        half = int(2 * self.session.pool.shape[1] * OVERLAY_ZOOM)
        r, c = np.round(centres[index]).astype(int)
        padded = np.pad(overlay, ((half, half), (half, half), (0, 0)))
        window = padded[r:r + 2 * half, c:c + 2 * half].copy()
        a, b = half - half // 4, half + half // 4  # the crop's own square (half a crop side each way)
        window[a:b, [a, b - 1]] = (255, 220, 0)
        window[[a, b - 1], a:b] = (255, 220, 0)
        k = max(1, CROP_PX // (2 * half))
        return png(np.kron(window, np.ones((k, k, 1), dtype=np.uint8)))
