"""The HTML run report: every figure embedded, nothing fetched, text escaped, odd runs handled, CLI."""
import base64
import csv
import gzip
import html
import json
import shutil
from pathlib import Path
from html.parser import HTMLParser

import numpy as np
import pytest

from scratchnn import Dense, Sequential
from scratchnn.cli.main import main
from scratchnn.data.augment import DIGITS
from scratchnn.errors import ConfigError
from scratchnn.insight.report import FIGURE_NAMES, REPORT_FILE, write_report
from scratchnn.io import MODEL_FILE, save
from scratchnn.training.config import TrainConfig
from scratchnn.training.run import train_run

FIGURES = list(FIGURE_NAMES)
SCRIPT = "<script>alert('x')</script>"


def small_csv(shared_dir, folder, rows=400):
    """The first ``rows`` digits of the real Kaggle-format MNIST CSV, as a file of their own."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz", "rt") as f:
        lines = [next(f) for _ in range(rows + 1)]
    path = folder / "digits.csv"
    path.write_text("".join(lines))
    return path


def tiny_run(csv_path, out, **changes):
    values = dict(preset=SCRIPT, hidden=[16], init="he_normal", bias_init="zeros", optimizer="adam", lr=3e-3,
                  epochs=2, batch_size=50, dev_size=100, eval_every=1, csv=str(csv_path), seed=1)
    values.update(changes)
    train_run(TrainConfig(**values), out, log=lambda line: None, progress=False)
    return out


@pytest.fixture(scope="module")
def run_dir(shared_dir, tmp_path_factory):
    """A finished two-epoch run on 300 train / 100 dev real digits (about a second), augmented: its
    report has every figure."""
    base = tmp_path_factory.mktemp("report")
    return tiny_run(small_csv(shared_dir, base), base / "run", augment=True)


@pytest.fixture(scope="module")
def report(run_dir):
    """(log lines, page text) of the report of ``run_dir``, written once for the tests that only read it."""
    lines = []
    path = write_report(run_dir, log=lines.append)
    assert path == run_dir / REPORT_FILE
    return lines, path.read_text(encoding="utf-8")


def copy_run(run_dir, tmp_path):
    return shutil.copytree(run_dir, tmp_path / "copy", ignore=shutil.ignore_patterns("*.png", REPORT_FILE))


class Page(HTMLParser):
    """Collects the attributes that could load something, and checks the tags are balanced."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "wbr"}

    def __init__(self, text):
        super().__init__()
        self.sources, self.open = [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.sources += [value for name, value in attrs if name in ("src", "href", "srcset", "action")]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def test_the_report_embeds_every_figure_and_fetches_nothing(run_dir, report):
    lines, text = report
    page = Page(text)
    assert page.open == []
    for name in FIGURES:
        png = (run_dir / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, name
        assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in text, name
    assert len(page.sources) == len(FIGURES) and all(s.startswith("data:image/png;base64,") for s in page.sources)
    for forbidden in ("http://", "https://", 'src="/', "src='/", "url(", "@import"):
        assert forbidden not in text, forbidden
    assert f"{len(FIGURES)} figures" in lines[-1]
    assert not list(run_dir.glob(".*.tmp")), "a temporary file was left behind"


def test_the_report_escapes_run_strings_and_summarises_the_run(report):
    text = report[1]
    assert SCRIPT not in text and "<script" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    for expected in ("Summary", "Dataset", "digits.csv", "784 -&gt; 16 -&gt; 10",
                     "12,730 parameters", "Epochs</th><td>2 of 2", "Dev accuracy", "Training time", "Architecture",
                     "Dense(in_features=784, out_features=16", "Configuration", "dev set of csv"):
        assert expected in text, expected
    assert "No metrics.csv" not in text and "class='notes'" not in text


def test_a_run_without_metrics_gets_a_note_instead_of_curves(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path)
    write_report(run, log=lambda line: None)
    assert (run / "training_curves.png").exists()
    (run / "metrics.csv").unlink()
    before = (run / REPORT_FILE).read_bytes()
    with pytest.raises(ConfigError, match=r"report.html was left as it was: it has training_curves, .*No metrics.csv"):
        write_report(run, log=lambda line: None)  # a complete report is never replaced by a smaller one
    assert (run / REPORT_FILE).read_bytes() == before and (run / "training_curves.png").exists()
    (run / REPORT_FILE).unlink()  # the user accepts a report without curves
    lines = []
    text = write_report(run, log=lines.append).read_text(encoding="utf-8")
    assert "No metrics.csv in this run" in text and "Note: No metrics.csv" in lines[0]
    # the plots audit: the earlier report's curves were deleted; they stay, said in a note
    assert (run / "training_curves.png").exists() and "training_curves.png in the folder is from an earlier report " \
        "and could not be drawn now; not on this page, and kept." in text
    assert all((run / f"{name}.png").exists() for name in FIGURES[1:])


def test_a_run_with_one_evaluation_draws_single_points(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path)
    with (run / "metrics.csv").open() as f:
        header, first = list(csv.reader(f))[:2]
    (run / "metrics.csv").write_text(",".join(header) + "\n" + ",".join(first) + "\n")
    text = write_report(run, log=lambda line: None).read_text(encoding="utf-8")
    assert "a single evaluation" in text
    assert (run / "training_curves.png").exists()


def test_a_garbled_metrics_file_is_reported_not_fatal(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path)
    (run / "metrics.csv").write_text("epoch,train_loss,train_accuracy\n1,oops,0.5\n")
    text = write_report(run, log=lambda line: None).read_text(encoding="utf-8")
    assert "No training curves: metrics.csv, row 2, train_loss: expected a number, got 'oops'." in html.unescape(text)
    assert not (run / "training_curves.png").exists()
    # read as the doctor reads it: bounded, and a value no evaluation gives is named (1e308 crashed the figure)
    (run / "metrics.csv").write_text("epoch,train_loss,train_accuracy\n1,0.5,1e308\n")
    text = html.unescape(write_report(run, log=lambda line: None).read_text(encoding="utf-8"))
    assert "an accuracy is between 0 and 1, got 1e+308" in text


def test_a_full_batch_run_counts_iterations_and_missing_data_is_a_note(shared_dir, tmp_path):
    csv_path = small_csv(shared_dir, tmp_path / "data", rows=300)
    run = tiny_run(csv_path, tmp_path / "seed", batch_size=0, epochs=20, eval_every=10, preset="seed")
    text = write_report(run, log=lambda line: None).read_text(encoding="utf-8")
    assert "Iterations</th><td>20 of 20" in text and "whole training set" in text
    csv_path.unlink()  # the data moved away: the complete report stays, nothing is written
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    with pytest.raises(ConfigError, match=r"left as it was: it has confusion_matrix, mistakes, per_class_accuracy, "
                                          r"predictions, .*digits.csv \(sha256 [0-9a-f]{12}\.\.\.\); that file is missing"):
        write_report(run, log=lambda line: None)
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    (run / REPORT_FILE).unlink()  # without an earlier page, the curves and weights still make a report
    lines = []
    text = write_report(run, log=lines.append).read_text(encoding="utf-8")
    assert "The dev images could not be loaded" in text
    assert "4 figures: training_curves.png, first_layer.png, health_gradients.png, health_units.png" in lines[-1]


def test_a_run_without_a_model_gets_its_curves_and_health_figures_and_what_to_do(shared_dir, tmp_path):
    """A run --doctor strict stopped (or one that diverged) has no model and so no page, and resuming
    it repeats the failure; its tables still draw what a learner needs then."""
    from scratchnn.errors import DoctorStopped

    csv_path = small_csv(shared_dir, tmp_path)
    with pytest.raises(DoctorStopped):
        tiny_run(csv_path, tmp_path / "zeros", init="zeros", doctor="strict", epochs=20)
    with pytest.raises(ConfigError) as error:
        write_report(tmp_path / "zeros")
    message = str(error.value)
    assert "the run has no model.safetensors, so no report page; drew training_curves.png, health_gradients.png, " \
           "health_units.png from its tables instead; the doctor's first finding: [symmetric-units]" in message
    assert "--doctor strict stopped it, and would again" in message and "\n" not in message
    assert all((tmp_path / "zeros" / f"{name}.png").stat().st_size > 1000
               for name in ("training_curves", "health_gradients", "health_units"))
    assert not (tmp_path / "zeros" / REPORT_FILE).exists()
    # the break-it lab's run too, which tells the doctor nothing (the README audit: it was offered --resume)
    with pytest.raises(DoctorStopped):
        tiny_run(csv_path, tmp_path / "lab", fault=["zero-init"], doctor="strict", epochs=20)
    with pytest.raises(ConfigError, match="--doctor strict stopped it, and would again"):
        write_report(tmp_path / "lab")


def test_a_folder_that_is_not_a_run_gives_one_clear_error(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown set 'val'; choose one of train, dev, test, all"):
        write_report(run_dir, which="val")
    with pytest.raises(ConfigError, match="no such folder"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"not a run folder \(no model.safetensors\)"):
        write_report(tmp_path / "empty")
    (tmp_path / "duo" / "seed-0").mkdir(parents=True)
    (tmp_path / "duo" / "seed-0" / "model.safetensors").write_bytes(b"")  # train --seeds: members each
    with pytest.raises(ConfigError, match=r"duo holds the runs seed-0 \(train --seeds\); report each: scratchnn "
                                          r"report .*seed-0"):
        write_report(tmp_path / "duo")
    (tmp_path / "empty" / "config.toml").write_text("")
    with pytest.raises(ConfigError, match="the run stopped before it saved anything.*--resume"):
        write_report(tmp_path / "empty")
    (tmp_path / "empty" / "checkpoint.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="the run has not finished.*--resume"):
        write_report(tmp_path / "empty")
    save(Sequential([Dense(784, 10, rng=0)]), tmp_path / "bare" / MODEL_FILE)  # a model, but no run
    with pytest.raises(ConfigError, match="no training config"):
        write_report(tmp_path / "bare")


def test_report_command_end_to_end(run_dir, tmp_path, capsys):
    run = copy_run(run_dir, tmp_path)
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"Report: {run / REPORT_FILE}" in out
    assert all((run / f"{name}.png").exists() for name in FIGURES)
    before = (run / REPORT_FILE).read_bytes()
    assert main(["report", str(run), "--set", "test"]) == 1  # a CSV has no test split: the 6-figure page stays
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "left as it was" in err[0] and "has no separate test split" in err[0], err
    assert (run / REPORT_FILE).read_bytes() == before
    (run / REPORT_FILE).unlink()
    pictures = {name: (run / f"{name}.png").read_bytes() for name in ("confusion_matrix", "mistakes")}
    assert main(["report", str(run), "--set", "test"]) == 0  # no page to degrade: said in a note, not fatal
    out = capsys.readouterr().out
    assert "Note: The test images could not be loaded" in out and "could not be drawn now; not on this page, " \
        "and kept" in out
    # the dev set's, as they were
    assert all((run / f"{name}.png").read_bytes() == png for name, png in pictures.items())
    assert main(["report", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scratchnn report: error:") and "no such folder" in err[0]


def test_the_config_table_shows_only_options_that_apply_and_paths_can_wrap(report, run_dir):
    text = report[1]
    config = text[text.index("<dl class=\"config\">"):]
    assert "<dt>kernel_size</dt>" not in config and "<dt>pool</dt>" not in config  # an MLP has no convolution
    assert "<dt>hidden</dt>" in config and "<dt>csv</dt>" in config
    csv = config[config.index("<dt>csv</dt>"):].split("</dd>")[0].split("<dd>")[1]
    assert "/<wbr>" in csv and "/" not in csv.replace("/<wbr>", "")  # a break chance after every separator


def test_every_figure_in_the_summary_is_the_runs_own(run_dir, report):
    """Each number in the summary table, recomputed from metrics.csv, the model and its data."""
    import html
    import re

    import numpy as np

    from scratchnn.io import load, read_metadata
    from scratchnn.training.run_data import load_set

    table = re.search(r"<table class=\"summary\">(.*?)</table>", report[1], re.S)[1]
    summary = {html.unescape(key): html.unescape(value)
               for key, value in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table)}
    with (run_dir / "metrics.csv").open() as f:
        rows = [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]
    model, metadata = load(run_dir), read_metadata(run_dir)
    config = TrainConfig.from_dict(metadata["config"])

    def accuracy(which):
        images, labels, _, _ = load_set(config, which, progress=False)
        predictions = model.predict(images.reshape(len(images), -1).astype(np.float32) / 255)
        return int(np.count_nonzero(predictions == labels)), len(labels)

    (train_correct, train_n), (dev_correct, dev_n) = accuracy("train"), accuracy("dev")
    assert summary["Dataset"].endswith(f"digits.csv ({train_n} train / {dev_n} dev images)"), summary["Dataset"]
    assert summary["Model"] == f"784 -> 16 -> 10, {model.num_parameters:,} parameters"
    assert summary["Epochs"] == f"{int(rows[-1]['epoch'])} of {config.epochs}"
    seconds = metadata["metrics"]["train_seconds"]  # fit's wall time: its epochs and what runs between them
    assert seconds >= sum(r["seconds"] for r in rows) and summary["Training time"] == f"{seconds:.1f} s"
    for split, correct, n, best_is in (("train", train_correct, train_n, "best during training"),
                                       ("dev", dev_correct, dev_n, "best evaluation")):
        best = max(rows, key=lambda r: r[f"{split}_accuracy"])
        expected = (f"{correct / n:.2%} (final weights); {best_is} {best[f'{split}_accuracy']:.2%} "
                    f"(epoch {best['epoch']:g})")
        assert summary[f"{split.capitalize()} accuracy"] == expected, f"the {split} accuracy is not the model's"
    assert summary["Figures measured on"].endswith(
        f": {dev_correct:,} of {dev_n:,} correct ({dev_correct / dev_n:.2%})"), summary["Figures measured on"]


def test_an_augmented_run_names_its_augmentation_and_shows_what_it_trained_on(shared_dir, run_dir, report, tmp_path):
    """The packaging audit: the doctor's fix for an unreadable augmentation named a repository script
    (benchmarks/augment_preview.py) that an installed scratchnn does not have; every augmented run's
    report draws its own copies."""
    text = report[1]
    assert f"Augmentation</th><td>{html.escape(DIGITS.describe())}</td>" in text
    assert "<figure id='augmentation'>" in text and "then copies of it as training drew its images" in text
    plain = tiny_run(small_csv(shared_dir, tmp_path), tmp_path / "plain")  # the digits as they are
    text = write_report(plain, log=lambda line: None).read_text(encoding="utf-8")
    assert "Augmentation</th>" not in text and "<figure id='augmentation'>" not in text
    assert not (plain / "augmentation.png").exists()


def test_the_augmentation_drawn_is_the_recorded_one_or_an_older_runs_and_a_bad_record_is_a_note():
    """The review: a model file whose augmentation record cannot be read failed the whole report
    (its summary line tolerated it), and a run from before runs recorded it had no figure."""
    from scratchnn.data.augment import unrecorded
    from scratchnn.insight.report import trained_augmentation

    config, notes = TrainConfig(augment=True), []
    assert trained_augmentation({"augmentation": DIGITS.to_dict()}, config, notes) == (DIGITS, DIGITS.describe())
    older, said = trained_augmentation({"scratchnn_version": "0.9"}, config, notes)  # the summary had no row
    assert older == unrecorded(DIGITS) and unrecorded(DIGITS).p == 1
    assert said == f"{older.describe()} (not recorded in the model file: what scratchnn 0.9, which trained it, drew)"
    assert trained_augmentation({}, TrainConfig(), notes) == (None, "") and notes == []  # not augmented
    assert trained_augmentation({"augmentation": None}, config, notes) == (None, "") and notes == []
    unreadable, said = trained_augmentation({"augmentation": {"flip": 3}}, config, notes)
    assert unreadable is None and said.startswith("not readable (flip is the probability of mirroring"), said
    assert notes and notes[0].startswith("No augmentation figure: the model file's augmentation cannot be read")


def test_the_augmentation_figure_is_one_row_per_class_drawn_the_same_every_time():
    from scratchnn.insight.report import COPIES, augmented

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 1, 0] * 10)  # no 2: a class the images lack has no row
    originals, copies, names = augmented(images, labels, list("0123"), DIGITS, seed=5)
    assert names == ["0", "1", "3"] and originals.shape == (3, 28, 28) and copies.shape == (3, COPIES, 28, 28)
    assert np.array_equal(originals[1], images[1] / np.float32(255))  # the first 1, scaled
    again = augmented(images, labels, list("0123"), DIGITS, seed=5)[1]
    assert np.array_equal(copies, again) and not np.array_equal(copies[:, 0], copies[:, 1])


def test_tables_and_a_page_that_are_pipes_or_devices_are_refused_not_read(run_dir, tmp_path):
    """The audit: metrics.csv or report.html linked to /dev/zero took 4 GB and a MemoryError;
    a named pipe nobody writes to hung the command."""
    import os

    run = copy_run(run_dir, tmp_path)
    os.mkfifo(tmp_path / "pipe")
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(tmp_path / "pipe")
    text = html.unescape(write_report(run, log=lambda line: None).read_text(encoding="utf-8"))
    assert "No training curves: metrics.csv: a pipe, device or socket, not a file" in text
    (run / REPORT_FILE).unlink()
    (run / REPORT_FILE).symlink_to(tmp_path / "pipe")
    with pytest.raises(ConfigError, match=r"report.html: a pipe, device or socket, not a file; remove it"):
        write_report(run, log=lambda line: None)


def test_a_folder_that_cannot_be_written_to_is_refused_first_with_what_to_do(run_dir, tmp_path, monkeypatch, capsys):
    """The plots audit: a read-only run folder drew every figure, then failed on the first write
    with "choose another place", which report cannot."""
    import os

    run = copy_run(run_dir, tmp_path)
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == run and mode & os.W_OK
                        else real_access(path, mode, **kw))
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "the run folder cannot be written to (read-only, or not yours)" in err, err
    assert f"report a copy: cp -r {run} " in err and err.endswith(f"/{run.name}")
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_what_a_killed_report_left_half_written_is_swept_and_a_live_write_is_left_alone(run_dir, tmp_path):
    """The failure audit: SIGKILL half-way through report.html left a 575 KB .report.html.*.tmp that
    no later report (nor resume) removed. A file untouched for 10 minutes is a dead write's."""
    import os

    run = copy_run(run_dir, tmp_path)
    dead, live = run / ".report.html.cng38yt5.tmp", run / ".mistakes.png.a1b2c3.tmp"
    dead.write_bytes(b"<html>half")
    live.write_bytes(b"\x89PNG")
    os.utime(dead, (0, 0))
    write_report(run, log=lambda line: None)
    assert not dead.exists() and live.exists()


def test_a_run_that_held_out_no_dev_images_says_so_where_its_dev_set_is_asked_for(shared_dir, tmp_path, capsys):
    """The shapes audit: evaluate printed 'Accuracy: nan (0/0)' with exit code 0, its --json wrote
    NaN (which JSON has not: JSON.parse refuses it) and predict --index 0 named the range 0..-1."""
    csv = small_csv(shared_dir, tmp_path)
    assert main(["train", "--csv", str(csv), "--dev-size", "0", "--hidden", "8", "--epochs", "1", "--no-report",
                 "--out", str(tmp_path / "run")]) == 0
    assert f"scratchnn evaluate {tmp_path / 'run'} --set train" in capsys.readouterr().out  # not one that fails
    run = tmp_path / "run"
    empty = ("is empty: the run held out no dev images (--dev-size 0); choose --set train (its train split), or other "
             "images with --set all (--csv FILE, or --images/--labels: every image of them)")
    for command in (["evaluate", str(run)], ["evaluate", str(run), "--json"], ["predict", str(run), "--index", "0"],
                    ["evaluate", str(run), "--csv", str(csv)]):  # the advice audit: other files split the same way
        assert main(command) == 1
        out, err = capsys.readouterr()
        assert empty in err and not out, (command, out, err)
    assert main(["evaluate", str(run), "--set", "train"]) == 0 and "(400 images)" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--set", "test"]) == 1  # the review: it named --set dev, which is empty here
    assert capsys.readouterr().err.endswith("has no separate test split; choose --set all (every image), or a named "
                                            "dataset (--dataset mnist), which has a test split\n")
    assert main(["evaluate", str(run), "--csv", str(csv), "--set", "all"]) == 0  # the fix it names, applied
    assert "(400 images)" in capsys.readouterr().out
    text = write_report(run, log=lambda line: None).read_text(encoding="utf-8")
    assert ("The run held out no dev images (--dev-size 0), so figures that need predictions are left out; "
            "&#x27;scratchnn report RUN --set train&#x27; draws them") in text  # report's own --set, not evaluate's
    from safetensors import safe_open  # the outputs audit: its metadata held NaN, which JSON.parse refuses

    def strict(constant):
        raise ValueError(f"{constant} is not JSON")

    with safe_open(str(run / MODEL_FILE), framework="np") as f:
        header = f.metadata()
    metadata = {key: json.loads(value, parse_constant=strict) for key, value in header.items()
                if key not in ("format", "sha256")}
    assert metadata["metrics"]["dev_accuracy"] is None and metadata["metrics"]["train_accuracy"] > 0
    from scratchnn.training.run import _finished_run

    read_back = _finished_run(run, None).metrics  # a finished run read back: not measured is NaN again
    assert np.isnan(read_back["dev_accuracy"]) and read_back["train_accuracy"] > 0
    for table in ("metrics.csv", "health.csv"):  # one line ending in a run folder (metrics.csv had CRLF)
        assert b"\r" not in (run / table).read_bytes()


def test_a_file_of_a_run_folder_given_for_the_folder_is_told_the_folder(run_dir, tmp_path, capsys):
    """The advice audit: report run/model.safetensors said "no such folder"; evaluate and predict of
    run/config.toml read its text as a safetensors header "claiming 4,404,648,414,644,892,272 bytes";
    doctor of a photo sent the user to its folder (.)."""
    commands = {("report", MODEL_FILE): f"{run_dir / MODEL_FILE} is a file; give the run folder that holds it "
                                        f"({run_dir})",
                ("evaluate", "config.toml"): f"{run_dir / 'config.toml'} is a file of the run folder {run_dir}, not a "
                                             f"model file; give the folder, or a {MODEL_FILE}",
                ("predict", "metrics.csv"): f"{run_dir / 'metrics.csv'} is a file of the run folder {run_dir}, not a "
                                            "model file",
                ("evaluate", "model"): f"{run_dir / 'model'}: no such model file"}  # the review: a typo is no file
    for (command, name), said in commands.items():
        assert main([command, str(run_dir / name), *(["--index", "0"] if command == "predict" else [])]) == 1
        assert said in capsys.readouterr().err
    photo = tmp_path / "white.png"
    photo.write_bytes(b"\x89PNG")
    assert main(["doctor", str(photo)]) == 1
    assert capsys.readouterr().err.endswith(f"{photo} is a file, not a run folder; give a run folder made by "
                                            "'scratchnn train'\n")
    assert main(["evaluate", str(run_dir / MODEL_FILE)]) == 0  # the model file itself, as ever
