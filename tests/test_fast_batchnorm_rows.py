"""Batch norm on the fast path's one thread (fast/batchnorm_rows.py): sums along wide views and a
two-pass evaluation compute the textbook layer's numbers, keep its errors, and are what the fast
path runs for every BatchNorm1d and, on one thread, every BatchNorm2d."""
import numpy as np
import pytest

import scratchnn.fast as fast_path
from scratchnn.fast.batchnorm import BlockBatchNorm2d
from scratchnn.fast.batchnorm_rows import RowBatchNorm
from scratchnn.fast.threads import Blocks
from scratchnn.nn import BatchNorm1d, BatchNorm2d
from scratchnn.nn.batchnorm import batchnorm_with_random_affine
from scratchnn.nn.im2col import from_pixel_major
from scratchnn.training.presets import get_preset

CASES = {"BatchNorm1d": (BatchNorm1d, (7, 5)), "BatchNorm2d": (BatchNorm2d, (3, 4, 5, 6))}


def pair(kind, width, dtype):
    """Two layers with the same random γ, β and running statistics: (textbook, RowBatchNorm)."""
    return [batchnorm_with_random_affine(width, np.random.default_rng(1), kind).astype(dtype) for _ in range(2)]


def inputs(shape, rng, dtype):
    """x and dy; images pixel-major, as a convolution passes them on."""
    x, dy = 2 + 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    if len(shape) == 4:
        x, dy = (from_pixel_major(np.ascontiguousarray(a.transpose(2, 3, 0, 1))) for a in (x, dy))
    return x.astype(dtype), dy.astype(dtype)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_it_computes_what_the_textbook_layer_computes(name, training, dtype, rtol):
    """y, dx, dγ, dβ and the running statistics (float32: the two-pass evaluation rounds γ/σ
    first; the sums along wide views round otherwise)."""
    kind, shape = CASES[name]
    textbook, layer = pair(kind, shape[1], dtype)
    rows = RowBatchNorm(layer)
    assert rows.params is layer.params and rows.grads is layer.grads and rows.buffers is layer.buffers
    rng = np.random.default_rng(2)
    for step in range(2):  # the running statistics move twice when training
        x, dy = inputs(shape, rng, dtype)
        y, expected = rows.forward(x, training=training), textbook.forward(x, training=training)
        assert y.dtype == dtype and y.strides == expected.strides  # the memory order the next layer reads
        np.testing.assert_allclose(y, expected, rtol=rtol, atol=rtol, err_msg="y")
        np.testing.assert_allclose(rows.backward(dy), textbook.backward(dy), rtol=rtol, atol=rtol, err_msg="dx")
        for arrays in ("grads", "buffers"):
            for key, expected in getattr(textbook, arrays).items():
                np.testing.assert_allclose(getattr(layer, arrays)[key], expected, rtol=rtol, atol=rtol, err_msg=key)
    assert rows.backward(dy, need_dx=False) is None


@pytest.mark.parametrize("name", CASES)
def test_it_raises_the_textbook_layers_errors(name):
    kind, shape = CASES[name]
    textbook, layer = pair(kind, shape[1], np.float32)
    rows = RowBatchNorm(layer)
    with pytest.raises(RuntimeError, match="before forward"):
        rows.backward(np.ones(shape))
    one = np.ones((1, *shape[1:2], *[1] * (len(shape) - 2)))  # one row: no variance
    wrong = np.ones((2, shape[1] + 1, *shape[2:]))
    for x in (one, wrong):
        with pytest.raises(Exception) as expected:
            textbook.forward(x, training=True)
        with pytest.raises(type(expected.value)) as raised:
            rows.forward(x, training=True)
        assert str(raised.value) == str(expected.value)


def test_a_threaded_batch_norm_evaluates_on_one_thread():
    textbook, layer = pair(BatchNorm2d, 4, np.float32)
    blocked, one_thread = BlockBatchNorm2d(layer, Blocks(2, min_floats=0)), RowBatchNorm(textbook)
    x, dy = inputs((3, 4, 5, 6), np.random.default_rng(3), np.float32)
    np.testing.assert_array_equal(blocked.forward(x), one_thread.forward(x))
    np.testing.assert_array_equal(blocked.backward(dy), one_thread.backward(dy))
    assert blocked._cache is None or blocked._cache[0] == "one thread"


@pytest.mark.parametrize("preset, workers", [("mlp", 1), ("mlp", 2), ("cnn-best", 1)])
def test_the_fast_path_runs_every_batch_norm_on_it(preset, workers):
    """Every BatchNorm1d, and each BatchNorm2d on one thread (the first one folded into the first
    convolution, see conv_batchnorm.py), in training and in inference."""
    model = get_preset(preset).build_model(np.random.default_rng(0))
    norms = [layer for layer in model.layers if isinstance(layer, (BatchNorm1d, BatchNorm2d))]
    net = fast_path.inference_net(model, Blocks(workers))
    wrapped = [layer.bn for layer in net.layers if type(layer) is RowBatchNorm]
    folded = [layer.bn for layer in net.layers if type(layer).__name__ == "ConvBatchNorm"]
    assert wrapped + folded and sorted(map(id, wrapped + folded)) == sorted(map(id, norms))
    assert not any(isinstance(layer, (BatchNorm1d, BatchNorm2d)) for layer in net.layers)
