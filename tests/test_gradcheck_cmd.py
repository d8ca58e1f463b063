"""`scratchnn gradcheck` must fail, and name the layer, when a backward pass is wrong.

The pass path is in test_cli.py; here a backward is broken in-process and the command is run
through its entry point, as ``scratchnn gradcheck`` runs it.
"""
import pytest

from scratchnn import gradcheck
from scratchnn.cli.main import main
from scratchnn.nn.batchnorm import BatchNorm2d
from scratchnn.nn.pool import MaxPool2D
from scratchnn.nn.dense import Dense


def off_by(factor, backward, grad=None):
    """``backward`` with its result (grad=None) or one parameter gradient scaled by ``factor``."""
    def wrong(self, dy, *args, **kwargs):
        dx = backward(self, dy, *args, **kwargs)
        if grad is None:
            return None if dx is None else dx * factor
        self.grads[grad] *= factor
        return dx
    return wrong


@pytest.mark.parametrize("layer, grad, named", [
    (Dense, "W", "Dense"),        # dW 0.1% too large: relative error ~5e-4
    (MaxPool2D, None, "MaxPool2D"),  # dx 0.1% too large
    (BatchNorm2d, "gamma", "BatchNorm2d"),  # dγ 0.1% too large (BatchNorm1d shares the math, not this method)
])
def test_a_wrong_backward_fails_and_names_the_layer(monkeypatch, capsys, layer, grad, named):
    monkeypatch.setattr(layer, "backward", off_by(1.001, layer.backward, grad))
    assert main(["gradcheck"]) == 1, "gradcheck passed with a backward pass that is 0.1% off"
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.endswith("FAIL")]
    assert failed and all(line.startswith((named, "Sequential")) for line in failed), out
    assert any(line.startswith(named) and f" d{grad or 'x'} " in line for line in failed), out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("FAILED: ") and named in summary, summary


def test_the_tolerance_is_tight_enough_for_float64_central_differences():
    # central differences in float64 with h = 1e-5 agree with a right backward to ~1e-9; a
    # tolerance far above that lets a slightly wrong backward through
    assert gradcheck.TOLERANCE <= 1e-6
    errors = [c.error for c in gradcheck.check_everything(seed=1)]
    assert max(errors) < gradcheck.TOLERANCE / 10, max(errors)


@pytest.mark.parametrize("seed", [2, 129])
def test_every_seed_gives_inputs_a_right_backward_passes_on(seed):
    # seed 2 drew a ReLU input 6e-6 from its kink (error 0.14), seed 129 a unit on for one sample
    # of the six batch norm normalises (error 1.1e-7): the model checks now draw around both
    errors = {f"{c.what} {c.wrt}": c.error for c in gradcheck.check_everything(seed=seed)}
    assert max(errors.values()) < gradcheck.TOLERANCE / 10, errors


def test_layers_that_compute_otherwise_in_inference_are_checked_in_both_modes():
    checked = {c.what.split(" (")[0] for c in gradcheck.check_everything() if c.what.endswith("(inference)")}
    assert checked == {"BatchNorm1d", "BatchNorm2d", "Dropout"}, checked


def test_an_inference_only_mistake_fails(monkeypatch):
    """Batch norm's inference backward with the batch's σ instead of the running one: the
    training rows pass, the inference rows must not."""
    original = BatchNorm2d.backward

    def wrong(self, dy, *args, **kwargs):
        training = self._cache[2]
        dx = original(self, dy, *args, **kwargs)
        return dx if training else dx * 1.01

    monkeypatch.setattr(BatchNorm2d, "backward", wrong)
    failed = {c.what for c in gradcheck.check_everything() if not c.ok}
    assert failed and all(what.startswith("BatchNorm2d") and what.endswith("(inference)") for what in failed), failed


def test_a_flatten_that_forgets_a_convolutions_memory_order_fails(monkeypatch, capsys):
    """The gradient audit: Flatten's pixel-major branch (every CNN's) never ran in gradcheck, so
    a backward that ignored it passed 62 of 62."""
    from scratchnn.nn.flatten import Flatten
    from scratchnn.nn.im2col import from_pixel_major

    def read_as_stored(self, dy, need_dx=True):  # dy's numbers taken in the input's memory order
        (n, c, h, w), was_pixel_major = self._take_cache()
        return from_pixel_major(dy.reshape(h, w, n, c)) if was_pixel_major else dy.reshape(n, c, h, w)

    monkeypatch.setattr(Flatten, "backward", read_as_stored)
    assert main(["gradcheck"]) == 1
    assert "FAILED: Flatten (3, 2, 3, 4)" in capsys.readouterr().out


def test_a_convolution_that_mixes_up_height_and_width_fails(monkeypatch, capsys):
    """The gradient audit: col2im cropping the padding with its height's on both sides passed every
    check, whose convolutions all had square padding."""
    import numpy as np

    from scratchnn.nn import conv
    from scratchnn.nn.im2col import as_pair, conv_output_shape, from_pixel_major

    def cropped_alike(cols, input_shape, kernel_size, stride=1, padding=0):  # im2col.col2im, but for its last line
        n, c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = as_pair(kernel_size, "k"), as_pair(stride, "s"), as_pair(padding, "p", 0)
        oh, ow = conv_output_shape(h, w, (kh, kw), (sh, sw), (ph, pw))
        blocks = cols.reshape(oh, ow, n, kh, kw, c)
        dx = np.zeros((h + 2 * ph, w + 2 * pw, n, c), cols.dtype)
        for i in range(kh):
            for j in range(kw):
                dx[i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += blocks[:, :, :, i, j]
        return from_pixel_major(dx[ph:ph + h, ph:ph + w])  # the height's padding cropped from the width

    monkeypatch.setattr(conv, "col2im", cropped_alike)
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: Conv2D im2col (2, 2, 6, 5)" in out, out


def test_a_pool_of_a_window_wider_than_tall_is_checked():
    cases = [layer for layer, _ in gradcheck.standard_cases(__import__("numpy").random.default_rng(0))]
    assert any(isinstance(layer, MaxPool2D) and layer.size[0] != layer.size[1] for layer in cases)
    assert any(isinstance(layer, MaxPool2D) and layer.stride[0] != layer.stride[1] for layer in cases)


def test_a_bias_right_before_batch_norm_passes_check_model_as_a_zero_gradient():
    """The gradient audit: its true gradient is 0 (batch norm removes any shift), so analytic 1e-17
    against the differences' rounding of 1e-11 had a relative error of 1: FAIL on a right network,
    as the mlp preset's is. A wrong gradient there still fails."""
    import numpy as np

    from scratchnn import Sequential, SoftmaxCrossEntropy
    from scratchnn.nn import BatchNorm1d, ReLU

    rng = np.random.default_rng(0)
    model = Sequential([Dense(8, 6, rng=rng), BatchNorm1d(6), ReLU(), Dense(6, 10, rng=rng)])
    x, labels = rng.standard_normal((6, 8)), rng.integers(0, 10, 6)
    checks = {c.wrt: c for c in gradcheck.check_model(model, SoftmaxCrossEntropy(), x, labels, training=True)}
    assert checks["0.b"].error > 0.1 and checks["0.b"].ok and checks["0.b"].at_rounding, checks["0.b"]
    assert all(c.ok and c.error < gradcheck.TOLERANCE for name, c in checks.items() if name != "0.b")
    original = Dense.backward

    def biased(self, dy, need_dx=True):
        dx = original(self, dy, need_dx)
        self.grads["b"] += 1e-4  # a wrong bias gradient, small against the rest
        return dx

    Dense.backward = biased
    try:
        wrong = {c.wrt: c for c in gradcheck.check_model(model, SoftmaxCrossEntropy(), x, labels, training=True)}
    finally:
        Dense.backward = original
    assert not wrong["0.b"].ok and not wrong["3.b"].ok
