"""Ensembles: the mean of the members' probabilities, members that must agree on inputs and
classes (one-line errors naming the odd one), and a folder of member runs read as one ensemble."""
import numpy as np
import pytest

from scratchnn import Dense, Flatten, ReLU, Sequential
from scratchnn.data.augment import CLOTHES
from scratchnn.doctor.signals import HEALTH_FILE, Row, write_health_csv
from scratchnn.cli.main import main
from scratchnn.ensemble import Ensemble, Member, load_ensemble, model_files
from scratchnn.errors import ConfigError, ModelFileError, ShapeError
from scratchnn.io import MODEL_FILE, save
from scratchnn.training.checkpoint import CHECKPOINT_FILE

DIGIT_NAMES = [str(d) for d in range(10)]


def mlp(seed, classes=10, inputs=784):
    return Sequential([Dense(inputs, 16, rng=seed), ReLU(), Dense(16, classes, rng=seed + 1)])


def x(n=6):
    return np.random.default_rng(0).random((n, 784), dtype=np.float32)


def saved(path, model, **metadata):
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(model, path, metadata={"classes": DIGIT_NAMES[:model.num_classes], **metadata})


def test_the_ensemble_is_the_mean_of_its_members():
    members = [mlp(0), mlp(10), mlp(20)]
    ensemble = Ensemble(members)
    expected = np.mean([m.predict_proba(x()).astype(np.float64) for m in members], axis=0)
    assert np.allclose(ensemble.predict_proba(x()), expected, atol=1e-7)
    assert np.array_equal(ensemble.predict(x()), expected.argmax(axis=1))
    with_tta = np.mean([m.predict_proba(x(), tta=3).astype(np.float64) for m in members], axis=0)
    assert np.allclose(ensemble.predict_proba(x(), tta=3), with_tta, atol=1e-7)


def test_each_member_averages_the_views_of_the_data_it_was_trained_on(tmp_path):
    """A member trained on Fashion-MNIST (its metadata's config) is asked about mirrored clothes,
    any other about shifted and turned digits; no metadata means digits."""
    fashion = saved(tmp_path / "f" / MODEL_FILE, mlp(0), config={"dataset": "fashion-mnist"})
    digits = saved(tmp_path / "d" / MODEL_FILE, mlp(10), config={"dataset": "mnist"})
    ensemble = load_ensemble([fashion.parent, digits.parent])
    assert [m.views for m in ensemble.members] == ["clothes", "digits"] and Member("m", mlp(0)).views == "digits"
    # a CSV of clothes (no dataset name) trained with --augmentation clothes: its mirrors decide
    csv_clothes = saved(tmp_path / "c" / MODEL_FILE, mlp(20), config={"dataset": ""}, augmentation=CLOTHES.to_dict())
    assert load_ensemble([csv_clothes.parent]).members[0].views == "clothes"
    expected = np.mean([mlp(0).predict_proba(x(), tta=4, views="clothes").astype(np.float64),
                        mlp(10).predict_proba(x(), tta=4).astype(np.float64)], axis=0)
    assert np.allclose(ensemble.predict_proba(x(), tta=4), expected, atol=1e-7)


def test_one_member_is_the_model_itself():
    model = mlp(0)
    assert np.array_equal(Ensemble([model], fast=False).predict_proba(x()), model.predict_proba(x()))
    # on the fast path's layers (the default) the products run in another memory order
    np.testing.assert_allclose(Ensemble([model]).predict_proba(x()), model.predict_proba(x()), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("odd, words", [
    (Member("b", mlp(5, classes=5)), "'b' has 5 classes, 'a' has 10"),
    (Member("b", mlp(5, inputs=392)), "'b' takes input (392,), 'a' takes (784,)"),
    (Member("b", mlp(5), {"classes": list("abcdefghij")}), "'b' calls class 0 'a', 'a' calls it '0'"),
    (Member("b", mlp(5), {"image_shape": [14, 56]}), "'b' reads 14x56 images, 'a' reads 28x28"),
])
def test_members_that_disagree_are_refused_in_one_line(odd, words):
    with pytest.raises((ShapeError, ConfigError)) as error:
        Ensemble([Member("a", mlp(0)), odd])
    message = str(error.value)
    assert words in message and "\n" not in message, message


def test_an_mlp_and_a_cnn_of_the_same_images_answer_together():
    """The engineer's audit: refused as "members must read the same inputs", though (784,) rows and
    (1, 28, 28) images are the same 28x28 digits; each member now gets them in its own shape."""
    cnn = Sequential([Flatten(), *mlp(5).layers], input_shape=(1, 28, 28))
    ensemble = Ensemble([mlp(0), cnn])
    expected = np.mean([mlp(0).predict_proba(x()).astype(np.float64),
                        cnn.predict_proba(x().reshape(-1, 1, 28, 28)).astype(np.float64)], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(x()), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ensemble.predict_proba(x().reshape(-1, 1, 28, 28)), expected, rtol=1e-6, atol=1e-7)


def test_a_folder_of_member_runs_is_an_ensemble_in_natural_order(tmp_path):
    run = tmp_path / "run"
    for seed in (10, 2, 0):
        saved(run / f"seed-{seed}" / MODEL_FILE, mlp(seed))
    (run / "notes").mkdir()  # a sub-folder without a model is not a member
    assert [p.parent.name for p in model_files(run)] == ["seed-0", "seed-2", "seed-10"]
    ensemble = load_ensemble([run])
    assert len(ensemble) == 3 and ensemble.members[0].name == str(run / "seed-0")
    explicit = load_ensemble([run / "seed-0", run / "seed-2" / MODEL_FILE, run / "seed-10"])
    assert np.array_equal(ensemble.predict_proba(x()), explicit.predict_proba(x()))


def test_a_member_run_that_has_not_finished_is_refused(tmp_path):
    run = tmp_path / "run"
    saved(run / "seed-0" / MODEL_FILE, mlp(0))
    (run / "seed-1").mkdir()
    (run / "seed-1" / CHECKPOINT_FILE).write_bytes(b"")
    with pytest.raises(ConfigError, match=r"seed-1: the run has not finished .*--resume"):
        load_ensemble([run])


def test_a_run_that_diverged_is_not_sent_to_resume(tmp_path):
    """The CLI audit: evaluate, predict, explain and serve told a diverged run to resume, which
    diverged again. Its health.csv records the loss it diverged with (as fit writes it)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / CHECKPOINT_FILE).write_bytes(b"")
    write_health_csv(run / HEALTH_FILE, [Row(1, "model", "diverged_loss", 3591.5)])
    with pytest.raises(ConfigError, match=r"run: the run diverged, so it has no model.safetensors; resuming would "
                                          r"diverge again: 'scratchnn doctor .*run' says what to change"):
        load_ensemble([run])
    write_health_csv(run / HEALTH_FILE, [Row(1, "model", "classes", 10.0)])  # interrupted, not diverged
    with pytest.raises(ConfigError, match=r"run: the run has not finished .*--resume"):
        load_ensemble([run])


def test_a_run_that_stopped_before_saving_anything_says_how_to_start_it_again(tmp_path):
    """A run killed before its first checkpoint leaves only config.toml (a batch size its batch
    norm cannot take, say): not "no such model file" but the command that trains it."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text("preset = \"mlp\"\n")
    with pytest.raises(ConfigError, match=r"run: the run stopped before it saved anything \(only its config.toml\); "
                                          r"start it again with 'scratchnn train --resume .*run'"):
        load_ensemble([tmp_path / "run"])


def test_a_folder_without_models_and_a_member_given_twice_are_refused(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_ensemble([tmp_path / "empty"])
    path = saved(tmp_path / "a" / MODEL_FILE, mlp(0))
    with pytest.raises(ConfigError, match="given twice"):
        load_ensemble([path.parent, path])


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--index", "0"]])
def test_cli_names_the_mismatching_member(tmp_path, capsys, command):
    a = saved(tmp_path / "a" / MODEL_FILE, mlp(0))
    b = saved(tmp_path / "b" / MODEL_FILE, mlp(1, classes=5))
    assert main([command[0], str(a.parent), str(b.parent), *command[1:]]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"ensemble member '{b.parent}' has 5 classes" in err, err
