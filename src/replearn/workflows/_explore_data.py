"""What ``replearn explore`` shows: the run's models, the images, their codes, predictions and 2-D view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError

NO_LABEL = -1


@dataclass
class Points:
    """The explored items, in the order of the images they came from (a seeded subset when capped).

    Attributes:
        images: (N, H, W) uint8 or float in [0, 1].
        index: (N,) position of each item in its file (labelled crops first, then unlabelled).
        items: N names (``labelled[3]``, ``unlabelled[7]``, a file name, an IDX row).
        labels: (N,) int class index, ``NO_LABEL`` where unknown.
        synthetic: (N,) bool, True for SYNTHETIC crops.
        class_names: one name per class.
        source: where the images came from.
    """

    images: np.ndarray
    index: np.ndarray
    items: list[str]
    labels: np.ndarray
    synthetic: np.ndarray
    class_names: list[str]
    source: str

    def subset(self, keep: np.ndarray) -> Points:
        """The items at positions ``keep`` (N',)."""
        return Points(self.images[keep], self.index[keep], [self.items[k] for k in keep], self.labels[keep],
                      self.synthetic[keep], self.class_names, self.source)


def find_models(run: str) -> tuple[Path, Path | None]:
    """(encoder weights, classifier weights or None) of a run folder or a ``.safetensors`` file.

    An assignment run: the SimCLR encoder (else the smallest autoencoder) and the CNN ``model.safetensors``;
    an autoencoder run: its ``model.safetensors``; a file: itself (a classifier also predicts).
    """
    from replearn.encoders import load_encoder

    path = Path(run)
    if path.is_dir() and (path / "simclr-encoder.safetensors").is_file():
        return path / "simclr-encoder.safetensors", _if_file(path / "model.safetensors")
    autoencoders = sorted(path.glob("autoencoder-d*.safetensors"), key=lambda p: int(p.stem[13:] or 0)) \
        if path.is_dir() else []
    if autoencoders:
        return autoencoders[0], _if_file(path / "model.safetensors")
    enc = load_encoder(run, option="RUN")
    return enc.path, (enc.path if enc.kind == "classifier" else None)


def _if_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def run_images(run: str, data_dir: str | None) -> Points:
    """The images the run in folder ``run`` was trained or validated on, from its ``config.json``."""
    from replearn.data import load_dataset, synthetic_aureus

    cfg_path = Path(run) / "config.json"
    if not cfg_path.is_file():
        raise ReplearnError(f"RUN {run}: has no config.json to find its images; give IMAGES")
    cfg = json.loads(cfg_path.read_text())
    if "data_file" in cfg:  # an assignment run
        if cfg["data_file"]:
            return read_points(cfg["data_file"])
        d = cfg.get("data", {})
        data = synthetic_aureus(d.get("n_labelled", 400), d.get("n_unlabelled", 3892), seed=cfg.get("seed", 0),
                                preset=d.get("preset", "sim"))
        return _from_assignment(data, synthetic=True)
    dataset = str(cfg.get("dataset", ""))
    if dataset in ("mnist", "fashion"):
        from replearn.data.sources import CLASS_NAMES

        images, labels = load_dataset(dataset, "test", cfg.get("data_dir") or data_dir, progress=False)
        return Points(images, np.arange(len(images)), [f"test[{i}]" for i in range(len(images))], labels,
                      np.zeros(len(images), bool), list(CLASS_NAMES[dataset]), f"{dataset} test set")
    if dataset.endswith(".npz"):
        return read_points(dataset)
    raise ReplearnError(f"RUN {run}: its config.json names no data set explore can read; give IMAGES")


def read_points(path: str) -> Points:
    """Images of an ``.npz`` in the course's format (with its labels), or any file ``replearn embed`` reads."""
    from replearn.data import load_assignment
    from replearn.workflows._images import read_images

    if path.lower().endswith(".npz") and Path(path).is_file():
        from replearn.data.npyfile import NpzArchive

        with NpzArchive(Path(path)) as npz:
            course = all(k in npz.files for k in ("labelled", "labels", "unlabelled"))
        if course:
            return _from_assignment(load_assignment(path, require_labelled=False), None)
    images, items = read_images(path)
    return Points(images, np.arange(len(images)), items, np.full(len(images), NO_LABEL), np.zeros(len(images), bool),
                  [], str(path))


def _from_assignment(data, synthetic: bool | None) -> Points:
    n, m = len(data.labelled), len(data.unlabelled)
    images = np.concatenate([data.labelled, data.unlabelled]) if m else data.labelled
    items = [f"labelled[{i}]" for i in range(n)] + [f"unlabelled[{j}]" for j in range(m)]
    labels = np.concatenate([data.labels, np.full(m, NO_LABEL)]).astype(np.int64)
    fake = bool(data.synthetic if synthetic is None else synthetic)
    return Points(images, np.arange(n + m), items, labels, np.full(n + m, fake), list(data.class_names), data.source)


def _check_size(points: Points, input_shape: tuple[int, ...], model: str) -> None:
    """One line when the images are not the size the model (``input_shape`` (C, H, W)) takes."""
    if tuple(input_shape[1:]) != tuple(points.images.shape[1:]):
        h, w = input_shape[1:]
        raise ReplearnError(f"images {points.source}: are {points.images.shape[1]}x{points.images.shape[2]} px but "
                            f"{model} takes {h}x{w} px")


def codes_and_predictions(points: Points, encoder: Path, classifier: Path | None,
                          device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Codes (N, D), predicted class (N,) (``NO_LABEL`` without a classifier), confidence (N,) (NaN), description."""
    from replearn.encoders import load_classifier, load_encoder
    from replearn.utils.runtime import resolve_device

    dev = resolve_device(device)
    enc = load_encoder(encoder, option="RUN")
    _check_size(points, enc.input_shape, str(encoder))
    codes = enc.codes(points.images, dev)
    predicted = np.full(len(codes), NO_LABEL, dtype=np.int64)
    confidence = np.full(len(codes), np.nan)
    if classifier is not None:
        model = load_classifier(classifier, option="RUN")
        _check_size(points, model.input_shape, f"the classifier {classifier}")
        probs = model.probabilities(points.images, dev)
        predicted, confidence = probs.argmax(1), probs.max(1)
    return codes, predicted, confidence, f"{enc.description} of {encoder}"


def view_2d(codes: np.ndarray, view: str, seed: int) -> tuple[np.ndarray, str]:
    """(N, 2) positions: the codes themselves when 2-D (``auto``/``code``), else t-SNE or PCA of them."""
    from replearn.evaluate.embeddings import embed_2d

    if view == "code" and codes.shape[1] != 2:
        raise ReplearnError(f"--view code: the codes are {codes.shape[1]}-D; choose tsne or pca")
    if view in ("auto", "code") and codes.shape[1] == 2:
        return codes.astype(np.float64), "the run's 2-D code"
    method = "tsne" if view == "auto" else view
    feats = codes
    if method == "tsne" and codes.shape[1] > 50:  # t-SNE on the first 50 principal components (faster, same view)
        feats = embed_pca(codes, 50, seed)
    xy, _ = embed_2d(method, feats, seed=seed)
    return xy.astype(np.float64), f"{'t-SNE' if method == 'tsne' else 'PCA'} of the {codes.shape[1]}-D codes"


def embed_pca(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(N, D) -> (N, min(k, D, N)) principal components."""
    from sklearn.decomposition import PCA

    k = min(k, x.shape[1], len(x))
    return PCA(n_components=k, random_state=seed).fit_transform(x)
