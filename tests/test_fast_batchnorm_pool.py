"""A batch norm then a 2x2 max pool (then a ReLU), pooling first (fast/batchnorm_pool.py), computes
what the textbook layers compute, and runs the layers one after the other where it cannot."""
import numpy as np
import pytest
from test_fast import assert_close

from scratchnn.fast.batchnorm import BlockBatchNorm2d
from scratchnn.fast.batchnorm_pool import BlockBatchNormPool
from scratchnn.fast.batchnorm_rows import RowBatchNorm
from scratchnn.fast.maxpool import BlockMaxPool2D
from scratchnn.fast.order import with_pools_first
from scratchnn.fast.relu import BlockReLU
from scratchnn.fast.threads import Blocks, chunks
from scratchnn.nn import AvgPool2D, BatchNorm2d, MaxPool2D, ReLU
from scratchnn.nn.batchnorm import batchnorm_with_random_affine
from scratchnn.nn.im2col import from_pixel_major


@pytest.fixture
def row_by_row(monkeypatch):
    """Chunks of one output row each, so every block takes several (and the last is smaller)."""
    monkeypatch.setattr("scratchnn.fast.batchnorm_pool.chunks", lambda a, b, row: chunks(a, b, row, chunk_floats=1))


def images(shape, rng, integers=False):
    """x (N, C, H, W) laid out as a conv passes it (pixel-major); ``integers``: many tied pixels."""
    n, c, h, w = shape
    x = rng.integers(-2, 3, (h, w, n, c)).astype(float) if integers else 3 * rng.standard_normal((h, w, n, c)) + 1
    return from_pixel_major(x)


def fused_and_textbook(c, relu: bool, workers=2, seed=2):
    """(BlockBatchNormPool, [the textbook BatchNorm2d, MaxPool2D, ReLU]) with the same random γ, β."""
    blocks = Blocks(workers, min_floats=0)
    norm = batchnorm_with_random_affine(c, np.random.default_rng(seed), BatchNorm2d)
    pool = BlockMaxPool2D(MaxPool2D(2), blocks, relu=BlockReLU(ReLU(), blocks) if relu else None)
    textbook = [batchnorm_with_random_affine(c, np.random.default_rng(seed), BatchNorm2d), MaxPool2D(2)]
    return BlockBatchNormPool(BlockBatchNorm2d(norm, blocks), pool), textbook + [ReLU()] * relu


def run(layers, x, dy=None, training=True):
    """y, and with ``dy`` also dx, through ``layers`` one after the other."""
    for layer in layers:
        x = layer.forward(x, training=training)
    if dy is None:
        return x, None
    for layer in reversed(layers):
        dy = layer.backward(dy)
    return x, dy


def assert_trains_like(fused, textbook, x, rng, path: str):
    """A training step of ``fused`` on x, taking ``path``, gives the textbook layers' y, dx, dγ,
    dβ and running statistics."""
    y = fused.forward(x, training=True)
    assert fused._cache[0] == path
    dy = rng.standard_normal(y.shape)
    y_expected, dx_expected = run(textbook, x, dy)
    np.testing.assert_allclose(y, y_expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.backward(dy), dx_expected, rtol=1e-10, atol=1e-12)
    assert_close(fused.grads, textbook[0].grads, "grads")
    assert_close(fused.buffers, textbook[0].buffers, "running statistics")


@pytest.mark.parametrize("shape", [(3, 4, 8, 6), (2, 3, 2, 2), (5, 2, 4, 10)])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("integers", [False, True])
def test_pooling_first_computes_what_the_layers_compute(shape, relu, workers, integers, row_by_row):
    """Forward, dx, dγ, dβ and the running statistics; ``integers`` makes windows with tied
    pixels, whose gradient goes to the first of them both ways (top row, then left pixel)."""
    rng = np.random.default_rng(sum(shape))
    fused, textbook = fused_and_textbook(shape[1], relu, workers)
    assert_trains_like(fused, textbook, images(shape, rng, integers), rng, "pooled first")


@pytest.mark.parametrize("gammas", [(1.0, -0.5), (0.0, 2.0)])
def test_a_batch_with_a_gamma_not_above_zero_runs_the_layers(gammas):
    """γ < 0 turns a window's maximum into its minimum and γ = 0 ties it: the layers run in turn."""
    rng = np.random.default_rng(1)
    fused, textbook = fused_and_textbook(2, relu=True)
    for layer in (fused.bn, textbook[0]):
        layer.params["gamma"][...] = gammas
    assert_trains_like(fused, textbook, images((3, 2, 6, 4), rng), rng, "layers")


@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (2, 3, 6, 5)])
def test_odd_sides_run_the_layers(shape):
    """An odd side drops a row or column from the pool but not from the statistics."""
    rng = np.random.default_rng(2)
    fused, textbook = fused_and_textbook(shape[1], relu=True)
    assert_trains_like(fused, textbook, images(shape, rng), rng, "layers")


def test_evaluation_runs_the_layers():
    """Evaluation normalises with the running statistics: the layers' own work, in turn."""
    fused, textbook = fused_and_textbook(2, relu=True)
    x = images((3, 2, 4, 4), np.random.default_rng(2))
    y = fused.forward(x, training=False)
    assert fused._cache[0] == "layers"
    textbook[0] = RowBatchNorm(textbook[0])  # batch norm evaluates on one thread, in two passes
    np.testing.assert_array_equal(y, run(textbook, x, training=False)[0])


def test_float32_gradients_stay_close_to_the_textbook(row_by_row):
    """In float32 (as training runs) the pooled-first gradients agree with the textbook's to
    float32 rounding, even for a channel whose mean is large against its spread."""
    rng = np.random.default_rng(3)
    fused, textbook = fused_and_textbook(3, relu=True)
    x = images((8, 3, 8, 8), rng).astype(np.float32)
    x[:, 2] += 40  # mean 41, spread 3
    y = fused.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    y_expected, dx_expected = run(textbook, x.astype(np.float64), dy.astype(np.float64))
    np.testing.assert_allclose(y, y_expected, rtol=1e-5, atol=1e-5)
    dx = fused.backward(dy)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-4, atol=1e-4 * np.abs(dx_expected).max())


def test_only_a_batch_norm_applying_no_relu_before_a_threaded_max_pool_pools_first():
    blocks = Blocks(2)
    norm, pool = BlockBatchNorm2d(BatchNorm2d(2), blocks), BlockMaxPool2D(MaxPool2D(2), blocks)
    fused = with_pools_first([norm, pool, ReLU()])
    assert type(fused[0]) is BlockBatchNormPool and fused[0].norm is norm and fused[0].pool is pool
    assert type(fused[1]) is ReLU and len(fused) == 2
    applying = norm.with_relu(ReLU())
    assert with_pools_first([applying, pool]) == [applying, pool]
    textbook = BatchNorm2d(2)
    assert with_pools_first([textbook, pool]) == [textbook, pool]
    average = AvgPool2D(2)
    assert with_pools_first([norm, average]) == [norm, average]
    with pytest.raises(ValueError, match="applies no ReLU"):
        BlockBatchNormPool(applying, pool)
