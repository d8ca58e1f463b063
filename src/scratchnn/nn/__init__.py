"""The math: layers, activations, losses and initialisers, NumPy only."""
from .activations import Activation, LeakyReLU, ReLU, Sigmoid, Tanh, softmax
from .base import LAYER_TYPES, Layer, layer_from_config, layer_to_config
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .im2col import col2im, conv_output_shape, im2col
from .init import INITIALIZERS, get_initializer, glorot_uniform, he_normal, seed_uniform, zeros
from .losses import SoftmaxCrossEntropy
from .pool import AvgPool2D, MaxPool2D
from .flatten import Flatten

__all__ = [
    "Layer", "LAYER_TYPES", "layer_from_config", "layer_to_config",
    "Dense", "Activation", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm1d",
    "BatchNorm2d", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "im2col", "col2im", "conv_output_shape",
    "softmax", "SoftmaxCrossEntropy",
    "INITIALIZERS", "get_initializer", "seed_uniform", "he_normal", "glorot_uniform", "zeros",
]
