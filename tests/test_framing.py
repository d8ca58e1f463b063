"""Photos framed as the model's training images were: the ink box is measured from the data,
kept in the model file, and used by predict, explain and the page."""
import numpy as np
import pytest
from web_support import LOCAL_BASE_URL, drawn_one, model_path  # noqa: F401

from scratchnn.cli.main import main
from scratchnn.data import DataSource, write_kaggle_csv
from scratchnn.data.framing import MNIST_BOX, ink_box, photo_box
from scratchnn.ensemble import load_ensemble
from scratchnn.errors import ConfigError
from scratchnn.io import load, read_metadata, save
from scratchnn.photos.preprocess import preprocess_steps, to_mnist


def ink_extent(image: np.ndarray, faint: float = 0.1) -> int:
    """The longer side of the box around the ink of one image (H, W) in 0..1."""
    rows, cols = np.flatnonzero((image > faint).any(1)), np.flatnonzero((image > faint).any(0))
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def bars(box: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """n images of 10 classes: class k a bright bar at its own height, the whole set's ink in a
    box x box square (the bars span it, the column at the top left marks its height)."""
    labels = np.arange(n, dtype=np.uint8) % 10
    images = np.zeros((n, 28, 28), np.uint8)
    top = (28 - box) // 2
    images[:, top:top + box, top] = 200
    for image, label in zip(images, labels):
        row = top + 1 + int(label) * (box - 2) // 10
        image[row:row + 2, top:top + box] = 255
    return images, labels


def test_mnist_digits_fill_a_20_pixel_box(shared_dir):
    digits = DataSource(csv=str(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz")).load()
    assert ink_box(digits.images) == MNIST_BOX == 20


def test_the_box_is_the_median_of_the_images_and_blank_sets_get_mnists():
    assert ink_box(bars(24)[0]) == 24 and ink_box(bars(28)[0]) == 28
    assert ink_box(np.zeros((5, 28, 28), np.uint8)) == MNIST_BOX
    mixed = np.concatenate([bars(12, 4)[0], bars(26, 3)[0]])
    assert ink_box(mixed) == 12


@pytest.mark.parametrize("metadata, box", [({}, 20), ({"ink_box": 26}, 26), ({"ink_box": 40}, 28),
                                           ({"ink_box": 3}, 8), ({"ink_box": True}, 20), ({"ink_box": "x"}, 20)])
def test_a_model_files_box_for_photos(metadata, box):
    assert photo_box(metadata) == box


@pytest.mark.parametrize("box", [16, 20, 24, 28])
def test_a_photos_ink_is_fitted_into_the_box(box):
    photo = 1 - drawn_one(200)  # dark ink on light paper
    assert ink_extent(to_mnist(photo, ink="dark", box=box)) == box
    assert preprocess_steps(photo, ink="dark", box=box)[-2][0].startswith(f"fit {box}x{box}")


@pytest.mark.parametrize("box", [7, 29, 20.5, True])
def test_a_box_outside_the_field_is_refused(box):
    with pytest.raises(ConfigError, match="box must be a whole number of pixels from 8 to 28"):
        to_mnist(1 - drawn_one(), ink="dark", box=box)


def test_a_run_keeps_its_datas_box_and_its_photos_are_framed_by_it(tmp_path, capsys):
    images, labels = bars(24)
    write_kaggle_csv(tmp_path / "bars.csv", images, labels)
    run = tmp_path / "run"
    assert main(["train", "--csv", str(tmp_path / "bars.csv"), "--dev-size", "50", "--epochs", "1",
                 "--no-report", "--out", str(run)]) == 0
    assert read_metadata(run)["ink_box"] == 24 and load_ensemble([run]).ink_box == 24
    from PIL import Image

    Image.fromarray(np.round((1 - drawn_one(200)) * 255).astype(np.uint8)).save(tmp_path / "one.png")
    assert main(["predict", str(run), str(tmp_path / "one.png"), "--explain-preprocessing",
                 str(tmp_path / "steps.png")]) == 0
    assert "the 28x28 image the model sees" in capsys.readouterr().out
    assert main(["explain", str(run), "--image", str(tmp_path / "one.png")]) == 0


def test_the_page_frames_a_drawing_by_the_served_models_box(model_path, tmp_path):  # noqa: F811
    from fastapi.testclient import TestClient

    from scratchnn.web.app import create_app

    assert read_metadata(model_path)["ink_box"] == 20  # trained on MNIST
    framed = save(load(model_path), tmp_path / "framed.safetensors",
                  metadata={**read_metadata(model_path), "ink_box": 26})
    for path, box in ((model_path, 20), (framed, 26)):
        with TestClient(create_app(path), base_url=LOCAL_BASE_URL) as client:
            response = client.post("/api/predict", json={"pixels": drawn_one().tolist()})
        assert response.status_code == 200, response.text
        assert ink_extent(np.array(response.json()["input"])) == box
