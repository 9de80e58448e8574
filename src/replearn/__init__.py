"""replearn: representation learning on small image data sets.

Transfer learning, autoencoders and few-label classification of microscopy
crops, built on PyTorch and scikit-learn.
"""

from replearn.errors import ReplearnError

__version__ = "0.1.0"

__all__ = ["ReplearnError", "__version__"]
