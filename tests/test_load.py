"""DataSource: validation, description, dict round trip, and loading each kind of source."""
import numpy as np
import pytest

from scratchnn.data import sources
from scratchnn.data.idx import write_idx
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.data.load import DataSource, LabeledImages
from scratchnn.errors import ConfigError, DataError


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (8, 28, 28), dtype=np.uint8), (np.arange(8) % 10).astype(np.uint8)


@pytest.mark.parametrize("fields, words", [
    ({}, ["exactly one data source"]),
    ({"dataset": "mnist", "csv": "a.csv"}, ["exactly one", "--dataset, --csv"]),
    ({"csv": "a.csv", "images": "i", "labels": "l"}, ["--csv, --images"]),
    ({"images": "i.gz"}, ["--images needs --labels"]),
    ({"labels": "l.gz"}, ["--labels needs --images"]),
    ({"data_dir": "/data"}, ["exactly one data source"]),
])
def test_validation_errors(fields, words):
    with pytest.raises(ConfigError) as info:
        DataSource(**fields).validate()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="choose one of mnist, fashion-mnist"):
        DataSource(dataset="emnist").validate()


def test_valid_sources_and_descriptions():
    assert DataSource(dataset="mnist").validate().describe() == "dataset mnist"
    assert DataSource(dataset="mnist", data_dir="d").describe() == "dataset mnist (--data-dir d)"
    assert DataSource(csv="a/t.csv.gz").validate().describe() == "csv a/t.csv.gz"
    assert DataSource(images="i.gz", labels="l.gz").validate().describe() == "idx i.gz + l.gz"


def test_dict_round_trip():
    source = DataSource(dataset="fashion-mnist", data_dir="/data")
    assert source.to_dict() == {"dataset": "fashion-mnist", "data_dir": "/data"}
    assert DataSource.from_dict(source.to_dict()) == source
    assert DataSource.from_dict({"csv": "t.csv", "dataset": "", "data_dir": None}) == DataSource(csv="t.csv")
    with pytest.raises(ConfigError, match="unknown data source key"):
        DataSource.from_dict({"csv": "t.csv", "path": "x"})


def test_load_csv(tmp_path, digits):
    path = write_kaggle_csv(tmp_path / "train.csv.gz", *digits)
    data = DataSource(csv=str(path)).load()
    assert isinstance(data, LabeledImages) and len(data) == 8
    np.testing.assert_array_equal(data.images, digits[0])
    np.testing.assert_array_equal(data.labels, digits[1])
    assert data.classes == tuple("0123456789")


def test_csv_without_labels_cannot_train(tmp_path, digits):
    path = write_kaggle_csv(tmp_path / "test.csv", digits[0])
    with pytest.raises(DataError, match=r"no label column \(a Kaggle test file\?\), so it cannot be trained on, "
                                        r"scored or shown with its labels; .*--submission OUT reads one without"):
        DataSource(csv=str(path)).load()  # the advice audit: predict --index was told "train or evaluate"


def test_csv_and_idx_have_no_test_split():
    for source in (DataSource(csv="t.csv"), DataSource(images="i", labels="l")):
        with pytest.raises(DataError, match="no separate test split.*--dataset mnist"):
            source.load("test")


def test_unknown_split():
    with pytest.raises(DataError, match="unknown split 'dev'"):
        DataSource(csv="t.csv").load("dev")


def test_load_idx_pair(tmp_path, digits):
    images, labels = write_idx(tmp_path / "i.gz", digits[0]), write_idx(tmp_path / "l", digits[1])
    data = DataSource(images=str(images), labels=str(labels)).load()
    np.testing.assert_array_equal(data.images, digits[0])
    np.testing.assert_array_equal(data.labels, digits[1])


def test_load_named_dataset_from_data_dir(tmp_path, monkeypatch, digits):
    monkeypatch.setattr(sources, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNN_DATA", raising=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", digits[0])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", digits[1])
    data = DataSource(dataset="fashion-mnist", data_dir=str(tmp_path)).load("test", download=False)
    np.testing.assert_array_equal(data.images, digits[0])
    assert data.classes[0] == "T-shirt/top"
    with pytest.raises(DataError, match="train files not found.*downloads are off"):
        DataSource(dataset="fashion-mnist", data_dir=str(tmp_path)).load("train", download=False)


@pytest.mark.parametrize("shape", [(200, 0, 0), (0, 28, 28)])
def test_images_that_hold_no_data_are_refused_naming_the_file(tmp_path, shape):
    """(200, 0, 0) images once reached the model and died in he_normal with ZeroDivisionError."""
    images = write_idx(tmp_path / "i.gz", np.zeros(shape, np.uint8))
    labels = write_idx(tmp_path / "l.gz", np.zeros(shape[0], np.uint8))
    with pytest.raises(DataError) as info:
        DataSource(images=str(images), labels=str(labels)).load()
    message = str(info.value)
    assert message.startswith(f"{images}: ") and f"shape {shape}" in message and "\n" not in message


def test_a_file_read_again_unchanged_is_parsed_once_and_its_arrays_are_read_only(tmp_path, digits):
    images, labels = digits
    path = tmp_path / "d.csv"
    write_kaggle_csv(path, images, labels)
    first, again = DataSource(csv=str(path)).load(), DataSource(csv=str(path)).load()
    assert again.images is first.images and again.labels is first.labels
    with pytest.raises(ValueError):
        first.images[0, 0, 0] = 1  # what the next run gets cannot be changed by this one

    write_kaggle_csv(path, 255 - images, labels)  # the file changed: read it again
    changed = DataSource(csv=str(path)).load()
    assert changed.images is not first.images and np.array_equal(changed.images, 255 - images)

    write_idx(tmp_path / "i.idx", images)
    write_idx(tmp_path / "l.idx", labels)
    pair = DataSource(images=str(tmp_path / "i.idx"), labels=str(tmp_path / "l.idx")).load()
    assert np.array_equal(pair.images, images) and not pair.images.flags.writeable
