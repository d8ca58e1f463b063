"""scratchnn: a neural network written from scratch in NumPy that learns handwritten digits."""
from .model import Sequential
from .nn import Dense, ReLU, SoftmaxCrossEntropy, softmax

__version__ = "0.1.0"
__all__ = ["Sequential", "Dense", "ReLU", "SoftmaxCrossEntropy", "softmax", "__version__"]
