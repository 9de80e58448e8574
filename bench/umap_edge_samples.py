"""Exploration behind docs/autoencoder.md's Parametric UMAP recipe: MNIST 5-NN of the 2-D test codes against the
number of graph edges sampled, with pixels or principal components as the network's input.

A standalone loop (not ``replearn.train.fit``) of the UMAP loss as first explored: B edges per step drawn from the
whole graph by strength, each head repelled by all 2B - 2 other codes of the batch (weighted to ``neg`` negatives),
an MLP (``H`` widths, ReLU) on pixels or on ``pca`` principal components, Adam at a constant ``lr``, for ``secs``
seconds; it prints 5-NN (train codes as reference) at growing intervals and trustworthiness (k = 10) at the end.
The library's :class:`~replearn.train.umap.UMAPObjective` samples edges the same way but draws 20 negatives per edge
(the all-pairs repulsion cost ten times the network). Usage::

    python bench/umap_edge_samples.py secs=150 lr=0.01 pca=100     # key=value pairs: B H lr secs neg md seed pca
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch

from replearn.data.idx import read_idx
from replearn.evaluate.metrics import knn_accuracy, trustworthiness
from replearn.train.neighbour_graph import neighbour_graph
from replearn.train.umap import find_ab


def main() -> None:
    torch.set_num_threads(1)
    args = dict(a.split("=") for a in sys.argv[1:])
    batch, lr, secs = int(args.get("B", 1000)), float(args.get("lr", 1e-3)), float(args.get("secs", 120))
    widths = [int(h) for h in args.get("H", "100,100,100").split(",")]
    neg_rate, seed, n_pca = float(args.get("neg", 5)), int(args.get("seed", 0)), int(args.get("pca", 0))
    root = os.path.join(os.environ.get("REPLEARN_DATA", "../shared/datasets"), "mnist")
    read = lambda name: read_idx(os.path.join(root, name))  # noqa: E731
    xtr, ytr = read("train-images-idx3-ubyte.gz"), read("train-labels-idx1-ubyte.gz")
    xte, yte = read("t10k-images-idx3-ubyte.gz"), read("t10k-labels-idx1-ubyte.gz")
    cache = os.path.join(os.environ.get("TMPDIR", "/tmp"), "umap-mnist-graph.npz")
    if os.path.exists(cache):
        graph = sp.load_npz(cache)
    else:
        start = time.time()
        graph = neighbour_graph(xtr.astype(np.float32) / 255, 15, 50, 0)
        print("graph", round(time.time() - start, 1), "s")
        sp.save_npz(cache, graph)
    graph = graph.tocoo()
    print("edges", graph.nnz, "sum of strengths", round(float(graph.data.sum())))

    torch.manual_seed(seed)
    x = torch.from_numpy(xtr.reshape(-1, 784).astype(np.float32) / 255)
    x_test = torch.from_numpy(xte.reshape(-1, 784).astype(np.float32) / 255)
    if n_pca:
        from sklearn.decomposition import PCA

        pca = PCA(n_pca, random_state=0).fit(x.numpy())
        w, mu = torch.from_numpy(pca.components_.T.astype(np.float32)), torch.from_numpy(pca.mean_.astype(np.float32))
        x, x_test = (x - mu) @ w, (x_test - mu) @ w
        scale = x.std()
        x, x_test = x / scale, x_test / scale
    layers, width = [], x.shape[1]
    for h in widths:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    encoder = torch.nn.Sequential(*layers, torch.nn.Linear(width, 2))
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    a, b = find_ab(float(args.get("md", 0.1)))
    heads, tails = torch.from_numpy(graph.row.astype(np.int64)), torch.from_numpy(graph.col.astype(np.int64))
    strengths = torch.from_numpy(graph.data.astype(np.float64))
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(batch)
    start, step, next_log = time.time(), 0, 15.0
    while True:
        e = torch.multinomial(strengths, batch, replacement=True, generator=gen)
        codes = encoder(torch.cat([x[heads[e]], x[tails[e]]]))
        head, tail = codes[:batch], codes[batch:]
        attraction = torch.log1p(a * (head - tail).pow(2).sum(-1).clamp_min(1e-10).pow(b))
        q = 1 / (1 + a * torch.cdist(head, codes).pow(2).clamp_min(1e-10).pow(b))
        repulsion = -torch.log((1 - q).clamp_min(1e-4))
        mask = torch.ones_like(repulsion)
        mask[rows, rows] = 0
        mask[rows, rows + batch] = 0
        loss = (attraction + (repulsion * mask).sum(1) * neg_rate / (2 * batch - 2)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        elapsed = time.time() - start
        if elapsed > next_log or elapsed > secs:
            with torch.no_grad():
                ref, query = encoder(x).numpy(), encoder(x_test).numpy()
            print(f"{elapsed:.0f} s, step {step}, {step * batch / 1e6:.2f}M edges, loss {loss.item():.3f}, "
                  f"5-NN {knn_accuracy(ref, ytr, query, yte, 5):.4f}", flush=True)
            next_log = elapsed + max(15.0, elapsed * 0.5)
            if elapsed > secs:
                break
    print("trustworthiness k=10", trustworthiness(xte.reshape(-1, 784) / 255.0, query, 10, 5000, 0))


if __name__ == "__main__":
    main()
