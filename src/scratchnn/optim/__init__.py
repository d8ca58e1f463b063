"""Optimizers that update parameters in place."""
from .optimizers import SGD, Optimizer

__all__ = ["Optimizer", "SGD"]
