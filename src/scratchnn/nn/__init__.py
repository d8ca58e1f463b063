"""The math: layers, activations, losses and initialisers, NumPy only."""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh, softmax
from .base import LAYER_TYPES, Layer, layer_from_config, layer_to_config
from .batchnorm import BatchNorm1d
from .dense import Dense
from .dropout import Dropout
from .init import INITIALIZERS, get_initializer, glorot_uniform, he_normal, seed_uniform, zeros
from .losses import SoftmaxCrossEntropy

__all__ = [
    "Layer", "LAYER_TYPES", "layer_from_config", "layer_to_config",
    "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm1d",
    "softmax", "SoftmaxCrossEntropy",
    "INITIALIZERS", "get_initializer", "seed_uniform", "he_normal", "glorot_uniform", "zeros",
]
