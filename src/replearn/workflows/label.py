"""Label crops by hand in a local page, the most informative first (active learning).

Starts a small web server on 127.0.0.1 (a free port unless ``--port``), prints its address (with a
random token that every request must carry) and opens it in the browser unless ``--no-browser``. The
page shows one crop at a time, enlarged, with its neighbourhood in the field when the crops came from
``replearn crops`` (its ``_cells.csv`` and ``_overlay.png`` beside the ``.npz``), stage buttons and keys
(0/1/2, ``s`` skip, ``u`` undo), the labels per class, and the cross-validated accuracy of a classifier
on the crops' features (``--model``: a trained encoder such as an assignment run's
``simclr-encoder.safetensors``; default: PCA of the pixels) that retrains in the background after
every label and picks the next crop by margin sampling (``--rule random`` for a random order).

Every label is saved at once, atomically, to ``--out`` in the course's format (``replearn assignment
--data`` reads it) with provenance (which crops, when, in which order); Ctrl-C stops the server and
loses nothing; running the same command again continues where it stopped. See docs/labelling.md.
"""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError
from replearn.workflows._run import Result, device_option, option, seed_option

COMMAND = "label"
HELP = "label crops in a local page, most informative first (active learning); saves after every label"
DEFAULT_FILE = "labelled.npz"
OUTPUT = ("file", DEFAULT_FILE)
OUT_HELP = f"the .npz to write and continue (default: runs/label-<stamp>/{DEFAULT_FILE})"
EXAMPLES = """\
examples:
  replearn crops --phase p.tif --membrane m.tif --out cells.npz && replearn label cells.npz --out labelled.npz
  replearn label cells.npz --out labelled.npz --model runs/a1/simclr-encoder.safetensors
  replearn label cells.npz --out labelled.npz          # again: continues where it stopped
  replearn assignment --data labelled.npz              # train on the labels
"""


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config:
    """The crops, the features and the server."""

    crops: str | None = option(None, "the .npz whose 'unlabelled' crops to label (as replearn crops writes)",
                               positional=True, metavar="CROPS.npz", in_file=False)
    model: str | None = option(None, "encoder for the features (run folder or .safetensors; default: PCA of the "
                               "pixels)", metavar="RUN", in_file=False)
    rule: str = option("margin", "how the next crop is chosen: 'margin' (uncertainty sampling) or 'random'",
                       choices=("margin", "random"))
    port: int = option(0, "port on 127.0.0.1 (default: 0, a free one)")
    browser: bool = option(True, "open the page in the browser")
    seed: int = seed_option()
    device: str = device_option()

    def check(self) -> None:
        if not self.crops:
            raise ReplearnError("label: give CROPS.npz, the crops to label")
        if not Path(self.crops).is_file():
            raise ReplearnError(f"CROPS {self.crops}: no such file")
        if not 0 <= self.port <= 65535:
            raise ReplearnError(f"--port: must be 0..65535, got {self.port}")


def output_path(crops: str, out: Path) -> Path:
    """The ``.npz`` that ``--out`` names; never the crops file itself."""
    path = Path(out)
    if path.suffix.lower() != ".npz" or path.is_dir():
        raise ReplearnError(f"--out {out}: must name an .npz file (e.g. labelled.npz)")
    if path.exists() and path.resolve() == Path(crops).resolve():
        raise ReplearnError(f"--out {out}: is the crops file itself; give a new file for the labels")
    return path


def features(cfg: Config, session) -> tuple[np.ndarray, np.ndarray, str]:
    """Features of the pool (M, D) and of the crops that came labelled (P, D), and what they are."""
    from replearn.workflows._label_learner import pixel_features

    if cfg.model is None:
        pool, prior = pixel_features(session.pool, session.data.labelled, cfg.seed)
        return pool, prior, f"PCA ({pool.shape[1]} components) of the pixels"
    from replearn.encoders import load_encoder
    from replearn.utils.runtime import resolve_device

    enc = load_encoder(cfg.model)
    if tuple(enc.input_shape[1:]) != tuple(session.pool.shape[1:]):
        raise ReplearnError(f"--model {cfg.model}: takes {enc.input_shape[1]}x{enc.input_shape[2]} px crops, "
                            f"{cfg.crops} holds {session.pool.shape[1]}x{session.pool.shape[2]} px")
    device = resolve_device(cfg.device)
    prior = enc.codes(session.data.labelled, device) if len(session.data.labelled) else np.zeros((0, enc.code_dim))
    return enc.codes(session.pool, device), prior, f"{enc.description} of {cfg.model}"


# ----------------------------------------------------------------------------- Run
def start(cfg: Config, out: Path):
    """The session (resumed when ``out`` exists), the learner, and the server, not yet serving."""
    from replearn.workflows._label_app import LabelApp, field_context
    from replearn.workflows._label_learner import BackgroundLearner
    from replearn.workflows._label_server import LabelServer
    from replearn.workflows._label_session import LabelSession

    session = LabelSession(cfg.crops, output_path(cfg.crops, out))
    pool, prior, described = features(cfg, session)
    learner = BackgroundLearner(pool, prior, session.data.labels, cfg.rule, cfg.seed)
    app = LabelApp(session, learner, described, field_context(Path(cfg.crops), len(session.pool)))
    try:
        server = LabelServer(app, cfg.port)
    except OSError as exc:
        raise ReplearnError(f"--port {cfg.port}: cannot listen on 127.0.0.1 ({exc.strerror})") from None
    if not out.exists():
        session.save()  # the file exists from the start: the course's format, no labels yet
    return server


def run(cfg: Config, out: Path = Path(DEFAULT_FILE)) -> Result:
    """Serve the page until Ctrl-C; every label is saved as it is given."""
    server = start(cfg, Path(out))
    session = server.app.session
    resumed = f", continuing {len(session.order)} labels" if session.order else ""
    print(f"labelling {len(session.pool)} crops of {cfg.crops} into {session.out}{resumed}")
    print(f"open {server.url}   (Ctrl-C to stop; every label is saved at once)", flush=True)
    if cfg.browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.app.learner.close()
    counts = ", ".join(f"{n}: {c}" for n, c in zip(session.class_names, session.counts()))
    return Result(synthetic=bool(session.data.synthetic),
                  summary=f"saved {session.out}: {len(session.order)} labelled here ({counts}), "
                          f"{len(session.remaining_unlabelled())} unlabelled")
