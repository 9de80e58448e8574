"""Training: one :func:`fit` for every workflow, plus ``evaluate``/``predict`` helpers."""

from replearn.train._device import BF16_SETTINGS, bf16_enabled
from replearn.train.batching import epoch_generator, epoch_permutation, iter_batches, num_batches
from replearn.train.callbacks import Callback, EarlyStopping
from replearn.train.checkpoint import (CHECKPOINT_NAME, STAGES_DIR, checkpoint_path, continues, load_checkpoint,
                                      save_checkpoint, stage_dir)
from replearn.train.config import LOSSES, MONITORS, OPTIMIZERS, SCHEDULES, TrainConfig
from replearn.train.engine import fit
from replearn.train.history import History
from replearn.train.losses import make_loss
from replearn.train.predict import evaluate, predict
from replearn.train.trajectory import OutputRecorder

__all__ = [
    "BF16_SETTINGS",
    "bf16_enabled",
    "CHECKPOINT_NAME",
    "Callback",
    "EarlyStopping",
    "History",
    "OutputRecorder",
    "LOSSES",
    "MONITORS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainConfig",
    "checkpoint_path",
    "epoch_generator",
    "epoch_permutation",
    "evaluate",
    "fit",
    "iter_batches",
    "load_checkpoint",
    "make_loss",
    "num_batches",
    "predict",
    "save_checkpoint",
    "stage_dir",
    "STAGES_DIR",
    "continues",
]
