"""EarlyStopping on scripted evaluations: which one is best, when patience runs out, min_delta.

A stub model whose state is the epoch it was taken at shows which weights ``restore`` brings back.
"""
import numpy as np
import pytest

from scratchnn.errors import ConfigError
from scratchnn.training.early_stopping import EarlyStopping


class EpochModel:
    """A model whose whole state is the epoch it was last set to: what a snapshot holds is visible."""

    def __init__(self):
        self.epoch = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]


def run(stopping: EarlyStopping, values) -> tuple[list[bool], EpochModel]:
    """Feed the evaluations 1, 2, ... their values; the answers of ``update`` and the model."""
    model, stops = EpochModel(), []
    for epoch, value in enumerate(values, start=1):
        model.epoch = epoch
        stops.append(stopping.update(epoch, value, model))
    return stops, model


def test_patience_counts_from_the_best_evaluation_and_restore_brings_it_back():
    stopping = EarlyStopping("dev_loss", patience=3)
    stops, model = run(stopping, [3.0, 2.0, 2.5, 1.5, 1.6, 1.55, 1.7])
    assert stops == [False] * 6 + [True]  # the improvement at epoch 4 reset the count of 1 bad one
    assert (stopping.best, stopping.best_epoch, stopping.bad_evaluations) == (1.5, 4, 3)
    assert stopping.restore(model) and model.epoch == 4


def test_an_improvement_smaller_than_min_delta_is_a_bad_evaluation():
    stopping = EarlyStopping("dev_loss", patience=2, min_delta=0.1)
    stops, model = run(stopping, [1.0, 0.95, 0.85])  # 0.05 better: not enough; 0.15 better: enough
    assert stops == [False, False, False] and stopping.best_epoch == 3 and stopping.bad_evaluations == 0
    assert run(EarlyStopping("dev_loss", patience=2, min_delta=0.1), [1.0, 0.95, 0.91])[0] == [False, False, True]


def test_accuracy_is_watched_upwards_with_its_min_delta():
    stopping = EarlyStopping("dev_accuracy", patience=2, min_delta=0.01)
    stops, model = run(stopping, [0.90, 0.905, 0.95, 0.94, 0.955])
    assert stops == [False, False, False, False, True] and stopping.best_epoch == 3
    assert stopping.restore(model) and model.epoch == 3


def test_without_restore_best_no_weights_are_kept_or_restored():
    stopping = EarlyStopping("dev_loss", patience=1, restore_best=False)
    stops, model = run(stopping, [1.0, 2.0])
    assert stops == [False, True] and stopping.best_weights == {}
    assert not stopping.restore(model) and model.epoch == 2


def test_a_resumed_watch_stops_where_the_uninterrupted_one_does():
    values = [3.0, 2.0, 2.5, 1.5, 1.6, 1.55, 1.7]
    whole = EarlyStopping("dev_loss", patience=3)
    expected, _ = run(whole, values)
    first = EarlyStopping("dev_loss", patience=3)
    before, _ = run(first, values[:5])
    resumed = EarlyStopping("dev_loss", patience=3)
    resumed.load_state_dict(first.state_dict())
    model, after = EpochModel(), []
    for epoch, value in enumerate(values[5:], start=6):
        model.epoch = epoch
        after.append(resumed.update(epoch, value, model))
    assert before + after == expected and resumed.state_dict() == whole.state_dict()
    assert resumed.restore(model) and model.epoch == 4


@pytest.mark.parametrize("monitor, patience, min_delta, words", [
    ("train_loss", 3, 0.0, "can monitor dev_loss or dev_accuracy"),
    ("dev_loss", 0, 0.0, "patience is a whole number of evaluations >= 1, got '0'"),
    ("dev_loss", "3", 0.0, "patience is a whole number of evaluations >= 1, got '3'"),  # was a bare TypeError
    ("dev_loss", 3, -0.01, "min_delta is how much better .* a number >= 0, got '-0.01'"),  # the habits audit
    ("dev_loss", True, 0.0, "patience is a whole number of evaluations >= 1, got 'True'"),
    ("dev_loss", 2.5, 0.0, "patience is a whole number of evaluations >= 1, got '2.5'"),
    ("dev_loss", 3, float("inf"), "min_delta is how much better .* got 'inf'"),
])
def test_a_setting_it_cannot_use_is_refused(monitor, patience, min_delta, words):
    with pytest.raises(ConfigError, match=words):
        EarlyStopping(monitor, patience=patience, min_delta=min_delta)


def test_a_whole_float_patience_is_taken():
    assert EarlyStopping(patience=3.0).patience == 3  # as 97babb1 took it (the second review)


def test_one_early_stopping_serves_two_runs_each_its_own(shared_dir):
    """The habits audit: reused for a second model, it stopped that one at once and restored the
    first model's best weights into it (Keras resets it when a run begins)."""
    from scratchnn import Dense, ReLU, Sequential
    from scratchnn.data import load_csv
    from scratchnn.optim import SGD
    from scratchnn.training.fit import fit

    data = load_csv(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz")
    x, y, x_dev, y_dev = data.x_train[:500], data.y_train[:500], data.x_dev[:200], data.y_dev[:200]
    stop = EarlyStopping(patience=2)
    first = Sequential([Dense(784, 16, rng=0), ReLU(), Dense(16, 10, rng=1)])
    fit(first, SGD(0.1), x, y, epochs=6, batch_size=50, x_dev=x_dev, y_dev=y_dev, early_stopping=stop, rng=0)
    second = Sequential([Dense(784, 16, rng=2), ReLU(), Dense(16, 10, rng=3)])
    history = fit(second, SGD(0.1), x, y, epochs=3, batch_size=50, x_dev=x_dev, y_dev=y_dev, early_stopping=stop,
                  rng=0)
    assert len(history) == 3 and stop.best_epoch >= 1  # its own best, not the first model's
    assert not any(np.array_equal(a, b) for (_, a, _), (_, b, _) in zip(first.named_parameters(),
                                                                         second.named_parameters()))
    resumed = EarlyStopping(patience=2)  # a resumed run (start_epoch > 0) keeps what its checkpoint held
    resumed.load_state_dict({**stop.state_dict(), "best": -1.0, "best_epoch": 3})
    fit(second, SGD(0.1), x, y, epochs=4, start_epoch=3, batch_size=50, x_dev=x_dev, y_dev=y_dev,
        early_stopping=resumed, rng=0)
    assert (resumed.best, resumed.best_epoch) == (-1.0, 3)  # no dev loss beats -1: still the checkpoint's
