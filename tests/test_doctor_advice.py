"""Fixes fitted to the run (doctor/advice.py): the values to change, and nothing the run does already.

Unit cases on hand-made tables, then whole runs: ``scratchnn train`` and ``scratchnn doctor`` name
the run's own learning rate; a run with ``--fault`` keeps the general fixes."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from scratchnn.doctor import RULES, Doctor, Settings, diagnose
from scratchnn.doctor.advice import FITTERS
from scratchnn.doctor.signals import check_health_rows
from scratchnn.training.config import CONFIG_FILE
from scratchnn.training.presets import get_preset
from scratchnn.training.run_health import doctor_settings, run_settings

CONFIG = "runs/x/config.toml"
LR_FIND = f"scratchnn lr-find --config {CONFIG} measures one for this network in seconds"


def general(rule_id: str) -> str:
    return next(r.fix for r in RULES if r.id == rule_id)


def metrics(losses, accuracies=None, dev_losses=None):
    n = len(losses)
    return [{"epoch": e, "train_loss": losses[e], "train_accuracy": (accuracies or [0.1] * n)[e],
             "dev_loss": (dev_losses or [math.nan] * n)[e], "dev_accuracy": math.nan} for e in range(n)]


def first_step(ratio: float, weights=(0.05, 5.0)):
    """Health rows of a first step that moved the weights by ``ratio`` and blew them up after."""
    return [(0, "model", "classes", 10), (0, "1.Dense", "update_ratio", ratio),
            (0, "1.Dense", "weight_rms", weights[0]), (1, "1.Dense", "weight_rms", weights[1])]


def finding(rule_id, rows, health, **values):
    settings = Settings({**get_preset("mlp").to_dict(), **values}, CONFIG)
    found = [f for f in diagnose(rows, health, settings) if f.id == rule_id]
    assert found, f"[{rule_id}] did not fire"
    return found[0]


@pytest.mark.parametrize("ratio, lr, told", [(11.0, 50, 0.05),   # 110x too far: 1,000x lower
                                             (1.1, 5, 0.05),      # 11x: 100x
                                             (1.0, 5, 0.5),       # 10x exactly: 10x
                                             (0.3, 0.5, 0.05),    # within the doctor's limit: 10x all the same
                                             (4.19, 10, 0.1)])    # the seed network at --lr 10: its own 0.1
def test_lr_too_high_names_a_rate_from_how_far_the_first_step_went(ratio, lr, told):
    found = finding("lr-too-high", metrics([2.0, 2.0]), first_step(ratio), lr=lr, warmup=1.0)
    assert found.fix == f"lower --lr from {lr:g} to {told:g}; {LR_FIND}"


@pytest.mark.parametrize("optimizer, momentum, ratio, told", [
    ("sgd", 0.9, 1.0, 0.05), ("rmsprop", 0.9, 1.0, 0.05), ("sgd", 0.0, 1.0, 0.5), ("adam", 0.9, 1.0, 0.5),
    ("sgd", 0.5, 1.0, 0.5),      # 10 / (1 - 0.5) = 20: nearer 10 than 100
    ("sgd", 0.9, 1.73, 0.05)])   # a first step 17x too far: 100x, momentum or not (a review: 0.005 trained worse)
def test_lr_too_high_counts_what_momentum_adds_to_the_first_step(optimizer, momentum, ratio, told):
    """The learner-mistakes audit: SGD at lr 5 with momentum 0.9 was told 0.5 (77% of the ReLUs
    died there), then 0.05: the velocity takes later steps to 1/(1 - 0.9) = 10 times the first."""
    found = finding("lr-too-high", metrics([2.0, 2.0]), first_step(ratio), lr=5, warmup=1.0, optimizer=optimizer,
                    momentum=momentum)
    assert found.fix == f"lower --lr from 5 to {told:g}; {LR_FIND}"


@pytest.mark.parametrize("schedule, warmup, batch, ratio, added", [
    ("constant", 0.0, 128, 0.6, "--schedule cosine --warmup 1"),
    ("cosine", 0.0, 128, 0.6, "--warmup 1"),
    ("cosine", 2.0, 128, 0.6, None),   # it warms up already
    ("constant", 0.0, 0, 0.6, None),   # full batch: a warm-up epoch is one step
    ("constant", 0.0, 128, 11.0, None),  # 1,000x too large: no warm-up saves that
])
def test_warm_up_is_offered_only_where_it_can_help(schedule, warmup, batch, ratio, added):
    found = finding("lr-too-high", metrics([2.0, 2.0]), first_step(ratio), lr=0.5, schedule=schedule, warmup=warmup,
                    batch_size=batch)
    assert ("warmup" in found.fix) == (added is not None), found.fix
    if added:
        assert f"(or keep it and add {added})" in found.fix


def test_lr_find_is_offered_with_mini_batches_to_a_full_batch_run():
    found = finding("lr-too-high", metrics([2.0, 2.0]), first_step(4.19), lr=10, batch_size=0)
    assert found.fix == (f"lower --lr from 10 to 0.1; scratchnn lr-find --config {CONFIG} --batch-size 128 "
                         "measures one for this network in seconds")


def test_without_settings_or_a_fitter_the_general_fix_stands():
    rows, health = metrics([2.0, 2.0]), first_step(11.0)
    assert [f.fix for f in diagnose(rows, health) if f.id == "lr-too-high"] == [general("lr-too-high")]
    assert {f.id for f in diagnose(rows, health, Settings())} == {f.id for f in diagnose(rows, health)}
    # an empty Settings knows no rate: the general words, no lr-find command it could not write
    fix = next(f.fix for f in diagnose(rows, health, Settings()) if f.id == "lr-too-high")
    assert fix.startswith("lower the learning rate by 10x") and "--config" not in fix
    assert "scalar-bias-gradient" not in FITTERS and "softmax-overflow" not in FITTERS  # code to fix, not flags


def test_lr_too_low_names_the_rate_that_would_move_the_weights_a_hundredth():
    """To the upper end of healthy steps (1%: the seed network at --lr 1e-5 is told its own 0.1; told
    0.01 it reached 44% where 0.1 reaches 85%), from the ratio when the finding fired: by the last
    evaluation a cosine schedule had taken the rate (and the ratio) to nearly 0, which once made
    the doctor say --lr 1e+03."""
    ratios = [2e-7, 2e-7, 2e-7, 1e-9, 1e-16]
    health = [(0, "model", "classes", 10)] + [(e, "1.Dense", signal, value) for e, ratio in enumerate(ratios)
                                              for signal, value in (("update_ratio", ratio), ("grad_rms", 0.1))]
    found = finding("lr-too-low", metrics([2.3] * 5), health, lr=1e-6, optimizer="sgd")
    assert found.fix.startswith("raise --lr from 1e-06 to 0.1 (each step changes the weights by 2e-07 of their "
                                "size; a healthy step, by 0.001 to 0.01)")
    assert found.fix.endswith(LR_FIND)


@pytest.mark.parametrize("optimizer, told", [("sgd", "0.1"), ("adamw", "0.01"), ("adam", "0.01")])
def test_a_raised_rate_is_never_past_its_update_rules_usual_upper_end(optimizer, told):
    """The CNN cases: lenet5 with SGD at 1e-5 took steps of 1e-10 of its weights (its gradients
    were tiny too), was told --lr 1e+03 and diverged at once; told 0.1 it reached dev 0.860."""
    health = [(0, "model", "classes", 10)] + [(e, "1.Dense", signal, value) for e in range(5)
                                              for signal, value in (("update_ratio", 1e-10), ("grad_rms", 0.1))]
    found = finding("lr-too-low", metrics([2.3] * 5), health, lr=1e-5, optimizer=optimizer)
    assert found.fix.startswith(f"raise --lr from 1e-05 to {told} ("), found.fix


def test_a_plateau_under_a_rate_found_too_high_is_not_told_to_raise_it():
    """The audit's contradiction: [lr-too-high] said lower, [underfitting] said 'a larger --lr'."""
    health = first_step(11.0)
    rows = metrics([1.5] * 6, [0.5] * 6)
    fixes = {f.id: f.fix for f in diagnose(rows, health, Settings({"lr": 0.5}))}
    assert fixes["lr-too-high"].startswith("lower the learning rate from 0.5")
    assert fixes["underfitting"] == "this follows from [lr-too-high] (epoch 0): fix that first"
    alone = {f.id: f.fix for f in diagnose(rows, [(0, "model", "classes", 10)], Settings({"lr": 0.5}))}
    assert "a larger learning rate than 0.5" in alone["underfitting"]  # a loop of one's own: no --lr
    assert alone["underfitting"].startswith("more epochs (--epochs)") and "now )" not in alone["underfitting"]


def dead(**values):
    health = [(0, "model", "classes", 10)] + [(e, "3.ReLU", "dead_fraction", 0.9) for e in range(3)]
    return finding("dead-relu", metrics([2.0, 1.9, 1.8]), health, lr=0.5, **values).fix


def test_dead_relu_leaves_out_the_initialisation_the_run_has():
    assert dead(init="he_normal", bias_init="zeros") == "lower --lr from 0.5 to 0.05 or --activation leaky-relu"
    assert dead(init="seed_uniform", bias_init="seed_uniform") == (
        "lower --lr from 0.5 to 0.05, --init he_normal --bias-init zeros or --activation leaky-relu")


def overfit(**values):
    dev = [0.5, 0.3, 0.2, 0.25, 0.3, 0.35]
    rows = metrics([1.0, 0.5, 0.3, 0.2, 0.1, 0.05], [0.7, 0.8, 0.9, 0.95, 0.98, 0.99], dev)
    for row, accuracy in zip(rows, [0.7, 0.8, 0.9, 0.9, 0.9, 0.9]):
        row["dev_accuracy"] = accuracy
    return finding("overfitting", rows, [(0, "model", "classes", 10)], **values).fix


def test_overfitting_names_the_best_epoch_and_only_the_cures_not_in_use():
    bare = overfit(patience=0, dropout=0.0, weight_decay=0.0, augment=False)
    assert bare == ("--patience 5 (early stopping, the best weights kept), --dropout 0.2 (now 0), --weight-decay "
                    "0.01 (now 0), --augment or fewer epochs (the dev loss was lowest at epoch 2: --epochs 2)")
    used = overfit(patience=5, dropout=0.5, weight_decay=0.01, augment=True)
    assert used == "--weight-decay 0.03 (now 0.01) or fewer epochs (the dev loss was lowest at epoch 2: --epochs 2)"
    # the doctor audit: a full-batch run's fix said "epoch" where its finding said "iteration"
    assert overfit(batch_size=0).endswith("(the dev loss was lowest at iteration 2: --epochs 2)")


def test_overfitting_names_the_best_dev_accuracy_when_it_is_beyond_the_noise_of_the_dev_set():
    """The doctor audit: full-batch Adam on 500 digits had its lowest dev loss at 0.839 and read 0.862
    later; "--epochs" of the lowest loss cost 2.5 points. On 100 dev digits a best two digits up is noise."""
    def fix(images):
        dev = [0.5, 0.3, 0.2, 0.25, 0.3, 0.35, 0.4]
        rows = metrics([1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03], [0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995], dev)
        for row, accuracy in zip(rows, [0.7, 0.8, 0.839, 0.85, 0.88, 0.86, 0.86]):
            row["dev_accuracy"] = accuracy
        health = [(0, "model", "classes", 10), (0, "model", "dev_images", images)]
        return finding("overfitting", rows, health, patience=5, dropout=0.5, weight_decay=0.01, augment=True).fix

    assert fix(1000).endswith("fewer epochs (dev accuracy was best at epoch 4: --epochs 4)")  # 4.1 points: 2.6 errors
    assert fix(100).endswith("fewer epochs (the dev loss was lowest at epoch 2: --epochs 2)")


def underfit(**values):
    rows = metrics([1.5] * 6, [0.5] * 6)
    return finding("underfitting", rows, [(0, "model", "classes", 10)], **values).fix


def test_underfitting_doubles_the_run_and_offers_adam_only_to_sgd():
    fix = underfit(epochs=20, lr=0.01, optimizer="sgd", hidden=[10], conv=[])
    assert fix.startswith("more epochs (--epochs 40, now 20), a larger --lr than 0.01 (")
    assert "--hidden 512,256; now 10" in fix and fix.endswith("or --optimizer adam")
    assert "--optimizer" not in underfit(epochs=20, lr=0.01, optimizer="adamw", hidden=[512, 256], conv=[])


def vanishing(**values):
    health = [(0, "model", "classes", 10), (0, "1.Dense", "grad_rms", 1e-6), (0, "9.Dense", "grad_rms", 1.0),
              (1, "1.Dense", "grad_rms", 1e-6), (1, "9.Dense", "grad_rms", 1.0)]
    return finding("vanishing-gradients", metrics([2.0, 2.0]), health, **values).fix


def test_vanishing_gradients_points_elsewhere_when_the_run_has_every_cure():
    assert vanishing(activation="sigmoid", init="glorot_uniform", batchnorm=False, hidden=[128] * 5) == (
        "--activation relu --init he_normal or --batchnorm or fewer layers than 5 (--hidden 256,128)")
    cured = vanishing(activation="relu", init="he_normal", batchnorm=True, hidden=[512, 256])
    assert cured.startswith("this run has the usual cures already") and "look at the other findings" in cured


def test_in_a_relu_network_gradients_that_vanish_with_zero_weights_follow_from_them():
    """A follow-the-fix audit: zero weights' [vanishing-gradients] offered --batchnorm, which left
    the units identical (dev 0.274); its other symptoms already pointed to [symmetric-units]."""
    health = [(0, "model", "classes", 10), (0, "1.Dense", "unit_spread", 0.0), (1, "1.Dense", "unit_spread", 0.0)]
    health += [(e, layer, "grad_rms", g) for e in range(2) for layer, g in (("1.Dense", 0.0), ("9.Dense", 1.0))]
    fixes = {activation: {f.id: f.fix for f in diagnose(metrics([2.3] * 2), health, Settings(
        {**get_preset("mlp").to_dict(), "init": "zeros", "activation": activation}, CONFIG))}
        for activation in ("relu", "sigmoid")}
    assert "symmetric-units" in fixes["relu"], fixes
    assert fixes["relu"]["vanishing-gradients"] == "this follows from [symmetric-units] (epoch 0): fix that first"
    assert "follows" not in fixes["sigmoid"]["vanishing-gradients"]  # there a cause of its own
    lopsided = [(0, "model", "classes", 10), (0, "model", "label_classes", 10), (0, "model", "top_label_share", 0.6)]
    lopsided += [(e, layer, "grad_rms", g) for e in range(2) for layer, g in (("1.Dense", 1e-5), ("9.Dense", 1.0))]
    other = {f.id: f.fix for f in diagnose(metrics([2.3] * 2), lopsided, Settings(
        {**get_preset("deep-mlp").to_dict(), "batchnorm": False}, CONFIG))}
    assert "lopsided-labels" in other and "follows" not in other["vanishing-gradients"], other  # not its cause


def test_saturated_units_offered_relu_are_offered_its_initialisation_with_it():
    """A follow-the-fix audit: [saturated]'s '--activation relu' alone kept the tutorial's uniform
    weights, whose logits reached 1,220: the run diverged at its first step."""
    health = [(0, "model", "classes", 10)] + [(e, "3.Tanh", "saturated_fraction", 0.7) for e in range(3)]
    tutorial = finding("saturated", metrics([2.0] * 3), health, activation="tanh", init="seed_uniform", batchnorm=False)
    assert tutorial.fix == ("--init glorot_uniform (now seed_uniform) or --batchnorm or --activation relu --init "
                            "he_normal")
    he = finding("saturated", metrics([2.0] * 3), health, activation="tanh", init="he_normal", batchnorm=True)
    assert he.fix.endswith("--activation relu") and "--init he_normal" not in he.fix


def test_the_live_doctor_fits_its_fixes_too():
    doctor = Doctor(Settings({"lr": 50.0, "warmup": 1.0}, CONFIG))
    new = doctor.update(metrics([2.0, 2.0]), [])
    assert new == []  # nothing in health yet
    found = doctor.update(metrics([2.0, 2.0]), check_health_rows(first_step(11.0)))
    assert [f.fix for f in found if f.id == "lr-too-high"] == [f"lower --lr from 50 to 0.05; {LR_FIND}"]


def test_a_run_with_a_fault_on_purpose_gets_the_general_fixes(tmp_path):
    config = get_preset("seed")
    assert doctor_settings(config, tmp_path).config_file == str(tmp_path / CONFIG_FILE)
    config.fault = ["huge-init"]
    assert doctor_settings(config, tmp_path) is None
    config.save(tmp_path / CONFIG_FILE)
    assert run_settings(tmp_path) is None
    (tmp_path / CONFIG_FILE).write_text("lr = 'fast'\n")  # unreadable: the general fixes, and a note
    notes: list[str] = []
    assert run_settings(tmp_path, notes) is None
    assert len(notes) == 1 and "the run's settings cannot be read" in notes[0] and "lr" in notes[0]
    assert run_settings(tmp_path / "missing", notes) is None and len(notes) == 1  # no config: nothing to tell


def test_train_and_doctor_tell_a_seed_run_at_lr_10_its_own_rate(shared_dir, tmp_path):
    mnist = shared_dir / "datasets/mnist"
    run_dir = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "seed", "--lr", "10",
                            "--epochs", "30", "--images", str(mnist / "t10k-images-idx3-ubyte.gz"),
                            "--labels", str(mnist / "t10k-labels-idx1-ubyte.gz"), "--out", str(run_dir),
                            "--no-report"], capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    told = "fix: lower --lr from 10 to 0.1; scratchnn lr-find --config"
    assert told in train.stdout
    doctor = subprocess.run([sys.executable, "-m", "scratchnn", "doctor", str(run_dir)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    assert told in doctor.stdout
    assert f"lr-find --config {run_dir / CONFIG_FILE} --batch-size 128" in " ".join(doctor.stdout.split())
    # the dead units and the one class for everything come from the rate: pointed to it, not told to raise it
    assert doctor.stdout.count("fix: this follows from [lr-too-high] (iteration") >= 2
    assert "a larger --lr" not in doctor.stdout
    (run_dir / CONFIG_FILE).write_text("lr = [\n")  # a config made unreadable: said, and the general fixes
    doctor = subprocess.run([sys.executable, "-m", "scratchnn", "doctor", str(run_dir)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    assert "note: the run's settings cannot be read" in doctor.stderr and "not valid TOML" in doctor.stderr
    assert "[lr-too-high]" in doctor.stdout and told not in doctor.stdout


def test_a_learners_own_loop_may_tell_only_some_settings():
    """HealthLog users pass what they know (Settings({"lr": 0.5})): nothing unknown is quoted as None."""
    health = first_step(11.0) + [(e, "3.ReLU", "dead_fraction", 0.9) for e in range(3)]
    findings = diagnose(metrics([2.0, 1.9, 1.8]), health, Settings({"lr": 0.5}))
    fixes = {f.id: f.fix for f in findings}
    assert fixes["lr-too-high"] == (  # no scratchnn command: the loop is the learner's own (the doctor audit)
        "lower the learning rate from 0.5 to 0.0005; a range test finds one: raise the rate step by step from 1e-6 "
        "and take the rate halfway, on a log scale, between where the loss falls fastest and a tenth of where it "
        "is lowest; if the loss climbs at a rate 10x lower too, "
        "check your backward pass against finite differences (scratchnn.gradcheck.numerical_gradient): a gradient "
        "with the wrong sign climbs at any rate")
    assert fixes["dead-relu"] == "this follows from [lr-too-high] (epoch 0): fix that first"
    assert all("None" not in fix for fix in fixes.values())


def test_a_symptom_of_a_cause_the_doctor_found_points_to_the_cause():
    """Zero weights: every step is 'huge' against weights near 0, whatever the rate. Told to lower a
    correct rate, a learner lowered it again and again (the audit's first finding)."""
    health = [(0, "model", "classes", 10), (0, "0.Dense", "unit_spread", 0.0), (0, "0.Dense", "weight_rms", 0.0)]
    health += [(e, "0.Dense", "update_ratio", 0.11) for e in range(1, 4)] + [(e, "1.ReLU", "dead_fraction", 1.0)
                                                                         for e in range(1, 4)]
    for settings in (None, Settings({"lr": 0.1, "init": "zeros", "activation": "relu"}, CONFIG)):
        fixes = {f.id: f.fix for f in diagnose(metrics([2.3] * 4), health, settings)}
        assert "symmetric-units" in fixes and {"lr-too-high", "dead-relu"} <= set(fixes), fixes
        follows = "this follows from [symmetric-units] (epoch 0): fix that first"
        assert fixes["lr-too-high"] == fixes["dead-relu"] == follows
        assert "--init he_normal" in fixes["symmetric-units"]


def test_logits_made_large_by_unscaled_pixels_are_not_blamed_on_the_init():
    """The page audit: pixels fed as 0..255 made the untrained logits reach 1,170, and [large-init]
    sent the learner to change --init for nothing."""
    health = [(0, "model", "classes", 10), (0, "model", "input_min", 0.0), (0, "model", "input_max", 255.0),
              (0, "model", "logit_max", 1170.0)]
    fixes = {f.id: f.fix for f in diagnose(metrics([2.3, 2.2]), health, None)}
    assert fixes["large-init"] == "this follows from [unscaled-inputs] (epoch 0): fix that first"
    alone = {f.id: f.fix for f in diagnose(metrics([2.3, 2.2]), health[:2] + health[3:], None)}
    assert "--init" in alone["large-init"]  # without unscaled pixels, the init is the cause


def test_the_live_doctor_remembers_the_cause_it_found_evaluations_ago(shared_dir, tmp_path):
    mnist = shared_dir / "datasets/mnist"
    train = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "seed", "--init", "zeros",
                            "--epochs", "60", "--images", str(mnist / "t10k-images-idx3-ubyte.gz"),
                            "--labels", str(mnist / "t10k-labels-idx1-ubyte.gz"), "--out", str(tmp_path / "run"),
                            "--no-report"], capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    assert "[symmetric-units] error" in train.stdout and "[lr-too-high] warning" in train.stdout
    assert "lower --lr" not in train.stdout, train.stdout  # printed ten evaluations after the cause
    assert train.stdout.count("fix: this follows from [symmetric-units] (iteration 0): fix that first") >= 2
    assert "[symmetric-units] error: 0.Dense: its units are identical (spread 0 across units) (iteration 0)" \
        in train.stdout  # the seed trains on the full batch: its log counts iterations, and so does the doctor


def test_in_a_sigmoid_network_vanishing_gradients_cause_the_rest_but_not_in_a_relu_one():
    health = [(0, "model", "classes", 10)] + [(e, layer, "grad_rms", g) for e in range(3)
                                              for layer, g in (("0.Dense", 1e-6), ("10.Dense", 1.0))]
    health += [(e, "model", "top_class_share", 1.0) for e in range(1, 3)]
    fixes = {activation: {f.id: f.fix for f in diagnose(metrics([2.3] * 3), health,
                                                        Settings({"lr": 0.1, "activation": activation}))}
             for activation in ("sigmoid", "relu")}
    sigmoid, relu = fixes["sigmoid"], fixes["relu"]
    assert sigmoid["one-class"] == "this follows from [vanishing-gradients] (epoch 0): fix that first"
    assert relu["one-class"] == "lower the learning rate from 0.1 to 0.01; shuffle the data every epoch"


def test_in_a_relu_network_gradients_that_vanish_after_a_rate_too_high_follow_from_it():
    """The learner-mistakes audit: a CNN at Adam's lr 0.2 was told [vanishing-gradients] '0.Conv2D's
    gradient is 0 of 10.Dense's', fix --batchnorm, a step after [lr-too-high] killed its units.
    Vanishing at epoch 0 (depth and initialisation) keeps its own fix."""
    def fixes(first_grad, epochs):
        health = first_step(11.0) + [(e, layer, "grad_rms", g) for e in epochs
                                     for layer, g in (("1.Dense", first_grad), ("9.Dense", 1.0))]
        found = diagnose(metrics([2.3] * 3), health, Settings({**get_preset("mlp").to_dict(), "lr": 0.2}, CONFIG))
        return {f.id: f for f in found}
    later = fixes(0.0, (1, 2))["vanishing-gradients"]
    assert later.fix == "this follows from [lr-too-high] (epoch 0): fix that first"
    assert later.message == "1.Dense's gradient is 0: nothing reaches it back from 9.Dense"
    untrained = fixes(1e-6, (0,))["vanishing-gradients"]
    assert "follows" not in untrained.fix and untrained.message == "1.Dense's gradient is 1e-06 of 9.Dense's"


def test_an_unreadable_augmentation_is_told_the_strengths_to_go_back_to():
    health = [(0, "model", "classes", 10), (0, "model", "template_accuracy", 0.87),
              (0, "model", "augmented_template_accuracy", 0.13)]
    rows = metrics([2.3, 2.3], [0.11, 0.11])
    turned = finding("unreadable-augmentation", rows, health, augment=True,
                     augmentation={"rotate": 180.0, "shift": 8.0, "scale": 0.5, "p": 1.0})
    assert turned.fix.startswith("--augmentation shift=2,rotate=12,scale=0.1 (now shift 8, rotate 180, scale 0.5; "
                                 "those are the data's own strengths), or train once with --no-augment")
    # the data's own strengths already (a table nothing can read): the general advice
    own = finding("unreadable-augmentation", rows, health, augment=True, augmentation={})
    assert own.fix == general("unreadable-augmentation")


def test_a_divergence_names_the_doctors_cause_and_lr_find_names_the_faults_it_leaves_out(shared_dir, tmp_path):
    """Unscaled inputs blow the loss up in one step: 'try a lower --lr' alone contradicted the
    doctor's [unscaled-inputs] just above it."""
    mnist = shared_dir / "datasets/mnist"
    data = ["--images", str(mnist / "t10k-images-idx3-ubyte.gz"),
            "--labels", str(mnist / "t10k-labels-idx1-ubyte.gz")]
    train = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "seed",
                            "--fault", "unscaled-inputs", *data, "--out", str(tmp_path / "run"), "--no-report"],
                           capture_output=True, text=True, timeout=300)
    assert train.returncode != 0
    assert "training diverged; the inputs reach 255: scale them to 0..1 first (pixels / 255); the last" in train.stderr
    find = subprocess.run([sys.executable, "-m", "scratchnn", "lr-find", "--config",
                           str(tmp_path / "run" / CONFIG_FILE), "--batch-size", "128", "--steps", "100",
                           "--out", str(tmp_path / "lr.png")],
                          capture_output=True, text=True, timeout=300)
    assert find.returncode == 0, find.stderr
    assert "Note: the range test runs without the config's faults (unscaled-inputs)" in find.stdout


def test_a_wide_train_dev_gap_is_told_to_get_more_images_first():
    rows = metrics([1.0] * 5, [0.9] + [1.0] * 4)
    for row, dev in zip(rows, [0.8] + [0.84] * 4):
        row["dev_accuracy"] = dev
    found = finding("train-dev-gap", rows, [(0, "model", "classes", 10)], train_size=200, dropout=0.3,
                    weight_decay=0.01, augment=False)
    assert found.fix == ("more training images (--train-size 400, or 0 for all; now 200), --dropout 0.5 (now 0.3), "
                         "--weight-decay 0.03 (now 0.01) or --augment")


def test_a_split_that_left_dev_classes_training_lacks_keeps_the_splits_fix():
    """The run's settings do not turn the split's fix back into dropout or --class-names."""
    rows = metrics([1.0] * 5, [0.9] + [1.0] * 4)
    for row in rows:
        row["dev_accuracy"] = 0.2
    health = [(0, "model", "classes", 10), (0, "model", "label_classes", 8), (0, "model", "top_label_share", 0.15),
              (0, "model", "dev_only_classes", 2)]
    for rule_id in ("train-dev-gap", "lopsided-labels"):
        fix = finding(rule_id, rows, health, train_size=0, dropout=0.3).fix
        assert fix.startswith("the dev labels hold classes the training labels lack"), fix
        assert "--dropout" not in fix and "--class-names" not in fix


def test_one_class_at_steps_that_were_never_large_points_to_the_data_first():
    """The doctor audit: the seed network on shuffled labels (steps of 3.5% at most) was told to lower
    its healthy rate from 0.1 to 0.01; labels that are not their images' are likelier."""
    health = [(0, "model", "classes", 10)] + [(e, "0.Dense", "update_ratio", 0.035) for e in range(4)]
    health += [(e, "model", signal, value) for e in range(4) for signal, value in (("top_class_share", 0.9),
                                                                                   ("top_class", 2))]
    found = [f for f in diagnose(metrics([2.3, 2.3, 2.3, 2.3]), health, Settings({"lr": 0.1}, "run/config.toml"))
             if f.id == "one-class"]
    assert found and found[0].fix.startswith("its steps were never large (at most 0.035 of the weights' size), so "
                                             "look at the data first: check that each image has its own label; "
                                             "else lower --lr from 0.1 to 0.01"), found


def test_the_live_doctor_and_the_doctor_afterwards_name_the_same_cause():
    """The audit: live, [exploding] followed from [large-init] (met at epoch 0), afterwards from
    [softmax-overflow] (first in rule order). The cause that comes first in CAUSES wins in both:
    with a stable softmax the same logits train."""
    from scratchnn.doctor import Finding
    from scratchnn.doctor.advice import fitted
    from scratchnn.doctor.findings import RunHealth

    def made(rule_id, epoch):
        return Finding(rule_id, "error", epoch, "m", "e", "general")

    run = RunHealth(metrics([2.3, math.inf]), [])
    live = fitted([made("softmax-overflow", 1), made("exploding", 1)], run, None, earlier=[made("large-init", 0)])
    after = fitted([made("softmax-overflow", 1), made("large-init", 0), made("exploding", 1)], run, None)
    said = "this follows from [softmax-overflow] (epoch 1): fix that first"
    assert live[-1].fix == after[-1].fix == said


def test_a_run_that_ends_early_is_examined_at_its_end_so_the_summary_names_only_what_was_printed(
        shared_dir, tmp_path, monkeypatch):
    """The review: past 100 evaluations the live doctor skips most of them, and a run stopped by
    early stopping (or Stop, or a sweep) never reached its 'last' one, so the end-of-run summary
    named findings never printed. Here no evaluation is examined but the last ones."""
    from scratchnn.doctor import diagnosis
    from scratchnn.training.run import train_run

    monkeypatch.setattr(diagnosis, "examined", lambda evaluations: False)
    mnist = shared_dir / "datasets/mnist"
    config = get_preset("seed")
    config.images, config.labels = str(mnist / "t10k-images-idx3-ubyte.gz"), str(mnist / "t10k-labels-idx1-ubyte.gz")
    config.lr, config.epochs, config.eval_every, config.patience = 10.0, 60, 1, 2  # diverging: dev loss stops falling
    said: list[str] = []
    result = train_run(config, tmp_path / "run", log=said.append, progress=False)
    assert result.history[-1].epoch < config.epochs, "early stopping did not stop the run"
    printed = {line.split("]")[0] + "]" for line in said if line.startswith("[")}
    assert result.findings and printed == {f"[{f.id}]" for f in result.findings}, (printed, result.findings)


def test_lopsided_labels_from_a_tiny_train_size_are_told_to_take_more_images():
    """The doctor audit: --train-size 20 left classes without a label, and the fix said to look
    for a CSV sorted by label."""
    health = [(0, "model", "classes", 10), (0, "model", "label_classes", 8), (0, "model", "top_label_share", 0.2)]
    tiny = finding("lopsided-labels", metrics([2.3, 2.2]), health, train_size=20)
    assert tiny.fix.startswith("--train-size 200 or more, or 0 for all (now 20: too few images for 10 classes")
    named = finding("lopsided-labels", metrics([2.3, 2.2]), health, train_size=5000, class_names=["a"] * 10)
    assert named.fix == general("lopsided-labels")


def test_lopsided_labels_of_data_with_fewer_classes_names_class_names():
    """The doctor audit: a CSV of the digits 0 and 1 trained a 10-output network; the fix never named
    --class-names, the one way to give it two outputs."""
    health = [(0, "model", "classes", 10), (0, "model", "label_classes", 2), (0, "model", "top_label_share", 0.54)]
    zero_one = [(0, "model", "lowest_label", 0), (0, "model", "highest_label", 1)]
    for size in (0, 5000):
        assert finding("lopsided-labels", metrics([2.3, 2.2]), health + zero_one, train_size=size).fix == (
            "the labels are 0 to 1: name the 2 classes and the network gets that many outputs: "
            "--class-names zero,one (one name a label); else check that --csv (or --labels) is the right file")
    assert finding("lopsided-labels", metrics([2.3, 2.2]), health).fix == general("lopsided-labels")  # an older table


def test_lopsided_labels_numbered_from_1_or_with_a_gap_are_not_given_names_that_train_refuses():
    """The learner-mistakes audit: labels 1..10 (and 1..9 of 4,000 lopsided digits, and 0..9 without
    an 8) were told '--class-names zero,...,nine', which train refuses: 'label 10 has no name'."""
    from_one = [(0, "model", "classes", 11), (0, "model", "label_classes", 10), (0, "model", "top_label_share", 0.11),
                (0, "model", "lowest_label", 1), (0, "model", "highest_label", 10)]
    assert finding("lopsided-labels", metrics([2.3, 2.2]), from_one).fix.startswith(
        "the labels run from 1 to 10: subtract 1 from every label, so they are 0 to 9")
    gap = [(0, "model", "classes", 10), (0, "model", "label_classes", 9), (0, "model", "top_label_share", 0.11),
           (0, "model", "lowest_label", 0), (0, "model", "highest_label", 9)]
    assert finding("lopsided-labels", metrics([2.3, 2.2]), gap).fix == general("lopsided-labels")
    from_one_gap = [(0, "model", "classes", 10), (0, "model", "label_classes", 8),  # 1..9 without a 5
                    (0, "model", "top_label_share", 0.13), (0, "model", "lowest_label", 1),
                    (0, "model", "highest_label", 9)]
    assert finding("lopsided-labels", metrics([2.3, 2.2]), from_one_gap).fix == general("lopsided-labels")


def test_lopsided_labels_numbered_from_5_or_named_past_them_are_told_so_whatever_the_train_size():
    """The advice audit: labels 5..14 were told --train-size 300 (then, with 0, to check the file) where
    train's note said to number them 0..9; 11 names for the labels 0..9 were told to check the file."""
    offset = [(0, "model", "classes", 15), (0, "model", "label_classes", 10), (0, "model", "top_label_share", 0.11),
              (0, "model", "lowest_label", 5), (0, "model", "highest_label", 14)]
    renumber = ("the labels run from 5 to 14: number them 0 to 9 in the file (np.unique(labels, return_inverse=True)"
                "[1] does it) and name them with --class-names")
    assert finding("lopsided-labels", metrics([2.3, 2.2]), offset, train_size=0).fix == renumber
    assert finding("lopsided-labels", metrics([2.3, 2.2]), offset, train_size=200).fix.endswith(
        f"too few images for 15 classes each to get a share); if it persists, {renumber}")
    named = [(0, "model", "classes", 11), (0, "model", "label_classes", 10), (0, "model", "top_label_share", 0.11),
             (0, "model", "lowest_label", 0), (0, "model", "highest_label", 9)]
    assert finding("lopsided-labels", metrics([2.3, 2.2]), named, class_names=["a"] * 11).fix == (
        "--class-names names 11 classes, and the labels are 0 to 9: give one name a label")


def test_inputs_standardised_pixel_by_pixel_are_not_told_to_divide_by_255():
    """The learner-mistakes audit: StandardScaler-style inputs (-1.25 to 54.8: a border pixel's
    tiny standard deviation blows its rare ink up) were told to divide the raw 0..255 values by
    255, which would scale them twice. Raw pixels, and raw ones centred (-33..222), keep that fix."""
    def inputs(low, high):
        return [(0, "model", "input_min", low), (0, "model", "input_max", high)]
    standardised = finding("unscaled-inputs", metrics([2.3, 2.2]), inputs(-1.25, 54.8))
    assert "(standardised pixel by pixel?)" in standardised.message
    assert standardised.fix.startswith("the inputs go below 0: standardised pixel by pixel?")
    assert "(x - x.mean()) / x.std()" in standardised.fix
    for low, high in ((0, 255), (-33, 222)):
        raw = finding("unscaled-inputs", metrics([2.3, 2.2]), inputs(low, high))
        assert raw.fix == general("unscaled-inputs") and "standardised" not in raw.message
