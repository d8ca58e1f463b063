"""``scratchnn predict MODEL photo.jpg ...``: photos in, predictions out, one line per bad file."""
import io
import os
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchnn.cli.main import main
from scratchnn.ensemble import load_ensemble
from scratchnn.io import load
from test_images import mnist_digits, paste_on_paper, png_header, small_run  # noqa: F401 (fixtures)


def save_photo(path, gray, fmt=None):
    Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(path, fmt)
    return path


@pytest.fixture(scope="module")
def photos(small_run, mnist_digits, tmp_path_factory):  # noqa: F811
    """A 7 (PNG), the number 2026 (JPEG) made of MNIST dev digits the model reads surely, and bad files."""
    model, (images, labels) = load(small_run), mnist_digits
    probs = model.predict_proba(images.reshape(len(images), -1) / 255)
    sure = (probs.argmax(1) == labels) & (probs.max(1) > 0.95)
    pick = [np.flatnonzero(sure & (labels == d))[i] for i, d in enumerate([7, 2, 0, 2, 6])]
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(11)
    bomb = png_header(20_000, 20_000, zlib.compress(bytes(2501) * 64))
    buffer = io.BytesIO()
    Image.fromarray(images[pick[0]]).save(buffer, "PNG")
    files = {
        "seven": save_photo(folder / "seven.png", paste_on_paper(images[pick[:1]], rng)),
        "number": save_photo(folder / "number.jpg", paste_on_paper(images[pick[1:]], rng), "JPEG"),
        "text": folder / "notes.png",
        "truncated": folder / "cut.png",
        "white": save_photo(folder / "white.png", np.ones((120, 160))),
        "missing": folder / "missing.jpg",
        "bomb": folder / "bomb.png",
    }
    files["text"].write_text("not a picture\n")
    files["truncated"].write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    files["bomb"].write_bytes(bomb)
    return {name: str(path) for name, path in files.items()}


def predict(capsys, *args):
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_each_photo_is_predicted_and_each_bad_file_gets_one_line(capsys, small_run, photos):  # noqa: F811
    order = ["text", "seven", "truncated", "white", "number", "missing", "bomb"]
    code, out, err = predict(capsys, small_run, *[photos[name] for name in order])
    assert code == 1
    assert "Prediction: 7 (probability" in out
    assert "Number: 2026" in out
    lines = err.strip().splitlines()
    assert len(lines) == 5, err
    for line, name, reason in zip(lines, ["text", "truncated", "white", "missing", "bomb"],
                                  ["not an image", "truncated", "no ink found", "no such file", "decompression bomb"]):
        assert line.startswith(f"scratchnn predict: error: {photos[name]}: ") and reason in line, line


def test_a_pattern_the_shell_did_not_expand_names_its_files(capsys, small_run, photos):  # noqa: F811
    """The photo audit: 'photos/*.jpg' quoted (or typed in Windows' cmd, which expands nothing) was
    "no such file"; it names the files it matches, in order, and a pattern that matches none is named."""
    folder = Path(photos["seven"]).parent
    code, out, err = predict(capsys, "--json", small_run, folder / "[ns][eu]*.[jp][pn]g")
    assert code == 0, err
    assert [entry["path"] for entry in json.loads(out)["photos"]] == [photos["number"], photos["seven"]]
    code, out, err = predict(capsys, small_run, folder / "*.heic")
    assert code == 1 and err.strip() == (f"scratchnn predict: error: {folder / '*.heic'}: no such file, and no "
                                         "file matches it as a pattern; give image files, or a pattern that names some")
    (folder / "sub.png").mkdir()  # the review: 'photos/*' named a folder among the photos
    code, out, err = predict(capsys, "--json", small_run, folder / "s*.png")
    assert code == 0 and [entry["path"] for entry in json.loads(out)["photos"]] == [photos["seven"]], err
    (folder / "sub.png").rmdir()


def test_json_holds_what_the_text_says_for_every_photo_and_each_error(capsys, small_run, photos):  # noqa: F811
    """predict --json: stdout is one JSON object (a script's), errors still one line each on stderr."""
    order = ["seven", "text", "number"]
    code, out, err = predict(capsys, small_run, *[photos[name] for name in order], "--json")
    found = json.loads(out)
    names = [member.name for member in load_ensemble([small_run]).members]
    assert code == 1 and found["models"] == names and found["tta"] == 1
    assert [answer["path"] for answer in found["photos"]] == [photos[name] for name in order]
    seven, text, number = found["photos"]
    assert seven["reads"] == "7" and number["reads"] == "2026" and len(number["characters"]) == 4
    assert err.strip() == f"scratchnn predict: error: {text['error']}" and text["error"].startswith(photos["text"])
    _, said, _ = predict(capsys, small_run, photos["seven"])  # the text answer, to the printed 0.1%
    shown = re.search(r"Prediction: (\d) \(probability (\d+\.\d)%\)", said)
    answer = seven["characters"][0]
    assert (answer["prediction"], f"{answer['probability']:.1%}") == (shown[1], f"{shown[2]}%")
    assert answer["probabilities"][answer["prediction"]] == answer["probability"]
    assert list(answer["probabilities"]) == [str(d) for d in range(10)]
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)


def test_a_photo_named_with_a_newline_or_a_byte_that_is_not_utf8(tmp_path, capsys, small_run, photos):  # noqa: F811
    """The locale audit: a photo named 'new<newline>line.png' split its heading across two lines, and
    one named with a Latin-1 byte went into --json as a lone surrogate, which strict parsers refuse."""
    newline = tmp_path / "new\nline.png"
    newline.write_bytes(Path(photos["seven"]).read_bytes())
    code, out, _ = predict(capsys, small_run, newline)
    assert code == 0 and out.splitlines()[0] == f"{tmp_path}/new\\nline.png (the 28x28 image the model sees):"
    latin = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))
    latin.write_bytes(Path(photos["seven"]).read_bytes())
    code, out, _ = predict(capsys, small_run, latin, "--json")
    assert code == 0 and json.loads(out)["photos"][0]["path"] == f"{tmp_path}/caf\\xe9.png"
    out.encode("utf-8")  # no lone surrogate left


def test_a_photo_given_before_the_model_is_named_as_such(capsys, small_run, photos):  # noqa: F811
    code, out, err = predict(capsys, photos["seven"], small_run)
    assert code == 1 and f"{photos['seven']} is an image, not a model: give the model first" in err, err


def test_a_single_photo_shows_the_28x28_and_the_top_3(capsys, small_run, photos):  # noqa: F811
    code, out, err = predict(capsys, small_run, photos["seven"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{photos['seven']} (the 28x28 image the model sees):"
    assert len(lines) == 1 + 28 + 2
    top = re.findall(r"(\d) (\d+\.\d)%", lines[-1])
    assert lines[-1].startswith("Top 3: ") and len(top) == 3 and top[0][0] == "7"
    shares = [float(p) for _, p in top]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.05


def test_a_number_prints_each_digit_with_its_probability(capsys, small_run, photos):  # noqa: F811
    code, out, _ = predict(capsys, small_run, photos["number"])
    assert code == 0
    assert out.startswith(f"{photos['number']}: 4 digits, as the model sees them:")
    assert re.findall(r"digit (\d): (\d) \(\d+\.\d%\)   top 3: ", out) == [("1", "2"), ("2", "0"), ("3", "2"), ("4", "6")]


def test_digits_option_forces_one_digit_or_a_number(capsys, small_run, photos):  # noqa: F811
    _, out, _ = predict(capsys, small_run, photos["number"], "--digits", "single")
    assert "Prediction:" in out and "Number:" not in out
    _, out, _ = predict(capsys, small_run, photos["seven"], "--digits", "multi")
    assert "Number: 7" in out and "1 digit," in out


def test_explain_preprocessing_saves_the_steps(capsys, small_run, photos, tmp_path):  # noqa: F811
    out_png = tmp_path / "steps.png"
    code, out, _ = predict(capsys, small_run, photos["seven"], "--explain-preprocessing", out_png)
    assert code == 0 and f"Saved the preprocessing steps to {out_png}" in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = predict(capsys, small_run, photos["seven"], photos["number"], "--explain-preprocessing", out_png)
    assert code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"steps.png", "steps-seven.png", "steps-number.png"}


def test_a_refused_photo_still_gets_its_figure_as_far_as_the_steps_went(capsys, small_run, photos,  # noqa: F811
                                                                         tmp_path, monkeypatch):
    """The photo audit: a photo refused ("no ink found") drew nothing, though it is the photo whose
    steps a user most needs to see (what stood out from the paper, if anything)."""
    import scratchnn.plots.preprocessing as figure

    titles = []
    real = figure.save_preprocessing_figure
    monkeypatch.setattr(figure, "save_preprocessing_figure",
                        lambda steps, path, title=None: titles.append((title, len(steps))) or real(steps, path, title))
    code, out, err = predict(capsys, small_run, photos["white"], photos["seven"], "--explain-preprocessing",
                             tmp_path / "s.png")
    assert code == 1 and "no ink found" in err and "Prediction: 7" in out
    assert {p.name for p in tmp_path.glob("*.png")} == {"s-white.png", "s-seven.png"}
    assert f"Saved the preprocessing steps to {tmp_path / 's-white.png'}" in out
    assert titles[0] == (f"{photos['white']}: stopped here: no ink found: nothing stands out from the paper; "
                         "photograph the digit larger, sharper or with more contrast", 4)
    assert titles[1] == (photos["seven"], 7)


def test_steps_before_failure_end_where_the_pipeline_stopped():
    from scratchnn.photos.preprocess import preprocess_steps, steps_before_failure

    steps, problem = steps_before_failure(np.ones((120, 160)))
    assert problem.startswith("no ink found")
    assert [name.split(" (")[0] for name, _ in steps] == ["photo", "flattened", "threshold", "ink kept"]
    assert not steps[-1][1].any()  # nothing stood out from the paper
    one = np.full((120, 90), 0.9)
    one[20:100, 40:52] = 0.1
    steps, problem = steps_before_failure(one)
    assert problem == "" and [name for name, _ in steps] == [name for name, _ in preprocess_steps(one)[:4]]
    with pytest.raises(Exception, match="no ink found"):
        preprocess_steps(np.ones((120, 160)))


def test_photos_named_alike_get_a_figure_each(capsys, small_run, photos, tmp_path):  # noqa: F811
    twin = tmp_path / "other" / "seven.png"
    twin.parent.mkdir()
    twin.write_bytes(open(photos["seven"], "rb").read())
    code, _, _ = predict(capsys, small_run, photos["seven"], twin, "--explain-preprocessing", tmp_path / "s.png")
    assert code == 0
    assert {p.name for p in tmp_path.glob("*.png")} == {"s-seven-1.png", "s-seven-2.png"}


def test_photos_named_alike_but_for_case_get_figures_a_case_blind_folder_keeps_apart(capsys, tmp_path):
    """Windows and macOS see s-Digit.png and s-digit.png as one file: the second figure replaced the first."""
    from scratchnn.io import save
    from scratchnn.model import Sequential
    from scratchnn.nn import Dense

    save(Sequential([Dense(784, 10, rng=0)]), tmp_path / "model.safetensors")
    one = np.full((120, 90), 0.9)
    one[20:100, 40:52] = 0.1  # a dark stroke on light paper
    photos = [save_photo(tmp_path / "Digit.png", one), save_photo(tmp_path / "digit.jpg", one, "JPEG")]
    code, _, err = predict(capsys, tmp_path / "model.safetensors", *photos,
                           "--explain-preprocessing", tmp_path / "s.png")
    assert code == 0, err
    assert {p.name for p in tmp_path.glob("s-*.png")} == {"s-Digit-1.png", "s-digit-2.png"}


def test_a_figure_that_cannot_be_saved_is_one_line_and_the_rest_go_on(capsys, small_run, photos, tmp_path):  # noqa: F811
    (tmp_path / "steps.png").write_text("a file where a folder is needed")
    code, out, err = predict(capsys, small_run, photos["seven"], photos["number"],
                             "--explain-preprocessing", tmp_path / "steps.png" / "steps.png")
    assert code == 1
    assert "Prediction: 7" in out and "Number: 2026" in out
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("not a folder" in line for line in lines), err


def test_a_figure_of_a_kind_matplotlib_cannot_write_is_refused_before_anything_is_read(capsys, small_run,  # noqa: F811
                                                                                        photos, tmp_path):
    """The plots audit: each photo's answer was printed, then a failure for each figure."""
    code, out, err = predict(capsys, small_run, photos["seven"], photos["number"],
                             "--explain-preprocessing", tmp_path / "steps.docx")
    assert code == 1 and out == "" and err.count("\n") == 1 and "steps.docx: cannot draw .docx files" in err, err
    code, out, err = predict(capsys, small_run, photos["seven"], "--explain-preprocessing", tmp_path / "typo" / "s.png")
    assert code == 1 and out == "" and "the folder" in err and "does not exist" in err  # the photo audit: made it
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("args, message", [
    ([], "nothing to predict: give image files after the model"),
    (["photo.png", "--index", "3"], "give image files to read or --index N for an image of the data set, not both"),
    (["photo.png", "--save", "x.png"], "--save goes with --index"),
    (["--index", "3", "--explain-preprocessing", "x.png"], "--explain-preprocessing goes with photos"),
])
def test_photos_or_index_not_both(capsys, small_run, args, message):  # noqa: F811
    code, out, err = predict(capsys, small_run, *args)
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and len(lines) == 1
    assert lines[0].startswith("scratchnn predict: error: ") and message in lines[0]


def test_a_folder_of_photos_after_the_model_is_explained(capsys, small_run, tmp_path):  # noqa: F811
    """A folder after the model is another model (an ensemble member), so a folder of photos alone
    leaves nothing to predict: the error says to give its images."""
    (tmp_path / "photos").mkdir()
    code, out, err = predict(capsys, small_run, tmp_path / "photos")
    assert code == 1 and out == ""
    assert "a folder there is read as another model, so give its images: photos/*.png" in err


def test_photos_sorted_into_folders_are_scored_against_them(capsys, small_run, photos, tmp_path,  # noqa: F811
                                                           monkeypatch):
    """A learner sorts photos of their own handwriting into folders named after what each shows
    and asks how many the model reads right (there was no way but reading every answer)."""
    import shutil

    def put(name, folder):
        (tmp_path / folder).mkdir(exist_ok=True)
        return str(shutil.copy(photos[name], tmp_path / folder / Path(photos[name]).name))

    seven, number, wrong, blank = put("seven", "7"), put("number", "2026"), put("seven", "1"), put("white", "3")
    elsewhere = put("seven", "misc")
    code, out, err = predict(capsys, small_run, seven, number, wrong, blank, elsewhere, seven, "--folder-labels")
    assert code == 1 and "no ink" in err  # the blank photo is not read: counted wrong
    assert f"{seven}: reads 7 (" in out and out.splitlines()[0].endswith(": right")
    assert f"{wrong}: reads 7 (" in out and ": wrong, its folder says 1" in out
    summary = out[out.index("Read right:"):].splitlines()
    # the 7 given twice counts once
    assert summary[0] == "Read right: 2 of 4 photos (50.0%), each against the folder it is in"
    assert summary[1] == f"  wrong: {wrong} (1) read as 7; {blank} (3) not read"
    assert summary[2] == ("  not counted: 1 in folders named after no class (misc; the classes: 0, 1, 2, 3, 4, 5, 6, "
                          "7, 8, 9)")
    assert summary[3] == "  by folder: 1 0 of 1, 3 0 of 1, 7 1 of 1, 2026 1 of 1"  # the classes' order, then numbers
    code, out, _ = predict(capsys, small_run, seven, wrong, "--folder-labels", "--json")
    scored = json.loads(out)["folder_labels"]
    assert scored == {"right": 1, "counted": 2, "accuracy": 0.5, "not_counted": 0,
                      "by_folder": {"1": {"right": 0, "counted": 1}, "7": {"right": 1, "counted": 1}},
                      "wrong": [{"path": wrong, "folder": "1", "reads": "7"}]}
    monkeypatch.chdir(tmp_path / "7")  # inside the folder: its photos are still in 7
    code, out, _ = predict(capsys, small_run, Path(seven).name, "--folder-labels")
    assert "Read right: 1 of 1 photo (100.0%)" in out
    assert predict(capsys, small_run, "--index", "3", "--folder-labels")[0] == 1  # no photos: nothing to score


def test_a_photo_in_a_folder_of_one_digit_is_read_as_one(capsys, small_run, mnist_digits, tmp_path):  # noqa: F811
    """The review: a 7 whose stroke has a gap fell into two pieces, was read as a number, and the
    score blamed the model for the splitting."""
    from scratchnn.photos.preprocess import read_image, split_digits

    images, labels = mnist_digits
    (tmp_path / "7").mkdir()
    for seven in images[labels == 7]:  # a 7 that a gap across its stroke leaves in two pieces side by side
        gapped = np.kron(seven.astype(np.float32) / 255, np.ones((6, 6)))
        columns = np.flatnonzero(gapped.max(axis=0) > 0.5)
        gapped[:, columns[len(columns) // 2] - 3:columns[len(columns) // 2] + 3] = 0
        photo = save_photo(tmp_path / "7" / "gap.png", 1 - gapped)
        if len(split_digits(read_image(photo))) == 2 and "reads 7 (" in predict(capsys, small_run, photo,
                                                                                 "--digits", "single",
                                                                                 "--folder-labels")[1]:
            break
    code, out, _ = predict(capsys, small_run, photo, "--folder-labels")
    assert f"{photo}: reads 7 (" in out, out
    assert "(a photo in a folder of one class is read as one character; --digits multi splits it)" in out
    code, out, _ = predict(capsys, small_run, photo, "--folder-labels", "--digits", "multi")
    assert "reads 7 (" not in out and "wrong, its folder says 7" in out


def test_folder_labels_are_the_models_classes_or_for_digits_numbers(tmp_path):
    from scratchnn.photos.folder_labels import FolderScore, folder_label

    digits, words, letters = list("0123456789"), ["T-shirt/top", "Trouser", "Bag"], list("abc")
    assert folder_label("mine/7/a.jpg", digits) == "7" and folder_label("mine/042/a.jpg", digits) == "042"
    assert folder_label("mine/seven/a.jpg", digits) is None and folder_label("mine/٧/a.jpg", digits) is None
    assert folder_label("mine/７/a.jpg", digits) == "7"  # a full-width 7, typed with a Japanese keyboard
    assert folder_label("c/ＴＲＯＵＳＥＲ/a.jpg", ("Trouser", "Bag")) == "Trouser"
    assert folder_label("clothes/Trouser/a.jpg", words) == "Trouser" == folder_label("c/trouser/a.jpg", words)
    assert folder_label("c/T-shirt_top/a.jpg", words) == "T-shirt/top"  # no folder name holds a '/'
    assert folder_label("x/TrouserBag/a.jpg", words) is None
    assert folder_label("photos/a.jpg", letters) is None and folder_label("mine/A/a.jpg", letters) == "a"
    empty = FolderScore(tuple(digits))
    empty.add(tmp_path / "photos" / "a.jpg", "7")
    assert empty.lines()[0].startswith("No photo was scored: none is in a folder named after what it shows (the "
                                       "model's classes: 0, 1, 2")
    assert empty.to_dict()["accuracy"] is None
    many = FolderScore(tuple(digits))
    for k in range(13):
        many.add(tmp_path / "3" / f"{k}.png", "8")
    assert many.lines()[1].endswith("; and 3 more") and "by folder" not in "".join(many.lines())  # one folder
