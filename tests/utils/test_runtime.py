import random

import numpy as np
import pytest
import torch

from replearn.errors import ReplearnError
from replearn.utils import machine_info, machine_summary, resolve_device, seed_everything


def test_seed_everything_repeats_every_generator():
    seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ReplearnError, match="not a device name"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ReplearnError, match="CUDA is not available"):
            resolve_device("cuda")


def test_machine_info_describes_this_process():
    info = machine_info()
    assert info["torch"] == torch.__version__
    assert info["threads"] == torch.get_num_threads()
    assert info["cores"] >= 1 and info["cpu"]
    line = machine_summary()
    assert line.startswith(info["cpu"]) and f"{info['threads']} threads" in line and torch.__version__ in line
