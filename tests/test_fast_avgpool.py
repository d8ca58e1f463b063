"""Average pooling on views of x (fast/avgpool.py) computes what the textbook AvgPool2D computes."""
import numpy as np
import pytest

from scratchnn.fast import prepare
from scratchnn.fast.avgpool import TiledAvgPool2D
from scratchnn.nn import AvgPool2D
from scratchnn.nn.im2col import from_pixel_major
from scratchnn.optim import SGD
from scratchnn.training.presets import get_preset


@pytest.mark.parametrize("size, stride, shape", [(2, None, (3, 4, 8, 6)), (2, None, (2, 3, 7, 9)),
                                                 (3, None, (2, 2, 7, 8)), ((2, 3), None, (2, 2, 6, 7)),
                                                 (2, 1, (2, 3, 5, 4))])
@pytest.mark.parametrize("layout", ["pixel-major", "C order"])
def test_tiled_average_pooling_computes_what_the_layer_computes(size, stride, shape, layout):
    """Tiling windows (odd sides drop their last rows or columns, which get no gradient) agree to
    float rounding (the sums run in another order); other windows run the textbook's way, exactly."""
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    x = rng.standard_normal(shape) if layout == "C order" else from_pixel_major(rng.standard_normal((h, w, n, c)))
    textbook, tiled = AvgPool2D(size, stride), TiledAvgPool2D(AvgPool2D(size, stride))
    y = tiled.forward(x, training=True)
    np.testing.assert_allclose(y, textbook.forward(x, training=True), rtol=1e-12, atol=1e-15)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(tiled.backward(dy), textbook.backward(dy), rtol=1e-12, atol=1e-15)
    assert tiled.output_shape(x.shape[1:]) == textbook.output_shape(x.shape[1:])
    assert tiled.work_floats(x.shape[1:]) == (0 if tiled.tiles() else textbook.work_floats(x.shape[1:]))
    if not tiled.tiles():
        np.testing.assert_array_equal(y, textbook.forward(x))


def test_tiled_average_pooling_keeps_the_layers_errors():
    tiled = TiledAvgPool2D(AvgPool2D(2))
    with pytest.raises(RuntimeError, match="before forward"):
        tiled.backward(np.zeros((1, 1, 1, 1)))
    with pytest.raises(Exception, match="expects images"):
        tiled.forward(np.zeros((4, 16)))


def test_the_fast_path_pools_lenet5_on_views():
    config = get_preset("lenet5")
    model = config.build_model(np.random.default_rng(0))
    run = prepare(model, SGD(0.1), np.zeros((4, *model.input_shape), np.float32), full_batch=False)
    pools = [layer for layer in run.net.layers if isinstance(layer, TiledAvgPool2D)]
    assert len(pools) == 2 and all(pool.tiles() for pool in pools)
