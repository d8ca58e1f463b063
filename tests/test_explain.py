"""explain: a hand-computed walk through a tiny network, the model left untouched, the CLI end to end."""
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from scratchnn import Dense, ReLU, Sequential, SoftmaxCrossEntropy
from scratchnn.cli.main import main
from scratchnn.errors import ShapeError
from scratchnn.insight.explain import format_trace, trace
from scratchnn.insight.explain_figure import explain_figure
from scratchnn.nn import BatchNorm1d, Dropout, Layer, Tanh

LN2 = math.log(2)


def hand_model() -> Sequential:
    """x (2,) -> Dense -> ReLU -> Dense -> 3 logits, weights chosen so every number is exact.

    For x = [1, 2]:  z = x·W1 + b1 = [1, 1, -1];  h = ReLU(z) = [1, 1, 0];  logits = h·W2 + b2 =
    [2, 2 + ln 2, 2];  shifted = [-ln 2, 0, -ln 2];  exp = [½, 1, ½];  sum 2;  p = [¼, ½, ¼].
    Unit 2 is zeroed by ReLU, so its row of 9s in W2 changes nothing.
    """
    first, second = Dense(2, 3, rng=0), Dense(3, 3, rng=0)
    first.params["W"][...] = [[1, -1, 0.5], [0, 1, -1]]
    first.params["b"][...] = [0, 0, 0.5]
    second.params["W"][...] = [[1, 0, 1], [1, 1, 0], [9, 9, 9]]
    second.params["b"][...] = [0, 1 + LN2, 1]
    return Sequential([first, ReLU(), second]).astype(np.float64)


X = np.array([1.0, 2.0])
CLASSES = ["a", "b", "c"]


def test_each_step_has_the_hand_computed_shapes_and_values():
    t = trace(hand_model(), X)
    assert [(s.kind, s.input_shape, s.output_shape) for s in t.steps] == [
        ("Dense", (2,), (3,)), ("ReLU", (3,), (3,)), ("Dense", (3,), (3,))]
    assert [s.role for s in t.steps] == ["pre-activation", "activation", "logits"]
    np.testing.assert_allclose(t.steps[0].output, [1, 1, -1])
    np.testing.assert_allclose(t.steps[1].output, [1, 1, 0])
    np.testing.assert_allclose(t.steps[2].output, [2, 2 + LN2, 2])
    relu = t.steps[1].summary
    assert (relu.min, relu.max, relu.positive, relu.zeros, relu.size) == (0, 1, 2, 1, 3)
    assert relu.mean == pytest.approx(2 / 3)
    assert t.steps[1].top == [(0, 1.0), (1, 1.0), (2, 0.0)]
    assert t.steps[2].top[0] == (1, pytest.approx(2 + LN2))
    assert t.label is None and t.loss is None and t.dlogits is None
    assert all(s.output_grad_norm is None and not s.grad_norms for s in t.steps)


def test_softmax_steps_by_hand():
    sm = trace(hand_model(), X).softmax
    np.testing.assert_allclose(sm.logits, [2, 2 + LN2, 2])
    assert sm.max == pytest.approx(2 + LN2)
    np.testing.assert_allclose(sm.shifted, [-LN2, 0, -LN2], atol=1e-15)
    np.testing.assert_allclose(sm.exp, [0.5, 1, 0.5])
    assert sm.total == pytest.approx(2)
    np.testing.assert_allclose(sm.probs, [0.25, 0.5, 0.25])


def test_softmax_steps_stay_finite_for_huge_logits():
    model = random_model(np.random.default_rng(1))
    for layer in model.layers:
        for param in layer.params.values():
            param *= 1000
    sm = trace(model, np.random.default_rng(2).random(6)).softmax
    assert sm.shifted.max() == 0 and np.abs(sm.logits).max() > 1000
    np.testing.assert_array_equal(sm.exp, np.exp(sm.shifted))
    assert np.isfinite(sm.probs).all() and sm.probs.sum() == pytest.approx(1, abs=1e-12)
    np.testing.assert_allclose(sm.probs, sm.exp / sm.total)


def test_loss_and_gradients_by_hand():
    t = trace(hand_model(), X, label=0)
    assert t.loss == pytest.approx(math.log(4)) and t.neg_log_p == pytest.approx(math.log(4))
    np.testing.assert_allclose(t.dlogits, [-0.75, 0.5, 0.25])
    # dW2 = hᵀ·dlogits has two copies of dlogits; dh = dlogits·W2ᵀ = [-0.5, -0.25, 0] (ReLU passes
    # units 0 and 1); dW1 = xᵀ·dz = [[-0.5, -0.25, 0], [-1, -0.5, 0]].
    first, relu, second = t.steps
    assert second.grad_norms == {"W": pytest.approx(math.sqrt(1.75)), "b": pytest.approx(math.sqrt(0.875))}
    assert first.grad_norms == {"W": pytest.approx(1.25), "b": pytest.approx(math.sqrt(0.3125))}
    assert relu.grad_norms == {}
    assert second.output_grad_norm == pytest.approx(math.sqrt(0.875))
    assert relu.output_grad_norm == pytest.approx(math.sqrt(0.3125))
    assert first.output_grad_norm == pytest.approx(math.sqrt(0.3125))


def random_model(rng, *extra: Layer) -> Sequential:
    """x (6,) -> 3 logits through every kind of flat layer (and ``extra`` (N, 3) -> (N, 3) layers),
    float64, BatchNorm with non-trivial running statistics."""
    norm = BatchNorm1d(5)
    norm.buffers["running_mean"][...] = rng.normal(size=5)
    norm.buffers["running_var"][...] = rng.uniform(0.5, 2, size=5)
    norm.params["gamma"][...] = rng.uniform(0.5, 1.5, size=5)
    layers = [Dense(6, 5, rng=rng), norm, ReLU(), Dropout(0.5), Dense(5, 3, rng=rng), *extra, Tanh(),
              Dense(3, 3, rng=rng)]
    return Sequential(layers, rng=rng).astype(np.float64)


@pytest.mark.parametrize("label", [0, 2])
@pytest.mark.filterwarnings("ignore::scratchnn.errors.InferenceBackward")  # explain's gradients are inference mode's
def test_loss_and_gradient_norms_equal_an_explicit_backward(label):
    rng = np.random.default_rng(label)
    model, x = random_model(rng), rng.normal(size=6)
    t = trace(model, x, label=label)

    loss_fn = SoftmaxCrossEntropy()
    logits = model.forward(x[None], training=False)
    assert t.loss == loss_fn.forward(logits, np.array([label]))
    assert t.neg_log_p == pytest.approx(t.loss, rel=1e-12)
    np.testing.assert_allclose(t.softmax.logits, logits[0])
    model.backward(loss_fn.backward())
    for step, layer in zip(t.steps, model.layers):
        for key, grad in layer.grads.items():
            assert step.grad_norms[key] == pytest.approx(np.linalg.norm(grad), rel=1e-12), f"{step.index}.{key}"


class ReplacesGrads(Layer, register=False):
    """A layer whose backward puts new arrays into its grads dict (as some layers may)."""

    def __init__(self):
        super().__init__()
        self.params = {"s": np.full(3, 2.0)}
        self.grads = {"s": np.zeros(3)}

    def forward(self, x, training=False):
        self._cache = x
        return x * self.params["s"]

    def backward(self, dy, need_dx=True):
        self.grads = {"s": (dy * self._take_cache()).sum(axis=0)}
        return dy * self.params["s"]


def test_trace_leaves_the_model_as_it_was():
    rng = np.random.default_rng(3)
    model = random_model(rng, ReplacesGrads())
    x = rng.normal(size=(4, 6))
    model.forward(x, training=True)  # a training step in progress: caches and grads are live
    model.backward(rng.normal(size=(4, 3)))
    grads = [dict(layer.grads) for layer in model.layers]
    values = [{k: g.copy() for k, g in layer.grads.items()} for layer in model.layers]
    caches = [layer._cache for layer in model.layers]
    state = {k: v.copy() for k, v in model.state_dict().items()}
    rng_state = model.rng.bit_generator.state

    trace(model, x[0], label=1)

    for i, layer in enumerate(model.layers):
        assert layer._cache is caches[i], f"layer {i} cache"
        for key, grad in layer.grads.items():
            assert grad is grads[i][key], f"{i}.{key} grad array replaced"
            np.testing.assert_array_equal(grad, values[i][key], err_msg=f"{i}.{key} grad changed")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
    assert model.rng.bit_generator.state == rng_state


class ReusesBuffer(Layer, register=False):
    """y = x·s, caching x in a work array reused in place while the batch shape stays (as Conv2D does)."""

    def __init__(self):
        super().__init__()
        self.params = {"s": np.array([1.0, -2.0, 0.5])}
        self.grads = {"s": np.zeros(3)}
        self._work = None

    def forward(self, x, training=False):
        if self._work is None or self._work.shape != x.shape:
            self._work = np.empty_like(x)
        np.copyto(self._work, x)
        self._cache = self._work
        return x * self.params["s"]

    def backward(self, dy, need_dx=True):
        self.grads["s"][...] = (dy * self._take_cache()).sum(axis=0)
        return dy * self.params["s"]


@pytest.mark.filterwarnings("ignore::scratchnn.errors.InferenceBackward")  # as a saliency map runs it
def test_a_trace_between_forward_and_backward_changes_nothing():
    rng = np.random.default_rng(4)
    model = random_model(rng, ReusesBuffer())
    x, dy = rng.normal(size=(1, 6)), rng.normal(size=(1, 3))
    model.forward(x)  # evaluation mode, one image: as a saliency map would run it
    model.backward(dy)
    expected = {name: grad.copy() for name, _, grad in model.named_parameters()}
    model.forward(x)
    trace(model, rng.normal(size=6), label=0)  # the same batch shape: a shared work array would be overwritten
    model.backward(dy)
    for name, _, grad in model.named_parameters():
        np.testing.assert_array_equal(grad, expected[name], err_msg=name)


class ToMaps(Layer, register=False):
    """(N, 8) -> (N, 2, 2, 2): stands in for a convolution's feature maps."""

    def forward(self, x, training=False):
        self._cache = x.shape
        return x.reshape(len(x), 2, 2, 2)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._take_cache())

    def output_shape(self, input_shape):
        return (2, 2, 2)


class FromMaps(ToMaps, register=False):
    def forward(self, x, training=False):
        self._cache = x.shape
        return x.reshape(len(x), -1)

    def output_shape(self, input_shape):
        return (8,)


def maps_model() -> Sequential:
    return Sequential([ToMaps(), ReLU(), FromMaps(), Dense(8, 3, rng=0).astype(np.float64)], input_shape=(8,))


def test_feature_maps_are_summarised_per_channel():
    x = np.array([1, -2, 3, 0.5, -1, -4, 6, -2.0])  # channel 0: [1, -2, 3, 0.5]; channel 1: [-1, -4, 6, -2]
    t = trace(maps_model(), x, label=2)
    relu = t.steps[1]
    assert relu.output_shape == (2, 2, 2) and len(relu.channels) == 2
    assert [(c.min, c.max, c.positive) for c in relu.channels] == [(0, 3, 3), (0, 6, 1)]
    assert relu.channels[0].mean == pytest.approx(4.5 / 4)
    assert relu.top == [(1, 6.0), (0, 3.0)]  # channels ranked by their peak
    text = format_trace(t, CLASSES)
    assert "4 of 8 values active" in text and "mean per map: 1.12 1.5" in text
    assert "strongest maps (peak): #1 6, #0 3" in text


def test_format_trace_explains_each_step_in_plain_words():
    text = format_trace(trace(hand_model(), X, label=0), CLASSES)
    assert "ReLU keeps positive values and sets the rest to 0: 2 of 3 units active." in text
    assert "z = x·W + b: each of the 3 outputs weighs all 2 inputs and adds a bias." in text
    assert "  b        2.6931    0.0000     1.0000       50.00%  <- prediction" in text
    assert "  a        2.0000   -0.6931     0.5000       25.00%  <- true label" in text
    assert "  sum                           2.0000      100.00%" in text
    assert "-log p[0] = -log 0.250000 = 1.386294" in text
    assert "log Σ exp(shifted) - shifted[0] = log 2.000000 - (-0.693147) = 1.386294" in text
    assert "∂L/∂logits = p - onehot(0) = [-0.750 +0.500 +0.250]" in text
    assert "Loss for the true label a (wrong: predicted b)" in text
    assert max(len(line) for line in text.splitlines()) <= 110
    without_label = format_trace(trace(hand_model(), X), CLASSES)
    assert "Loss" not in without_label and "Gradient norms" not in without_label
    with pytest.raises(ShapeError, match="2 class names for a model with 3 classes"):
        format_trace(trace(hand_model(), X), CLASSES[:2])


@pytest.mark.parametrize("x, label, message", [
    (np.ones(3), None, r"one sample of shape \(2,\)"),
    (np.ones((2, 2)), None, r"one sample of shape \(2,\)"),
    (np.array([1.0, np.nan]), None, "NaN"),
    (X, 3, "label must be a class index in 0..2, got 3"),
    (X, -1, "label must be a class index in 0..2"),
])
def test_bad_input_is_one_clear_error(x, label, message):
    with pytest.raises(ShapeError, match=message):
        trace(hand_model(), x, label)


def test_figure_has_the_input_probabilities_gradients_and_a_row_per_layer(tmp_path):
    fig = explain_figure(trace(hand_model(), X, label=0), CLASSES)
    assert isinstance(fig, Figure)
    rows = fig.subfigs
    assert len(rows) == 1 + 3
    assert [ax.get_title() for ax in rows[0].axes][:3] == [
        "input (2,)", "softmax: exp(z - max z) / Σ exp", "gradient norm ‖∂L/∂param‖"]
    assert "Layer 1: ReLU" in rows[2]._suptitle.get_text()
    maps = explain_figure(trace(maps_model(), np.arange(8.0)), CLASSES)
    assert len(maps.subfigs[0].axes) == 2  # no label: no gradient panel
    assert sum(ax.get_title() in ("#0", "#1") for ax in maps.subfigs[2].axes) == 2  # the ReLU's two maps
    path = tmp_path / "walk.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_mlps_input_is_drawn_in_the_shape_of_its_images():
    model = Sequential([Dense(6, 3, rng=0)])
    x = np.arange(6, dtype=np.float32) / 8
    drawn = explain_figure(trace(model, x), CLASSES, image_shape=[2, 3]).subfigs[0].axes[0].images[0]
    np.testing.assert_array_equal(drawn.get_array(), x.reshape(2, 3))
    square = explain_figure(trace(Sequential([Dense(4, 3, rng=0)]), np.arange(4.0)), CLASSES)
    assert square.subfigs[0].axes[0].images[0].get_array().shape == (2, 2)  # no shape given: a square one
    assert drawn.get_clim() == (0.0, 1.0)  # the plots audit: auto-contrast drew a faint digit (0..0.6) bold


def test_a_wrong_prediction_says_which_bar_is_the_true_label():
    """The plots audit: the true label's bar was red and the predicted one blue, with no word of which was which."""
    model = Sequential([Dense(4, 3, rng=0)])
    x = np.arange(4.0) / 4
    wrong = next(k for k in range(3) if k != int(model.predict(x[None])[0]))
    bars = explain_figure(trace(model, x, label=wrong), CLASSES).subfigs[0].axes[1]
    assert [t.get_text() for t in bars.get_legend().get_texts()] == ["predicted", "true label"]
    right = explain_figure(trace(model, x, label=int(model.predict(x[None])[0])), CLASSES).subfigs[0].axes[1]
    assert right.get_legend() is None


# --- the command line ------------------------------------------------------------------------
def scratchnn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scratchnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ}, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_dir):
    run = tmp_path_factory.mktemp("explain") / "run"
    result = scratchnn("train", "--hidden", 16, "--epochs", 1, "--batch-size", 64, "--warmup", 0, "--quiet", "--no-report",
                       "--csv", shared_dir / "datasets/mnist/t10k-kaggle.csv.gz", "--out", run)
    assert result.returncode == 0, result.stderr
    return run


def test_cli_explains_an_image_of_the_dev_set(run_dir, tmp_path, capsys):
    from scratchnn.io import load, read_metadata
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run_data import load_set

    png = tmp_path / "x.png"
    result = scratchnn("explain", run_dir, "--index", 3, "--save", png)
    assert result.returncode == 0, result.stderr
    config = TrainConfig.from_dict(read_metadata(run_dir)["config"])
    _, labels, _, _ = load_set(config, "dev", progress=False)
    out = result.stdout
    assert out.startswith("Image 3 of the dev set of csv")
    kinds = [type(layer).__name__ for layer in load(run_dir).layers]  # whatever the default preset holds
    assert re.findall(r"^Layer (\d+) +(\w+) ", out, re.M) == [(str(i), kind) for i, kind in enumerate(kinds)]
    for part in ("ReLU keeps positive values", "Softmax, step by step", "Prediction:",
                 f"Loss for the true label {labels[3]}", "Gradient norms", f"Saved {png}"):
        assert part in out, part
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    wrong = 9 - int(labels[3])
    assert main(["explain", str(run_dir), "--index", "3", "--label", str(wrong)]) == 0
    assert f"Loss for the true label {wrong} (" in capsys.readouterr().out


def test_cli_error_exits_1_with_one_line(run_dir):
    result = scratchnn("explain", run_dir, "--index", 1000)
    assert result.returncode == 1
    assert result.stderr == ("scratchnn explain: error: --index 1000 is out of range: the dev set has "
                             "1,000 images (0..999)\n")


@pytest.mark.parametrize("args, message", [
    (["--index", "0", "--image", "digit.png"], "give exactly one of --index N (an image of the --set) or --image"),
    ([], "give exactly one of --index N (an image of the --set) or --image FILE"),
    (["--index", "0", "--label", "ten"], "--label 'ten' is not a class: give an index 0..9 or a name (0, 1, 2,"),
    (["--index", "-1"], "--index -1 is out of range"),
])
def test_cli_errors_are_one_line(run_dir, capsys, args, message):
    assert main(["explain", str(run_dir), *args]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scratchnn explain: error: {message}"), lines


def test_cli_explains_a_photo(run_dir, tmp_path, capsys):
    from PIL import Image, ImageDraw

    photo = Image.new("L", (240, 320), 235)  # a dark pen "7" on light paper
    ImageDraw.Draw(photo).line([(80, 60), (150, 50), (110, 270)], fill=30, width=18)
    photo.save(tmp_path / "seven.png")
    assert main(["explain", str(run_dir), "--image", str(tmp_path / "seven.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Image {tmp_path / 'seven.png'} as the model sees it:")
    assert "█" in out or "#" in out  # the digit, drawn
    assert "Softmax, step by step" in out and "Loss" not in out  # no label: nothing to compare with
    assert main(["explain", str(run_dir), "--image", str(tmp_path / "seven.png"), "--label", "7"]) == 0
    assert "Loss for the true label 7 (" in capsys.readouterr().out

    (tmp_path / "note.png").write_text("not an image")
    assert main(["explain", str(run_dir), "--image", str(tmp_path / "note.png")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratchnn explain: error: "), lines
