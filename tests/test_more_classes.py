"""Data of more than ten classes (EMNIST letters, Sign Language MNIST): labels are class numbers,
and a CSV or IDX pair whose labels go past 9 trains a network with that many outputs."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_guard import require_module
from fuzzing import fuzz_examples

from scratchnn.cli.main import main
from scratchnn.data import DataSource, scale_pixels, write_idx
from scratchnn.data.load import named_classes
from scratchnn.errors import ConfigError
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.io import read_metadata
from scratchnn.training.config import TrainConfig
from scratchnn.training.run import train_run
from scratchnn.training.run_data import load_data, load_set, with_data

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


def test_a_model_of_named_classes_writes_a_submission_of_class_numbers(shapes, tmp_path, capsys):
    """The own-dataset audit: a model of other classes could not predict a label-less CSV at all
    ('a Digit Recognizer submission needs a model of the digits 0..9'). Label is the class number,
    as the training file numbers it; the counts name the classes."""
    names = [f"shape{k}" for k in range(CLASSES)]
    train_run(tiny(csv=str(shapes / "shapes.csv"), class_names=",".join(names)), tmp_path / "run", progress=False,
              log=lambda line: None)
    rows = (shapes / "shapes.csv").read_text().splitlines()
    test = tmp_path / "test.csv"
    test.write_text("\n".join([rows[0].split(",", 1)[1]] + [row.split(",", 1)[1] for row in rows[1:25]]) + "\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), "--csv", str(test), "--submission", str(tmp_path / "s.csv")]) == 0
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 25
    predicted = [int(line.split(",")[1]) for line in lines[1:]]
    assert sum(p == int(row.split(",")[0]) for p, row in zip(predicted, rows[1:25])) >= 20  # easy squares
    assert "Labels predicted: 0 (shape0): " in capsys.readouterr().out
    # a photo whose ink falls into two pieces is one thing for a model of classes named by words
    from PIL import Image

    picture = np.full((200, 200), 255, np.uint8)  # two dark legs on white paper, apart: a trouser
    picture[30:170, 60:85] = picture[30:170, 115:140] = 0
    Image.fromarray(picture).save(tmp_path / "two-pieces.png")
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "two-pieces.png")]) == 0
    out = capsys.readouterr().out
    assert "characters" not in out and "Reads:" not in out, out


def test_a_label_the_model_has_no_class_for_is_one_line_naming_the_file(shapes, tmp_path, shared_dir, capsys):
    digits = str(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz")
    train_run(tiny(csv=digits, train_size=300), tmp_path / "digits", progress=False, log=lambda line: None)
    assert main(["evaluate", str(tmp_path / "digits"), "--csv", str(shapes / "shapes.csv"), "--set", "all"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == (f"scratchnn evaluate: error: {shapes / 'shapes.csv'}: label 11 is not one of the model's 10 "
                     "classes (0..9); give data of the classes it was trained on")


def test_class_names_name_the_numbers_everywhere_a_class_is_shown(shapes, tmp_path, capsys):
    names = "N/A,a,b,c,d,e,f,g,h,i,j,k"  # EMNIST letters number a..z from 1
    config = tiny(csv=str(shapes / "shapes.csv"), class_names=names)
    train_run(config, tmp_path / "run", progress=False, log=lambda line: None)
    assert read_metadata(tmp_path / "run")["classes"] == names.split(",")
    assert TrainConfig.load(tmp_path / "run" / "config.toml").class_names == names
    assert main(["predict", str(tmp_path / "run"), "--index", "0"]) == 0
    assert "True label: " in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert "\n  N/A  " in capsys.readouterr().out


@pytest.mark.parametrize("names, message", [
    ("a,b,c", "shapes.csv: label 11 has no name: --class-names names 3 classes (labels 0..2); give every class a name"),
    ("a,b,a", "--class-names names two classes 'a'; give each class its own name"),
    ("a,,b", "--class-names: '' is not a class name: a name is 1 to 40 printable characters, and names are "
             "separated by commas"),
    ("a\tb,c", "--class-names: 'a\\tb' is not a class name"),
    ("x" * 41 + ",b", "--class-names: 'xxxxxxxx"),
    ("only", "--class-names gives 1 name(s); a network tells 2 to 256 classes apart"),
])
def test_class_names_that_cannot_name_the_classes_are_one_line_and_no_run_folder(shapes, tmp_path, capsys,
                                                                                 names, message):
    args = ["train", "--csv", str(shapes / "shapes.csv"), "--class-names", names, "--out", str(tmp_path / "run")]
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error, error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", [["--class-names", "a,b"], ["--transpose"]])
def test_class_names_and_transpose_belong_to_a_csv_or_an_idx_pair(capsys, flag):
    assert main(["train", "--dataset", "fashion-mnist", *flag]) == 1
    assert capsys.readouterr().err.strip() == (f"scratchnn train: error: {flag[0]} applies only to --csv or --images, "
                                               "not to a named dataset")


def test_transpose_turns_every_image_over_its_diagonal_wherever_the_run_reads_its_data(shapes, tmp_path):
    """EMNIST's IDX files hold each letter transposed: --transpose trains on them upright, and
    evaluate, predict and the report read the run's data the same way."""
    idx = {"images": str(shapes / "images-idx3-ubyte"), "labels": str(shapes / "labels-idx1-ubyte")}
    source = DataSource(**idx)
    plain = source.load()
    config = tiny(**idx, transpose=True)
    turned = load_data(config, source)
    assert np.array_equal(turned.images, plain.images.transpose(0, 2, 1)) and turned.images.flags.c_contiguous
    result = train_run(config, tmp_path / "run", progress=False, log=lambda line: None)
    images, labels, _, _ = load_set(TrainConfig.load(tmp_path / "run" / "config.toml"), "dev")
    predictions = result.model.predict(scale_pixels(images, result.model.input_shape))
    assert result.metrics["dev_accuracy"] == (predictions == labels).mean() > 0.9


def test_a_named_dataset_given_to_evaluate_drops_the_runs_names_and_transpose(shapes, tmp_path):
    config = tiny(csv=str(shapes / "shapes.csv"), class_names="a,b,c,d,e,f,g,h,i,j,k,l", transpose=True)
    again = with_data(config, {"dataset": "mnist"}).validate()
    assert (again.dataset, again.csv, again.class_names, again.transpose) == ("mnist", "", "", False)
    other = with_data(tiny(csv=str(shapes / "shapes.csv"), transpose=True), {"csv": "other.csv"})
    assert other.transpose  # another file of the same kind is read the same way


@settings(max_examples=fuzz_examples(300), deadline=None)
@given(st.text(max_size=300) | st.lists(st.text(max_size=12), max_size=300).map(",".join))
def test_any_class_names_text_is_names_or_one_line(text):
    """Whatever is typed after --class-names: printable, distinct names of 1-40 characters, or a
    one-line ConfigError that names the flag."""
    try:
        names = named_classes(text)
    except ConfigError as error:
        assert str(error).startswith("--class-names") and "\n" not in str(error) and len(str(error)) < 200
        return
    assert 2 <= len(names) <= 256 and len(set(names)) == len(names)
    assert all(0 < len(name) <= 40 and name.isprintable() and "," not in name for name in names)


def test_a_photo_split_into_characters_reads_as_a_word_for_a_model_of_letters(capsys):
    from scratchnn.cli.predict_cmd import print_number

    probs = np.eye(3)[[2, 0, 1]] * 0.9 + 0.05
    print_number("word.png", [np.zeros((28, 28))] * 3, probs, ["a", "b", "c"])
    out = capsys.readouterr().out
    assert "word.png: 3 characters, as the model sees them:" in out and "Reads: cab" in out
    assert "  character 1: c (95.0%)" in out and "digit" not in out


def test_kmnist_is_a_named_dataset_with_its_own_class_names(tmp_path):
    """Kuzushiji-MNIST found in --data-dir as a download would leave it (no network here)."""
    folder = tmp_path / "kmnist"
    rng = np.random.default_rng(0)
    for split, count in (("train", 30), ("t10k", 20)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 255, (count, 28, 28), np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(count, dtype=np.uint8) % 10)
    data = DataSource(dataset="kmnist", data_dir=str(tmp_path)).load("test", download=False, progress=False)
    assert len(data) == 20 and data.classes[:3] == ("o", "ki", "su")


def test_the_python_helpers_transpose_as_the_run_does(shapes):
    from scratchnn.data import load_csv, load_idx

    plain = load_csv(shapes / "shapes.csv", dev_size=100, input_shape=(28, 28))
    turned = load_idx(shapes / "images-idx3-ubyte", shapes / "labels-idx1-ubyte", dev_size=100,
                      input_shape=(28, 28), transpose=True)
    assert np.array_equal(turned.x_train, plain.x_train.transpose(0, 2, 1))
    assert turned.classes == tuple(str(k) for k in range(CLASSES))


def test_class_names_cannot_rename_a_trained_models_classes(shapes, tmp_path, capsys):
    train_run(tiny(csv=str(shapes / "shapes.csv")), tmp_path / "run", progress=False, log=lambda line: None)
    names = "a,b,c,d,e,f,g,h,i,j,k,l"
    assert main(["evaluate", str(tmp_path / "run"), "--class-names", names]) == 1
    assert capsys.readouterr().err.strip() == (
        "scratchnn evaluate: error: --class-names gives other names than the model's (0, 1, 2, 3, ...): a model "
        "keeps the names it was trained with; leave --class-names out")


@pytest.mark.parametrize("flags, message", [
    (["--class-names", "x,y"], "--class-names goes with --index (an image of a data set); photos need no data "
                               "flags: leave it out"),
    (["--csv", "digits.csv", "--transpose"], "--csv, --transpose go with --index (an image of a data set); photos "
                                             "need no data flags: leave them out"),
])
def test_data_flags_given_with_photos_are_refused_not_ignored(shapes, tmp_path, capsys, flags, message):
    train_run(tiny(csv=str(shapes / "shapes.csv")), tmp_path / "run", progress=False, log=lambda line: None)
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "photo.png"), *flags]) == 1
    assert capsys.readouterr().err.strip() == f"scratchnn predict: error: {message}"
    assert main(["explain", str(tmp_path / "run"), "--image", str(tmp_path / "photo.png"), *flags]) == 1
    explained = message.replace("photos need no", "--image needs no")
    assert capsys.readouterr().err.strip() == f"scratchnn explain: error: {explained}"


@pytest.mark.parametrize("flag", [["--class-names", "a,b"], ["--transpose"]])
def test_serve_refuses_the_flags_it_would_ignore(tmp_path, capsys, flag):
    require_module("fastapi", "web", "the serve tests")
    assert main(["serve", str(tmp_path / "run"), "--csv", "x.csv", *flag]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"scratchnn serve: error: {flag[0]} is for train: a served run reads its data"), error


def test_a_kaggle_submission_takes_no_transpose_or_class_names(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "run"), "--csv", "test.csv", "--submission", str(tmp_path / "s.csv"),
                 "--transpose"]) == 1
    assert capsys.readouterr().err.strip() == ("scratchnn predict: error: --submission needs --csv TEST.csv (Kaggle's "
                                               "label-less pixel0..pixel783 file) and no other data flag")


def test_a_labels_file_that_numbers_few_of_its_classes_is_refused_before_training(shapes, tmp_path, shared_dir,
                                                                                 capsys):
    """One damaged byte in MNIST's labels (a 200) must not train 201 classes, 190 of them empty."""
    from scratchnn.data.idx import read_idx

    labels = read_idx(shared_dir / "datasets" / "mnist" / "t10k-labels-idx1-ubyte.gz").copy()
    labels[1234] = 200
    write_idx(tmp_path / "labels-idx1-ubyte", labels)
    images = shared_dir / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert main(["train", "--images", str(images), "--labels", str(tmp_path / "labels-idx1-ubyte"),
                 "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"scratchnn train: error: {tmp_path / 'labels-idx1-ubyte'}: labels go up to 200, but only 11 of the numbers "
        "0..200 are labels; the file is damaged, or its labels are not class numbers 0, 1, 2...: renumber them")
    assert not (tmp_path / "run").exists()


def test_labels_that_start_at_1_leave_class_0_empty_and_the_doctor_says_so(shapes, tmp_path):
    """EMNIST letters number a..z from 1: the network gets a class 0 that no image has."""
    data = DataSource(csv=str(shapes / "shapes.csv")).load()
    write_kaggle_csv(tmp_path / "from1.csv", data.images, data.labels + 1)
    config = dataclasses.replace(tiny(csv=str(tmp_path / "from1.csv")), doctor="on")
    result = train_run(config, tmp_path / "run", progress=False, log=lambda line: None)
    assert result.model.num_classes == CLASSES + 1
    assert any(f.id == "lopsided-labels" and "(one class has no training images)" in f.message for f in result.findings)


def test_labels_numbered_from_1_or_names_beyond_the_labels_are_said_and_the_data_line_says_what_was_read(
        shapes, tmp_path):
    """The own-dataset audit: labels 1..10 trained 11 outputs with only the doctor's 'a class never
    appears'; extra --class-names silently added outputs; the Data line said neither size nor classes."""
    from scratchnn.data.kaggle_csv import read_kaggle_csv

    images, labels = read_kaggle_csv(shapes / "shapes.csv")
    keep = labels < 10
    write_kaggle_csv(tmp_path / "from1.csv", images[keep], labels[keep] + 1)
    said: list[str] = []
    train_run(tiny(csv=str(tmp_path / "from1.csv")), tmp_path / "a", progress=False, log=said.append)
    assert any(line.startswith("Note: no image is labelled 0, and each of 1..10 is: if the classes are numbered "
                               "from 1, subtract 1 from every label") for line in said), said
    assert any(line.startswith("Data: csv ") and line.endswith("28x28 images of 11 classes (0..10)") for line in said)
    said.clear()
    two = labels < 2
    write_kaggle_csv(tmp_path / "two.csv", np.concatenate([images[two]] * 3), np.concatenate([labels[two]] * 3))
    train_run(tiny(csv=str(tmp_path / "two.csv"), class_names="cat,dog,bird"), tmp_path / "b", progress=False,
              log=said.append)
    assert any("no training image is of class bird: the network has an output for it that nothing trains" in line
               and "number them" not in line for line in said), said  # named: the names say what they are
    assert any(line.endswith("28x28 images of 3 classes (cat, dog, bird)") for line in said)
    said.clear()  # the shapes audit: labels 0, 3 and 7 only were told to check the file, not how to renumber it
    gaps = np.isin(labels, [0, 3, 7])
    write_kaggle_csv(tmp_path / "gaps.csv", np.concatenate([images[gaps]] * 3), np.concatenate([labels[gaps]] * 3))
    train_run(tiny(csv=str(tmp_path / "gaps.csv")), tmp_path / "c", progress=False, log=said.append)
    assert any(line.startswith("Note: no training image is of classes 1, 2, 4, 5, 6...") and line.endswith(
        "; if its classes are only the 3 it holds (0, 3, 7), number them 0..2 in the file and name them with "
        "--class-names") for line in said), said
