"""A run records the augmentation it trains with, and a resumed run keeps it even when the
dataset's default changed in between (as DIGITS.p did, from 1 to 0.8)."""
import dataclasses

import numpy as np
import pytest
from test_run import digits, small_config  # noqa: F401  (digits: a fixture)

from scratchnn.data import augment
from scratchnn.errors import ModelFileError
from scratchnn.io import MODEL_FILE, read_metadata, read_tensors, write_tensors
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from scratchnn.training.config import TrainConfig
from scratchnn.training.presets import other_augmentation_note, resolve_config
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


def test_the_model_file_and_checkpoint_record_the_augmentation(tmp_path, config):
    lines = []
    train_run(config, tmp_path / "run", log=lines.append, progress=False)
    assert read_metadata(tmp_path / "run" / MODEL_FILE)["augmentation"] == augment.DIGITS.to_dict()
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).augmentation == augment.DIGITS
    assert f"Augmentation: {augment.DIGITS.describe()}" in lines
    train_run(dataclasses.replace(config, augment=False), tmp_path / "plain", log=lines.append, progress=False)
    assert read_metadata(tmp_path / "plain" / MODEL_FILE)["augmentation"] is None


def test_a_resumed_run_keeps_the_augmentation_it_started_with(tmp_path, config, monkeypatch):
    with monkeypatch.context() as patch:  # an uninterrupted run under the old default
        patch.setattr(augment, "DIGITS", OLD_DIGITS)
        train_run(config, tmp_path / "whole", log=lambda line: None, progress=False)
    interrupted_run(config, tmp_path / "resumed", monkeypatch, OLD_DIGITS)
    lines = []
    resume_run(tmp_path / "resumed", log=lines.append, progress=False)  # the default is DIGITS (p = 0.8) again
    assert any("continuing with the augmentation the run started with" in line and "80% of images" in line
               for line in lines), lines
    whole, resumed = (read_tensors(tmp_path / name / MODEL_FILE)[0] for name in ("whole", "resumed"))
    assert all(np.array_equal(whole[name], resumed[name]) for name in whole)
    assert read_metadata(tmp_path / "resumed" / MODEL_FILE)["augmentation"] == OLD_DIGITS.to_dict()


def test_a_checkpoint_from_before_the_record_continues_with_this_versions_augmentation(tmp_path, config,
                                                                                       monkeypatch):
    interrupted_run(config, tmp_path / "run", monkeypatch, augment.DIGITS)
    path = tmp_path / "run" / CHECKPOINT_FILE
    tensors, metadata = read_tensors(path)
    del metadata["augmentation"]
    write_tensors(path, tensors, metadata)
    lines = []
    resume_run(tmp_path / "run", log=lines.append, progress=False)
    assert any("does not record which augmentation" in line for line in lines), lines
    assert read_metadata(tmp_path / "run" / MODEL_FILE)["augmentation"] == augment.DIGITS.to_dict()


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


def test_repeating_a_run_from_its_config_says_when_this_versions_augmentation_differs(tmp_path, config,
                                                                                   monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(augment, "DIGITS", OLD_DIGITS)
        train_run(config, tmp_path / "old", log=lambda line: None, progress=False)
        same = []
        resolve_config(config_file=tmp_path / "old" / "config.toml", log=same.append)
        assert same == []  # the same default as the run had: nothing to say
    lines = []
    resolve_config(config_file=tmp_path / "old" / "config.toml", log=lines.append)
    assert len(lines) == 1 and "will not repeat it" in lines[0]
    assert "100%" not in lines[0] and "80% of images" in lines[0], lines[0]  # p = 1 is not printed
    (tmp_path / "old" / MODEL_FILE).write_bytes(b"garbage")  # a broken model file is for other commands to report
    assert other_augmentation_note(TrainConfig.load(tmp_path / "old" / "config.toml"), tmp_path / "old") == ""
