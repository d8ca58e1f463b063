"""A run records the augmentation it trains with (config.toml, model file, checkpoint), and a
resumed or repeated run keeps it even when the dataset's default changed in between (as DIGITS.p
did, from 1 to 0.8), also for run folders from before config.toml recorded it."""
import dataclasses

import numpy as np
import pytest
from test_run import digits, small_config  # noqa: F401  (digits: a fixture)

from scratchnn.data import augment
from scratchnn.errors import ModelFileError
from scratchnn.io import MODEL_FILE, read_metadata, read_tensors, write_tensors
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from scratchnn.training.config import TrainConfig
from scratchnn.training.presets import resolve_config, with_recorded_augmentation
from scratchnn.training.run import resume_run, train_run

OLD_DIGITS = dataclasses.replace(augment.DIGITS, p=1.0)


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def config(digits):
    return small_config(digits, epochs=4, augment=True, threads=1)


def stop_after_epoch_2(result):
    if result.epoch == 2:  # its checkpoint is written before this hook runs
        raise Interrupted


def interrupted_run(config, folder, monkeypatch, digits_default):
    with monkeypatch.context() as patch:
        patch.setattr(augment, "DIGITS", digits_default)
        with pytest.raises(Interrupted):
            train_run(config, folder, log=lambda line: None, progress=False, on_evaluation=stop_after_epoch_2)
    assert load_checkpoint(folder / CHECKPOINT_FILE).epoch == 2


def from_before_configs_recorded_it(folder):
    """Rewrite ``folder``'s config.toml as versions before the record wrote it: ``augment = true`` only."""
    path = folder / "config.toml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith("augmentation =")))
    assert TrainConfig.load(path).augment and TrainConfig.load(path).augmentation == {}


def test_the_config_model_file_and_checkpoint_record_the_augmentation(tmp_path, config):
    lines = []
    train_run(config, tmp_path / "run", log=lines.append, progress=False)
    assert TrainConfig.load(tmp_path / "run" / "config.toml").augmentation == augment.DIGITS.to_dict()
    assert "\naugmentation = {shift = 2.0, " in (tmp_path / "run" / "config.toml").read_text()
    assert read_metadata(tmp_path / "run" / MODEL_FILE)["augmentation"] == augment.DIGITS.to_dict()
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).augmentation == augment.DIGITS
    assert f"Augmentation: {augment.DIGITS.describe()}" in lines
    train_run(dataclasses.replace(config, augment=False), tmp_path / "plain", log=lines.append, progress=False)
    assert read_metadata(tmp_path / "plain" / MODEL_FILE)["augmentation"] is None
    assert TrainConfig.load(tmp_path / "plain" / "config.toml").augmentation == {}


@pytest.mark.parametrize("recorded_in_config", [True, False], ids=["config", "checkpoint"])
def test_a_resumed_run_keeps_the_augmentation_it_started_with(tmp_path, config, monkeypatch, recorded_in_config):
    with monkeypatch.context() as patch:  # an uninterrupted run under the old default
        patch.setattr(augment, "DIGITS", OLD_DIGITS)
        train_run(config, tmp_path / "whole", log=lambda line: None, progress=False)
    interrupted_run(config, tmp_path / "resumed", monkeypatch, OLD_DIGITS)
    if not recorded_in_config:  # a run folder from before: only its checkpoint knows
        from_before_configs_recorded_it(tmp_path / "resumed")
    lines = []
    resume_run(tmp_path / "resumed", log=lines.append, progress=False)  # the default is DIGITS (p = 0.8) again
    noted = any("continuing with the augmentation the run started with" in line
                and "each image with probability 80%" in line
                for line in lines)
    assert noted != recorded_in_config, lines  # the config says it: nothing to note
    whole, resumed = (read_tensors(tmp_path / name / MODEL_FILE)[0] for name in ("whole", "resumed"))
    assert all(np.array_equal(whole[name], resumed[name]) for name in whole)
    assert read_metadata(tmp_path / "resumed" / MODEL_FILE)["augmentation"] == OLD_DIGITS.to_dict()


def from_before_checkpoints_recorded_it(folder, generators=("augment",)):
    """Rewrite ``folder``'s checkpoint as versions before 2026-12-05 wrote it: no augmentation
    record; and as versions before 2026-12-01, no state for the ``generators`` named."""
    path = folder / CHECKPOINT_FILE
    tensors, metadata = read_tensors(path)
    del metadata["augmentation"]
    for name in generators:
        del metadata["generators"][name]
    write_tensors(path, tensors, metadata)


@pytest.mark.parametrize("table", [False, True], ids=["unrecorded", "config-table"])
def test_a_checkpoint_from_before_the_record_continues_with_what_those_versions_drew(tmp_path, config,
                                                                                     monkeypatch, table):
    """The compatibility audit: a run a version of 2026-12-03 started (every digit moved, p = 1)
    went on with this version's p = 0.8 when resumed, and a table in config.toml was called "this
    version's" too. It goes on as it began (p = 1), or with the table config.toml was given."""
    interrupted_run(config, tmp_path / "run", monkeypatch, OLD_DIGITS)
    from_before_checkpoints_recorded_it(tmp_path / "run", generators=())
    from_before_configs_recorded_it(tmp_path / "run")
    if table:  # the way the note tells: a table in config.toml
        path = tmp_path / "run" / "config.toml"
        path.write_text(path.read_text() + "augmentation = {p = 0.5}\n")
    lines = []
    resume_run(tmp_path / "run", log=lines.append, progress=False)
    note = next(line for line in lines if "does not record which augmentation" in line)
    assert "a version before 2026-12-05 wrote it" in note
    chosen = dataclasses.replace(augment.DIGITS, p=0.5) if table else OLD_DIGITS
    assert read_metadata(tmp_path / "run" / MODEL_FILE)["augmentation"] == chosen.to_dict()
    assert TrainConfig.load(tmp_path / "run" / "config.toml").build_augmentation() == chosen  # its repeat too
    if table:
        assert "continuing with config.toml's table (" in note and "50%" in note, note
    else:
        assert "what those versions drew (" in note and "an augmentation table in config.toml chooses another" in note


def test_a_checkpoint_from_before_the_augmentation_generator_resumes_a_run_without_augmentation(
        tmp_path, config, monkeypatch):
    """The compatibility audit: a run of 2026-11-25 (no "augment" generator then) was refused as
    "does not fit this run ('augment')", though it never augmented."""
    plain = dataclasses.replace(config, augment=False)
    train_run(plain, tmp_path / "whole", log=lambda line: None, progress=False)
    interrupted_run(plain, tmp_path / "old", monkeypatch, augment.DIGITS)
    from_before_checkpoints_recorded_it(tmp_path / "old")
    resume_run(tmp_path / "old", log=lambda line: None, progress=False)
    whole, resumed = (read_tensors(tmp_path / name / MODEL_FILE)[0] for name in ("whole", "old"))
    assert all(np.array_equal(whole[name], resumed[name]) for name in whole)
    interrupted_run(plain, tmp_path / "older", monkeypatch, augment.DIGITS)
    from_before_checkpoints_recorded_it(tmp_path / "older", generators=("augment", "layers"))
    with pytest.raises(ModelFileError, match=r"an older version wrote it, without the state of the run's layers "
                                             r"random draws, .*: scratchnn train --config .*older/config\.toml$"):
        resume_run(tmp_path / "older", log=lambda line: None, progress=False)


@pytest.mark.parametrize("values, words", [({"p": 5.0}, "p is the probability"), ({"spin": 1.0}, "unknown"),
                                           ([1, 2], "must be an object"), ({"shift": "2"}, "must be a number")])
def test_a_checkpoint_with_a_bad_augmentation_is_refused_before_anything_is_restored(tmp_path, config,
                                                                                     monkeypatch, values, words):
    interrupted_run(config, tmp_path / "run", monkeypatch, augment.DIGITS)
    path = tmp_path / "run" / CHECKPOINT_FILE
    tensors, metadata = read_tensors(path)
    write_tensors(path, tensors, {**metadata, "augmentation": values})
    with pytest.raises(ModelFileError, match=f"augmentation.*{words}"):
        load_checkpoint(path)


def test_repeating_a_run_from_its_config_repeats_its_augmentation(tmp_path, config, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(augment, "DIGITS", OLD_DIGITS)
        train_run(config, tmp_path / "old", log=lambda line: None, progress=False)
    lines = []  # the default is DIGITS (p = 0.8) again; the config says p = 1
    repeat = resolve_config(config_file=tmp_path / "old" / "config.toml", log=lines.append)
    assert lines == [] and repeat.build_augmentation() == OLD_DIGITS
    assert resolve_config(config_file=tmp_path / "old" / "config.toml", log=lines.append,
                          settings={"augment": False}).build_augmentation() is None
    clothes = resolve_config(config_file=tmp_path / "old" / "config.toml", data={"dataset": "fashion-mnist"})
    assert clothes.augmentation == {} and clothes.build_augmentation() == augment.CLOTHES  # another kind's own
    digits = resolve_config(config_file=tmp_path / "old" / "config.toml", data={"dataset": "mnist"})
    assert digits.build_augmentation() == OLD_DIGITS  # digits again: the run's own


def test_repeating_a_run_from_before_configs_recorded_it_takes_its_model_files_record(tmp_path, config,
                                                                                      monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(augment, "DIGITS", OLD_DIGITS)
        train_run(config, tmp_path / "old", log=lambda line: None, progress=False)
        from_before_configs_recorded_it(tmp_path / "old")
        same = []
        assert resolve_config(config_file=tmp_path / "old" / "config.toml", log=same.append
                              ).build_augmentation() == OLD_DIGITS
        assert same == []  # the same default as the run had: nothing to say
    lines = []
    repeat = resolve_config(config_file=tmp_path / "old" / "config.toml", log=lines.append)
    assert repeat.build_augmentation() == OLD_DIGITS
    assert len(lines) == 1 and "repeating the augmentation" in lines[0], lines
    assert "100%" not in lines[0] and "each image with probability 80%" in lines[0], lines[0]  # p = 1 is not printed
    tensors, metadata = read_tensors(tmp_path / "old" / MODEL_FILE)  # a model file from before 2026-12-05
    write_tensors(tmp_path / "old" / MODEL_FILE, tensors, {k: v for k, v in metadata.items() if k != "augmentation"})
    older = []
    assert resolve_config(config_file=tmp_path / "old" / "config.toml", log=older.append
                          ).build_augmentation() == OLD_DIGITS  # the compatibility audit: it was this version's
    assert len(older) == 1 and "does not record its augmentation (a version before 2026-12-05" in older[0], older
    (tmp_path / "old" / MODEL_FILE).write_bytes(b"garbage")  # a broken model file is for other commands to report
    unknown = TrainConfig.load(tmp_path / "old" / "config.toml")
    assert with_recorded_augmentation(unknown, tmp_path / "old", log=lines.append) == unknown and len(lines) == 1


@pytest.mark.parametrize("started_with", [True, False], ids=["augmented", "plain"])
def test_a_config_edited_half_way_does_not_change_the_runs_augmentation(tmp_path, config, monkeypatch,
                                                                         started_with):
    start = dataclasses.replace(config, augment=started_with)
    train_run(start, tmp_path / "whole", log=lambda line: None, progress=False)
    interrupted_run(start, tmp_path / "resumed", monkeypatch, augment.DIGITS)
    edited = TrainConfig.load(tmp_path / "resumed" / "config.toml")
    dataclasses.replace(edited, augment=not started_with).save(tmp_path / "resumed" / "config.toml")
    lines = []
    resume_run(tmp_path / "resumed", log=lines.append, progress=False)
    assert any("continuing with the augmentation the run started with" in line for line in lines), lines
    assert any(line.endswith("config.toml says so again") for line in lines), lines  # the config audit: it said
    again = TrainConfig.load(tmp_path / "resumed" / "config.toml")  # the edit, so --config trained another run
    assert again.augment is started_with and again.augmentation == start.with_augmentation_recorded().augmentation
    whole, resumed = (read_tensors(tmp_path / name / MODEL_FILE)[0] for name in ("whole", "resumed"))
    assert all(np.array_equal(whole[name], resumed[name]) for name in whole)
    said = read_metadata(tmp_path / "resumed" / MODEL_FILE)["config"]  # and the model file says so
    assert said["augment"] is started_with
    assert said["augmentation"] == read_metadata(tmp_path / "whole" / MODEL_FILE)["config"]["augmentation"]
