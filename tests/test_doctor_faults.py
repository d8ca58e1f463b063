"""The break-it lab on real digits: each fault makes the doctor name its rule first.

Every run trains on the 9,000/1,000 split of the 10,000 MNIST digits in ../shared, for at most
5 epochs (or 100 full-batch iterations), through ``train_run`` like ``scratchnn train``. The
doctor then reads only the run folder's metrics.csv and health.csv (``diagnose_run``): it is
never told which fault ran.
"""
import gzip
import subprocess
from pathlib import Path
import sys

import pytest

from scratchnn.doctor import diagnose_run
from scratchnn.doctor.faults import FAULTS
from scratchnn.errors import DataError, TrainingDiverged
from scratchnn.training.presets import get_preset, resolve_config
from scratchnn.training.run import train_run

SEED_MINIBATCH = {"batch_size": 128, "eval_every": 1, "epochs": 5}

# fault: (the network it shows on, changes to that preset, the rule the doctor must name first)
CASES = {
    "unscaled-inputs": ("seed", {"epochs": 100}, "unscaled-inputs"),
    "naive-softmax": ("seed", {**SEED_MINIBATCH, "hidden": [128, 128, 128]}, "softmax-overflow"),
    "seed-bias-gradient": ("seed", {"epochs": 100}, "scalar-bias-gradient"),
    "zero-init": ("seed", {"epochs": 100}, "symmetric-units"),
    "tiny-init": ("seed", {"epochs": 100}, "small-init"),
    "huge-init": ("seed", {"epochs": 100}, "large-init"),
    "no-shuffle": ("seed", SEED_MINIBATCH, "one-class"),
    "shuffled-labels": ("mlp", {"epochs": 5}, "memorising"),
    "sigmoid-deep": ("seed", {**SEED_MINIBATCH, "epochs": 3}, "vanishing-gradients"),
}
SLOW = {"shuffled-labels"}  # the mlp network for 5 epochs: ~30 s


def configured(shared_dir, preset, changes, faults=()):
    config = get_preset(preset)
    mnist = shared_dir / "datasets/mnist"
    config.images, config.labels = str(mnist / "t10k-images-idx3-ubyte.gz"), str(mnist / "t10k-labels-idx1-ubyte.gz")
    for name, value in changes.items():
        setattr(config, name, value)
    config.fault = list(faults)
    return config


def first_finding(run_dir):
    findings = [f for f in diagnose_run(run_dir) if f.severity in ("error", "warning")]
    assert findings, f"the doctor found nothing in {run_dir}"
    return findings[0]


def test_every_fault_has_a_case():
    assert set(CASES) == set(FAULTS)


def test_a_fault_says_which_options_it_makes_do_nothing():
    """A web-doctor audit: --init he_normal beside --fault zero-init (the doctor's fix, followed)
    changed nothing, and nothing said so."""
    assert FAULTS["zero-init"].told.endswith("(--init and --bias-init do nothing with it)")
    assert FAULTS["tiny-init"].told.endswith("(--init does nothing with it)")
    assert FAULTS["no-shuffle"].told == f"no-shuffle: {FAULTS['no-shuffle'].what}"
    assert FAULTS["naive-softmax"].told.endswith("(--label-smoothing does nothing with it)")  # its own loss
    assert "--bias-init" in FAULTS["sigmoid-deep"].replaces and "--input-dropout" in FAULTS["sigmoid-deep"].replaces


@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in CASES])
def test_the_doctor_names_the_faults_rule_first(fault, shared_dir, tmp_path):
    preset, changes, rule = CASES[fault]
    config = configured(shared_dir, preset, changes, [fault])
    said: list[str] = []
    try:
        train_run(config, tmp_path, log=said.append, progress=False)
    except TrainingDiverged:
        pass  # unscaled inputs and the naive softmax break training: the folder keeps the tables
    assert f"Faults on purpose (the doctor is not told): {FAULTS[fault].told}" in said
    model_line = next(line for line in said if line.startswith("Model: "))
    assert ("the fault's own network" in model_line) == (fault == "sigmoid-deep"), model_line  # not the preset's
    if any(f.severity == "error" for f in diagnose_run(tmp_path)):  # the audit: "train longer" under [one-class]
        assert not [line for line in said if "still learning" in line], said
    first = first_finding(tmp_path)
    assert first.id == rule, f"--fault {fault}: the doctor said [{first.id}] {first.message} first"
    assert first.epoch <= changes.get("epochs", 5)
    # told nothing of the run, the doctor still counts a full-batch run's steps as its log does
    assert first.step == config.step_name, first.line()


def test_unscaled_inputs_on_an_augmenting_preset_is_diagnosed_not_refused(shared_dir, tmp_path):
    """The augmentation audit: `--preset cnn --fault unscaled-inputs` stopped at the first batch ("pixel values must
    be in [0, 1]": the augmentation got the 0..255 images), so the doctor never saw the fault."""
    config = configured(shared_dir, "cnn", {"epochs": 2, "train_size": 500}, ["unscaled-inputs"])
    with pytest.raises(TrainingDiverged, match="the inputs reach 255"):
        train_run(config, tmp_path, log=lambda line: None, progress=False)
    assert first_finding(tmp_path).id == "unscaled-inputs"


def test_unscaled_inputs_at_a_rate_that_survives_them_trains_to_its_final_metrics(shared_dir, tmp_path):
    """The second review: evaluate() now refuses 0..255 floats, and the run's final metrics read the
    lab's unscaled arrays; at a rate low enough not to diverge the run must still end with them."""
    config = configured(shared_dir, "mlp", {"epochs": 2, "lr": 1e-5, "train_size": 500}, ["unscaled-inputs"])
    result = train_run(config, tmp_path, log=lambda line: None, progress=False)
    assert 0 <= result.metrics["dev_accuracy"] <= 1 and result.metrics["train_samples"] == 500


def test_quiet_keeps_the_doctors_errors_and_warnings_on_stderr(shared_dir, tmp_path, capsys):
    """The CLI audit: --quiet printed a zero-init run's one-line result and none of its three errors."""
    from scratchnn.cli.main import main

    assert main(["train", "--preset", "seed", "--epochs", "40", "--csv", str(shared_dir / "datasets/mnist/"
                 "t10k-kaggle.csv.gz"), "--fault", "zero-init", "--out", str(tmp_path / "run"), "--quiet",
                 "--no-report"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("dev accuracy ") and len(out.splitlines()) == 1, out
    assert err.splitlines()[0].startswith("[symmetric-units] error: 0.Dense: its units are identical"), err
    assert all(line.startswith("[") and ("] error: " in line or "] warning: " in line) for line in err.splitlines())


def test_strict_doctor_stops_a_run_that_cannot_learn_with_exit_code_3(shared_dir, tmp_path):
    mnist = shared_dir / "datasets/mnist"
    run = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "seed", "--epochs", "500",
                          "--images", str(mnist / "t10k-images-idx3-ubyte.gz"),
                          "--labels", str(mnist / "t10k-labels-idx1-ubyte.gz"), "--fault", "zero-init",
                          "--doctor", "strict", "--out", str(tmp_path / "run"), "--no-report"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 3, run.stderr
    assert "[symmetric-units] error" in run.stdout
    assert "--doctor strict stopped the run at iteration 10" in run.stderr  # full batch: one step an epoch
    assert (tmp_path / "run" / "health.csv").is_file() and not (tmp_path / "run" / "model.safetensors").exists()
    report = subprocess.run([sys.executable, "-m", "scratchnn", "doctor", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0
    assert report.stdout.splitlines()[0].startswith("[symmetric-units] error: ")
    assert "fix: --init he_normal" in report.stdout


@pytest.mark.parametrize("p", [1.0, 0.8])
def test_an_augmentation_that_leaves_the_digits_unreadable_is_named_first(shared_dir, tmp_path, p):
    """The README's config table: upside down, 8 pixels off and half or one and a half times the
    size, every digit. The doctor reads health.csv only; epoch 0 there says how readable they are.
    With a fifth of the digits left sharp (p 0.8, the default) it went unnamed: the template read
    those, and the rest were measured as if they were a fifth sharp too."""
    unreadable = {"rotate": 180.0, "shift": 8.0, "scale": 0.5, "p": p}
    # the doctor names it at epoch 1 (train accuracy 0.11-0.17 by epoch 2): a third epoch changed nothing
    config = configured(shared_dir, "cnn", {"epochs": 2, "train_size": 2000, "augmentation": unreadable})
    train_run(config, tmp_path, log=lambda line: None, progress=False)
    first = first_finding(tmp_path)
    assert first.id == "unreadable-augmentation", f"the doctor said [{first.id}] {first.message} first"
    assert "once augmented" in first.message


def test_training_labels_of_one_class_are_refused_before_training(shared_dir, tmp_path):
    """Found by training on a CSV of only the 1s: the run looked healthy (the network learns to
    say 1) and the doctor said nothing; then the doctor named it; now such data is refused before
    the run folder is made (a learner-mistakes audit: a CSV whose label is its last column, read
    with its first pixel as the label, trained every image as 0 to dev 1.000). Two classes train."""
    rows = gzip.open(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz", "rt").read().splitlines()
    ones = [rows[0]] + [row for row in rows[1:] if row.startswith("1,")][:300]
    (tmp_path / "ones.csv").write_text("\n".join(ones) + "\n")
    config = resolve_config("mlp", {"epochs": 2, "dev_size": 50}, {"csv": str(tmp_path / "ones.csv")},
                            log=lambda line: None)
    with pytest.raises(DataError, match="ones.csv: every image is labelled 1, so there is nothing to tell apart and "
                                        "nothing to learn; give data of two classes or more"):
        train_run(config, tmp_path / "run", log=lambda line: None, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # three epochs of the cnn recipe: about a minute
def test_the_cnn_recipe_raises_no_doctors_alarm(shared_dir, tmp_path):
    config = configured(shared_dir, "cnn", {"epochs": 3})
    result = train_run(config, tmp_path, log=lambda line: None, progress=False)
    assert not [f.line() for f in result.findings if f.severity in ("error", "warning")]


def test_the_readme_break_it_table_shows_every_fault_with_its_tested_command_and_finding():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("### Break it on purpose", 1)[1].split("\n###", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `--preset")]
    assert len(rows) == len(FAULTS)
    for fault, (preset, changes, rule) in CASES.items():
        row = next(line for line in rows if f"--fault {fault}`" in line)
        command = row.split("`")[1]
        assert command.startswith(f"--preset {preset}"), row
        assert f"scratchnn train {command}" == FAULTS[fault].command, row  # what doctor --faults prints
        for name, value in changes.items():
            flag = "--" + name.replace("_", "-")
            if name != "epochs" or "--epochs" in command:  # the tests stop full-batch runs at 100 iterations
                assert f"{flag} {','.join(map(str, value)) if isinstance(value, list) else value}" in command, row
        assert f"`[{rule}]`" in row, row


def test_the_run_summary_counts_findings_in_words():
    from scratchnn.doctor.findings import Finding
    from scratchnn.training.run_health import doctor_summary

    def found(rule_id, severity):
        return Finding(rule_id, severity, 1, "message", "explanation", "fix")

    findings = [found("a", "error"), found("b", "warning"), found("c", "warning"), found("d", "advice")]
    assert doctor_summary(findings, Path("runs/x"), 5) == ("Doctor: 1 error, 2 warnings, 1 advice: [a] [b] [c] [d]; "
                                                           "details: scratchnn doctor runs/x")
    assert doctor_summary([], Path("runs/x"), 5) == "Doctor: no findings; the run looks healthy"
    assert doctor_summary([], Path("runs/x"), 1).startswith("Doctor: no findings in 1 evaluation, too few to judge")


def test_the_faults_are_listed_with_what_each_breaks_and_a_cnn_is_refused_sigmoid_deep(tmp_path):
    listed = subprocess.run([sys.executable, "-m", "scratchnn", "doctor", "--faults"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and all(f"{name}" in listed.stdout and fault.what in listed.stdout
                                          and fault.command in listed.stdout for name, fault in FAULTS.items())
    unknown = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--fault", "help"], capture_output=True,
                             text=True, timeout=120)
    assert "(scratchnn doctor --faults says what each breaks)" in unknown.stderr.splitlines()[-1]
    cnn = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "cnn", "--fault", "sigmoid-deep",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert cnn.returncode != 0 and "Traceback" not in cnn.stderr, cnn.stderr  # a one-line error, before any folder
    assert cnn.stderr.strip().endswith("train it without --conv (e.g. --preset mlp --fault sigmoid-deep)")
    assert not (tmp_path / "run").exists()


def test_strict_doctor_names_the_cause_of_the_error_it_stops_on(shared_dir, tmp_path):
    """It stopped on [one-class] and said nothing of the rate it had traced it to (the doctor audit)."""
    run = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "seed", "--lr", "10", "--epochs",
                          "100", "--csv", str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"), "--doctor", "strict",
                          "--out", str(tmp_path / "run"), "--no-report"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr
    assert "; this follows from [lr-too-high] (iteration 0); its health and metrics are in" in run.stderr, run.stderr
