"""The side-by-side figure of docs/autoencoder.md's Parametric UMAP section: 2-D maps of the MNIST test images.

Panels: the codes saved by ``bench/umap2d.py --codes`` (one panel per ``NAME=FILE.npz``, all 10,000 test
images), and PCA (fitted on the 60,000 training images) and t-SNE (a seeded subset of 5,000 test images, embedded
on their own) of the same test images for reference. Usage::

    python bench/umap2d.py --objective umap --seeds 0 --codes /tmp/umap-s{seed}.npz
    python docs/figures/make_umap_compare.py "parametric UMAP=/tmp/umap-s0.npz" --out docs/figures/autoencoder_umap_compare.png
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("panels", nargs="+", metavar="NAME=FILE.npz")
    parser.add_argument("--out", default="docs/figures/autoencoder_umap_compare.png")
    parser.add_argument("--data-dir", default=os.environ.get("REPLEARN_DATA", "../shared/datasets"))
    parser.add_argument("--tsne", type=int, default=5000, help="test images for the t-SNE panel (0: none)")
    args = parser.parse_args()

    from replearn.data import CLASS_NAMES, load_dataset, seeded_subset
    from replearn.evaluate import embed_2d, figures

    x_tr, _ = load_dataset("mnist", "train", args.data_dir, progress=False)
    x_te, y_te = load_dataset("mnist", "test", args.data_dir, progress=False)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0  # noqa: E731
    panels = {}
    for spec in args.panels:
        name, path = spec.split("=", 1)
        saved = np.load(path, allow_pickle=False)
        panels[f"{name} (10,000)"] = (saved["codes"], saved["labels"])
    panels["PCA (10,000)"] = (embed_2d("pca", flat(x_tr), flat(x_te))[1], y_te)
    if args.tsne:
        i = seeded_subset(len(x_te), args.tsne, 0)
        panels[f"t-SNE ({args.tsne:,})"] = (embed_2d("tsne", flat(x_te[i]))[0], y_te[i])
    fig = figures.embeddings_figure(panels, list(CLASS_NAMES["mnist"]), title="MNIST test images in 2-D")
    print(figures.save_figure(fig, args.out))


if __name__ == "__main__":
    main()
