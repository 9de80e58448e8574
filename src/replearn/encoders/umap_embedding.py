"""``UMAPEmbedding``: Parametric UMAP, a network whose codes keep the images' neighbourhoods, as a transformer.

``fit(X)`` builds UMAP's fuzzy neighbour graph of the images
(:func:`replearn.train.neighbour_graph.neighbour_graph`) and trains the
encoder of an autoencoder (the lecture's network by default) with the UMAP
cross-entropy (:class:`replearn.train.umap.UMAPObjective`) through
:func:`replearn.train.fit`. ``transform(X)`` is one forward pass of the
encoder, so new images are embedded without re-running anything on the
training set. With ``recon_weight > 0`` the decoder's reconstruction loss
shapes the codes too ("UMAP + autoencoder"); with 0 the decoder only learns to
invert the codes (they are detached for it), so ``inverse_transform`` and
``reconstruct`` work either way.

The fitted model is an :class:`~replearn.models.AutoEncoder`, saved and loaded
like any other (``save_model``, :func:`replearn.encoders.load_encoder`,
:meth:`UMAPEmbedding.from_pretrained`)::

    emb = UMAPEmbedding(epochs=20).fit(train_images)       # (N, 28, 28) uint8
    codes = emb.transform(test_images)                     # (M, 2) float32
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np
import torch

from replearn.encoders._inputs import ImageArray
from replearn.encoders.autoencoder_embedding import AutoEncoderEmbedding
from replearn.errors import ReplearnError
from replearn.models import LECTURE_AE_BLOCKS, AutoEncoder
from replearn.train import TrainConfig, continues, fit
from replearn.train.neighbour_graph import neighbour_graph
from replearn.train.umap import UMAPObjective


class UMAPEmbedding(AutoEncoderEmbedding):
    """Train an encoder with the (Parametric) UMAP objective; ``transform`` gives its codes.

    Args (those of :class:`AutoEncoderEmbedding` keep their meaning; ``loss`` is the reconstruction loss):
        n_neighbors: neighbourhood size of the graph, the point itself included (UMAP's ``n_neighbors``).
        pca_dims: the neighbours are searched in this many principal components of the pixels (None: pixels).
        negative_rate: negatives per graph edge.
        min_dist: how tightly codes may pack (UMAP's ``min_dist``).
        recon_weight: > 0: add the decoder's reconstruction loss with this weight; 0: the decoder is trained
            on detached codes (an inverse map that does not shape them).

    Attributes (besides :class:`AutoEncoderEmbedding`'s):
        graph_seconds_: time taken by the neighbour graph.
        graph_edges_: number of (directed) edges of the symmetric graph.
    """

    def __init__(
        self,
        model: str | AutoEncoder = "conv_autoencoder",
        code_dim: int = 2,
        blocks: Sequence[Sequence[int]] = LECTURE_AE_BLOCKS,
        hidden: Sequence[int] = (),
        epochs: int = 10,
        batch_size: int = 512,
        lr: float = 3e-3,
        optimizer: str = "adam",
        schedule: str | None = "onecycle",
        weight_decay: float = 0.0,
        loss: str = "bce",
        n_neighbors: int = 15,
        pca_dims: int | None = 50,
        negative_rate: int = 5,
        min_dist: float = 0.1,
        recon_weight: float = 0.0,
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

    def _check_params(self) -> None:
        if self.loss not in ("bce", "mse"):
            raise ReplearnError(f"UMAPEmbedding: loss {self.loss!r} is not allowed; use 'bce' or 'mse'")
        for name in ("epochs", "n_neighbors", "negative_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ReplearnError(f"UMAPEmbedding: {name} must be a positive integer, got {value!r}")
        if self.n_neighbors < 2:
            raise ReplearnError(f"UMAPEmbedding: n_neighbors must be at least 2 (it counts the point itself), "
                                f"got {self.n_neighbors}")
        if not float(self.recon_weight) >= 0:
            raise ReplearnError(f"UMAPEmbedding: recon_weight must be >= 0, got {self.recon_weight!r}")

    def fit(self, X: ImageArray, y: Any = None, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False) -> "UMAPEmbedding":
        """Build the neighbour graph of ``X`` (N, H, W), (N, 1, H, W) or rows (N, H*W) and train the encoder on it;
        ``y`` is ignored. ``checkpoint_dir``/``resume``: as :meth:`AutoEncoderEmbedding.fit` (the graph is rebuilt,
        deterministically, and training continues from the last epoch's checkpoint)."""
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
        self.pretraining_ = []

        start = time.perf_counter()
        pca = None if self.pca_dims is None else int(self.pca_dims)
        graph = neighbour_graph(x.numpy(), int(self.n_neighbors), pca, int(self.seed))
        self.graph_seconds_, self.graph_edges_ = time.perf_counter() - start, int(graph.nnz)

        pixels = (x * 255).round().to(torch.uint8)  # 4x less memory than float32 for the graph's vertices
        objective = UMAPObjective(model.encoder, pixels, graph, decoder=model.decoder,
                                  recon_weight=float(self.recon_weight), recon_loss=self.loss,
                                  negative_rate=int(self.negative_rate), min_dist=float(self.min_dist),
                                  seed=int(self.seed))
        config = TrainConfig(
            epochs=int(self.epochs), batch_size=int(self.batch_size), optimizer=self.optimizer, lr=float(self.lr),
            weight_decay=float(self.weight_decay), loss="model", schedule=self.schedule, bf16=bool(self.bf16),
            channels_last=bool(self.channels_last), seed=int(self.seed), device=self.device,
        )
        index = torch.arange(len(x), dtype=torch.float32)[:, None]
        history = fit(objective, (index, torch.zeros(len(x))), None, config, progress=bool(self.progress),
                      checkpoint_dir=checkpoint_dir, resume=continues(checkpoint_dir, resume))
        self.model_.to(memory_format=torch.contiguous_format).eval()
        self.history_ = {k: list(v) for k, v in history.history.items()}
        return self
