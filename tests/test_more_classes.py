"""Data of more than ten classes (EMNIST letters, Sign Language MNIST): labels are class numbers,
and a CSV or IDX pair whose labels go past 9 trains a network with that many outputs."""
import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data import DataSource, write_idx
from scratchnn.data.kaggle_csv import write_kaggle_csv
from scratchnn.io import read_metadata
from scratchnn.training.config import TrainConfig
from scratchnn.training.run import train_run

CLASSES = 12


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """600 images of 12 classes, each class a bright square at its own place, as an IDX pair and a CSV."""
    folder = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    labels = np.arange(600, dtype=np.uint8) % CLASSES
    images = rng.integers(0, 40, (600, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        row, column = divmod(int(label), 4)
        image[4 + 7 * row:9 + 7 * row, 2 + 6 * column:7 + 6 * column] = 255
    write_idx(folder / "images-idx3-ubyte", images)
    write_idx(folder / "labels-idx1-ubyte", labels)
    write_kaggle_csv(folder / "shapes.csv", images, labels)
    return folder


def tiny(**data) -> TrainConfig:
    return TrainConfig(hidden=[32], optimizer="adam", lr=0.01, epochs=3, batch_size=50, dev_size=120, doctor="off",
                       checkpoint_every=0, **data).validate()


def test_a_source_numbers_its_classes_from_its_labels(shapes):
    for source in (DataSource(csv=str(shapes / "shapes.csv")),
                   DataSource(images=str(shapes / "images-idx3-ubyte"), labels=str(shapes / "labels-idx1-ubyte"))):
        assert source.load().classes == tuple(str(k) for k in range(CLASSES))


def test_twelve_classes_train_a_network_of_twelve_outputs(shapes, tmp_path):
    result = train_run(tiny(csv=str(shapes / "shapes.csv")), tmp_path / "run", progress=False, log=lambda line: None)
    assert result.model.num_classes == CLASSES
    assert read_metadata(tmp_path / "run")["classes"] == [str(k) for k in range(CLASSES)]
    assert result.metrics["dev_accuracy"] > 0.9  # each class is a square of its own: easy to learn


def test_a_label_the_model_has_no_class_for_is_one_line_naming_the_file(shapes, tmp_path, shared_dir, capsys):
    digits = str(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz")
    train_run(tiny(csv=digits, train_size=300), tmp_path / "digits", progress=False, log=lambda line: None)
    assert main(["evaluate", str(tmp_path / "digits"), "--csv", str(shapes / "shapes.csv"), "--set", "all"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == (f"scratchnn evaluate: error: {shapes / 'shapes.csv'}: label 11 is not one of the model's 10 "
                     "classes (0..9); give data of the classes it was trained on")
