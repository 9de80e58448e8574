"""Look at what a run's features group together: one interactive, self-contained HTML page.

``RUN`` is an assignment run folder (the SimCLR encoder's features, else the smallest autoencoder's
codes; the CNN ``model.safetensors`` predicts the stage), an autoencoder run folder (its codes) or a
``.safetensors`` file. ``IMAGES`` (optional) is an ``.npz`` in the course's format (its labels are
shown), or any images ``replearn embed`` reads; without it, the images the run used (from its
``config.json``: the course file, the built-in SYNTHETIC crops, or the MNIST/Fashion-MNIST test set).

The page (Bokeh, every script inlined: it opens without a network or a server) shows the 2-D view
(the run's 2-D code, or t-SNE/PCA of its features), the crop of every point on hover, one tab per
colouring (label, predicted stage, confidence, real or SYNTHETIC), legends that hide or show a class,
and lasso/box selection exported as CSV. See docs/explore.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from replearn.errors import ReplearnError
from replearn.workflows._run import Result, data_dir_option, device_option, option, seed_option

COMMAND = "explore"
HELP = "an interactive HTML page of a run's 2-D view: crops on hover, colours, selection to CSV"
DEFAULT_FILE = "explore.html"
OUTPUT = ("file", DEFAULT_FILE)
OUT_HELP = f"the .html file to write (default: runs/explore-<stamp>/{DEFAULT_FILE}; RUN/{DEFAULT_FILE} suits a run)"
EXAMPLES = """\
examples:
  replearn explore runs/a1 --out runs/a1/explore.html        # an assignment run, on the crops it used
  replearn explore runs/a1 cells.npz --out cells.html        # the same encoder on crops from `replearn crops`
  replearn explore runs/ae --view tsne --max-points 10000    # an autoencoder run on the MNIST test set
"""
VIEWS = ("auto", "code", "tsne", "pca")


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config:
    """The run, the images and the view."""

    run: str | None = option(None, "run folder (assignment or autoencoder) or .safetensors", positional=True,
                             metavar="RUN", in_file=False)
    images: str | None = option(None, "images to show (default: those the run used)", positional=True,
                                optional=True, metavar="IMAGES", in_file=False)
    encoder: str | None = option(None, "the weights file to read codes from (default: chosen from RUN)",
                                 metavar="SAFETENSORS", in_file=False)
    view: str = option("auto", "2-D view: 'auto' (the code when 2-D, else t-SNE), 'code', 'tsne' or 'pca'",
                       choices=VIEWS)
    max_points: int = option(10000, "show at most N points, a seeded subset", metavar="N")
    seed: int = seed_option()
    device: str = device_option()
    data_dir: str | None = data_dir_option()

    def check(self) -> None:
        if not self.run:
            raise ReplearnError("explore: give RUN, a run folder or a .safetensors file")
        if not Path(self.run).exists():
            raise ReplearnError(f"RUN {self.run}: no such run folder or weights file")
        if self.images and not Path(self.images).exists():
            raise ReplearnError(f"IMAGES {self.images}: no such file or folder")
        if not 2 <= self.max_points <= 100_000:
            raise ReplearnError(f"--max-points: must be 2..100000, got {self.max_points}")


def output_path(out: Path) -> Path:
    """The ``.html`` file that ``--out`` names."""
    path = Path(out)
    if path.is_dir():
        return path / DEFAULT_FILE
    if path.suffix.lower() not in (".html", ".htm"):
        raise ReplearnError(f"--out {out}: must name an .html file (e.g. explore.html)")
    return path


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path = Path(DEFAULT_FILE)) -> Result:
    """Read the models and images, encode, predict, lay out in 2-D; the HTML page to write."""
    from replearn.data import seeded_subset
    from replearn.workflows import _explore_data as d
    from replearn.workflows._explore_html import page

    path = output_path(Path(out))
    started = time.perf_counter()

    # Prepare the data: the run's models and the images (a seeded subset of at most --max-points).
    encoder, classifier = d.find_models(cfg.run)
    if cfg.encoder:
        encoder = Path(cfg.encoder) if Path(cfg.encoder).exists() else Path(cfg.run) / cfg.encoder
    points = d.read_points(cfg.images) if cfg.images else d.run_images(cfg.run, cfg.data_dir)
    total = len(points.images)
    points = points.subset(seeded_subset(total, cfg.max_points, cfg.seed))
    print(f"explore: {len(points.images)} of {total} images from {points.source}")

    # Encode and predict; the 2-D view.
    codes, predicted, confidence, described = d.codes_and_predictions(points, encoder, classifier, cfg.device)
    if classifier is not None and not points.class_names:
        points.class_names = [str(k) for k in range(int(predicted.max()) + 1)]
    xy, view = d.view_2d(codes, cfg.view, cfg.seed)

    # The page.
    synthetic = bool(points.synthetic.any())
    fake = " SYNTHETIC data: not real cells." if synthetic else ""
    shown = f"{len(points.images)} of {total}" if total > len(points.images) else f"all {total}"
    note = (f"{shown} images of {points.source}; {view}; codes: {described}"
            f"{'; predictions: ' + str(classifier) if classifier else ''}.{fake}")
    html = page(points, xy, predicted, confidence, f"replearn explore: {Path(cfg.run).name}", note)
    seconds = time.perf_counter() - started
    result = Result(synthetic=synthetic, summary=f"wrote {path}: {len(points.images)} points, "
                    f"{len(html) / 2**20:.1f} MB, in {seconds:.0f} s ({view}){' [SYNTHETIC]' if synthetic else ''}")
    result.text(path, html)
    return result
