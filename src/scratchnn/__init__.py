"""scratchnn: a neural network written from scratch in NumPy that learns handwritten digits."""
from .host import openblas_idle  # noqa: F401  (first: it must run before NumPy loads OpenBLAS)
from .model import Sequential
from .nn import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, SoftmaxCrossEntropy, softmax

__version__ = "0.1.0"
__all__ = ["Sequential", "Dense", "ReLU", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten",
           "SoftmaxCrossEntropy", "softmax", "__version__"]

# Subpackages load when first named (``scratchnn.doctor.HealthLog`` after ``import scratchnn``),
# so the core stays light: the optional ones (tune, web) need their extras only when used.
SUBPACKAGES = ("cli", "data", "doctor", "ensemble", "fast", "gradcheck", "insight", "io", "metrics", "nn", "optim",
               "photos", "plots", "training", "tune", "web")


def __getattr__(name: str):
    if name in SUBPACKAGES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'scratchnn' has no attribute {name!r}")
