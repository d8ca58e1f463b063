"""TTA, ensembles and Kaggle submissions on real models: small MLPs trained briefly on the shared
MNIST digits by ``scratchnn train``, then read back by ``evaluate``, ``predict`` and the web API."""
import gzip
import json

import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data import read_kaggle_csv, scale_pixels, write_kaggle_csv
from scratchnn.ensemble import load_ensemble
from scratchnn.io import load
from scratchnn.metrics import accuracy, confusion_matrix, format_report
from scratchnn.training.config import TrainConfig
from scratchnn.training.run_data import load_set

MNIST_CSV = "datasets/mnist/t10k-kaggle.csv.gz"


def train(out, csv, seed, hidden=64, *more):
    assert main(["train", "--hidden", str(hidden), "--epochs", "2", "--batch-size", "128", "--csv", str(csv),
                 "--seed", str(seed), "--out", str(out), "--no-report", *more]) == 0
    return out


@pytest.fixture(scope="module")
def runs(shared_dir, tmp_path_factory):
    """ens/seed-0 and ens/seed-1 (two seeds: two splits), and wide (seed 0, 96 units: seed-0's split)."""
    base = tmp_path_factory.mktemp("members")
    csv = shared_dir / MNIST_CSV
    return {"csv": csv, "ens": base / "ens", "seed-0": train(base / "ens" / "seed-0", csv, 0),
            "seed-1": train(base / "ens" / "seed-1", csv, 1), "wide": train(base / "wide", csv, 0, hidden=96)}


@pytest.fixture(scope="module")
def test_csv(runs, tmp_path_factory):
    """The shared digits without their label column, as Kaggle's test.csv."""
    images, labels = read_kaggle_csv(runs["csv"])
    path = write_kaggle_csv(tmp_path_factory.mktemp("kaggle") / "test.csv", images)
    assert path.read_text().startswith("pixel0,pixel1,")
    return path, labels.astype(int)


def output(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def read_submission(path) -> np.ndarray:
    lines = path.read_text().splitlines()
    assert lines[0] == "ImageId,Label"
    rows = np.array([line.split(",") for line in lines[1:]], dtype=int)
    assert np.array_equal(rows[:, 0], np.arange(1, len(rows) + 1))
    return rows[:, 1]


@pytest.mark.parametrize("models, tta", [(["seed-0"], 1), (["ens"], 4)])
def test_a_submission_matches_evaluate(runs, test_csv, tmp_path, capsys, models, tta):
    """The acceptance check: 10,000 rows + header, and the predictions evaluate scores."""
    test, labels = test_csv
    paths = [str(runs[name]) for name in models]
    submission = tmp_path / "submission.csv"
    said = output(capsys, ["predict", *paths, "--csv", str(test), "--submission", str(submission), "--tta", str(tta)])
    assert f"Wrote {submission}: 10,000 predictions" in said
    predicted = read_submission(submission)
    assert len(predicted) == 10_000
    report = output(capsys, ["evaluate", *paths, "--set", "all", "--csv", str(runs["csv"]), "--tta", str(tta)])
    matrix = confusion_matrix(labels, predicted, 10)
    assert format_report(matrix, [str(d) for d in range(10)]) in report
    assert f"{accuracy(predicted, labels):.4f} ({int(matrix.trace()):,}/10,000)" in report
    assert accuracy(predicted, labels) > 0.8


def test_evaluate_prints_tta_beside_plain_and_each_member(runs, capsys):
    report = output(capsys, ["evaluate", str(runs["seed-0"]), str(runs["wide"]), "--tta", "8"])
    config = TrainConfig.from_dict(load_ensemble([runs["seed-0"]]).members[0].metadata["config"])
    images, labels, _, _ = load_set(config, "dev")
    x, labels = scale_pixels(images), labels.astype(int)
    models = [load(runs["seed-0"]), load(runs["wide"])]
    rows = {line.split()[0]: [float(v) for v in line.split()[-2:]]
            for line in report.splitlines() if line.startswith("  ") and line.split()[-1][:2] == "0."}
    for name, model in zip(("seed-0", "wide"), models):
        plain, tta = accuracy(model.predict(x), labels), accuracy(model.predict(x, tta=8), labels)
        assert rows[str(runs[name])] == [round(plain, 4), round(tta, 4)], report
        assert tta > plain - 0.02, "small shifts and turns should not cost a trained model much"
    assert "ensemble" in report and "Accuracy (ensemble of 2, TTA x8)" in report
    assert "TTA x8: the original and 7 views (shifts, turns and sizes)" in report


def test_evaluate_json_says_what_the_report_says_and_only_json(runs, capsys):
    """For scripts (the CLI audit: they scraped 'Accuracy: 0.2680 (268/1,000)')."""
    paths = [str(runs["seed-0"]), str(runs["wide"])]
    found = json.loads(output(capsys, ["evaluate", *paths, "--tta", "8", "--mistakes", "3", "--json"]))
    report = output(capsys, ["evaluate", *paths, "--tta", "8", "--mistakes", "3"])
    matrix = np.array(found["confusion_matrix"])
    assert found["images"] == matrix.sum() == 1000 and found["correct"] == matrix.trace() and found["tta"] == 8
    assert f"Accuracy (ensemble of 2, TTA x8): {found['accuracy']:.4f} ({found['correct']:,}/1,000)" in report
    assert format_report(matrix, [str(d) for d in range(10)]) in report
    for member in found["members"]:
        row = next(line.split() for line in report.splitlines() if line.split()[:1] == [member["name"]])
        assert [float(v) for v in row[-2:]] == [round(member["accuracy"], 4), round(member["accuracy_tta"], 4)]
    assert [c["class"] for c in found["per_class"]] == [str(d) for d in range(10)]
    assert all(c["accuracy"] == matrix[k, k] / matrix[k].sum() for k, c in enumerate(found["per_class"]))
    assert [m["index"] for m in found["mistakes"]] == [int(line.split()[0]) for line in
                                                       report.split("as predict --index N shows it):")[1]
                                                       .splitlines()[2:5]]


def test_members_with_different_splits_are_not_scored_on_dev(runs, capsys):
    assert main(["evaluate", str(runs["ens"])]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "seed-1 has another dev set than" in err and "--set all" in err, err


def test_a_member_of_the_same_seed_split_by_another_is_not_scored_on_its_training_digits(runs, tmp_path, capsys):
    """The ensemble audit: a `train --seeds` member (seed 1, split seed 0) beside a run of seed 1 (split 1) passed
    as sharing a dev set: 894 of the 1,000 "dev" digits were the other's training digits (0.995 for a 0.971 model)."""
    shared = train(tmp_path / "seed-1-split-0", runs["csv"], 1, 64, "--split-seed", "0")
    for models in ([shared, runs["seed-1"]], [runs["seed-1"], shared]):
        assert main(["evaluate", *map(str, models)]) == 1
        assert "has another dev set than" in capsys.readouterr().err
    assert main(["evaluate", str(shared), str(runs["seed-0"]), str(runs["wide"])]) == 0  # split 0, all three


def test_a_model_trained_with_transpose_reads_the_test_csv_turned_and_mixed_members_are_refused(runs, test_csv,
                                                                                                 tmp_path, capsys):
    """The ensemble audit: a --transpose model's submission read the test file upright (0.168 where evaluate said
    0.943), and an ensemble fed such a member upright images (it scored 0.166 and pulled the rest down)."""
    turned = train(tmp_path / "turned", runs["csv"], 0, 64, "--transpose")
    out = tmp_path / "submission.csv"
    output(capsys, ["predict", str(turned), "--csv", str(test_csv[0]), "--submission", str(out)])
    images = read_kaggle_csv(test_csv[0])[0]
    expected = load(turned).predict(scale_pixels(images.transpose(0, 2, 1)).reshape(len(images), -1))
    assert np.array_equal(read_submission(out), expected) and accuracy(test_csv[1], expected) > 0.8
    for argv in (["predict", str(runs["seed-0"]), str(turned), "--csv", str(test_csv[0]), "--submission", str(out)],
                 ["evaluate", str(runs["seed-0"]), str(turned), "--csv", str(runs["csv"]), "--set", "all"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "turned was trained with --transpose" in err and "seed-0 without" in err, err


def test_a_csv_with_labels_needs_ignore_labels(runs, test_csv, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    argv = ["predict", str(runs["seed-0"]), "--csv", str(runs["csv"]), "--submission", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "has a label column" in err and "--ignore-labels" in err and not out.exists()
    output(capsys, [*argv, "--ignore-labels"])
    unlabeled = tmp_path / "from-test.csv"
    output(capsys, ["predict", str(runs["seed-0"]), "--csv", str(test_csv[0]), "--submission", str(unlabeled)])
    assert out.read_text() == unlabeled.read_text()


def test_a_set_given_with_a_submission_or_photos_is_refused_not_ignored(runs, test_csv, tmp_path, capsys):
    """The ensemble audit: `--set dev` with --submission was silently ignored."""
    out = tmp_path / "submission.csv"
    for extra in (["--csv", str(test_csv[0]), "--submission", str(out)], [str(tmp_path / "photo.png")]):
        assert main(["predict", str(runs["seed-0"]), *extra, "--set", "dev"]) == 1
        assert "--set picks the set of --index N" in capsys.readouterr().err and not out.exists()


def test_a_failed_submission_keeps_the_old_file(runs, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    out.write_text("ImageId,Label\n1,7\n")
    bad = tmp_path / "bad.csv.gz"
    rows = ["pixel" + ",pixel".join(map(str, range(784)))] + [",".join(["0"] * 784)] * 3 + [",".join(["0"] * 783 + ["256"])]
    bad.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    assert main(["predict", str(runs["seed-0"]), "--csv", str(bad), "--submission", str(out)]) == 1
    assert "line 5: pixel783 = 256 is outside 0..255" in capsys.readouterr().err
    assert out.read_text() == "ImageId,Label\n1,7\n" and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv.gz",
                                                                                                       "submission.csv"]
    assert main(["predict", str(runs["seed-0"]), "--csv", str(bad), "--submission", str(bad)]) == 1
    assert "is the test file itself" in capsys.readouterr().err


@pytest.mark.parametrize("where, message", [
    ("a-file/submission.csv", "a-file/submission.csv: File exists (part of the path is a file, not a folder)"),
    ("a-file/deeper/submission.csv", "a-file/deeper/submission.csv: Not a directory (part of the path is a file, not a folder)"),
])
def test_a_submission_the_system_cannot_write_is_one_line(runs, test_csv, tmp_path, capsys, where, message):
    """A place the file system refuses is an error line naming the file asked for (not the
    temporary file it is written through), not a traceback; nothing is left behind."""
    (tmp_path / "a-file").write_text("in the way\n")
    argv = ["predict", str(runs["seed-0"]), "--csv", str(test_csv[0]), "--submission", str(tmp_path / where)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"scratchnn predict: error: {tmp_path}/{message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_submission_into_a_folder_that_does_not_exist_is_refused(runs, test_csv, tmp_path, capsys):
    """The engineer's audit: --submission /nonexistent/dir/s.csv made /nonexistent/dir."""
    argv = ["predict", str(runs["seed-0"]), "--csv", str(test_csv[0]), "--submission", str(tmp_path / "typo/s.csv")]
    assert main(argv) == 1
    assert f"the folder {tmp_path / 'typo'} does not exist; create it first" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_predict_one_image_with_an_ensemble_and_tta(runs, capsys):
    said = output(capsys, ["predict", str(runs["ens"]), "--index", "3", "--set", "all", "--tta", "3"])
    assert "(ensemble of 2 models, TTA x3)" in said and "Prediction:" in said


def test_predict_json_of_one_image_is_the_ensembles_answer(runs, capsys):
    argv = ["predict", str(runs["ens"]), "--index", "3", "--set", "all", "--tta", "3"]
    found = json.loads(output(capsys, [*argv, "--json"]))
    ensemble = load_ensemble([runs["ens"]])
    images, labels, _, _ = load_set(TrainConfig.load(runs["seed-0"] / "config.toml"), "all", progress=False)
    probs = ensemble.predict_proba(scale_pixels(images[3:4], ensemble.input_shape), tta=3)[0]
    assert found["models"] == [member.name for member in ensemble.members] and len(found["models"]) == 2
    assert (found["index"], found["set"], found["tta"], found["true"]) == (3, "all", 3, str(int(labels[3])))
    assert found["prediction"] == str(int(probs.argmax())) and found["correct"] == (probs.argmax() == labels[3])
    assert list(found["probabilities"].values()) == pytest.approx(probs.tolist(), abs=1e-6)
    assert f"Prediction: {found['prediction']} (probability {found['probability']:.1%})" in output(capsys, argv)


def test_predict_json_is_refused_with_a_submission(runs, test_csv, tmp_path, capsys):
    argv = ["predict", str(runs["seed-0"]), "--csv", str(test_csv[0]), "--submission", str(tmp_path / "s.csv")]
    assert main([*argv, "--json"]) == 1
    assert "a submission is its CSV file" in capsys.readouterr().err and not (tmp_path / "s.csv").exists()


def test_the_web_api_serves_the_ensemble(runs):
    from web_support import LOCAL_BASE_URL, require

    require("fastapi", "pip install 'scratchnn[web]'")
    from fastapi.testclient import TestClient

    from scratchnn.web.app import create_app

    images, _ = read_kaggle_csv(runs["csv"])
    pixels = np.round(images[0] / 255, 3)
    members = [load(runs["seed-0"]), load(runs["seed-1"])]
    with TestClient(create_app([runs["seed-0"], runs["seed-1"]]), base_url=LOCAL_BASE_URL) as client:
        result = client.post("/api/predict", json={"pixels": pixels.tolist(), "preprocess": False}).json()
        summary = client.get("/api/model").json()
    x = pixels.reshape(1, 784).astype(np.float32)
    expected = np.mean([m.predict_proba(x)[0].astype(np.float64) for m in members], axis=0)
    assert np.allclose(result["probabilities"], expected, atol=1e-6)
    assert result["prediction"] == int(expected.argmax()) and result["members"] == 2
    shown = result["activations"][0]
    first_hidden = next(out for i, _, out in members[0].forward_steps(x) if i == shown["index"])[0]
    assert result["activations_from"] == "seed-0"
    assert np.allclose(shown["values"], first_hidden, atol=1e-4)  # the first member's layer
    assert summary["members"] == ["seed-0", "seed-1"] and summary["name"] == "seed-0"


def test_the_web_api_serves_an_ensemble_of_an_mlp_and_a_cnn(runs, tmp_path):
    """The ensemble audit: `serve MLP CNN` answered every drawing 422, the CNN fed the MLP's (1, 784) rows."""
    from web_support import LOCAL_BASE_URL, require

    require("fastapi", "pip install 'scratchnn[web]'")
    from fastapi.testclient import TestClient

    from scratchnn.web.app import create_app

    cnn = train(tmp_path / "cnn", runs["csv"], 0, 16, "--conv", "4", "--epochs", "1", "--train-size", "500")
    images, _ = read_kaggle_csv(runs["csv"])
    pixels = np.round(images[0] / 255, 3)
    for models in ([runs["seed-0"], cnn], [cnn, runs["seed-0"]]):
        with TestClient(create_app(models), base_url=LOCAL_BASE_URL) as client:
            answer = client.post("/api/predict", json={"pixels": pixels.tolist(), "preprocess": False})
        assert answer.status_code == 200, answer.text
        expected = load_ensemble(models).predict_proba(pixels.reshape(1, 1, 28, 28).astype(np.float32))[0]
        assert np.allclose(answer.json()["probabilities"], expected, atol=1e-6)


def test_the_web_api_serves_tta(runs):
    """serve --tta N: /api/predict and the gallery average N views; the layers show the image itself."""
    from web_support import LOCAL_BASE_URL, require

    require("fastapi", "pip install 'scratchnn[web]'")
    from fastapi.testclient import TestClient

    from scratchnn.web.app import create_app

    images, _ = read_kaggle_csv(runs["csv"])
    pixels = np.round(images[0] / 255, 3)
    # members of one split: the gallery scores them on dev images neither trained on (seed-1's split is
    # another, and the page refuses its gallery, as evaluate does: the combinations audit)
    ensemble = load_ensemble([runs["seed-0"], runs["wide"]])
    with TestClient(create_app([runs["seed-0"], runs["wide"]], tta=4), base_url=LOCAL_BASE_URL) as client:
        result = client.post("/api/predict", json={"pixels": pixels.tolist(), "preprocess": False}).json()
        summary = client.get("/api/model").json()
        gallery = client.get("/api/gallery", params={"set": "dev", "n": 100, "seed": 0}).json()
    x = pixels.reshape(1, 784).astype(np.float32)
    expected = ensemble.predict_proba(x, tta=4)[0]
    assert not np.allclose(expected, ensemble.predict_proba(x)[0], atol=1e-4)  # the views do change the answer
    assert np.allclose(result["probabilities"], expected, atol=1e-6) and result["tta"] == 4 and summary["tta"] == 4
    first_hidden = next(out for i, _, out in ensemble.models[0].forward_steps(x) if i == result["activations"][0]["index"])
    assert np.allclose(result["activations"][0]["values"], first_hidden[0], atol=1e-4)
    config = TrainConfig.from_dict(ensemble.members[0].metadata["config"])
    dev_images, dev_labels, _, _ = load_set(config, "dev")
    predicted = ensemble.predict(scale_pixels(dev_images), tta=4)
    assert gallery["mistakes"] == int(np.count_nonzero(predicted != dev_labels))
    assert all(predicted[item["index"]] == item["prediction"] != item["label"] for item in gallery["items"])


def test_serve_refuses_a_bad_tta_before_loading_anything(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "no-such-run"), "--tta", "17"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tta" in err and "17" in err


def test_evaluate_and_submission_predict_in_chunks_behind_a_progress_bar(runs, monkeypatch):
    """cli.common.member_probas: the ensemble's member_probas, CHUNK images at a time, one bar update each."""
    from scratchnn.cli import common

    bars = []

    class Bar:
        def __init__(self, total, **options):
            self.total, self.updates = total, []
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *error):
            return False

        def update(self, n):
            self.updates.append(n)

    monkeypatch.setattr(common, "tqdm", Bar)
    monkeypatch.setattr(common, "CHUNK", 300)
    images, _ = read_kaggle_csv(runs["csv"])
    ensemble = load_ensemble([runs["seed-0"], runs["seed-1"]])
    chunked = common.member_probas(ensemble, images[:1000], tta=2, what="TTA x2")
    whole = ensemble.member_probas(scale_pixels(images[:1000]), tta=2)
    assert len(chunked) == 2 and all(np.allclose(a, b, atol=1e-6) for a, b in zip(chunked, whole))
    assert bars[0].total == 1000 and bars[0].updates == [300, 300, 300, 100]
    empty = common.member_probas(ensemble, images[:0])
    assert [p.shape for p in empty] == [(0, 10), (0, 10)]
    plain, averaged = common.plain_and_tta_probas(ensemble, images[:1000], tta=2)  # evaluate's: one pass for both
    assert all(np.array_equal(a, b) for a, b in zip(averaged, chunked))
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(plain, ensemble.member_probas(scale_pixels(images[:1000]))))
    assert bars[-1].updates == [300, 300, 300, 100]


def test_textbook_flag_predicts_on_the_textbook_layers_with_the_same_answers(runs, test_csv, tmp_path, capsys,
                                                                             monkeypatch):
    """evaluate and predict --textbook: each member's own layers (load_ensemble(fast=False)), the
    same report and submission as the default fast path's; on a small cnn-best too (Winograd)."""
    from scratchnn.cli import common

    asked = []
    monkeypatch.setattr(common, "load_ensemble", lambda paths, fast: asked.append(fast) or load_ensemble(paths, fast))
    cnn = tmp_path / "cnn"
    assert main(["train", "--preset", "cnn-best", "--epochs", "1", "--warmup", "0", "--train-size", "256",
                 "--dev-size", "100", "--csv", str(runs["csv"]), "--out", str(cnn), "--quiet", "--no-report"]) == 0
    for argv in (["evaluate", str(cnn), "--tta", "2"], ["predict", str(cnn), "--index", "7"],
                 ["evaluate", str(runs["ens"]), "--set", "all", "--csv", str(runs["csv"])]):
        assert output(capsys, [*argv, "--textbook"]) == output(capsys, argv), argv
    files = {}
    for flags in (["--textbook"], []):
        files[bool(flags)] = tmp_path / f"submission{len(flags)}.csv"
        output(capsys, ["predict", str(runs["ens"]), "--csv", str(test_csv[0]), "--submission", str(files[bool(flags)]),
                        "--tta", "2", *flags])
    assert files[True].read_text() == files[False].read_text()
    assert asked == [False, True] * 4
