"""scratchnn: a neural network written from scratch in NumPy that learns handwritten digits."""
from . import openblas_idle  # noqa: F401  (first: it must run before NumPy loads OpenBLAS)
from .model import Sequential
from .nn import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, SoftmaxCrossEntropy, softmax

__version__ = "0.1.0"
__all__ = ["Sequential", "Dense", "ReLU", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten",
           "SoftmaxCrossEntropy", "softmax", "__version__"]
