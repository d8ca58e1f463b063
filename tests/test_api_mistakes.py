"""Plausible mistakes of a learner using the Python API (from an audit), each a clear one-line
error naming the fix, or the behaviour the docs promise."""
import re
import warnings

import numpy as np
import pytest

import scratchnn
from scratchnn import Dense, ReLU, Sequential
from scratchnn.data import load_csv
from scratchnn.ensemble import Ensemble, load_ensemble
from scratchnn.errors import ConfigError, InferenceBackward, ModelFileError, ShapeError
from scratchnn.io import load, save
from scratchnn.metrics import accuracy, confusion_matrix
from scratchnn.nn import BatchNorm1d, Dropout
from scratchnn.nn.base import Layer
from scratchnn.nn.losses import SoftmaxCrossEntropy
from scratchnn.optim import SGD, Adam
from scratchnn.training.early_stopping import EarlyStopping
from scratchnn.training.fit import evaluate, fit
from scratchnn.tune.lr_find import lr_find


def mlp(seed=0):
    return Sequential([Dense(784, 32, rng=seed), ReLU(), Dense(32, 10, rng=seed + 1)])


@pytest.fixture(scope="module")
def digits(shared_dir):
    data = load_csv(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz")
    return data.x_train[:2000], data.y_train[:2000], data.x_dev[:500], data.y_dev[:500]


def test_fit_shuffles_by_default_and_takes_a_seed(digits):
    """Digits stored class by class: in the data's order every batch is one class and the network
    ends up answering the last one; fit's default shuffles (with rng=None it once did not)."""
    x, y, x_dev, y_dev = digits
    order = np.argsort(y, kind="stable")
    shuffled, in_order = mlp(), mlp()
    fit(shuffled, SGD(0.1), x[order], y[order], epochs=2, batch_size=50, rng=0)
    fit(in_order, SGD(0.1), x[order], y[order], epochs=2, batch_size=50, shuffle=False)
    assert accuracy(shuffled.predict(x_dev), y_dev) > 0.7
    assert np.bincount(in_order.predict(x_dev), minlength=10).max() > 0.5 * len(x_dev)  # mostly the last class
    again = mlp()
    fit(again, SGD(0.1), x[order], y[order], epochs=2, batch_size=50, rng=0)  # a seed repeats exactly
    assert all(np.array_equal(a, b) for (_, a, _), (_, b, _) in zip(again.named_parameters(),
                                                                     shuffled.named_parameters()))


def test_a_dev_or_test_set_left_unscaled_beside_scaled_training_data_is_refused(digits):
    """The habits audit: x_train / 255 but x_test.astype("float32"), Keras's habit: the dev loss
    read 49 and a batch-normed model's dev accuracy 0.52 for 0.79, where predict refused the array."""
    x, y, x_dev, y_dev = digits
    raw_dev = np.round(x_dev * 255).astype(np.float32)
    refused = r"the (dev|evaluation) data is float32 with values up to 255, raw pixels 0\.\.255 by the look of it"
    with pytest.raises(ShapeError, match=refused):
        fit(mlp(), SGD(0.1), x, y, epochs=1, batch_size=50, x_dev=raw_dev, y_dev=y_dev)
    with pytest.raises(ShapeError, match=refused):
        evaluate(mlp(), raw_dev, y_dev)
    raw = np.round(x * 255).astype(np.float32)  # both unscaled (the lab's fault): training takes it, the doctor
    with np.errstate(all="ignore"):                        # names it
        try:
            fit(mlp(), SGD(1e-4), raw, y, epochs=1, batch_size=50, x_dev=raw_dev, y_dev=y_dev)
        except scratchnn.errors.TrainingDiverged:
            pass


def test_raw_uint8_pixels_are_refused_with_the_fix(digits):
    x, y, _, _ = digits
    raw = np.round(x * 255).astype(np.uint8)
    for call in (lambda: fit(mlp(), SGD(0.1), raw, y, epochs=1, batch_size=50), lambda: evaluate(mlp(), raw, y),
                 lambda: mlp().predict(raw), lambda: mlp().predict_proba(raw[0]),
                 lambda: lr_find(mlp(), SGD(0.1), raw, y, steps=10)):
        with pytest.raises(ShapeError, match=r"uint8 with values up to 255, raw pixels 0\.\.255 by the look of it; "
                                             r"scale it to 0\.\.1 first: x / 255, or from scratchnn\.data "
                                             r"import scale_pixels; scale_pixels\(x, model\.input_shape\)$"):
            call()


def test_pixels_0_to_255_of_other_dtypes_are_refused_where_a_model_predicts(digits):
    """The engineer's audit: int64 (what pandas reads from a CSV) and floats of 0..255 went through
    predict silently, a CNN 99% sure of wrong answers."""
    x, y, _, _ = digits
    for raw in (np.round(x * 255).astype(np.int64), np.round(x * 255).astype(np.float32)):
        with pytest.raises(ShapeError, match=rf"is {raw.dtype} with values up to 255, raw pixels 0\.\.255"):
            mlp().predict(raw)
    with pytest.raises(ShapeError, match="is int64 with values up to 255"):
        fit(mlp(), SGD(0.1), np.round(x * 255).astype(np.int64), y, epochs=1, batch_size=50)
    fit(mlp(), SGD(1e-6), x * 255, y, epochs=1, batch_size=50)  # floats: the lab's unscaled inputs, for the doctor
    blurred = (raw + np.roll(raw, 1, axis=1)) / 2  # 0..255 as floats, halves too (the API audit: 0.57 at 99.9%)
    with pytest.raises(ShapeError, match="raw pixels 0..255"):
        mlp().predict(blurred)
    mlp().predict((x - 0.13) / 0.31)  # standardised inputs (below 0) are not pixels
    mlp().predict(x * 1.5)  # nor values a little above 1
    mlp().predict(np.round(x).astype(np.int64))  # 0s and 1s: a binary image
    sixteen_bits = np.round(x * 65535).astype(np.uint16)  # the API fuzz audit: past 255, nothing was caught
    for call in (lambda: mlp().predict(sixteen_bits), lambda: mlp().predict(sixteen_bits.astype(np.int32)),
                 lambda: fit(mlp(), SGD(0.1), sixteen_bits, y, epochs=1, batch_size=50)):
        with pytest.raises(ShapeError, match=r"values up to 65535, unscaled pixels .*: x / 65535 for 16 bits$"):
            call()
    with pytest.raises(ShapeError, match=r"up to 262\.5, unscaled .*: x / 255 for 8-bit pixels \(a resize may "
                                         r"overshoot 255: clip after\), x / 65535 for 16 bits$"):
        mlp().predict(np.full((2, 784), 262.5, np.float32))  # the review: no 16-bit image; the numerics audit: refused
    assert mlp().predict(np.zeros((0, 784), np.uint8)).shape == (0,)  # nothing to look at: no x.max() of nothing


def test_fit_says_how_images_and_labels_in_another_form_become_what_it_takes(digits):
    """The API audit: each of these named the problem and not the fix; swapped x and y were called
    raw pixels 0..255 (labels up to 9)."""
    x, y, _, _ = digits
    x, y = x[:200], y[:200]
    whole = y.astype(float)
    for images, labels, words in (
            (x.reshape(-1, 28, 28), y, r"model expects \(784,\): 200 image\(s\) of 784 pixels, not flattened; "
                                       r"flatten with x.reshape\(-1, 784\)$"),
            (x, np.eye(10)[y], r"got shape \(200, 10\): one-hot rows, a column per class, by the look of it; "
                               r"pass labels.argmax\(1\)$"),
            (x, np.eye(10)[y].T, r"one-hot columns \(C, N\), as the tutorial's one_hot_Y; pass labels.argmax\(0\)$"),
            (x, y[:, None], r"a column \(or row\) of labels; pass labels.ravel\(\)$"),
            (x, y.astype(str), r"got dtype <U\d+; digits read as text: labels.astype\(int\)$"),
            (x, np.array(["cat", "dog"] * 100), r"names, not class indices: number them: classes, labels = "
                                                r"np.unique\(labels, return_inverse=True\)$"),
            (x, whole, r"got dtype float64; whole numbers stored as floats: labels.astype\(int\)$"),
            (x, whole + 0.5, r"; \d\.5 is no class index: a label is the whole number of an image's class$"),
            (x, np.where(y == 0, np.nan, whole), r"; \d+ of them NaN or infinite: every image needs its class$"),
            (x, y + 1, r"labels must lie in 0..9, got 1..10; numbered from 1 by the look of it: labels - 1$"),
            (x, np.where(y == 9, 12, y + 1), r"labels must lie in 0..9, got 1..12$"),  # - 1 would not do
            (y, x, r"the training data has shape \(200,\) and its labels \(200, 784\): swapped, by the look of it; "
                   r"give the images first, then the labels$")):
        with pytest.raises(ShapeError, match=words):
            fit(mlp(), SGD(0.1), images, labels, epochs=1, batch_size=50)
    with pytest.raises(ShapeError, match=r"labels.astype\(int\)$"):
        evaluate(mlp(), x, whole)


def test_float16_images_train_and_predict_without_a_stray_warning(digits):
    """The API audit: float16 pixels printed 'RuntimeWarning: overflow encountered in cast' from
    the check for values beyond float32's range (float16's max compared with float32's, in float16)."""
    x, y, _, _ = digits
    half = x[:200].astype(np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(mlp(), SGD(0.1), half, y[:200], epochs=1, batch_size=50, x_dev=half[:50], y_dev=y[:50])
        assert np.array_equal(mlp().predict(half), mlp().predict(half.astype(np.float32)))
    with pytest.raises(ShapeError, match="beyond float32's range"):  # what the check is for: still caught
        mlp().predict(np.full((1, 784), 1e39))


def test_fit_names_a_dev_set_without_labels(digits):
    x, y, x_dev, _ = digits
    with pytest.raises(ShapeError, match="give x_dev and y_dev together"):
        fit(mlp(), SGD(0.1), x, y, epochs=1, x_dev=x_dev)


def test_a_model_whose_layers_do_not_chain_is_refused_when_built():
    """It could be saved, and never loaded back."""
    with pytest.raises(ShapeError, match=r"layer 2 \(Dense\) takes \(64,\) features but the layer before gives "
                                         r"\(32,\); make each layer take what the one before gives"):
        Sequential([Dense(784, 32), ReLU(), Dense(64, 10)])
    with pytest.raises(ShapeError, match=r"layer 0 \(Dense\) takes \(100,\) features but the input gives \(784,\); "
                                         r"give input_shape what the data is"):  # no layer before the first
        Sequential([Dense(100, 10)], input_shape=(784,))

    class Halve(Layer, register=False):  # a learner's own layer, changing the shape its own way: not checked
        def forward(self, x, training=False):
            return x[:, ::2]

        def backward(self, dy, need_dx=True):
            return np.repeat(dy, 2, axis=1)

    assert Sequential([Dense(784, 32), Halve(), Dense(16, 10)]).num_classes == 10


def test_optimizer_misuse_says_how_it_is_used():
    model = mlp()
    for call in (lambda: Adam(model), lambda: SGD("0.1"), lambda: SGD(model.named_parameters())):
        with pytest.raises(ConfigError, match="the first argument is the learning rate, a number such as 0.1"):
            call()
    for wrong in (model.state_dict(), model.named_parameters):
        with pytest.raises(ConfigError, match=r"opt.step\(model.named_parameters\(\)\)"):
            SGD(0.1).step(wrong)


def test_one_path_makes_an_ensemble_and_file_names_point_to_load_ensemble(tmp_path):
    for seed in (0, 1):
        (tmp_path / "trio" / f"seed-{seed}").mkdir(parents=True)
        save(mlp(seed), tmp_path / "trio" / f"seed-{seed}" / "model.safetensors")
    assert len(load_ensemble(str(tmp_path / "trio")).members) == 2  # it read the string letter by letter
    assert len(load_ensemble(tmp_path / "trio" / "seed-0").members) == 1
    with pytest.raises(ConfigError, match=r"Ensemble takes models; for files or run folders use load_ensemble"):
        Ensemble([str(tmp_path / "trio" / "seed-0" / "model.safetensors")])


def test_subpackages_load_when_named_and_accuracy_checks_its_shapes():
    assert scratchnn.doctor.HealthLog and scratchnn.ensemble.Ensemble and scratchnn.optim.SGD
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scratchnn.nope
    with pytest.raises(ShapeError, match=r"pass probs.argmax\(axis=1\)"):
        accuracy(np.zeros((4, 10)), np.zeros(4, int))
    with pytest.raises(ShapeError, match=r"got \(4,\) and \(4, 1\)"):
        accuracy(np.zeros(4, int), np.zeros((4, 1), int))  # it once broadcast to 4x4 and returned a number
    assert np.isnan(accuracy(np.zeros(0, int), np.zeros(0, int)))  # no examples: as evaluate says, not 0.0


def test_images_in_another_layout_get_the_reshape_that_fits():
    from scratchnn import Conv2D, Flatten, MaxPool2D

    mlp_model = mlp()
    cnn = Sequential([Conv2D(1, 4, 3, padding=1, rng=0), MaxPool2D(2), Flatten(), Dense(4 * 14 * 14, 10, rng=0)],
                     input_shape=(1, 28, 28))
    for model, x, hint in [(mlp_model, np.zeros((3, 28, 28)), r"3 image\(s\) of 784 pixels, not flattened; flatten "
                                                             r"with x.reshape\(-1, 784\)"),
                           (mlp_model, np.zeros((28, 28)), r"1 image\(s\) of 784 pixels"),
                           (cnn, np.zeros((3, 28, 28)), r"got an array of shape \(3, 28, 28\): 3 image\(s\) of 28x28 "
                                                        r"without "
                                                        r"their channel axis; add it with x.reshape\(-1, 1, 28, 28\)"),
                           (cnn, np.zeros((3, 784)), r"3 image\(s\) flattened; a CNN takes \(N, 1, 28, 28\): "
                                                     r"x.reshape\(-1, 1, 28, 28\)"),
                           (cnn, np.zeros((3, 28, 28, 1)), r"3 image\(s\) channels last; a CNN takes \(N, 1, 28, 28\): "
                                                           r"x.transpose\(0, 3, 1, 2\)")]:
        with pytest.raises(ShapeError, match=hint):
            model.predict(x)
    with pytest.raises(ShapeError, match=r"expects samples of shape \(784,\), got an array of shape \(3, 10\)$"):
        mlp_model.predict(np.zeros((3, 10)))  # nothing to suggest
    with pytest.raises(ShapeError, match=r"got an array of shape \(784, 10\): 10 sample\(s\) in columns, as the "
                                         r"tutorial's X; scratchnn "
                                         r"takes the batch first, x.T"):
        mlp_model.predict(np.zeros((784, 10)))


def test_the_range_test_plots_itself_like_history(digits):
    x, y, _, _ = digits
    result = lr_find(mlp(), SGD(0.1), x, y, steps=20, rng=0)
    figure = result.plot()
    assert len(figure.axes) == 1 and figure.axes[0].get_xscale() == "log"


def test_an_ensemble_built_in_python_can_be_told_its_views():
    """Fashion-MNIST models built in Python carry no training record: views= says mirrors."""
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    ensemble = Ensemble([mlp(0), mlp(10)])
    expected = np.mean([m.predict_proba(x, tta=3, views="clothes").astype(np.float64) for m in (mlp(0), mlp(10))],
                       axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(x, tta=3, views="clothes"), expected, atol=1e-6)
    assert np.array_equal(ensemble.predict(x, tta=3, views="clothes"), expected.argmax(axis=1))
    with pytest.raises(ConfigError, match="views must be one of"):
        ensemble.predict(x, tta=3, views="shirts")


def test_check_model_can_check_the_training_passes():
    """A learner's dropout that forgets the 1/(1-p) scale in its training backward passed the
    end-to-end check, which ran in inference mode only."""
    from scratchnn.gradcheck import check_model
    from scratchnn.nn import Dropout, SoftmaxCrossEntropy

    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((6, 8)), rng.integers(0, 10, 6)

    class Unscaled(Dropout, register=False):
        def backward(self, dy, need_dx=True):
            training = not isinstance(self._cache, str)  # an eval-mode forward caches "identity"
            return super().backward(dy, need_dx) * ((1 - self.p) if training else 1)  # forgot the 1/(1-p)

    def model(drop):
        return Sequential([Dense(8, 6, rng=1), ReLU(), drop, Dense(6, 10, rng=2)], rng=3)

    assert all(c.error < 1e-6 for c in check_model(model(Dropout(0.5)), SoftmaxCrossEntropy(), x, labels,
                                                   training=True))
    assert max(c.error for c in check_model(model(Unscaled(0.5)), SoftmaxCrossEntropy(), x, labels,
                                            training=True)) > 0.1
    assert all(c.error < 1e-6 for c in check_model(model(Unscaled(0.5)), SoftmaxCrossEntropy(), x, labels))


def test_a_batch_size_that_is_no_number_of_rows_is_refused(digits):
    x = digits[0][:5]
    for wrong in (-1, 0, 2.5, "8"):
        with pytest.raises(ShapeError, match="batch_size must be a whole number above 0"):
            mlp().predict(x, batch_size=wrong)


def test_one_layer_object_in_two_places_is_refused():
    """[Dense(64, 64), ReLU()] * 3 repeats one Dense: its gradient was overwritten by its other uses
    (gradient check off by 0.4-0.7) while fit trained on without a word (the API audit)."""
    with pytest.raises(ShapeError, match=r"layers 2 and 4 are the same Dense object: .*not \[\.\.\.\] \* n"):
        Sequential([Dense(784, 64), ReLU()] + [Dense(64, 64), ReLU()] * 2 + [Dense(64, 10)])
    with pytest.raises(ShapeError, match=r"layer 1 is the class ReLU, not a layer"):
        Sequential([Dense(784, 32), ReLU, Dense(32, 10)])
    with pytest.raises(ShapeError, match="layer 0 is a str"):
        Sequential(["Dense"])
    with pytest.raises(ConfigError, match=r"Dense in_features \(the inputs\) must be a whole number from 1 to"):
        Dense(0, 10)
    # the API fuzz audit: 2.5 made 2 units, '784' and True were taken, 10**12 was a 2.8 PiB MemoryError
    for bad in (2.5, "784", True, 10**12):
        with pytest.raises(ConfigError, match=r"Dense out_features \(the units\) must be a whole number"):
            Dense(784, bad)
    assert Sequential([Dense(784, 10)], input_shape=784).input_shape == (784,)


def test_a_learners_layer_named_like_ours_does_not_change_what_loading_builds(tmp_path):
    """Notebook 02's exercise subclasses Dense with a bug: the class took the name 'Dense' over, and
    every model file loaded afterwards got the buggy backward pass (the API audit)."""
    class Dense(scratchnn.Dense):  # noqa: F811  a learner's, named like ours on purpose
        pass

    path = save(mlp(), tmp_path / "m.safetensors")
    assert type(load(path).layers[0]) is scratchnn.Dense

    class LearnersOwnLayer(ReLU):  # a new name still registers, so a model with it loads
        pass

    again = load(save(Sequential([scratchnn.Dense(784, 10), LearnersOwnLayer()]), tmp_path / "own.safetensors"))
    assert type(again.layers[1]) is LearnersOwnLayer


def test_early_stopping_without_a_dev_set_is_refused(digits):
    """It stopped after `patience` epochs with nothing to watch, restoring nothing (the API audit)."""
    x, y, _, _ = digits
    with pytest.raises(ConfigError, match="early stopping watches the dev set: give x_dev and y_dev"):
        fit(mlp(), SGD(0.1), x, y, epochs=10, batch_size=64, early_stopping=EarlyStopping(patience=2))


def test_fit_takes_lists_and_names_slips_of_its_own_arguments(digits):
    x, y, x_dev, y_dev = digits
    model = mlp()
    fit(model, SGD(0.1), x[:200].tolist(), [int(v) for v in y[:200]], epochs=1, batch_size=50,
        x_dev=x_dev[:50].tolist(), y_dev=[int(v) for v in y_dev[:50]])
    with pytest.raises(ConfigError, match=r"fit needs an optimizer object, got SGD: e\.g\. SGD\(0\.1\), not SGD"):
        fit(mlp(), SGD, x, y, epochs=1, batch_size=50)
    for wrong in (0, -1, 1.5):
        with pytest.raises(ConfigError, match="eval_every is a whole number from 1 to 1,000,000"):
            fit(mlp(), SGD(0.1), x, y, epochs=1, batch_size=50, eval_every=wrong)
    # the API fuzz audit: epochs=-1 returned [] without a word, start_epoch=-3 trained epochs -2 to 2,
    # epochs=10**9 ran on and on, batch_size='2' was a TypeError deep inside
    for arguments, words in ((dict(epochs=-1), "epochs is a whole number from 1 to 1,000,000, got -1"),
                             (dict(epochs=2, start_epoch=-3), "start_epoch is a whole number from 0"),
                             (dict(epochs=2, start_epoch=5), "start_epoch 5 is past epochs 2"),
                             (dict(epochs=10**9), "epochs is a whole number from 1 to 1,000,000"),
                             (dict(epochs=1, batch_size="2"), r"batch_size is a whole number >= 0 \(0 or None")):
        with pytest.raises(ConfigError, match=words):
            fit(mlp(), SGD(0.1), x, y, **arguments)


def test_evaluate_checks_what_it_is_given(digits):
    """The API fuzz audit: batch_size=-1 gave (0.0, 0.0) for a model of 0.73, and NaN inputs a NaN loss."""
    from scratchnn.training.fit import evaluate

    x, y, _, _ = digits
    model = mlp()
    with pytest.raises(ConfigError, match=r"batch_size is a whole number >= 1 \(or None\), got -1"):
        evaluate(model, x[:100], y[:100], batch_size=-1)
    bad = x[:100].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ShapeError, match="evaluation data contains 1 NaN or infinite value"):
        evaluate(model, bad, y[:100])
    assert evaluate(model, x[:100].tolist(), [int(v) for v in y[:100]]) == evaluate(model, x[:100], y[:100])


def test_a_missing_model_or_optimizer_and_a_seed_that_is_none_are_named(digits):
    """The API fuzz audit: evaluate(None, ...) and lr_find(None, ...) were AttributeErrors about
    input_shape, lr_find(model, SGD) one about lr, and rng='x' NumPy's TypeError about entropy."""
    x, y, _, _ = digits
    with pytest.raises(ConfigError, match="^evaluate takes a Sequential model, got NoneType$"):
        evaluate(None, x[:10], y[:10])
    with pytest.raises(ConfigError, match="^lr_find takes a Sequential model, got NoneType$"):
        lr_find(None, SGD(0.1), x, y)
    with pytest.raises(ConfigError, match=r"^lr_find needs an optimizer object, got SGD: e\.g\. SGD\(0\.1\)"):
        lr_find(mlp(), SGD, x, y)
    for make in (lambda: Dense(784, 10, rng="x"), lambda: Sequential([Dense(784, 10)], rng=-1),
                 lambda: Dropout(0.5, rng=2.5), lambda: fit(mlp(), SGD(0.1), x, y, epochs=1, rng="x"),
                 lambda: lr_find(mlp(), SGD(0.1), x, y, rng="x")):
        with pytest.raises(ConfigError, match=r"^rng must be a seed \(a whole number >= 0\), a numpy Generator"):
            make()
    with pytest.raises(ConfigError, match="^augment_rng must be a seed"):
        fit(mlp(), SGD(0.1), x, y, epochs=1, augment=lambda images, rng: images, augment_rng="x")
    assert (Dense(3, 2, rng=np.random.default_rng(1)).params["W"] == Dense(3, 2, rng=1).params["W"]).all()


def test_a_figures_dpi_and_a_gradient_checks_step_are_checked():
    """The API fuzz audit: figure_png(fig, dpi=0) was matplotlib's ZeroDivisionError and
    check_layer(..., h=0) divided by zero."""
    from matplotlib.figure import Figure

    from scratchnn.gradcheck import check_layer
    from scratchnn.plots.common import figure_png

    for dpi in (0, -5, 10**6, "120", True):
        with pytest.raises(ConfigError, match="^dpi must be a number from 1 to 1200, got "):
            figure_png(Figure(), dpi=dpi)
    assert figure_png(Figure(figsize=(1, 1)), dpi=20).startswith(b"\x89PNG")
    assert figure_png(Figure(figsize=(1, 1)), dpi=np.int64(20)).startswith(b"\x89PNG")  # the review: a NumPy number
    for h in (0, -1e-5, float("nan"), "1e-5"):
        with pytest.raises(ConfigError, match=r"^h \(the finite-difference step, e\.g\. 1e-5\) must be > 0"):
            check_layer(Dense(3, 2, rng=0), np.ones((2, 3)), np.random.default_rng(0), h=h)


def test_complex_or_text_inputs_are_refused_everywhere_a_model_reads_them(digits):
    """The API fuzz audit: predict_proba(x + 5j) cast away the imaginary part with a ComplexWarning
    and answered; fit and evaluate had no dtype check at all."""
    from scratchnn.insight.explain import trace

    x, y, _, _ = digits
    model = mlp()
    for bad in (x[:4] + 5j, x[:4].astype(str)):
        for call in (lambda: model.predict_proba(bad), lambda: evaluate(model, bad, y[:4]),
                     lambda: fit(mlp(), SGD(0.1), bad, y[:4], epochs=1), lambda: trace(model, bad[0]),
                     lambda: lr_find(mlp(), SGD(0.1), bad, y[:4])):
            message = rf"must be real numbers \(pixels scaled to 0\.\.1\), got dtype {bad.dtype}$"
            with pytest.raises(ShapeError, match=message):
                call()
    assert model.predict_proba(x[:4] > 0.5).shape == (4, 10)  # a bool image is real: 0 and 1


def test_state_dict_is_a_snapshot_that_load_state_dict_brings_back(digits):
    """A state_dict taken after one fit followed the next one (live arrays), one taken before did
    not (fit packs the parameters): now both are copies (the API audit)."""
    x, y, _, _ = digits
    model = mlp()
    fit(model, SGD(0.1), x, y, epochs=1, batch_size=50, rng=0)
    best = model.state_dict()
    before = {name: array.copy() for name, array in best.items()}
    fit(model, SGD(0.1), x, y, epochs=1, batch_size=50, rng=1)
    assert all(np.array_equal(best[name], before[name]) for name in best)
    assert not np.array_equal(model.state_dict()["0.W"], best["0.W"])
    model.load_state_dict(best)
    assert all(np.array_equal(model.state_dict()[name], before[name]) for name in best)


def test_save_refuses_metadata_it_could_not_read_back(tmp_path):
    """The API audit: deep or huge metadata saved, then load called the file corrupted; an
    'architecture' key replaced the real one and 'sha256' vanished."""
    path = tmp_path / "m.safetensors"
    deep: list = [1]
    for _ in range(17):
        deep = [deep]
    for metadata, message in (({"notes": deep}, "nests 18 levels deep; a model file holds at most 16"),
                              ({"notes": "x" * 9_000_000}, "header holds at most 8,388,608"),
                              ({"architecture": {}}, "'architecture' is the file's own"),
                              ({"sha256": "x"}, "'sha256' is the file's own")):
        with pytest.raises(ModelFileError, match=message):
            save(mlp(), path, metadata=metadata)
        assert not path.exists()
    save(mlp(), path, metadata={"notes": [1, 2]})
    assert load(path).predict(np.zeros((1, 784), np.float32)).shape == (1,)


def test_confusion_matrix_refuses_what_is_not_a_class_index():
    """A prediction 10 for true class 0 was counted as (true 1, predicted 0) (the API audit)."""
    for labels, predictions in (([0, 1], [10, 1]), ([0, 1], [0, -1]), ([0.0, 1.0], [0, 1])):
        with pytest.raises(ShapeError, match="must be class indices 0..9"):
            confusion_matrix(np.array(labels), np.array(predictions), 10)
    with pytest.raises(ShapeError, match="compares labels"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 10)


def test_a_divergence_names_unscaled_inputs_and_keeps_the_history(digits):
    """From Python, 0..255 floats diverged with 'try a lower --lr' and the evaluations were lost."""
    x, y, x_dev, y_dev = digits
    told = r"the inputs reach 255: scale them to 0\.\.1"
    with pytest.raises(scratchnn.errors.TrainingDiverged, match=told) as caught:
        fit(mlp(), SGD(0.1), x * 255, y, epochs=3, batch_size=50, x_dev=x_dev, y_dev=y_dev)
    assert isinstance(caught.value.history, list)
    with pytest.raises(scratchnn.errors.TrainingDiverged, match=r"try a lower learning rate \(--lr\)") as caught:
        fit(mlp(), SGD(1e4), x, y, epochs=3, batch_size=50, x_dev=x_dev, y_dev=y_dev)


def test_a_hand_written_loop_that_forgets_training_mode_is_warned(digits):
    """Both audits: forward(x) without training=True trained on, dropout off and batch norm's
    running statistics never updated, without a word."""
    x, y, _, _ = digits
    model = Sequential([Dense(784, 32), BatchNorm1d(32), ReLU(), Dropout(0.2), Dense(32, 10)])
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x[:50]), y[:50])
    with pytest.warns(InferenceBackward, match=r"BatchNorm1d and Dropout ran as at test time.*training=True"):
        model.backward(loss.backward())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss.forward(model.forward(x[:50], training=True), y[:50])
        model.backward(loss.backward())  # the loop as it should be: quiet
        plain = mlp()
        loss.forward(plain.forward(x[:50]), y[:50])
        plain.backward(loss.backward())  # nothing in it trains differently: quiet too


def test_fit_records_the_labels_so_the_doctor_sees_a_split_of_sorted_data(digits):
    """The API audit: a learner split digits sorted by label themselves (dev the last rows: all 7-9,
    training without 8 and 9): train 0.96, dev 0.19, and fit's health held no labels, so the doctor
    said only [train-dev-gap], with dropout and weight decay for a fix."""
    from scratchnn.doctor import diagnose
    from scratchnn.training.health import HealthRecorder

    x, y, _, _ = digits
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]
    train, dev = slice(0, 1600), slice(1600, 2000)
    health = HealthRecorder.for_data(x[train])
    history = fit(mlp(), Adam(1e-3), x[train], y[train], epochs=8, batch_size=64, x_dev=x[dev], y_dev=y[dev], rng=0,
                  health=health)
    assert history[-1].train_accuracy > 0.9 and history[-1].dev_accuracy < 0.5
    recorded = {r.signal: r.value for r in health.rows if r.epoch == 0 and r.layer == "model"}
    lacking = len(set(y[dev]) - set(y[train]))
    assert recorded["label_classes"] == len(set(y[train])) and recorded["dev_only_classes"] == lacking > 0
    found = {f.id: f for f in diagnose(history.to_rows(), health.rows)}
    assert f"the dev labels hold {lacking} of them" in found["lopsided-labels"].message
    for rule in ("lopsided-labels", "train-dev-gap"):
        assert "shuffle first" in found[rule].fix and "dropout" not in found[rule].fix.split(";")[0], found[rule].fix
    assert list(found)[0] == "lopsided-labels"


def test_a_schedule_shorter_than_the_run_is_warned(digits):
    """Cosine(0.1, total_steps=3) meant 3 epochs: the rate sat at 0 for the rest, without a word."""
    from scratchnn.optim.schedules import Cosine, WarmUp

    x, y, _, _ = digits
    for schedule in (Cosine(0.1, total_steps=3), WarmUp(Cosine(0.1, total_steps=3), 2)):
        with pytest.warns(UserWarning, match=r"the schedule ends at step 3 and the run takes 120: .*\(0\); "
                                             r"total_steps counts steps \(epochs x batches per epoch\), not epochs"):
            fit(mlp(), SGD(0.1), x, y, epochs=3, batch_size=50, schedule=schedule)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(mlp(), SGD(0.1), x, y, epochs=3, batch_size=50, schedule=Cosine(0.1, total_steps=120))


def test_the_review_of_the_api_fixes(digits):
    """NumPy integers are whole numbers for eval_every; lr_find's copy keeps a learner's own class."""
    from scratchnn.tune.lr_find import copy_model

    x, y, _, _ = digits
    assert len(fit(mlp(), SGD(0.1), x, y, epochs=2, batch_size=50, eval_every=np.int64(1))) == 2

    class Dense(scratchnn.Dense):  # noqa: F811  a learner's, named like ours
        pass

    model = Sequential([Dense(784, 10, rng=0), ReLU(), scratchnn.Dense(10, 10, rng=1)])
    copied = copy_model(model, np.random.default_rng(0))
    assert type(copied.layers[0]) is Dense and np.array_equal(copied.layers[0].params["W"], model.layers[0].params["W"])


def test_a_list_of_layers_and_a_photo_path_are_asked_for_by_name():
    """The API fuzz audit: Sequential(None) and Sequential(Dense(...)) were 'not iterable' TypeErrors,
    read_image(None) and read_image(an array) TypeErrors from open()."""
    from scratchnn.errors import ImageError
    from scratchnn.photos.decode import read_image

    for wrong in (None, Dense(784, 10)):
        with pytest.raises(ShapeError, match="Sequential takes a list of layers, got"):
            Sequential(wrong)
    for wrong in (None, 5, np.zeros((3, 3))):
        with pytest.raises(ImageError, match="read_image takes a file's path or its bytes"):
            read_image(wrong)


def test_an_ensemble_of_things_that_are_not_models_is_refused_by_name():
    """The API fuzz audit: Ensemble(None), Ensemble([m, 5]) and load_ensemble(None) were TypeErrors
    and AttributeErrors from deep inside."""
    from scratchnn.ensemble import Ensemble, load_ensemble

    model = mlp()
    for wrong, words in ((None, "Ensemble takes a list of models, e.g. Ensemble([a, b]), got NoneType"),
                         (model, "got Sequential"), ([model, 5], "got one of type int")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            Ensemble(wrong)
    for wrong in (None, 5, [None]):
        with pytest.raises(ConfigError, match="load_ensemble takes paths of model files or run folders"):
            load_ensemble(wrong)


@pytest.mark.parametrize("last", [scratchnn.nn.Sigmoid, ReLU, scratchnn.nn.Tanh])
def test_an_activation_after_the_output_layer_is_refused(digits, last):
    """The habits audit: Keras's Dense(10, activation="sigmoid") habit, [..., Dense(32, 10),
    Sigmoid()], trained without a word: probabilities never above 0.23, a loss never under 1.46."""
    x, y, _, _ = digits
    model = Sequential([Dense(784, 32, rng=0), ReLU(), Dense(32, 10, rng=1), last()])
    message = rf"^the model ends with {last.__name__}\(\): the loss \(SoftmaxCrossEntropy\) takes the last layer's raw"
    for call in (lambda: fit(model, SGD(0.1), x, y, epochs=1, batch_size=50),
                 lambda: lr_find(model, SGD(0.1), x, y, steps=10)):
        with pytest.raises(ConfigError, match=message):
            call()
    with pytest.raises(ConfigError, match=message):
        fit(model, SGD(0.1), x, y, epochs=1, batch_size=50, loss_fn=SoftmaxCrossEntropy())

    class Squared:  # a loss of the learner's own, on the activation's outputs: theirs to choose
        def forward(self, outputs, labels):
            self.diff = outputs - np.eye(outputs.shape[1], dtype=outputs.dtype)[labels]
            return float(np.mean(np.sum(self.diff ** 2, axis=1)))

        def backward(self):
            return 2 * self.diff / len(self.diff)

    fit(model, SGD(0.1), x[:100], y[:100], epochs=1, batch_size=50, loss_fn=Squared())


def test_nan_weights_are_refused_where_they_come_in_and_never_read_as_class_0(digits):
    """The habits audit: load_state_dict took NaN arrays (a hand-written loop that blew up makes
    them too), then predict answered class 0 for every image (argmax of a NaN row)."""
    x = digits[0][:5]
    model, state = mlp(), mlp().state_dict()
    state["2.W"] = np.full_like(state["2.W"], np.nan)
    before = model.predict_proba(x)
    with pytest.raises(ShapeError, match=r"parameter '2.W' holds 320 NaN or infinite value\(s\)"):
        model.load_state_dict(state)
    assert np.array_equal(model.predict_proba(x), before)  # a refused state changes nothing (0.W came first)
    model.layers[2].params["W"][0, 0] = np.inf  # as a loop that diverged leaves it
    for call in (lambda: model.predict(x), lambda: model.predict_proba(x, tta=3)):
        with pytest.raises(ShapeError, match=r"^the model's outputs are NaN or infinite for 5 of 5 images: its "
                                             r"parameters 2.W hold NaN or infinite values"):
            with np.errstate(invalid="ignore"):
                call()


def test_forward_takes_what_predict_takes_and_refuses_what_it_refuses(digits):
    """The habits audit: model.forward (torch's model(x)) computed uint8 pixels into logits of 300,
    and a torch tensor or a list failed deep inside NumPy."""
    x = digits[0][:4]
    model = mlp()
    assert np.allclose(model.forward(x.tolist()), model.forward(x))
    with pytest.raises(ShapeError, match=r"the input is uint8 with values up to 255, raw pixels 0\.\.255"):
        model.forward(np.round(x * 255).astype(np.uint8))
    with pytest.raises(ShapeError, match=r"got \(4, 28, 28\): 4 image\(s\) of 784 pixels, not flattened"):
        model.forward(x.reshape(4, 28, 28))
    torch = pytest.importorskip("torch")
    assert np.allclose(model.forward(torch.from_numpy(x)), model.forward(x))


def test_calling_a_model_or_a_layer_says_which_method_gives_what(digits):
    """model(x), PyTorch's logits or Keras's probabilities, was "'Sequential' object is not
    callable"; a layer's Keras-style layer(x) the same."""
    model = mlp()
    with pytest.raises(TypeError, match=r"^a scratchnn model is not called: model\.forward\(x\) gives the logits "
                                        r"\(PyTorch's model\(x\)\), model\.predict_proba\(x\) the probabilities"):
        model(digits[0][:2])
    with pytest.raises(TypeError, match=r"^a scratchnn layer is not called: Dense\.forward\(x\) gives"):
        model.layers[0](digits[0][:2])
    with pytest.raises(ConfigError, match=r"step takes this step's \(name, param, grad\) triples"):
        Adam(1e-3).step(model)  # the model itself, not its triples


def test_a_health_log_takes_torch_tensors_as_it_takes_arrays(digits):
    """The habits audit: inputs() and weights(bias_step=) failed on tensors, the rest took them."""
    from scratchnn.doctor.record import HealthLog

    torch = pytest.importorskip("torch")
    log = HealthLog()
    w = torch.randn(784, 32)
    log.inputs(0, torch.from_numpy(digits[0][:10]))
    log.weights(0, "0", w, grad=w * 0.01, before=w - 0.001, bias_step=torch.ones(32))
    assert {row.signal for row in log.rows} >= {"input_max", "weight_rms", "bias_update_spread"}


def test_one_optimizer_for_two_models_is_refused_and_a_copy_or_a_second_fit_of_one_is_not(digits):
    """The habits audit: Adam's m, v and 52 steps carried into a fresh model (its state is keyed
    by names every model shares, "0.W"), which trained differently without a word."""
    import copy
    import pickle

    x, y, _, _ = digits
    adam, first = Adam(1e-3), mlp()
    fit(first, adam, x[:200], y[:200], epochs=1, batch_size=50)
    fit(first, adam, x[:200], y[:200], epochs=1, batch_size=50)  # the same model again: it continues
    with pytest.raises(ConfigError, match=r"^this Adam keeps state \(momentum, moment estimates\) from 8 steps for "
                                          r"another model"):
        fit(mlp(1), adam, x[:200], y[:200], epochs=1, batch_size=50)
    for copied in (copy.deepcopy(adam), pickle.loads(pickle.dumps(adam))):  # a copy: the learner's choice
        assert copied.steps == 8
        fit(mlp(2), copied, x[:100], y[:100], epochs=1, batch_size=50)


def test_keras_and_pytorch_habits_point_to_scratchnns_way(tmp_path):
    """The habits audit: layer.trainable = False was set and then trained on; model.fit,
    model.parameters() were bare AttributeErrors; io.save(model, "m.h5") wrote safetensors bytes
    under a name Keras then failed to open."""
    model = mlp()
    for target in (model, model.layers[0]):
        with pytest.raises(ConfigError, match=r"^scratchnn trains every parameter: it has no frozen layers"):
            target.trainable = False
        assert target.trainable is True
    with pytest.raises(AttributeError, match=r"^Sequential has no fit\(\) \(Keras's or PyTorch's\): from "
                                             r"scratchnn.training.fit import fit"):
        model.fit
    with pytest.raises(AttributeError, match=r"named_parameters\(\)"):
        model.parameters()
    with pytest.raises(AttributeError, match=r"^'Sequential' object has no attribute 'fitt'$"):
        model.fitt
    assert not hasattr(model, "compile") and hasattr(model, "summary")
    with pytest.raises(ModelFileError, match=r"m.h5: io.save writes a safetensors file, which Keras cannot read under "
                                             r"that name; name it m.safetensors"):
        save(model, tmp_path / "m.h5")
    with pytest.raises(ModelFileError, match=r"which PyTorch cannot read"):
        save(model, tmp_path / "M.PT")
    assert not (tmp_path / "m.h5").exists() and not (tmp_path / "M.PT").exists()
    model.trainable = True  # a harmless line of ported Keras code
    model.layers[0].trainable = True
    assert np.array_equal(load(save(model, tmp_path / "m.safetensors")).predict_proba(np.zeros(784)),
                          model.predict_proba(np.zeros(784)))


def test_keras_layouts_and_names_are_told_in_scratchnns_terms(digits):
    """The habits audit: one (28, 28, 1) image was told x.transpose(0, 3, 1, 2), which a 3-axis
    array refuses; input_shape=(28, 28, 1) was told to 'give input_shape what the data is'; an
    optimizer named "adam" was told 'not SGD'; lr_find said "expected 32 labels" of one-hot rows
    (its batch) and trained on 0..255 floats before saying nothing could be learned."""
    x, y, _, _ = digits
    cnn = Sequential([scratchnn.Conv2D(1, 4, 3), ReLU(), scratchnn.Flatten(), Dense(4 * 26 * 26, 10)],
                     input_shape=(1, 28, 28))
    with pytest.raises(ShapeError, match=r"1 image\(s\) channels last; a CNN takes \(N, 1, 28, 28\): "
                                         r"x.transpose\(2, 0, 1\)$"):
        cnn.predict_proba(x[0].reshape(28, 28, 1))
    assert cnn.predict_proba(x[0].reshape(28, 28, 1).transpose(2, 0, 1)).shape == (1, 10)  # the hint works
    with pytest.raises(ShapeError, match=r"input_shape \(28, 28, 1\) is channels last, as Keras keeps images; "
                                         r"scratchnn's are channels first: input_shape=\(1, 28, 28\)"):
        Sequential([scratchnn.Conv2D(1, 4, 3), ReLU(), scratchnn.Flatten(), Dense(4 * 26 * 26, 10)],
                   input_shape=(28, 28, 1))
    with pytest.raises(ShapeError, match=r"a model that starts with Dense reads flat rows: input_shape=\(784,\), and "
                                         r"x\.reshape\(len\(x\), -1\)$"):  # the advice audit: told (1, 28, 28)
        Sequential([Dense(784, 10)], input_shape=(28, 28, 1))
    flat = Sequential([Dense(784, 10)], input_shape=(784,))  # the hint, applied
    assert flat.predict(x.reshape(len(x), 28, 28, 1).reshape(len(x), -1)).shape == (len(x),)
    with pytest.raises(ConfigError, match=r"^fit needs an optimizer object, got the name 'adam': e.g. Adam\(1e-3\)"):
        fit(mlp(), "adam", x, y, epochs=1)
    with pytest.raises(ShapeError, match=r"^expected 2000 labels.*one-hot"):  # all of them, not a batch's 32
        lr_find(mlp(), SGD(0.1), x, np.eye(10)[y], steps=10)
    with pytest.raises(ShapeError, match=r"not flattened; flatten with x.reshape\(-1, 784\)"):
        lr_find(mlp(), SGD(0.1), x.reshape(-1, 28, 28), y, steps=10)
    with pytest.raises(ShapeError, match=r"raw pixels 0\.\.255 by the look of it"):
        lr_find(mlp(), SGD(0.1), np.round(x * 255), y, steps=10)


def test_parameters_assigned_by_hand_are_checked_before_training(digits):
    """The habits audit: a torch tensor assigned to params["W"] failed with "numpy.object_ not
    inexact", a torch Linear's (out, in) weight with an IndexError deep in the fast path."""
    torch = pytest.importorskip("torch")
    x, y, _, _ = digits
    model = mlp()
    model.layers[0].params["W"] = torch.zeros(784, 32)
    with pytest.raises(ConfigError, match=r"^parameter 0.W is a Tensor of torch.float32: parameters are NumPy float"):
        fit(model, SGD(0.1), x, y, epochs=1, batch_size=50)
    model.layers[0].params["W"] = np.zeros((784, 32), np.int64)
    with pytest.raises(ConfigError, match=r"^parameter 0.W is a ndarray of int64: parameters are NumPy float arrays"):
        fit(model, SGD(0.1), x, y, epochs=1, batch_size=50)
    model.layers[0].params["W"] = np.zeros((32, 784), np.float32)
    with pytest.raises(ShapeError, match=r"^parameter 0.W has shape \(32, 784\), but its layer makes \(784, 32\) "
                                         r"\(transposed\? a torch Linear's weight is \(out, in\)"):
        fit(model, SGD(0.1), x, y, epochs=1, batch_size=50)
    model.layers[0].params["W"] = np.zeros((784, 32), np.float32)
    fit(model, SGD(0.1), x[:100], y[:100], epochs=1, batch_size=50)


def test_the_habit_checks_leave_what_is_right_alone(digits, tmp_path):
    """The second review: a loss of one's own on a model ending with a sigmoid was refused at its
    first dev evaluation, and evaluate() of that model too; plain SGD (no state) could not serve two
    models in a loop; an optimizer of one's own without super().__init__, or one saved before,
    crashed on attach; a property failing inside read as "Sequential has no attribute ..."."""
    x, y, x_dev, y_dev = digits
    model = Sequential([Dense(784, 32, rng=0), ReLU(), Dense(32, 10, rng=1), scratchnn.nn.Sigmoid()])

    class Squared:
        def forward(self, outputs, labels):
            self.diff = outputs - np.eye(outputs.shape[1], dtype=outputs.dtype)[labels]
            return float(np.mean(np.sum(self.diff ** 2, axis=1)))

        def backward(self):
            return 2 * self.diff / len(self.diff)

    fit(model, SGD(0.5), x[:300], y[:300], epochs=2, batch_size=50, x_dev=x_dev[:100], y_dev=y_dev[:100],
        loss_fn=Squared())
    assert 0 <= evaluate(model, x_dev[:100], y_dev[:100])[1] <= 1
    sgd = SGD(0.1)  # one for both: it keeps nothing between steps
    for seed in (0, 1):
        fit(mlp(seed), sgd, x[:200], y[:200], epochs=1, batch_size=50)
    adam, first = Adam(1e-3), mlp()
    fit(first, adam, x[:200], y[:200], epochs=1, batch_size=50)
    copied = load(save(first, tmp_path / "first.safetensors"))
    adam.attach(copied, carry_over=True)  # the same model, saved and loaded: its state on purpose
    fit(copied, adam, x[:200], y[:200], epochs=1, batch_size=50)

    class Plain(SGD):  # a learner's own, without super().__init__
        def __init__(self, lr):
            self.lr, self.steps, self.state = lr, 0, {}
            self.momentum, self.weight_decay, self.nesterov = 0.0, 0.0, False

    fit(mlp(), Plain(0.1), x[:100], y[:100], epochs=1, batch_size=50)

    class Head(scratchnn.nn.Dense, register=False):  # gradcheck checks every registered type: not this one
        @property
        def broken(self):
            return self.units_misspelt

    class Wrapped(Sequential):
        @property
        def head_size(self):
            return self.layers[-1].broken

    wrapped = Wrapped([Dense(784, 32, rng=0), ReLU(), Head(32, 10, rng=1)])
    with pytest.raises(AttributeError, match="'Head' object has no attribute 'units_misspelt'"):
        wrapped.head_size
    with pytest.raises(AttributeError, match="^'Wrapped' object has no attribute 'nothing'$"):
        wrapped.nothing


def test_a_keras_momentum_is_said_where_the_layer_is_built_not_where_a_model_is_rebuilt(digits, tmp_path):
    """The second review: the warning came again at every io.load (evaluate, serve, report) and
    lr_find copy, pointing into scratchnn's own files."""
    with pytest.warns(scratchnn.errors.OtherConvention) as said:
        model = Sequential([Dense(784, 32, rng=0), BatchNorm1d(32, momentum=0.9), ReLU(), Dense(32, 10, rng=1)])
    assert said[0].filename == __file__  # the learner's line, not ours
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(save(model, tmp_path / "bn.safetensors"))
        lr_find(model, SGD(0.1), digits[0][:256], digits[1][:256], steps=10)
        BatchNorm1d(32, momentum=0.5)  # PyTorch's own range


def test_a_tensor_that_requires_grad_is_read_as_its_values(digits):
    """The second review: an nn.Parameter or a tensor requiring grad refuses np.asarray."""
    from scratchnn.doctor.record import HealthLog

    torch = pytest.importorskip("torch")
    weight = torch.nn.Linear(784, 32).weight  # requires grad
    log = HealthLog()
    log.weights(0, "fc", weight, grad=weight.detach() * 0.01, units_axis=0)
    log.inputs(0, torch.from_numpy(digits[0][:4]).requires_grad_())
    model = mlp()
    assert np.allclose(model.forward(torch.from_numpy(digits[0][:4]).requires_grad_()), model.forward(digits[0][:4]))
