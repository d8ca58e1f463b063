"""Figures: each one from small synthetic data and from a tiny trained model; drawn, not empty, not clipped."""
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import AxesImage

from scratchnn import Conv2D, Dense, ReLU, Sequential
from scratchnn.errors import ShapeError
from scratchnn.plots import (
    augmentation_gallery,
    confusion_figure,
    figure_png,
    first_layer_figure,
    mistakes_gallery,
    per_class_accuracy_figure,
    prediction_figure,
    prediction_sheet,
    save_figure,
    training_curves,
)
from scratchnn.plots.common import grid_shape
from scratchnn.metrics import confusion_matrix
from scratchnn.nn.dropout import Dropout
from scratchnn.optim import make_optimizer
from scratchnn.training.fit import EpochResult, fit

DIGITS = [str(d) for d in range(10)]


def rendered(fig) -> np.ndarray:
    """The figure drawn by Agg: RGBA pixels (H, W, 4), at a low resolution to keep tests fast."""
    fig.set_dpi(50)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())


def assert_drawn(fig, min_ink: float = 0.02, name: str = "figure"):
    """Not empty: enough non-white pixels; not clipped: everything drawn lies inside the figure."""
    pixels = rendered(fig)
    ink = np.mean(np.any(pixels[..., :3] < 245, axis=-1))
    assert ink > min_ink, f"{name}: only {ink:.1%} of the figure is drawn"
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, every artist drawn, texts included
    width, height = fig.get_size_inches()
    tolerance = 0.02
    assert (drawn.x0 >= -tolerance and drawn.y0 >= -tolerance and drawn.x1 <= width + tolerance
            and drawn.y1 <= height + tolerance), f"{name}: drawn area {drawn} spills out of the {width}x{height} in"


def images_of(fig) -> list[AxesImage]:
    return [image for ax in fig.axes for image in ax.images]


def titles_of(fig) -> list[str]:
    """The title over each image of a grid (one Axes holds the images, their titles and frames)."""
    return [text.get_text() for text in fig.axes[0].texts]


# --- synthetic data -------------------------------------------------------------------------------
@pytest.fixture
def rng():
    return np.random.default_rng(7)


def softmax_rows(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def metric_rows(count):
    return [{"epoch": str(e), "train_loss": str(2.3 / e), "train_accuracy": str(1 - 0.9 / e),
             "dev_loss": str(2.4 / e), "dev_accuracy": str(1 - 0.95 / e), "lr": str(0.01 / e), "seconds": "0.1"}
            for e in range(1, count + 1)]


def test_training_curves_plot_train_and_dev_of_every_row():
    rows = metric_rows(12)
    fig = training_curves(rows)
    loss, accuracy, lr = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Loss (cross-entropy)", "Accuracy", "Learning rate"]
    for ax, metric in ((loss, "loss"), (accuracy, "accuracy")):
        train, dev = ax.get_lines()
        assert np.allclose(train.get_xdata(), range(1, 13))
        assert np.allclose(train.get_ydata(), [float(r[f"train_{metric}"]) for r in rows])
        assert np.allclose(dev.get_ydata(), [float(r[f"dev_{metric}"]) for r in rows])
    assert np.allclose(lr.get_lines()[0].get_ydata(), [0.01 / e for e in range(1, 13)])
    assert loss.get_yscale() == "log"  # 2.4 down to 0.19: more than a decade
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    assert_drawn(fig)


def test_training_curves_take_epoch_results_and_skip_a_missing_dev_set():
    rows = [EpochResult(10 * i, 1.0 / i, 0.5, float("nan"), float("nan"), 0.1, 0.2) for i in range(1, 4)]
    fig = training_curves(rows, step_name="iteration")
    assert len(fig.axes[0].get_lines()) == 1  # no dev line for NaN dev figures
    assert fig.axes[0].get_yscale() == "linear"
    assert fig.axes[2].get_ylim()[0] == 0  # a constant rate drawn from 0, not as rounding noise
    assert fig.axes[0].get_xlabel() == "iteration"
    assert_drawn(fig)


def test_a_single_evaluation_still_shows_its_points():
    fig = training_curves(metric_rows(1))
    assert fig.axes[0].get_lines()[0].get_marker() == "o"
    assert "single evaluation" in fig.get_suptitle()
    assert_drawn(fig)


def test_training_curves_reject_no_rows_and_name_a_missing_column():
    with pytest.raises(ShapeError, match="no metrics rows"):
        training_curves([])
    row = metric_rows(1)[0]
    del row["dev_loss"]
    with pytest.raises(ShapeError, match="'dev_loss'"):
        training_curves([row])


def test_confusion_figure_writes_every_nonzero_count_in_its_cell(rng):
    labels = rng.integers(0, 10, 300)
    predictions = np.where(rng.random(300) < 0.8, labels, rng.integers(0, 10, 300))
    matrix = confusion_matrix(labels, predictions, 10)
    fig = confusion_figure(matrix, DIGITS)
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(i, j): f"{matrix[i, j]:,}" for i, j in zip(*np.nonzero(matrix))}
    shares = ax.images[0].get_array()
    assert np.allclose(shares, matrix / matrix.sum(axis=1, keepdims=True))
    assert f"accuracy {np.trace(matrix) / 300:.1%}" in ax.get_title()
    assert_drawn(fig)


def test_a_confusion_figure_of_many_classes_stays_a_size_that_can_be_drawn():
    """The API fuzz audit: 256 classes (the loader's limit) made a 136-inch figure and 65,536 cell
    texts: 17.6 s, then a MemoryError at 6 GB."""
    fig = confusion_figure(np.eye(256, dtype=int) * 20, [f"c{k}" for k in range(256)])
    assert max(fig.get_size_inches()) <= 36 + 1.2 and not fig.axes[0].texts


def test_confusion_figure_tilts_long_class_names_so_they_fit():
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    matrix = np.diag(np.arange(1, 11)) + 1
    fig = confusion_figure(matrix, names)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == names
    assert fig.axes[0].get_xticklabels()[0].get_rotation() == 40
    assert_drawn(fig)


def test_figures_from_a_confusion_matrix_reject_one_that_does_not_fit_the_classes():
    with pytest.raises(ShapeError, match=r"\(3, 3\) for 3 classes"):
        confusion_figure(np.ones((2, 2), int), ["a", "b", "c"])
    with pytest.raises(ShapeError, match="non-negative integer counts"):
        per_class_accuracy_figure(np.full((2, 2), 0.5), ["a", "b"])


def test_per_class_accuracy_bars_are_the_recall_and_an_empty_class_says_so():
    matrix = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    fig = per_class_accuracy_figure(matrix, ["cat", "dog", "emu"])
    ax = fig.axes[0]
    ends = [bar.get_x() + bar.get_width() for bar in ax.patches]  # the axis may start above 0
    assert np.allclose(ends, [0.8, 0.75, ax.get_xlim()[0]]) and ax.patches[2].get_width() == 0
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["80.0% of 10", "75.0% of 4", "no images"]
    assert np.isclose(ax.get_lines()[0].get_xdata()[0], 11 / 14)  # the overall accuracy line
    assert_drawn(fig)


def digit_images(rng, count):
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)


def test_mistakes_gallery_shows_the_most_confident_mistakes_first(rng):
    images = digit_images(rng, 40)
    labels = np.arange(40) % 10
    logits = np.full((40, 10), -3.0)
    logits[np.arange(40), labels] = 3.0  # right by default
    wrong = [5, 17, 23, 31]
    confidence = [2.0, 6.0, 4.0, 1.0]  # 17 most confident, then 23, 5, 31
    for i, c in zip(wrong, confidence):
        logits[i] = -3.0
        logits[i, (labels[i] + 1) % 10] = c
    probs = softmax_rows(logits)
    fig = mistakes_gallery(images, labels, probs, DIGITS, n=3)
    shown = images_of(fig)
    assert len(shown) == 3
    for image, index in zip(shown, [17, 23, 5]):
        assert np.array_equal(image.get_array(), images[index])
    first = titles_of(fig)[0]
    assert first == f"pred: {(labels[17] + 1) % 10} (>99%)\ntrue: {labels[17]}"  # 0.9989, not certain
    assert "4 wrong of 40" in fig.get_suptitle()
    assert_drawn(fig)


def test_mistakes_gallery_without_mistakes_says_so(rng):
    labels = np.arange(5)
    fig = mistakes_gallery(digit_images(rng, 5), labels, np.eye(10)[labels], DIGITS)
    assert images_of(fig) == []
    assert "No mistakes" in fig.axes[0].texts[0].get_text()
    assert_drawn(fig, min_ink=0.005)


def test_prediction_sheet_marks_right_and_wrong_for_the_first_n(rng):
    images = digit_images(rng, 30)
    labels = np.arange(30) % 10
    predicted = labels.copy()
    predicted[[2, 7]] = (labels[[2, 7]] + 3) % 10
    probs = softmax_rows(4.0 * np.eye(10)[predicted])
    fig = prediction_sheet(images, probs, DIGITS, labels, n=12)
    shown = images_of(fig)
    assert len(shown) == 12 and np.array_equal(shown[11].get_array(), images[11])
    colors = [frame.get_edgecolor() for frame in fig.axes[0].patches]
    wrong = [i for i, c in enumerate(colors) if c[0] > 0.5 and c[1] < 0.3]  # firebrick
    assert wrong == [2, 7]
    assert "10 of 12 correct" in fig.get_suptitle()
    assert_drawn(fig)


def test_prediction_sheet_without_labels_and_with_flat_rows(rng):
    images = digit_images(rng, 5)
    probs = softmax_rows(rng.normal(size=(5, 10)))
    fig = prediction_sheet(images.reshape(5, 784), probs, DIGITS, n=24)
    assert len(images_of(fig)) == 5
    assert all("true" not in title for title in titles_of(fig))
    assert_drawn(fig)


@pytest.mark.parametrize("height, width", [(16, 49), (28, 20), (28, 28)])
def test_images_that_are_not_square_keep_their_shape(rng, height, width):
    """The shapes audit: 16x49 images were drawn stretched into squares, like upright digits."""
    images = rng.integers(0, 256, (3, height, width)).astype(np.uint8)
    fig = prediction_sheet(images, softmax_rows(rng.normal(size=(3, 10))), DIGITS, n=3)
    for image, frame in zip(images_of(fig), fig.axes[0].patches):
        left, right, bottom, top = image.get_extent()
        assert (right - left) / (bottom - top) == pytest.approx(width / height)
        assert (frame.get_width(), frame.get_height()) == pytest.approx((right - left, bottom - top))
    assert_drawn(fig)


def test_augmentation_gallery_puts_each_original_first_in_its_row_even_with_long_names(rng):
    originals = digit_images(rng, 3) / 255
    copies = rng.random((3, 7, 28, 28))
    names = ["T-shirt/top", "Ankle boot", "an unusually long class name"]  # wide titles would wrap a row
    fig = augmentation_gallery(originals, copies, names, "The training augmentation")
    shown = images_of(fig)
    assert len(shown) == 24
    for row in range(3):
        assert np.array_equal(shown[8 * row].get_array(), originals[row])
        assert np.array_equal(shown[8 * row + 5].get_array(), copies[row, 4])
    assert [t for t in titles_of(fig) if t] == ["T-shirt/top", "Ankle boot", "an unusually lo…"]  # cells stay small
    assert fig.get_size_inches()[0] < 13
    assert_drawn(fig)
    with pytest.raises(ShapeError, match=r"copies must be \(K, M, H, W\) for 3 originals"):
        augmentation_gallery(originals, copies[:2], names, "x")


def test_image_figures_reject_probabilities_that_do_not_match(rng):
    with pytest.raises(ShapeError, match=r"\(4, 10\)"):
        prediction_sheet(digit_images(rng, 4), np.ones((3, 10)) / 10, DIGITS)
    with pytest.raises(ShapeError, match="labels must lie in 0..9"):
        mistakes_gallery(digit_images(rng, 2), np.array([1, 12]), np.ones((2, 10)) / 10, DIGITS)


def tiles(fig, count, height=28, width=28, gap=2):
    """The weight images tiled in a first-layer figure, read back from its one image."""
    mosaic = images_of(fig)[0].get_array().filled(np.nan)
    rows, columns = grid_shape(count)
    assert mosaic.shape == (rows * (height + gap) - gap, columns * (width + gap) - gap)
    out = [mosaic[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width]
           for r, c in (divmod(k, columns) for k in range(count))]
    assert np.isnan(mosaic).sum() == mosaic.size - count * height * width  # NaN gaps, nothing else
    return out


def test_first_layer_figure_draws_each_units_weights_as_the_input_image(rng):
    model = Sequential([Dropout(0.1), Dense(784, 12, rng=rng), ReLU(), Dense(12, 10, rng=rng)], input_shape=(784,))
    fig = first_layer_figure(model, max_units=10)
    W = model.layers[1].params["W"]
    for j, tile in enumerate(tiles(fig, 10)):
        assert np.allclose(tile, W[:, j].reshape(28, 28)), f"unit {j}"
    low, high = images_of(fig)[0].get_clim()
    assert low == -high and high == pytest.approx(np.abs(W[:, :10]).max())
    assert "Dense layer 1" in fig.get_suptitle() and "first 10 of 12" in fig.get_suptitle()
    assert_drawn(fig)


def test_first_layer_figure_draws_convolution_kernels(rng):
    model = Sequential([Conv2D(2, 6, 5, rng=rng), ReLU()], input_shape=(2, 28, 28))
    W = model.layers[0].params["W"]  # (F, C, KH, KW)
    fig = first_layer_figure(model)
    shown = tiles(fig, 6, 5, 5, gap=1)
    assert np.allclose(shown[4], W[4].mean(axis=0))
    assert "all 6 5x5 kernels (mean over 2 input channels)" in fig.get_suptitle()
    assert_drawn(fig)


def test_first_layer_figure_refuses_what_is_not_an_image():
    with pytest.raises(ShapeError, match="not a square image, and the model's file does not say its image shape"):
        first_layer_figure(Sequential([Dense(50, 10, rng=0)]))
    with pytest.raises(ShapeError, match="not a square image"):  # a shape of other images says nothing
        first_layer_figure(Sequential([Dense(50, 10, rng=0)]), image_shape=[7, 8])


def test_first_layer_figure_of_an_mlp_on_rectangular_images_uses_their_shape():
    model = Sequential([Dense(5 * 10, 4, rng=0)])
    fig = first_layer_figure(model, image_shape=[5, 10])
    shown = tiles(fig, 4, 5, 10, gap=1)
    assert np.allclose(shown[2], model.layers[0].params["W"][:, 2].reshape(5, 10))
    assert "as 5x10" in fig.get_suptitle()
    with pytest.raises(ShapeError, match="no layer with weights"):
        first_layer_figure(Sequential([ReLU()], input_shape=(4,)))


def test_prediction_figure_and_saving(tmp_path, rng):
    probs = softmax_rows(rng.normal(size=(1, 10)))[0]
    fig = prediction_figure(digit_images(rng, 1)[0], probs, DIGITS, true_label=3)
    assert f"({probs.max():.0%})" in fig.axes[0].get_title()
    assert_drawn(fig)
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG")
    assert save_figure(fig, tmp_path / "a" / "p.png").read_bytes()[:4] == b"\x89PNG"


# --- a tiny trained model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """A 784-16-10 network trained for a fraction of a second on 600 noisy copies of ten random 'digits'."""
    rng = np.random.default_rng(11)
    prototypes = rng.integers(0, 256, (10, 28, 28))
    labels = rng.integers(0, 10, 600)
    images = np.clip(prototypes[labels] + rng.normal(0, 90, (600, 28, 28)), 0, 255).astype(np.uint8)
    x = images.reshape(600, 784).astype(np.float32) / 255
    model = Sequential([Dense(784, 16, rng=rng), ReLU(), Dense(16, 10, rng=rng)])
    history = fit(model, make_optimizer("adam", 1e-2), x[:500], labels[:500], epochs=4, batch_size=50,
                  x_dev=x[500:], y_dev=labels[500:], rng=rng)
    return model, history, images[500:], labels[500:], model.predict_proba(x[500:])


def test_every_figure_builds_from_a_trained_model(trained):
    model, history, images, labels, probs = trained
    matrix = confusion_matrix(labels, probs.argmax(axis=1), 10)
    assert 0.5 < np.trace(matrix) / len(labels) < 1  # learnt something, still makes mistakes to show
    figures = {
        "curves": training_curves(history),
        "confusion": confusion_figure(matrix, DIGITS),
        "per class": per_class_accuracy_figure(matrix, DIGITS),
        "mistakes": mistakes_gallery(images, labels, probs, DIGITS, n=8),
        "sheet": prediction_sheet(images, probs, DIGITS, labels, n=10),
        "first layer": first_layer_figure(model, max_units=8),
    }
    assert len(images_of(figures["mistakes"])) == 8
    assert len(images_of(figures["sheet"])) == 10
    assert len(tiles(figures["first layer"], 8)) == 8
    assert len(figures["curves"].axes[0].get_lines()[0].get_xdata()) == 4
    for name, fig in figures.items():
        assert_drawn(fig, name=name)


def test_save_figure_writes_atomically_and_refuses_what_it_cannot_write(tmp_path):
    from matplotlib.figure import Figure

    from scratchnn.errors import ConfigError
    from scratchnn.plots import save_figure

    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "a" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert save_figure(fig, tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ConfigError, match=r"curve\.docx: cannot draw \.docx files; use one of .*\.png"):
        save_figure(fig, tmp_path / "curve.docx")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write the figure"):
        save_figure(fig, tmp_path / "file" / "curve.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "curve.svg", "file"]  # no temp files left


def test_per_class_accuracy_axis_starts_where_the_differences_show():
    matrix = np.diag([97, 99, 93]) + np.array([[0, 3, 0], [1, 0, 0], [4, 3, 0]])
    ax = per_class_accuracy_figure(matrix, ["a", "b", "c"]).axes[0]
    assert ax.get_xlim()[0] == pytest.approx(0.85) and "axis starts at 85%" in ax.get_xlabel()
    ends = [bar.get_x() + bar.get_width() for bar in ax.patches]
    assert np.allclose(ends, np.diag(matrix) / matrix.sum(axis=1))


def test_names_with_dollar_signs_are_drawn_letter_for_letter():
    """The plots audit: a class named '$\\frac$' (or a photo 'note_$5_$.png') was read as a
    formula by matplotlib, and every figure naming it ended in a 34-frame traceback."""
    from scratchnn.insight.explain import trace
    from scratchnn.insight.explain_figure import explain_figure
    from scratchnn.plots.preprocessing import preprocessing_figure

    classes = ["zero", r"$\frac$", "$5 and $6"]
    rng = np.random.default_rng(0)
    images, labels = rng.random((6, 8, 8)), np.array([0, 1, 2, 0, 1, 2])
    probs = np.tile(np.eye(3)[[1, 2, 0]], (2, 1)) * 0.8 + 0.2 / 3  # every one wrong
    matrix = confusion_matrix(labels, probs.argmax(axis=1), 3)
    model = Sequential([Dense(64, 3, rng=0)])
    figures = [confusion_figure(matrix, classes), per_class_accuracy_figure(matrix, classes),
               prediction_figure(images[0], probs[0], classes, true_label=1),
               prediction_sheet(images, probs, classes, labels), mistakes_gallery(images, labels, probs, classes),
               explain_figure(trace(model, images[0].ravel(), label=1), classes, image_shape=(8, 8)),
               preprocessing_figure([("photo", images[0])], title="note_$5_$.png")]
    for fig in figures:
        figure_png(fig)  # drawn: a formula would fail here
        texts = " ".join(text.get_text() for text in fig.findobj(lambda a: hasattr(a, "get_text")))
        assert "$" not in texts.replace(r"\$", ""), texts  # every '$' shown as itself


def test_long_class_names_widen_the_per_class_figure_instead_of_cutting_its_label():
    """The plots audit: a class name ~5 inches long squeezed the axes until the axis label ran
    out of the 7-inch figure."""
    classes = ["0", "one", '<script>alert("x")</script> and then some more words']
    matrix = np.array([[9, 1, 0], [1, 8, 1], [0, 0, 10]])
    assert_drawn(per_class_accuracy_figure(matrix, classes), name="long names")


def test_a_probability_short_of_certain_never_reads_as_100_percent():
    """The plots audit: a wrong prediction titled 'pred: Ankle boot (100%)' at p = 0.996."""
    from scratchnn.plots.common import percent

    assert [percent(p) for p in (0, 0.004, 0.5, 0.994, 0.996, 1.0)] == ["0%", "<1%", "50%", "99%", ">99%", "100%"]
    probs = np.array([[0.996, 0.004], [0.3, 0.7]])
    fig = mistakes_gallery(np.zeros((2, 4, 4)), np.array([1, 0]), probs, ["a", "b"])
    assert "pred: a (>99%)\ntrue: b" in titles_of(fig), titles_of(fig)


def test_a_full_batch_history_draws_itself_against_iterations():
    """The plots audit: History.plot() labelled every history 'epoch'; notebook 01 had to say
    step_name="iteration" for fit's full batch, which fit knows."""
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 8)).astype(np.float32), rng.integers(0, 3, 40)
    full = fit(Sequential([Dense(8, 3, rng=0)]), make_optimizer("sgd", 0.1), x, y, epochs=2)
    batches = fit(Sequential([Dense(8, 3, rng=0)]), make_optimizer("sgd", 0.1), x, y, epochs=2, batch_size=8)
    assert full.step_name == "iteration" and batches.step_name == "epoch"
    assert full.plot().axes[0].get_xlabel() == "iteration" and batches.plot().axes[0].get_xlabel() == "epoch"
    assert full.plot(step_name="epoch").axes[0].get_xlabel() == "epoch"  # asked for, it is used
