"""Conv2D, MaxPool2D, AvgPool2D, Flatten and the im2col/col2im functions under them."""
import numpy as np
import pytest
from ci_guard import import_oracle

from scratchnn import Sequential
from scratchnn.errors import ConfigError, ShapeError
from scratchnn.gradcheck import check_layer
from scratchnn.io import load, save
from scratchnn.nn import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    col2im,
    conv_output_shape,
    im2col,
    layer_from_config,
    layer_to_config,
)
from scratchnn.nn.gradcheck_inputs import distinct_values

TIGHT = 1e-7
# (kernel_size, stride, padding, input (N, C, H, W)): square and not, overlapping windows,
# stride > 1, padding > 0, and a stride that leaves a row over.
GEOMETRIES = [
    (3, 1, 0, (2, 2, 6, 5)),
    (3, 2, 1, (2, 3, 7, 6)),
    (2, 2, 0, (3, 1, 5, 4)),
    (1, 1, 0, (2, 3, 3, 4)),
    ((2, 3), (1, 2), (1, 0), (2, 2, 5, 7)),
    (5, 3, 2, (1, 2, 6, 6)),
]


def channels_last(x):
    """The same (N, C, H, W) numbers stored (N, H, W, C) in memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def pixel_major(x):
    """The same (N, C, H, W) numbers stored (H, W, N, C) in memory, as Conv2D returns them."""
    return np.ascontiguousarray(x.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1)


def pair(v):
    return (v, v) if isinstance(v, int) else v


def direct_conv(x, W, b, stride, padding):
    """y[n, f, i, j] = b[f] + Σ W[f] · window(i, j), written with plain loops as the definition."""
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = np.einsum("nchw,fchw->nf", window, W) + b
    return y


# ---------------------------------------------------------------- im2col / col2im

def test_im2col_known_answer():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    cols = im2col(x, 2)
    assert cols.shape == (2 * 3, 4)
    np.testing.assert_array_equal(cols[0], [0, 1, 4, 5])    # window at (0, 0), rows (kh, kw)
    np.testing.assert_array_equal(cols[5], [6, 7, 10, 11])  # window at (1, 2)
    padded = im2col(x, 3, stride=2, padding=1)
    assert padded.shape == (2 * 2, 9)
    np.testing.assert_array_equal(padded[0], [0, 0, 0, 0, 0, 1, 0, 4, 5])


def test_im2col_orders_rows_pixel_then_image():
    x = np.arange(2 * 9.0).reshape(2, 1, 3, 3)  # image 1 is image 0 + 9
    cols = im2col(x, 2)  # 2x2 output pixels, 2 images: rows (oh, ow, n)
    np.testing.assert_array_equal(cols[0], [0, 1, 3, 4])     # pixel (0, 0) of image 0
    np.testing.assert_array_equal(cols[1], [9, 10, 12, 13])  # pixel (0, 0) of image 1
    np.testing.assert_array_equal(cols[2], [1, 2, 4, 5])     # pixel (0, 1) of image 0


def test_conv_and_pool_outputs_are_pixel_major_in_memory():
    x = np.random.default_rng(2).standard_normal((4, 3, 8, 8)).astype(np.float32)
    for layer in (Conv2D(3, 5, 3, rng=0), MaxPool2D(2), MaxPool2D(3, stride=2), AvgPool2D(2)):
        y = layer.forward(x, training=True)
        assert y.transpose(2, 3, 0, 1).flags.c_contiguous, f"{layer!r} output is not (H, W, N, C) in memory"
        dx = layer.backward(np.ones_like(y))
        assert dx.transpose(2, 3, 0, 1).flags.c_contiguous, f"{layer!r} dx is not (H, W, N, C) in memory"


def test_im2col_orders_columns_kernel_offset_then_channel():
    x = np.stack([np.zeros((2, 2)), np.ones((2, 2))])[None]  # (1, 2, 2, 2): channel c holds c
    np.testing.assert_array_equal(im2col(x, 2)[0], [0, 1] * 4)


@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(kernel, stride, padding, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride, padding)
    c = rng.standard_normal(cols.shape)
    lhs, rhs = np.sum(cols * c), np.sum(x * col2im(c, shape, kernel, stride, padding))
    assert lhs == pytest.approx(rhs, rel=1e-12), f"<im2col(x), c> = {lhs} but <x, col2im(c)> = {rhs}"


def test_col2im_adds_where_windows_overlap():
    # 3x3 windows with stride 1 on a 4x4 image: the centre pixels sit in all 4 windows
    counts = col2im(np.ones((4, 9)), (1, 1, 4, 4), 3)[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_im2col_reads_any_memory_layout_and_fills_out():
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    out = np.empty((2 * 9, 27))
    assert im2col(channels_last(x), 3, out=out) is out
    np.testing.assert_array_equal(out, im2col(x, 3))
    np.testing.assert_array_equal(im2col(pixel_major(x), 3, out=np.empty((2 * 9, 27), order="F")), out)
    with pytest.raises(ShapeError, match="out must be"):
        im2col(x, 3, out=np.empty((5, 27)))


@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES)
def test_output_size_formula(kernel, stride, padding, shape):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    h, w = shape[2:]
    expected = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    assert conv_output_shape(h, w, kernel, stride, padding) == expected
    layer = Conv2D(shape[1], 4, kernel, stride, padding, rng=0)
    assert layer.forward(np.zeros(shape, np.float32)).shape == (shape[0], 4, *expected)
    assert layer.output_shape(shape[1:]) == (4, *expected)


def test_a_window_that_does_not_fit_is_a_shape_error():
    with pytest.raises(ShapeError, match="5x5 window does not fit a 3x4 input"):
        conv_output_shape(3, 4, 5)
    assert conv_output_shape(3, 4, 5, padding=1) == (1, 2)  # padding makes room
    with pytest.raises(ShapeError, match="does not fit"):
        Conv2D(1, 2, 5).forward(np.zeros((1, 1, 4, 8), np.float32))
    with pytest.raises(ShapeError, match="does not fit"):
        MaxPool2D(3).forward(np.zeros((1, 1, 2, 2), np.float32))


@pytest.mark.parametrize("bad", [0, -1, 2.5, (2, 2, 2), "3", True])
def test_bad_window_arguments_are_config_errors(bad):
    with pytest.raises(ConfigError, match="kernel_size must be"):
        Conv2D(1, 2, bad)
    with pytest.raises(ConfigError, match="size must be"):
        MaxPool2D(bad)


def test_bad_channel_counts_are_config_errors():
    with pytest.raises(ConfigError, match="out_channels must be a whole number from 1 to 4,194,304"):
        Conv2D(1, 0, 3)
    with pytest.raises(ConfigError, match="padding must be an int >= 0"):
        Conv2D(1, 2, 3, padding=-1)


# ---------------------------------------------------------------- Conv2D

@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES)
def test_conv_gradients_match_finite_differences(kernel, stride, padding, shape):
    rng = np.random.default_rng(2)
    layer = Conv2D(shape[1], 3, kernel, stride, padding, bias_init="glorot_uniform", rng=rng)
    checks = check_layer(layer, rng.standard_normal(shape), rng)
    assert [c.wrt for c in checks] == ["x", "W", "b"]
    for check in checks:
        assert check.error < TIGHT, f"{check.what} d{check.wrt}: relative error {check.error:.2e}"


@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES)
def test_conv_matches_a_direct_loop_convolution(kernel, stride, padding, shape):
    rng = np.random.default_rng(3)
    layer = Conv2D(shape[1], 4, kernel, stride, padding, bias_init="glorot_uniform", rng=rng).astype(np.float64)
    x = rng.standard_normal(shape)
    expected = direct_conv(x, layer.params["W"], layer.params["b"], stride, padding)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_edge_filter_known_answer():
    # A dark left half and a bright right half; the Sobel x filter answers 4 per unit step,
    # only in the output columns whose 3x3 window straddles the edge, 0 elsewhere.
    image = np.zeros((1, 1, 5, 6), np.float32)
    image[..., 3:] = 1.0
    layer = Conv2D(1, 1, 3)
    layer.params["W"][0, 0] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    y = layer.forward(image)
    np.testing.assert_array_equal(y[0, 0], [[0, 4, 4, 0]] * 3)
    np.testing.assert_array_equal(y, direct_conv(image.astype(np.float64), layer.params["W"], layer.params["b"], 1, 0))


def test_conv_backward_known_answer():
    # y = Σ 3x3 windows of a 1x1x3x3 image -> a single output; dW = the image, dx = W.
    layer = Conv2D(1, 1, 3)
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    layer.forward(x)
    dx = layer.backward(np.full((1, 1, 1, 1), 2, np.float32))
    np.testing.assert_array_equal(layer.grads["W"], 2 * x)
    np.testing.assert_array_equal(layer.grads["b"], [2])
    np.testing.assert_array_equal(dx, 2 * layer.params["W"])


def test_conv_answers_do_not_depend_on_memory_layout():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 6, 5))
    dy = rng.standard_normal((3, 2, 6, 5))
    results = []
    for xi, dyi in ((x, dy), (channels_last(x), channels_last(dy)), (pixel_major(x), pixel_major(dy)),
                    (np.asfortranarray(x), dy)):
        layer = Conv2D(4, 2, 3, padding=1, rng=0).astype(np.float64)
        y = layer.forward(xi)
        results.append((y, layer.backward(dyi), layer.grads["W"].copy(), layer.grads["b"].copy()))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_conv_reuses_its_buffers_without_corrupting_returned_arrays():
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal((2, 2, 2, 5, 5)).astype(np.float32)
    layer = Conv2D(2, 3, 3, rng=0)
    y1 = layer.forward(x1)
    y1_before = y1.copy()
    y2 = layer.forward(x2)  # same shape: the im2col buffer is rewritten
    np.testing.assert_array_equal(y1, y1_before, err_msg="a later forward changed an earlier output")
    dy = rng.standard_normal(y2.shape).astype(np.float32)
    dx = layer.backward(dy)
    fresh = Conv2D(2, 3, 3, rng=0)
    fresh.forward(x2)
    np.testing.assert_array_equal(dx, fresh.backward(dy))
    np.testing.assert_array_equal(layer.grads["W"], fresh.grads["W"])


def test_conv_skips_the_input_gradient_when_asked():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    layer = Conv2D(1, 3, 3, rng=0)
    dy = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer.forward(x)
    layer.backward(dy)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    assert layer.backward(dy, need_dx=False) is None
    for key in grads:
        np.testing.assert_array_equal(layer.grads[key], grads[key], err_msg=f"Conv2D d{key}")


def test_conv_rejects_wrong_rank_and_channels():
    layer = Conv2D(3, 2, 3)
    with pytest.raises(ShapeError, match=r"expects images of shape \(N, 3, H, W\), got \(2, 3, 8\)"):
        layer.forward(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ShapeError, match=r"expects images of shape \(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        layer.forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ShapeError, match="give the model input_shape"):
        layer.output_shape((784,))


def test_conv_initialises_with_fan_in_c_kh_kw():
    layer = Conv2D(16, 64, 3, rng=np.random.default_rng(0))
    W = layer.params["W"]
    assert W.shape == (64, 16, 3, 3) and W.dtype == np.float32
    assert W.std() == pytest.approx(np.sqrt(2 / (16 * 9)), rel=0.05)  # He: N(0, 2 / fan_in)
    assert not layer.params["b"].any()


def test_conv_config_round_trip():
    layer = Conv2D(2, 5, (3, 2), stride=(2, 1), padding=1, init="glorot_uniform", rng=0)
    config = layer_to_config(layer)
    assert config["config"]["kernel_size"] == [3, 2] and config["config"]["padding"] == 1
    rebuilt = layer_from_config(config)
    assert rebuilt.config() == layer.config() and repr(rebuilt) == repr(layer)


# ---------------------------------------------------------------- pooling and Flatten

def test_maxpool_routes_each_gradient_to_the_window_maximum():
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 8, 1],
                  [0, 0, 7, 7],
                  [0, 0, 7, 6]], np.float32)[None, None]
    pool = MaxPool2D(2)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[5, 8], [0, 7]])
    dx = pool.backward(np.array([[[[10, 20], [30, 40]]]], np.float32))
    # ties (the zeros, the 7s) go to the first maximum in row-major order, and to it alone
    np.testing.assert_array_equal(dx[0, 0], [[0, 10, 0, 0],
                                             [0, 0, 20, 0],
                                             [30, 0, 40, 0],
                                             [0, 0, 0, 0]])


@pytest.mark.parametrize("size, stride", [(2, None), (3, 2), (2, 1), (3, None)])
def test_maxpool_agrees_with_a_loop(size, stride):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (2, 3, 7, 8)).astype(np.float64)  # many ties on purpose
    s = stride or size
    pool = MaxPool2D(size, stride)
    y = pool.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = pool.backward(dy)
    expected_y, expected_dx = np.zeros_like(y), np.zeros_like(x)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            window = x[:, :, i * s:i * s + size, j * s:j * s + size].reshape(2, 3, -1)
            expected_y[:, :, i, j] = window.max(axis=2)
            first = window.argmax(axis=2)  # the first maximum, as documented
            for n in range(2):
                for c in range(3):
                    a, b = divmod(first[n, c], size)
                    expected_dx[n, c, i * s + a, j * s + b] += dy[n, c, i, j]
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)  # overlaps add in another order


@pytest.mark.parametrize("layer", [MaxPool2D(2), MaxPool2D(3, 2), AvgPool2D(2), AvgPool2D(3, 1)],
                         ids=repr)
def test_pool_gradients_match_finite_differences(layer):
    rng = np.random.default_rng(8)
    for check in check_layer(layer, distinct_values(rng, (2, 3, 7, 6)), rng):
        assert check.error < TIGHT, f"{check.what} d{check.wrt}: relative error {check.error:.2e}"


def test_avgpool_known_answer():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    pool = AvgPool2D(2)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(pool.backward(np.full((1, 1, 2, 2), 4, np.float32)), np.ones_like(x))


def test_pool_output_shape_and_errors():
    assert MaxPool2D(2).output_shape((32, 26, 26)) == (32, 13, 13)
    assert MaxPool2D(2).output_shape((64, 11, 11)) == (64, 5, 5)  # the last row/column dropped
    assert AvgPool2D(3, stride=2).output_shape((1, 7, 8)) == (1, 3, 3)
    with pytest.raises(ShapeError, match=r"expects images of shape \(N, C, H, W\)"):
        MaxPool2D(2).forward(np.zeros((4, 16), np.float32))
    with pytest.raises(ShapeError, match=r"expects samples of shape \(C, H, W\)"):
        AvgPool2D(2).output_shape((28, 28))


def test_flatten_keeps_channel_height_width_order_whatever_the_layout():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    flat = Flatten()
    np.testing.assert_array_equal(flat.forward(channels_last(x)), x.reshape(2, 12))
    np.testing.assert_array_equal(flat.forward(pixel_major(x)), x.reshape(2, 12))
    assert flat.output_shape((3, 2, 2)) == (12,)
    dy = np.arange(24, dtype=np.float32).reshape(2, 12)
    dx = flat.backward(dy)  # after a pixel-major x: dx in the same memory order, the same numbers
    np.testing.assert_array_equal(dx, dy.reshape(x.shape))
    assert dx.transpose(2, 3, 0, 1).flags.c_contiguous
    flat.forward(x)
    assert flat.backward(dy).flags.c_contiguous  # after a C-order x: a view of dy
    with pytest.raises(ShapeError, match="Flatten.backward expects dy of shape"):
        flat.backward(np.ones((2, 11), np.float32))


# ---------------------------------------------------------------- properties of every layer here

def layers_and_inputs():
    rng = np.random.default_rng(9)
    return [(Conv2D(3, 4, 3, stride=2, padding=1, rng=rng), rng.standard_normal((4, 3, 9, 8))),
            (Conv2D(3, 4, (1, 3), rng=rng), rng.standard_normal((4, 3, 5, 5))),
            (MaxPool2D(2), rng.standard_normal((4, 3, 7, 8))),
            (MaxPool2D(3, 2), rng.standard_normal((4, 3, 7, 8))),
            (AvgPool2D(2), rng.standard_normal((4, 3, 7, 8))),
            (Flatten(), rng.standard_normal((4, 3, 2, 2)))]


@pytest.mark.parametrize("index", range(len(layers_and_inputs())))
def test_forward_and_backward_leave_their_inputs_alone(index):
    layer, x = layers_and_inputs()[index]
    x = pixel_major(x.astype(np.float32))
    x_before = x.copy()
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(10).standard_normal(y.shape).astype(np.float32)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(x, x_before, err_msg=f"{layer!r} forward mutated x")
    np.testing.assert_array_equal(dy, dy_before, err_msg=f"{layer!r} backward mutated dy")
    assert y.dtype == dx.dtype == np.float32 and dx.shape == x.shape, f"{layer!r}"


@pytest.mark.parametrize("index", range(len(layers_and_inputs())))
def test_a_batch_of_one_equals_the_slice_of_a_larger_batch(index):
    layer, x = layers_and_inputs()[index]
    layer.astype(np.float64)
    dy = np.random.default_rng(11).standard_normal(layer.forward(x).shape)
    full, dx_full = layer.forward(x), layer.backward(dy)
    one, dx_one = layer.forward(x[2:3]), layer.backward(dy[2:3])
    np.testing.assert_allclose(one, full[2:3], rtol=1e-12, atol=1e-14, err_msg=f"{layer!r} forward")
    np.testing.assert_allclose(dx_one, dx_full[2:3], rtol=1e-12, atol=1e-14, err_msg=f"{layer!r} backward")


# ---------------------------------------------------------------- a CNN as a model

def small_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential([Conv2D(1, 4, 3, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 13 * 13, 10, rng=rng)],
                      input_shape=(1, 28, 28))


def test_cnn_summary_and_shapes():
    model = small_cnn()
    assert model.output_shapes() == [(4, 26, 26), (4, 26, 26), (4, 13, 13), (676,), (10,)]
    assert model.num_parameters == 4 * 9 + 4 + 676 * 10 + 10
    assert "Conv2D(in_channels=1, out_channels=4, kernel_size=3" in model.summary()


def test_cnn_save_load_round_trip_gives_identical_predictions(tmp_path):
    model = small_cnn()
    x = np.random.default_rng(12).random((6, 1, 28, 28), dtype=np.float32)
    loaded = load(save(model, tmp_path / "model.safetensors"))
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


# A 1 KB file the auditor wrote: padding 2000 makes 4028x4028 images, whose 64x64 windows at
# stride 1 would be a 240 GiB im2col matrix (mk_pool.py); 5x5 windows, 1.6 GB (mk_pool2.py).
POOL_BOMBS = {"64x64 windows": (64, 3965, "64,394,137,600"), "5x5 windows": (5, 4024, "404,814,400")}


@pytest.mark.parametrize("size,second,work", POOL_BOMBS.values(), ids=POOL_BOMBS.keys())
def test_a_pool_whose_work_matrix_is_too_big_is_refused_at_load(tmp_path, size, second, work):
    from model_file_support import tamper
    from scratchnn.errors import ModelFileError

    layers = [Conv2D(1, 1, 1), MaxPool2D(size, stride=1), MaxPool2D(second), Flatten(), Dense(1, 10)]
    path = save(Sequential([Conv2D(1, 1, 1), Flatten(), Dense(784, 10)], input_shape=(1, 28, 28)),
                tmp_path / "model.safetensors")

    def swap_layers(metadata):
        metadata["architecture"]["layers"] = [layer_to_config(layer) for layer in layers]
        metadata["architecture"]["layers"][0]["config"]["padding"] = 2000

    def swap_dense(arrays):
        arrays["4.W"], arrays["4.b"] = np.zeros((1, 10), np.float32), arrays.pop("2.b")
        del arrays["2.W"]

    tamper(path, metadata=swap_layers, tensors=swap_dense)
    message = rf"layer 1 \(MaxPool2D\) would need a work matrix of {work} numbers"
    with pytest.raises(ModelFileError, match=message):
        load(path)
    layers[0] = Conv2D(1, 1, 1, padding=2000)
    with pytest.raises(ShapeError, match=message):  # the same check for a model built in Python
        Sequential(layers, input_shape=(1, 28, 28))


def test_inference_batches_count_a_pools_im2col_matrix():
    # tiling 2x2 windows copy every pixel once; 3x3 windows at stride 1 copy 9 numbers per output
    assert MaxPool2D(2).work_floats((4, 26, 26)) == AvgPool2D(2).work_floats((4, 26, 26)) == 4 * 26 * 26
    assert MaxPool2D(3, stride=1).work_floats((4, 26, 26)) == AvgPool2D(3, stride=1).work_floats((4, 26, 26))
    assert MaxPool2D(3, stride=1).work_floats((4, 26, 26)) == 24 * 24 * 9 * 4
    model = Sequential([MaxPool2D(20, stride=1), Flatten(), Dense(81, 10)], input_shape=(1, 28, 28))
    floats = 9 * 9 * 400 + 2 * 81 + 10  # the windows, the pooled and flattened outputs, the logits
    assert model.inference_batch_size(memory=floats * 4 * 10) == 10


def test_cnn_learns_a_small_batch():
    # Training sanity: 24 random images with random labels are memorised by a tiny CNN.
    from scratchnn.optim import Adam
    from scratchnn.training.fit import fit

    rng = np.random.default_rng(13)
    x = rng.random((24, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 24)
    model = Sequential([Conv2D(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(8 * 4 * 4, 10, rng=rng)], input_shape=(1, 8, 8))
    history = fit(model, Adam(lr=0.01), x, y, epochs=60, batch_size=8, rng=rng, eval_every=60)
    assert len(history) == 1 and (model.predict(x) == y).all(), "24 images were not memorised"


# ---------------------------------------------------------------- PyTorch as an oracle (optional)

@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES)
def test_conv_matches_pytorch(kernel, stride, padding, shape):
    torch = import_oracle("torch")
    rng = np.random.default_rng(14)
    layer = Conv2D(shape[1], 3, kernel, stride, padding, bias_init="glorot_uniform", rng=rng).astype(np.float64)
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, Wt, bt, stride=stride, padding=padding)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, ours, theirs in (("dx", dx, xt.grad), ("dW", layer.grads["W"], Wt.grad), ("db", layer.grads["b"], bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"Conv2D {name}")


@pytest.mark.parametrize("size, stride", [(2, None), (3, 2), (2, 1)])
def test_maxpool_matches_pytorch(size, stride):
    torch = import_oracle("torch")
    x = distinct_values(np.random.default_rng(15), (2, 3, 9, 8))
    pool = MaxPool2D(size, stride)
    y = pool.forward(x)
    dy = np.random.default_rng(16).standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, size, stride)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(pool.backward(dy), xt.grad.numpy(), rtol=1e-12, err_msg="MaxPool2D dx")
