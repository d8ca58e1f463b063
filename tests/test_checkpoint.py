"""Checkpoints read back exactly, and a tampered one is one clear ModelFileError, never a traceback."""
import numpy as np
import pytest
from model_file_support import tamper

from scratchnn import Dense, ReLU, Sequential
from scratchnn.errors import ModelFileError
from scratchnn.nn import BatchNorm1d
from scratchnn.optim import Adam, Cosine
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from scratchnn.training.early_stopping import EarlyStopping
from scratchnn.training.fit import EpochResult


def build():
    model = Sequential([Dense(6, 5, rng=0), BatchNorm1d(5), ReLU(), Dense(5, 3, rng=1)])
    gens = {"order": np.random.default_rng(1), "layers": np.random.default_rng(2)}
    return model, Adam(1e-3), Cosine(1e-3, total_steps=10), EarlyStopping(patience=3), gens


@pytest.fixture
def checkpoint(tmp_path):
    model, optimizer, schedule, stopping, gens = build()
    optimizer.step(model.named_parameters())  # creates the m, v slots
    stopping.update(1, 0.5, model)  # best weights
    history = [EpochResult(1, 0.9, 0.5, float("nan"), float("nan"), 1e-3, 0.1)]
    return save_checkpoint(tmp_path / CHECKPOINT_FILE, model=model, optimizer=optimizer, schedule=schedule,
                           early_stopping=stopping, generators=gens, history=history)


def test_a_checkpoint_restores_what_was_saved(checkpoint):
    loaded = load_checkpoint(checkpoint)
    assert loaded.epoch == 1 and np.isnan(loaded.history[0].dev_loss)
    model, optimizer, schedule, stopping, gens = build()
    loaded.restore(model=model, optimizer=optimizer, schedule=schedule, early_stopping=stopping, generators=gens)
    assert optimizer.steps == 1 and stopping.best == 0.5 and set(stopping.best_weights) == set(model.state_dict())


def put(*keys_and_value):
    *keys, value = keys_and_value

    def edit(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        if value is DROP:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return edit


DROP = object()
TAMPERED = {
    "epoch a word": (("epoch", "two"), "checkpoint epoch must be an integer"),
    "epoch negative": (("epoch", -1), "checkpoint epoch must be an integer"),
    "epoch beyond its history": (("epoch", 7), "epoch 7 is not the last epoch of its history"),
    "no epoch": (("epoch", DROP), "checkpoint metadata has no 'epoch'"),
    "finished a string": (("finished", "yes"), "'finished' must be true or false"),
    "history a dict": (("history", {"1": {}}), "history must be a list"),
    "history row short": (("history", 0, "lr", DROP), "history entry 0 must hold exactly"),
    "history loss a word": (("history", 0, "train_loss", "low"), "history entry 0 train_loss must be a number"),
    "optimizer lr a word": (("optimizer", "lr", "fast"), "optimizer lr must be a number"),
    "optimizer extra key": (("optimizer", "state", {}), "optimizer must hold exactly lr and steps"),
    "schedule a list": (("schedule", [1]), "schedule must be an object"),
    "schedule value a word": (("schedule", "lr", "x"), "schedule lr must be a number"),
    "schedule lr 1e300": (("schedule", "lr", 1e300), r"schedule lr must be a number in \[0, 1e\+06\], got 1e\+300"),
    "schedule min_lr negative": (("schedule", "min_lr", -5), r"schedule min_lr must be a number in \[0, "),
    "schedule steps negative": (("schedule", "total_steps", -5), "schedule total_steps must be a whole number >= 1"),
    "schedule steps a float": (("schedule", "warmup_steps", 2.5), "schedule warmup_steps must be a whole number >= 0"),
    "early stopping best a word": (("early_stopping", "best", "x"), "early_stopping best must be a number"),
    "generator of another kind": (("generators", "order", "bit_generator", "MT19937"), "PCG64 bit-generator state"),
    "generator state a float": (("generators", "order", "state", "state", 1.5), "order' state must be an integer"),
    "generator state too large": (("generators", "order", "state", "inc", 2**130), "order' inc must be an integer"),
    "generators a list": (("generators", []), "generators must be an object"),
    "not a checkpoint": (("kind", "model"), "not a scratchnn checkpoint"),
}


@pytest.mark.parametrize("edit,message", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_checkpoint_metadata_is_one_clear_error(checkpoint, edit, message):
    tamper(checkpoint, metadata=put(*edit))
    with pytest.raises(ModelFileError, match=message) as caught:
        load_checkpoint(checkpoint)
    assert str(caught.value).startswith(str(checkpoint)) and "\n" not in str(caught.value)


TENSORS = {
    "optimizer slot of the wrong shape": (lambda t: t.__setitem__("optim.0.W.m", np.zeros(3, np.float32)),
                                          r"'optim.0.W.m' has shape \(3,\), the parameter has \(6, 5\)"),
    "optimizer slot for no parameter": (lambda t: t.__setitem__("optim.9.W.m", np.zeros(3, np.float32)),
                                        "'optim.9.W.m' names no parameter"),
    "optimizer slot for a buffer": (lambda t: t.__setitem__("optim.1.running_mean.m", np.zeros(5, np.float32)),
                                    "'optim.1.running_mean.m' names no parameter"),
    "optimizer slots that differ": (lambda t: t.pop("optim.0.W.v"), "same slots for every parameter"),
    "best weights incomplete": (lambda t: t.pop("best.3.b"), "tensor 'best.3.b' is missing"),
    "model weights missing": (lambda t: t.pop("model.0.W"), "tensor 'model.0.W' is missing"),
    "a stray tensor": (lambda t: t.__setitem__("extra", np.zeros(1, np.float32)), "'extra' does not belong"),
}


@pytest.mark.parametrize("edit,message", TENSORS.values(), ids=TENSORS.keys())
def test_tampered_checkpoint_tensors_are_named(checkpoint, edit, message):
    tamper(checkpoint, tensors=edit)
    with pytest.raises(ModelFileError, match=message):
        load_checkpoint(checkpoint)


def test_a_schedule_out_of_range_says_how_to_go_on(checkpoint):
    tamper(checkpoint, metadata=put("schedule", "lr", 1e300))  # resumed, the run would diverge
    with pytest.raises(ModelFileError, match="schedule lr must be") as error:
        load_checkpoint(checkpoint)
    assert str(error.value).endswith(f"it cannot be resumed from; train the same settings anew: scratchnn train "
                                     f"--config {checkpoint.parent / 'config.toml'}"), error.value


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_checkpoint_says_how_to_go_on(checkpoint, damage):
    """'re-save it' (the model file's advice) cannot be done to a checkpoint: train the settings anew."""
    data = bytearray(checkpoint.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data[-5] ^= 0xFF  # a tensor byte: the checksum no longer matches
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(checkpoint)
    assert str(error.value).endswith(f"it cannot be resumed from; train the same settings anew: scratchnn train "
                                     f"--config {checkpoint.parent / 'config.toml'}"), error.value
    assert "re-save" not in str(error.value)


def test_a_checkpoint_loaded_as_a_model_is_named_as_such(checkpoint):
    """The compatibility audit: io.load of a checkpoint said "tensor '0.W' is missing (6 of the
    architecture's 6 are); re-save the model"."""
    from scratchnn.io import load

    with pytest.raises(ModelFileError, match=r"checkpoint\.safetensors: a training checkpoint, not a model file: "
                                             r"give the run folder's model\.safetensors"):
        load(checkpoint)
