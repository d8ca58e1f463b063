"""ReLU after max-pooling: a ReLU followed by a MaxPool2D runs after it, on 4x fewer numbers.

NOTE: max-pooling commutes with ReLU, maxpool(relu(x)) = relu(maxpool(x)) (ReLU never reorders
numbers), and the gradients agree too: a window whose maximum is > 0 routes dy to the same pixel
either way, and one whose maximum is <= 0 passes no gradient either way. Pooling first leaves
the ReLU a quarter of the numbers (2x2 windows): ~10% of the benchmark CNN's step. Only ReLU: a
LeakyReLU or sigmoid can round two different inputs to one output, and then the tied window
would route its gradient elsewhere.

Then a ReLU right after a 2x2 max pool (pooled on views, maxpool.py) or a threaded batch norm is
applied by that layer as it writes its output (``with_relus_applied``), so it costs no pass of
its own over memory; a threaded batch norm right before a threaded pool runs with it as one
layer that pools first (``with_pools_first``, see batchnorm_pool.py); and a batch norm right
after the first layer's convolution is folded into that convolution's product
(``with_first_conv_folded``, see conv_batchnorm.py).
"""
from __future__ import annotations

from ..nn.activations import ReLU
from ..nn.base import Layer
from ..nn.batchnorm import BatchNorm2d
from ..nn.conv import Conv2D
from ..nn.pool import MaxPool2D
from .batchnorm import BlockBatchNorm2d
from .batchnorm_pool import BlockBatchNormPool
from .batchnorm_rows import RowBatchNorm
from .conv_batchnorm import ConvBatchNorm
from .maxpool import BlockMaxPool2D
from .relu import BlockReLU


def run_order(layers: list[Layer]) -> list[int]:
    """The layer indices in the order to run them: the list order, except that a ReLU followed
    by a MaxPool2D runs after it."""
    order = list(range(len(layers)))
    for k in range(len(order) - 1):
        a, b = layers[order[k]], layers[order[k + 1]]
        if type(a) is ReLU and type(b) is MaxPool2D:
            order[k], order[k + 1] = order[k + 1], order[k]
    return order


def with_relus_applied(layers: list[Layer]) -> list[Layer]:
    """``layers`` (in the order they run), each BlockMaxPool2D or BlockBatchNorm2d that a ReLU
    follows given that ReLU (textbook or BlockReLU) to apply, and the ReLU dropped from the list."""
    out = []
    for layer in layers:
        last = out[-1] if out else None
        applies_relus = isinstance(last, (BlockMaxPool2D, BlockBatchNorm2d)) and last.relu is None
        if applies_relus and type(layer) in (ReLU, BlockReLU):
            out[-1] = last.with_relu(layer)
        else:
            out.append(layer)
    return out


def with_pools_first(layers: list[Layer]) -> list[Layer]:
    """``layers`` (in the order they run, ReLUs applied), each BlockBatchNorm2d applying no ReLU
    that a BlockMaxPool2D follows run with it as one BlockBatchNormPool."""
    out = []
    for layer in layers:
        last = out[-1] if out else None
        if type(layer) is BlockMaxPool2D and type(last) is BlockBatchNorm2d and last.relu is None:
            out[-1] = BlockBatchNormPool(last, layer)
        else:
            out.append(layer)
    return out


def with_first_conv_folded(layers: list[Layer]) -> list[Layer]:
    """``layers`` (in the order they run), a first Conv2D that a BatchNorm2d (textbook, on rows or
    threaded, maybe applying a ReLU) follows run with it as one ConvBatchNorm: the first layer
    only, the one whose input gradient nothing needs."""
    norms = (BatchNorm2d, RowBatchNorm, BlockBatchNorm2d)
    if len(layers) >= 2 and type(layers[0]) is Conv2D and type(layers[1]) in norms:
        return [ConvBatchNorm(layers[0], layers[1]), *layers[2:]]
    return list(layers)
