"""The first convolution with the batch norm after it folded into its product
(fast/conv_batchnorm.py) computes what the textbook layers compute, and runs the layers one after
the other where it cannot."""
import numpy as np
import pytest
from test_fast import assert_close

from scratchnn.fast.batchnorm import BlockBatchNorm2d
from scratchnn.fast.batchnorm_rows import RowBatchNorm
from scratchnn.fast.conv_batchnorm import ConvBatchNorm
from scratchnn.fast.order import with_first_conv_folded
from scratchnn.fast.threads import Blocks
from scratchnn.fast.winograd import BlockConv2D
from scratchnn.gradcheck import check_layer
from scratchnn.nn import BatchNorm2d, Conv2D, MaxPool2D, ReLU
from scratchnn.nn.batchnorm import batchnorm_with_random_affine


def folded_and_textbook(conv_kwargs: dict, relu: bool, workers: int, dtype=np.float64):
    """(ConvBatchNorm, [the textbook Conv2D, BatchNorm2d, ReLU]) with the same weights, random
    γ, β and a bias far from 0 (its gradient is 0 in exact arithmetic: batch norm removes it)."""
    convs = [Conv2D(**conv_kwargs, bias_init="glorot_uniform", rng=0).astype(dtype) for _ in range(2)]
    norms = [batchnorm_with_random_affine(conv_kwargs["out_channels"], np.random.default_rng(2), BatchNorm2d)
             for _ in range(2)]
    if workers > 1:
        blocks = Blocks(workers, min_floats=0)
        norm = BlockBatchNorm2d(norms[0], blocks, relu=ReLU() if relu else None)
    else:
        norm = RowBatchNorm(norms[0])  # as the fast path runs it on one thread, its ReLU a layer of its own
    return ConvBatchNorm(convs[0], norm), [convs[1], norms[1]] + [ReLU()] * (relu and workers > 1)


def images(shape, rng, dtype=np.float64):
    """Digit-like x (N, C, H, W) in 0..1, a blank border and many zeros, as the first layer sees."""
    x = np.zeros(shape, dtype)
    x[..., 1:-1, 1:-1] = np.maximum(rng.random((*shape[:2], shape[2] - 2, shape[3] - 2)) * 1.6 - 0.6, 0)
    return x


def through(layers, x, training=True):
    """x through ``layers``' forwards, one after the other."""
    for layer in layers:
        x = layer.forward(x, training=training)
    return x


CONVS = [dict(in_channels=1, out_channels=4, kernel_size=3, padding=1),
         dict(in_channels=3, out_channels=2, kernel_size=5, padding=0),
         dict(in_channels=1, out_channels=3, kernel_size=3, stride=2, padding=1)]


@pytest.mark.parametrize("conv_kwargs", CONVS, ids=["3x3 pad 1", "5x5, 3 channels", "stride 2"])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("workers", [1, 2])
def test_folding_computes_what_the_layers_compute(conv_kwargs, relu, workers):
    """y, dW, db, dγ, dβ and the running statistics, against Conv2D -> BatchNorm2d (-> ReLU)."""
    rng = np.random.default_rng(workers)
    folded, textbook = folded_and_textbook(conv_kwargs, relu, workers)
    x = images((5, conv_kwargs["in_channels"], 9, 8), rng)
    y = folded.forward(x, training=True)
    assert folded._cache[0] == "folded"
    np.testing.assert_allclose(y, through(textbook, x), rtol=1e-11, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    assert folded.backward(dy, need_dx=False) is None
    for layer in reversed(textbook):
        dy = layer.backward(dy, need_dx=layer is not textbook[0])
    grads = {**textbook[0].grads, **textbook[1].grads}
    scale = np.abs(grads["W"]).max()  # the bias: 0 in exact arithmetic, rounding both ways
    assert np.abs(folded.grads["b"]).max() < 1e-10 * scale and np.abs(grads["b"]).max() < 1e-10 * scale
    assert_close({k: v for k, v in folded.grads.items() if k != "b"}, {k: v for k, v in grads.items() if k != "b"},
                 "grads")
    assert_close(folded.buffers, textbook[1].buffers, "running statistics")


@pytest.mark.parametrize("relu", [True, False])
def test_folding_matches_finite_differences(relu):
    """Every gradient, the input's (made when asked for) included, against finite differences
    of the layer's own forward (batch statistics and all)."""
    rng = np.random.default_rng(3)
    folded, _ = folded_and_textbook(CONVS[1], relu, workers=2)
    for check in check_layer(folded, images((3, 3, 7, 7), rng), rng):
        assert check.error < 1e-6, f"{check.what} d{check.wrt}: {check.error:.2e}"


def test_float32_stays_close_to_the_textbook_in_float64():
    """float32 statistics from window products, not from the outputs: still float32-close."""
    rng = np.random.default_rng(4)
    folded, textbook = folded_and_textbook(dict(in_channels=1, out_channels=8, kernel_size=3, padding=1),
                                           relu=True, workers=2, dtype=np.float32)
    folded.conv.params["b"][...] = 30  # a mean far from 0 against the outputs' spread
    textbook[0].params["b"][...] = 30
    textbook[0].astype(np.float64)
    x = images((16, 1, 28, 28), rng, np.float32)
    y = folded.forward(x, training=True)
    assert y.dtype == np.float32 and folded._cache[0] == "folded"
    np.testing.assert_allclose(y, through(textbook, x.astype(np.float64)), rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    folded.backward(dy, need_dx=False)
    d = dy.astype(np.float64)
    for layer in reversed(textbook):
        d = layer.backward(d, need_dx=layer is not textbook[0])
    for name, grad in {**textbook[0].grads, **textbook[1].grads}.items():
        if name != "b":  # 0 in exact arithmetic: both hold rounding only
            np.testing.assert_allclose(folded.grads[name], grad, rtol=1e-3, atol=1e-4 * np.abs(grad).max(),
                                       err_msg=name)


@pytest.mark.parametrize("case", ["evaluation", "winograd", "one pixel"])
def test_what_cannot_fold_runs_the_layers(case):
    """Evaluation (running statistics), a convolution that runs Winograd, and a batch of one
    pixel (the batch norm's own error) run the layers one after the other."""
    rng = np.random.default_rng(5)
    kwargs = dict(in_channels=2, out_channels=3, kernel_size=3, padding=1)
    if case == "winograd":
        kwargs["algorithm"] = "winograd"
    folded, textbook = folded_and_textbook(kwargs, relu=True, workers=2)
    if case == "one pixel":
        with pytest.raises(Exception, match="at least 2"):
            folded.forward(np.ones((1, 2, 1, 1)), training=True)
        return
    x = images((4, 2, 6, 6), rng)
    training = case != "evaluation"
    if not training:  # batch norm evaluates on one thread, in two passes (fast/batchnorm_rows.py)
        textbook[1] = RowBatchNorm(textbook[1])
    y = folded.forward(x, training=training)
    assert folded._cache[0] == "layers"
    np.testing.assert_allclose(y, through(textbook, x, training), rtol=1e-11, atol=1e-12)


def test_only_the_first_layer_folds_with_the_batch_norm_after_it():
    blocks = Blocks(2)
    conv, norm, relu = Conv2D(1, 2, 3, rng=0), BlockBatchNorm2d(BatchNorm2d(2), blocks), ReLU()
    folded = with_first_conv_folded([conv, norm, relu])
    assert type(folded[0]) is ConvBatchNorm and folded[0].conv is conv and folded[0].norm is norm
    assert folded[1:] == [relu]
    textbook = BatchNorm2d(2)
    assert type(with_first_conv_folded([conv, textbook])[0]) is ConvBatchNorm
    later = [relu, conv, norm]  # not the first layer: its input gradient is needed
    assert with_first_conv_folded(later) == later
    threaded = BlockConv2D(Conv2D(16, 2, 3, rng=0), blocks)
    assert with_first_conv_folded([threaded, norm]) == [threaded, norm]
    pool = MaxPool2D(2)
    assert with_first_conv_folded([conv, pool]) == [conv, pool]
