"""``UMAPEmbedding``: Parametric UMAP, a network whose codes keep the images' neighbourhoods, as a transformer.

``fit(X)`` builds UMAP's fuzzy neighbour graph of the images
(:func:`replearn.train.neighbour_graph.neighbour_graph`) and trains the
encoder of an autoencoder (Parametric UMAP's MLP, :func:`~replearn.models.umap_autoencoder`,
by default) with the UMAP cross-entropy (:class:`replearn.train.umap.UMAPObjective`)
through :func:`replearn.train.fit`; ``epochs`` are UMAP's epochs (each one draws
as many edges as the graph's strengths sum to). An encoder layer named ``pca``
is set to the training images' principal components and frozen: the inputs
are well conditioned and that layer runs once per image, not once per step.
``transform(X)`` is one forward pass of the encoder, so new images are embedded
without re-running anything on the training set. With ``recon_weight > 0`` the
decoder's reconstruction loss shapes the codes too ("UMAP + autoencoder"); with
0 the decoder is fitted afterwards, for ``decoder_epochs``, to invert the final
codes, so ``inverse_transform`` and ``reconstruct`` work either way.

The fitted model is an :class:`~replearn.models.AutoEncoder`, saved and loaded
like any other (``save_model``, :func:`replearn.encoders.load_encoder`,
:meth:`UMAPEmbedding.from_pretrained`)::

    emb = UMAPEmbedding().fit(train_images)                # (N, 28, 28) uint8; the CLI's recipe
    codes = emb.transform(test_images)                     # (M, 2) float32
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Sequence

import numpy as np
import torch

from replearn.encoders._inputs import ImageArray
from replearn.encoders.autoencoder_embedding import AutoEncoderEmbedding
from replearn.errors import ReplearnError
from replearn.models import LECTURE_AE_BLOCKS, AutoEncoder
from replearn.train import continues, fit, predict
from replearn.train.checkpoint import stage_dir
from replearn.train.neighbour_graph import neighbour_graph
from replearn.train.umap import KINDS, UMAPObjective
from replearn.utils.runtime import resolve_device

DECODER_BATCH, DECODER_LR, DECODER_MIN_STEPS = 256, 3e-3, 20
"""The decoder fit of ``recon_weight`` 0: images per step (at most), peak learning rate (one-cycle), and at least
this many steps per epoch on small training sets."""


class UMAPEmbedding(AutoEncoderEmbedding):
    """Train an encoder with the (Parametric) UMAP objective; ``transform`` gives its codes.

    Args (those of :class:`AutoEncoderEmbedding` keep their meaning; ``loss`` is the reconstruction loss;
    ``epochs`` are UMAP epochs of ``sum of graph strengths`` edges each, ``batch_size`` edges per step):
        n_neighbors: neighbourhood size of the graph, the point itself included (UMAP's ``n_neighbors``).
        pca_dims: the neighbours are searched in this many principal components of the pixels (None: pixels).
        negative_rate: repulsion per edge in negatives' worth (20 of the batch's codes share it).
        min_dist: how tightly codes may pack (UMAP's ``min_dist``).
        recon_weight: > 0: add the decoder's reconstruction loss with this weight; 0: the decoder is fitted
            afterwards on the final (fixed) codes, an inverse map that does not shape them.
        decoder_epochs: epochs of that decoder fit (``recon_weight`` 0); 0: the decoder stays untrained.
        kind: the neighbour-embedding loss on the graph's edges: ``"umap"`` (UMAP's cross-entropy) or ``"tsne"``
            (InfoNC-t-SNE, a contrastive t-SNE; ``negative_rate`` and ``min_dist`` unused).

    Attributes (besides :class:`AutoEncoderEmbedding`'s):
        graph_seconds_: time taken by the neighbour graph.
        graph_edges_: number of (directed) edges of the symmetric graph.
        edge_samples_: edges drawn in training (epochs x steps x batch_size).
        decoder_history_: the decoder fit's history (``recon_weight`` 0), else ``{}``.
    """

    def __init__(
        self,
        model: str | AutoEncoder = "umap_autoencoder",
        code_dim: int = 2,
        blocks: Sequence[Sequence[int]] = LECTURE_AE_BLOCKS,
        hidden: Sequence[int] = (),
        epochs: int = 40,
        batch_size: int = 1000,
        lr: float = 1e-2,
        optimizer: str = "adam",
        schedule: str | None = "onecycle",
        weight_decay: float = 0.0,
        loss: str = "bce",
        n_neighbors: int = 15,
        pca_dims: int | None = 50,
        negative_rate: float = 5.0,
        min_dist: float = 0.1,
        recon_weight: float = 0.0,
        decoder_epochs: int = 10,
        kind: str = "umap",
        bf16: bool = False,
        channels_last: bool = False,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        batch_size_predict: int = 1024,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(model=model, code_dim=code_dim, blocks=blocks, hidden=hidden, epochs=epochs,
                         batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule,
                         weight_decay=weight_decay, loss=loss, bf16=bf16, channels_last=channels_last, seed=seed,
                         device=device, progress=progress,
                         batch_size_predict=batch_size_predict, image_shape=image_shape)
        self.n_neighbors = n_neighbors
        self.pca_dims = pca_dims
        self.negative_rate = negative_rate
        self.min_dist = min_dist
        self.recon_weight = recon_weight
        self.decoder_epochs = decoder_epochs
        self.kind = kind

    def _check_params(self) -> None:
        if self.loss not in ("bce", "mse"):
            raise ReplearnError(f"UMAPEmbedding: loss {self.loss!r} is not allowed; use 'bce' or 'mse'")
        for name, least in (("epochs", 1), ("n_neighbors", 2), ("batch_size", 2), ("decoder_epochs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ReplearnError(f"UMAPEmbedding: {name} must be an integer >= {least}, got {value!r}"
                                    + (" (it counts the point itself)" if name == "n_neighbors" else ""))
        if not float(self.recon_weight) >= 0:
            raise ReplearnError(f"UMAPEmbedding: recon_weight must be >= 0, got {self.recon_weight!r}")
        if self.kind not in KINDS:
            raise ReplearnError(f"UMAPEmbedding: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not float(self.negative_rate) > 0:
            raise ReplearnError(f"UMAPEmbedding: negative_rate must be positive, got {self.negative_rate!r}")

    def _split_pca(self, encoder: torch.nn.Module, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
        """With a layer named ``pca``: set it to ``x``'s principal components (scaled to unit variance), freeze it
        and return (the layers after it, its outputs for ``x`` (N, P)); else (the encoder, ``x``)."""
        names = getattr(encoder, "layer_names", [])
        if "pca" not in names:
            return encoder, x
        stop = names.index("pca")
        layers = list(encoder.children())
        stem, rest = torch.nn.Sequential(*layers[: stop + 1]), torch.nn.Sequential(*layers[stop + 1:])
        linear = layers[stop]
        rows = x.reshape(len(x), -1).numpy()
        p = int(linear.out_features)
        if p > min(rows.shape):
            raise ReplearnError(f"UMAPEmbedding: the pca layer has {p} outputs; the {len(rows)} training images "
                                f"of {rows.shape[1]} pixels allow at most {min(rows.shape)}")
        from sklearn.decomposition import PCA

        pca = PCA(n_components=p, random_state=int(self.seed)).fit(rows)
        components = torch.from_numpy(pca.components_.astype(np.float32))  # (P, D)
        mean = torch.from_numpy(pca.mean_.astype(np.float32))
        scale = float(np.sqrt(pca.explained_variance_.sum() / p)) or 1.0  # projected inputs of unit variance
        with torch.no_grad():
            linear.weight.copy_(components / scale)
            linear.bias.copy_(-(components @ mean) / scale)
        linear.requires_grad_(False)
        with torch.no_grad():
            features = torch.cat([stem(x[i:i + 4096]) for i in range(0, len(x), 4096)])
        return rest, features

    def fit(self, X: ImageArray, y: Any = None, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False) -> "UMAPEmbedding":
        """Build the neighbour graph of ``X`` (N, H, W), (N, 1, H, W) or rows (N, H*W) and train the encoder on it;
        ``y`` is ignored. ``checkpoint_dir``/``resume``: as :meth:`AutoEncoderEmbedding.fit` (the graph is rebuilt,
        deterministically, and training continues from the last epoch's checkpoint; the decoder fit of
        ``recon_weight`` 0 checkpoints in ``checkpoints/decoder/`` there)."""
        self._check_params()
        for attr in ("input_shape_", "model_"):  # a refit starts from scratch
            self.__dict__.pop(attr, None)
        shape = None if self.image_shape is None else tuple(int(d) for d in self.image_shape)
        if shape is None and isinstance(self.model, AutoEncoder):
            shape = tuple(int(d) for d in self.model.input_shape)
        x, flat = self._images(X, reset=True, shape=shape)
        if len(x) <= self.n_neighbors:
            raise ReplearnError(f"UMAPEmbedding: {len(x)} images are too few for n_neighbors={self.n_neighbors}")
        model = self._build(tuple(x.shape[1:]))
        self.input_shape_ = tuple(int(d) for d in model.input_shape)
        self._check_size(x, "X")
        self.flat_input_, self.code_dim_, self.model_ = flat, int(model.code_dim), model
        self.pretraining_, self.decoder_history_ = [], {}

        start = time.perf_counter()
        pca = None if self.pca_dims is None else int(self.pca_dims)
        graph = neighbour_graph(x.numpy(), int(self.n_neighbors), pca, int(self.seed))
        self.graph_seconds_, self.graph_edges_ = time.perf_counter() - start, int(graph.nnz)

        trained, inputs = self._split_pca(model.encoder, x)
        pixels = (x * 255).round().to(torch.uint8)  # 4x less memory than float32 for the reconstruction targets
        joint = float(self.recon_weight) > 0
        objective = UMAPObjective(trained, pixels if inputs is x else inputs, graph,
                                  decoder=model.decoder if joint else None, images=pixels,
                                  recon_weight=float(self.recon_weight), recon_loss=self.loss,
                                  negative_rate=float(self.negative_rate), min_dist=float(self.min_dist),
                                  seed=int(self.seed), kind=self.kind)
        config = dataclasses.replace(self._config(), loss="model")
        slots = max(int(round(objective.sampler.total)), int(self.batch_size))  # one UMAP epoch of edges
        history = fit(objective, (torch.zeros(slots, 1), torch.zeros(slots)), None, config,
                      progress=bool(self.progress), checkpoint_dir=checkpoint_dir,
                      resume=continues(checkpoint_dir, resume))
        self.history_ = {k: list(v) for k, v in history.history.items()}
        self.edge_samples_ = int(self.epochs) * -(-slots // int(self.batch_size)) * int(self.batch_size)
        del objective, inputs
        # fit() moved only the trained part; the frozen PCA stem (and a decoder fitted after) are still on the CPU
        self.model_.to(resolve_device(self.device))
        if not joint and int(self.decoder_epochs) > 0:
            self._fit_decoder(x, checkpoint_dir, resume)
        self.model_.to(memory_format=torch.contiguous_format).eval()
        return self

    def _fit_decoder(self, x: torch.Tensor, checkpoint_dir: str | os.PathLike | None, resume: bool) -> None:
        """Fit the decoder to redraw ``x`` (N, C, H, W) from the trained encoder's (fixed) codes."""
        codes = predict(self.model_.encoder, x, int(self.batch_size_predict)).float()
        batch = int(np.clip(len(x) // DECODER_MIN_STEPS, 8, DECODER_BATCH))  # small sets: still some steps per epoch
        config = dataclasses.replace(self._config(), epochs=int(self.decoder_epochs), batch_size=batch,
                                     lr=DECODER_LR, schedule="onecycle")
        where = stage_dir(checkpoint_dir, "decoder")
        history = fit(self.model_.decoder, (codes, x), None, config, progress=bool(self.progress),
                      checkpoint_dir=where, resume=continues(where, resume))
        self.decoder_history_ = {k: list(v) for k, v in history.history.items()}
