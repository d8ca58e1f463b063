"""Data that trains without a word and misleads (a learner-mistakes audit): dark digits on a light
page, images stored column by column, dev images that are training images again, a CSV whose
label is its last column read as all one class. Each is named before training."""
import gzip

import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data import write_idx
from scratchnn.data.idx import read_idx
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.data.looks import copies_of_training, dark_on_light, faint, wider_than_tall


@pytest.fixture(scope="module")
def mnist(shared_dir):
    folder = shared_dir / "datasets" / "mnist"
    return (read_idx(folder / "t10k-images-idx3-ubyte.gz")[:2000],
            read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:2000])


def test_mnist_as_it_is_gets_no_note(mnist):
    images, _ = mnist
    assert dark_on_light(images, "d") is None and wider_than_tall(images, "d") is None
    assert copies_of_training(images[:1500], images[1500:]) is None


def test_dark_digits_on_a_light_page_are_named(mnist):
    note = dark_on_light(255 - mnist[0], "scans.csv")
    assert note.startswith("Note: scans.csv: the images' borders are light (100% of white") and "255 - pixel" in note


def test_pixels_on_a_smaller_scale_are_named_with_how_to_scale_them(mnist, tmp_path, capsys):
    """The shapes audit: scikit-learn's digits (0..16) were divided by 255 without a word; with
    batch norm they train as well, but the model then misreads anything of 0..255."""
    images, labels = mnist
    sixteen = (images.astype(np.uint16) * 16 // 255).astype(np.uint8)
    assert faint(images, "d") is None and faint(np.zeros((3, 8, 8), np.uint8), "d") is None  # black: no scale
    assert faint(np.full((3, 8, 8), 63, np.uint8), "d") and not faint(np.full((3, 8, 8), 64, np.uint8), "d")
    note = faint(sixteen, "digits.csv")
    assert note.startswith("Note: digits.csv: the brightest pixel is 16 of 255: pixels stored on a smaller scale")
    assert note.endswith("scale them to 0..255 first (pixel * 255 // 16)"), note
    path = write_kaggle_csv(tmp_path / "sixteen.csv", sixteen[:600], labels[:600])
    code, out, _ = _train(capsys, "--csv", path, "--out", tmp_path / "a")
    assert code == 0 and "the brightest pixel is 16 of 255" in out, out


def test_images_stored_column_by_column_are_named_with_the_flag_that_turns_them(mnist):
    note = wider_than_tall(mnist[0].transpose(0, 2, 1), "t.csv")
    assert note and "--transpose" in note, note


def test_clothes_upright_are_not_taken_for_turned_images():
    path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    try:
        clothes = read_idx(path)
    except OSError:
        pytest.skip(f"Fashion-MNIST is not installed ({path})")
    assert wider_than_tall(clothes, "c") is None and dark_on_light(clothes, "c") is None
    assert wider_than_tall(clothes.transpose(0, 2, 1), "c") is not None  # 61% wide turned, 33% upright


def test_dev_images_that_are_training_images_again_are_counted(mnist):
    images = mnist[0]
    assert "15 of the 100 dev images are copies" in copies_of_training(images[:500], images[485:585])
    assert copies_of_training(images[:500], images[499:599]) is None  # one in a hundred happens


def _train(capsys, *args):
    code = main(["train", *map(str, args), "--hidden", "16", "--epochs", "1", "--batch-size", "100",
                 "--dev-size", "100", "--threads", "1", "--no-report"])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_says_so_before_training(mnist, tmp_path, capsys):
    images, labels = mnist
    doubled = write_kaggle_csv(tmp_path / "doubled.csv", np.concatenate([images[:300]] * 2),
                               np.concatenate([labels[:300]] * 2))
    code, out, _ = _train(capsys, "--csv", doubled, "--out", tmp_path / "a")
    assert code == 0 and "of the 100 dev images are copies of training images" in out, out
    write_idx(tmp_path / "inverted-images", 255 - images[:600])
    write_idx(tmp_path / "inverted-labels", labels[:600])
    code, out, _ = _train(capsys, "--images", tmp_path / "inverted-images", "--labels", tmp_path / "inverted-labels",
                          "--out", tmp_path / "b")
    assert code == 0 and "images' borders are light" in out and "copies" not in out, out
    code, out, err = main(["evaluate", str(tmp_path / "a"), "--images", str(tmp_path / "inverted-images"),
                           "--labels", str(tmp_path / "inverted-labels"), "--set", "all"]), *capsys.readouterr()
    assert code == 0 and "images' borders are light" in err and "Accuracy" in out, (out, err)
    code, out, err = main(["evaluate", str(tmp_path / "b")]), *capsys.readouterr()  # its own data: as it trained
    assert code == 0 and "borders" not in out + err, (out, err)


def test_turned_images_get_no_note_once_transpose_turns_them(mnist, tmp_path):
    from scratchnn.data import DataSource
    from scratchnn.training.run_data import note_image_looks
    said = []
    source = DataSource(csv=str(tmp_path / "t.csv"))
    note_image_looks(mnist[0].transpose(0, 2, 1), source, transposed=False, log=said.append)
    note_image_looks(mnist[0], source, transposed=True, log=said.append)  # a turned file, turned back upright
    assert len(said) == 1 and "--transpose turns each" in said[0]
    note_image_looks(mnist[0].transpose(0, 2, 1), source, transposed=True, log=said.append)  # upright, turned
    assert len(said) == 2 and said[1].endswith("were they stored upright already? If so, leave out --transpose")
    wide = np.concatenate([mnist[0][:500], mnist[0][500:1000]], axis=2)  # 28x56 pairs of digits: wide by design
    assert wider_than_tall(wide, "pairs") is None


@pytest.mark.parametrize("side", [8, 16, 64])
def test_turned_images_of_other_sides_are_named_too(mnist, side):
    """The shapes audit: 'wider' was 3 pixels whatever the side, which 8x8 digits never are."""
    from PIL import Image

    images = np.stack([np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))
                       for image in mnist[0][:500]])
    assert wider_than_tall(images, "d") is None
    note = wider_than_tall(images.transpose(0, 2, 1), "d")
    assert note and f"at least {max(1, round(3 * side / 28))} pixel" in note, note


def test_a_csv_with_its_label_last_and_no_header_is_refused_not_trained_to_100_percent(mnist, tmp_path, capsys):
    images, labels = mnist
    rows = np.column_stack([images[:400].reshape(400, -1), labels[:400]])  # pixel0 (always 0) read as the label
    path = tmp_path / "last.csv.gz"
    with gzip.open(path, "wt") as file:
        file.writelines(",".join(map(str, row)) + "\n" for row in rows.tolist())
    code, _, err = _train(capsys, "--csv", path, "--out", tmp_path / "run")
    assert code == 1 and "every image is labelled 0, so there is nothing to tell apart" in err, err
    assert "(pixel0,...,pixel783,label)" in err and not (tmp_path / "run").exists()
    zeros = write_kaggle_csv(tmp_path / "zeros.csv", images[labels == 0][:300], labels[labels == 0][:300])
    code, _, err = _train(capsys, "--csv", zeros, "--out", tmp_path / "zeros")  # its header puts the label first
    assert code == 1 and "every image is labelled 0" in err and "another column" not in err, err


def test_on_lopsided_labels_the_dev_accuracy_is_told_beside_what_one_answer_scores(mnist, tmp_path, capsys):
    """The learner-mistakes audit: 0.94 on digits 95% ones was what always answering 1 scores."""
    images, labels = mnist
    ones, others = np.flatnonzero(labels == 1)[:190], np.flatnonzero(labels != 1)[:10]
    rows = np.concatenate([ones, others])
    lopsided = write_kaggle_csv(tmp_path / "ones.csv", images[rows], labels[rows])
    code, out, _ = _train(capsys, "--csv", lopsided, "--out", tmp_path / "run")
    assert code == 0 and "(always answering 1 would score 0.9" in out, out
    even = write_kaggle_csv(tmp_path / "even.csv", images[:300], labels[:300])
    code, out, _ = _train(capsys, "--csv", even, "--out", tmp_path / "even")
    assert code == 0 and "always answering" not in out, out
    zeros_ones = np.flatnonzero(labels < 2)[:300]  # two classes about even, on ten outputs: not lopsided
    two = write_kaggle_csv(tmp_path / "two.csv", images[zeros_ones], labels[zeros_ones])
    code, out, _ = _train(capsys, "--csv", two, "--out", tmp_path / "two")
    assert code == 0 and "always answering" not in out, out
