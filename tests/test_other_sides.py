"""CSV files of square images of another side than 28 (8x8 scikit-learn digits, 12x12, 64x64):
the side comes from the file, a network of that input trains, and every command that reads the
run's data or a test file of another side says so in one line."""
import socket

import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.cli.train_cmd import next_steps
from scratchnn.data.idx import write_idx
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.io import read_metadata
from test_report import small_csv, tiny_run

SIDE = 12


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    """600 12x12 images of 10 classes, each class a bright row of its own, as a training CSV and
    a label-less test CSV."""
    folder = tmp_path_factory.mktemp("bars")
    rng = np.random.default_rng(0)
    labels = np.arange(600, dtype=np.uint8) % 10
    images = rng.integers(0, 50, (600, SIDE, SIDE)).astype(np.uint8)
    images[np.arange(600), labels + 1] = 255
    write_kaggle_csv(folder / "train.csv.gz", images, labels)
    write_kaggle_csv(folder / "test.csv", images[:40])
    return folder


@pytest.mark.parametrize("preset", ["seed", "cnn"])
def test_a_csv_of_12x12_images_trains_a_network_of_that_input(bars, tmp_path, capsys, preset):
    run = tmp_path / "run"
    assert main(["train", "--preset", preset, "--csv", str(bars / "train.csv.gz"), "--dev-size", "100",
                 "--epochs", "2", "--out", str(run)]) == 0
    assert read_metadata(run)["image_shape"] == [SIDE, SIDE]
    out = capsys.readouterr().out
    assert f"scratchnn evaluate {run}" in out and "scratchnn predict" not in out and "scratchnn serve" not in out
    assert main(["evaluate", str(run)]) == 0
    assert "Accuracy" in capsys.readouterr().out
    assert main(["predict", str(run), "--index", "3"]) == 0
    assert "True label: " in capsys.readouterr().out


def test_a_submission_needs_test_images_of_the_models_side(bars, tmp_path, capsys, shared_dir):
    run = tmp_path / "run"
    assert main(["train", "--csv", str(bars / "train.csv.gz"), "--dev-size", "100", "--iterations", "30",
                 "--out", str(run)]) == 0
    assert main(["predict", str(run), "--csv", str(bars / "test.csv"), "--submission", str(tmp_path / "s.csv")]) == 0
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 41
    capsys.readouterr()
    digits = shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz"
    assert main(["predict", str(run), "--csv", str(digits), "--ignore-labels",
                 "--submission", str(tmp_path / "t.csv")]) == 1
    error = capsys.readouterr().err.strip()
    assert "images are 28x28, the model takes 12x12 images" in error and "\n" not in error
    assert not (tmp_path / "t.csv").exists()


def test_the_next_steps_offer_photos_and_the_page_to_28x28_models_in_words_of_their_classes(tmp_path):
    digits = next_steps(tmp_path, report=True, classes=list("0123456789"), image_shape=(28, 28))
    assert "my-digit.png" in digits and "draw digits at" in digits and "report.html" in digits
    letters = next_steps(tmp_path, report=False, classes=list("abc"), image_shape=(28, 28))
    assert "my-drawing.png" in letters and "draw one at" in letters and "report.html" not in letters
    for shape in ((12, 12), (16, 49), None):  # 784 pixels are not 28x28 (the shapes audit); None: not known
        small = next_steps(tmp_path, report=False, classes=list("0123456789"), image_shape=shape)
        assert "evaluate" in small and "predict" not in small and "serve" not in small
    broken = next_steps(tmp_path, report=True, broken=True)  # --fault: a model broken on purpose is not served
    assert f"scratchnn doctor {tmp_path}" in broken and "predict" not in broken and "serve" not in broken


def test_a_resumed_fault_run_is_not_offered_to_be_served(tmp_path, shared_dir, capsys):
    """The review: --resume's flags name no --fault, so its next steps offered photos and the page."""
    run, digits = tmp_path / "broken", shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz"
    assert main(["train", "--preset", "seed", "--fault", "zero-init", "--epochs", "20", "--train-size", "300",
                 "--csv", str(digits), "--out", str(run), "--quiet"]) == 0
    (run / "report.html").unlink()  # a resume that draws the report again ends with the next steps
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    said = capsys.readouterr().out
    assert f"scratchnn doctor {run}" in said and "scratchnn serve" not in said and "scratchnn predict" not in said, said


def test_a_next_step_whose_extra_is_missing_says_how_to_install_it(tmp_path, monkeypatch):
    """A core install was offered 'scratchnn serve RUN', which then asks for the web extra."""
    import importlib.util

    assert "first: pip install" not in next_steps(tmp_path, report=False)  # this venv has every extra
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else
                        real_find_spec(name, *a))
    lines = next_steps(tmp_path, report=False).splitlines()
    assert [line for line in lines if "first: pip install" in line] == [
        next(line for line in lines if "scratchnn serve" in line)]
    assert lines[-1].endswith("draw digits at http://127.0.0.1:8000 (first: pip install 'scratchnn[web]')")


def test_the_python_helper_gives_rows_of_the_files_pixels(bars):
    from scratchnn.data import load_csv

    data = load_csv(bars / "train.csv.gz", dev_size=100)
    assert data.x_train.shape == (500, SIDE * SIDE) and data.x_dev.shape == (100, SIDE * SIDE)
    images = load_csv(bars / "train.csv.gz", dev_size=100, input_shape=(1, SIDE, SIDE))
    assert images.x_dev.shape == (100, 1, SIDE, SIDE)


def test_a_model_of_784_pixels_that_are_not_28x28_is_not_fed_photos_or_drawings(tmp_path, capsys):
    """The shapes audit: a model of 16x49 images (784 pixels) was offered photos and the page, read
    a drawn 7 squeezed into 16x49 as '5 (89.4%)', and was served: only the pixel count was checked."""
    from PIL import Image

    from scratchnn.errors import ShapeError
    from scratchnn.web.inference import ModelService

    rng = np.random.default_rng(0)
    labels = np.arange(300, dtype=np.uint8) % 10
    images = rng.integers(0, 50, (300, 16, 49)).astype(np.uint8)
    images[np.arange(300), labels + 1] = 255
    write_idx(tmp_path / "images.idx", images)
    write_idx(tmp_path / "labels.idx", labels)
    run = tmp_path / "run"
    assert main(["train", "--images", str(tmp_path / "images.idx"), "--labels", str(tmp_path / "labels.idx"),
                 "--dev-size", "100", "--epochs", "1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"scratchnn evaluate {run}" in out and "scratchnn predict" not in out and "scratchnn serve" not in out
    photo = tmp_path / "seven.png"
    Image.new("L", (60, 60), 255).save(photo)
    assert main(["predict", str(run), str(photo)]) == 1
    assert "this model reads 16x49 images; photos become 28x28 digits" in capsys.readouterr().err
    assert main(["explain", str(run), "--image", str(photo)]) == 1
    assert "the model reads 16x49 images, but --image becomes a 28x28 digit" in capsys.readouterr().err
    assert main(["explain", str(run), "--index", "0"]) == 0  # its own images it explains
    with pytest.raises(ShapeError, match="the page feeds 28x28 images, but the model reads 16x49 images"):
        ModelService(run / "model.safetensors")


def test_serve_refuses_gallery_files_that_do_not_fit_its_model_before_it_listens(bars, shared_dir, tmp_path, capsys,
                                                                                monkeypatch):
    """The shapes audit: a 28x28 model served with --csv of 12x12 images started without a word,
    and the page's gallery got a 409 whose reason was in the log."""
    pytest.importorskip("fastapi")
    run = tiny_run(small_csv(shared_dir, tmp_path), tmp_path / "run")
    monkeypatch.setattr(socket, "socket", None)  # it must not get as far as listening
    assert main(["serve", str(run), "--csv", str(bars / "train.csv.gz")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("scratchnn serve: error: the data given for the gallery cannot be shown with the served "
                            "model: ") and "images are 12x12, the model takes 28x28 images" in error, error
