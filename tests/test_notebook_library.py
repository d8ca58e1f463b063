"""The library at home in a notebook: models, histories and runs render as tables; one call loads
a train/dev split identical to the run's; fit returns a History that plots."""
import dataclasses

import numpy as np
import pytest

import scratchnn.data
from scratchnn import Dense, ReLU, Sequential
from scratchnn.data import load, load_csv, load_idx, write_idx
from scratchnn.optim import SGD
from scratchnn.training.config import TrainConfig
from scratchnn.training.fit import EpochResult, fit
from scratchnn.training.history import FIELDS, History
from scratchnn.training.run import train_run
from scratchnn.training.run_data import load_set


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """An IDX pair of 600 learnable 28x28 'digits' named as MNIST's training files."""
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, 600).astype(np.uint8)
    images = np.clip(rng.integers(0, 256, (10, 28, 28))[labels] + rng.normal(0, 50, (600, 28, 28)), 0, 255)
    write_idx(folder / "train-images-idx3-ubyte.gz", images.astype(np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    return folder


def small_model():
    return Sequential([Dense(784, 16, rng=0), ReLU(), Dense(16, 10, rng=1)])


def test_a_model_renders_as_an_html_table_and_prints_its_summary():
    model = small_model()
    page = model._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 4  # header + 3 layers
    assert "<td style=\"text-align:left\">(N, 16)</td>" in page and "12,730" in page and "7,960" not in page
    assert "Dense(in_features=784, out_features=16" in page and "&#x27;he_normal&#x27;" in page  # escaped
    assert str(model) == model.summary()
    assert model.summary().splitlines()[2].split() == ["0", "Dense(in_features=784,", "out_features=16,",
                                                       "init='he_normal',", "bias_init='zeros')", "(N,", "16)",
                                                       "12,560"]


def test_fit_returns_a_history_that_is_still_a_list_and_plots():
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    history = fit(small_model(), SGD(lr=0.1), x, y, epochs=3, batch_size=16, x_dev=x[:8], y_dev=y[:8], rng=rng)
    assert isinstance(history, History) and isinstance(history, list) and len(history) == 3
    assert all(isinstance(r, EpochResult) for r in history) and history[-1].epoch == 3
    assert history.column("epoch").tolist() == [1, 2, 3]
    assert np.array_equal(history.column("dev_loss"), [r.dev_loss for r in history])
    figure = history.plot()
    assert [ax.get_title() for ax in figure.axes] == ["Loss (cross-entropy)", "Accuracy", "Learning rate"]
    assert len(figure.axes[0].lines) == 2  # train and dev
    assert history._repr_html_().count("<tr>") == 4 and str(history).splitlines()[0].split() == list(FIELDS)
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        history.column("accuracy")


def test_history_columns_are_the_epoch_results_fields():
    assert FIELDS == tuple(f.name for f in dataclasses.fields(EpochResult))


def test_a_history_without_dev_set_shows_a_dash():
    history = History([EpochResult(1, 2.3, 0.1, float("nan"), float("nan"), 0.1, 0.5)])
    assert str(history).splitlines()[2].split() == ["1", "2.3000", "0.1000", "-", "-", "0.1000", "0.5000"]


def test_load_is_the_function_not_the_module():
    assert scratchnn.data.load is load and callable(load)
    from scratchnn.data.load import DataSource  # the module behind DataSource is still importable
    assert DataSource is scratchnn.data.DataSource


def test_load_gives_the_runs_own_split(digits):
    data = load("mnist", data_dir=digits, dev_size=100, seed=4, download=False, progress=False)
    x_train, y_train, x_dev, y_dev = data
    assert x_train.shape == (500, 784) and x_dev.shape == (100, 784) and x_train.dtype == np.float32
    config = TrainConfig(dataset="mnist", data_dir=str(digits), dev_size=100, seed=4)
    images, labels, _, _ = load_set(config, "dev", download=False, progress=False)
    assert np.array_equal(x_dev, images.reshape(100, 784) / np.float32(255)) and np.array_equal(y_dev, labels)
    images, labels, _, _ = load_set(config, "train", download=False, progress=False)
    assert np.array_equal(y_train, labels)
    other = load("mnist", data_dir=digits, dev_size=100, seed=5, download=False, progress=False)
    assert not np.array_equal(other.y_dev, y_dev)  # the seed draws the dev set
    assert "x_train (500, 784)" in repr(data) and data.classes == tuple("0123456789")


def test_load_csv_and_idx_agree_and_feed_a_cnn(shared_dir):
    mnist = shared_dir / "datasets/mnist"
    from_csv = load_csv(mnist / "t10k-kaggle.csv.gz", input_shape=(1, 28, 28))
    from_idx = load_idx(mnist / "t10k-images-idx3-ubyte.gz", mnist / "t10k-labels-idx1-ubyte.gz",
                        input_shape=(1, 28, 28))
    assert from_csv.x_train.shape == (9000, 1, 28, 28) and from_csv.x_dev.shape == (1000, 1, 28, 28)
    for a, b in zip(from_csv, from_idx):
        assert np.array_equal(a, b)


def test_a_run_renders_its_metrics_findings_and_model(digits, tmp_path):
    config = TrainConfig(hidden=[16], epochs=2, batch_size=50, dev_size=100, eval_every=1, seed=1,
                         images=str(digits / "train-images-idx3-ubyte.gz"),
                         labels=str(digits / "train-labels-idx1-ubyte.gz"))
    result = train_run(config, tmp_path / "run", log=lambda line: None, progress=False)
    assert isinstance(result.history, History) and len(result.history) == 2
    assert result.history.plot().axes
    page = result._repr_html_()
    assert f"Run {tmp_path / 'run'}" in page and "dev_accuracy" in page and "Output shape" in page
    assert ("The doctor&#x27;s findings" in page) == bool(result.findings)
    if not result.findings:  # two evaluations: too few for the doctor's plateau rules, not "healthy" (a review)
        assert "The doctor has no findings in 2 evaluations, too few to judge a plateau or a gap" in page, page
    off = train_run(dataclasses.replace(config, doctor="off"), tmp_path / "off", log=lambda line: None, progress=False)
    assert "No doctor examined this run here (--doctor off" in off._repr_html_()
    assert repr(result).startswith(f"RunResult({tmp_path / 'run'}: 784 -> 16 -> 10, 2 evaluation(s), ")
    assert f"{result.metrics['dev_accuracy']:.4f}" in str(result)
