"""The note a run that ended mid-descent gets: the doctor's rules look for what went wrong, so a
run cut short reads "no findings" and looks finished (the seed network after 40 iterations, the
mlp's recipe on SGD for 3 epochs)."""
import math

from scratchnn.training.fit import EpochResult
from scratchnn.training.run_health import still_learning


def history(rows):
    return [EpochResult(epoch, loss, math.nan, loss, dev, 0.1, 1.0) for epoch, loss, dev in rows]


def test_a_run_still_learning_fast_at_its_end_is_told_to_train_longer():
    seed_40 = history([(10, 2.25, 0.18), (20, 2.04, 0.266), (30, 1.88, 0.317), (40, 1.73, 0.383)])
    assert still_learning(seed_40, 40, "iteration") == (
        "Note: still learning when it ended: from iteration 30 to 40 the train loss fell 8% and the dev accuracy rose "
        "6.6 points; more iterations would likely help (--epochs 80)")
    sgd_3 = history([(1, 2.80, 0.148), (2, 2.43, 0.359), (3, 2.23, 0.397)])
    assert "from epoch 2 to 3" in still_learning(sgd_3, 3) and "(--epochs 6)" in still_learning(sgd_3, 3)


def test_a_settled_run_or_one_stopped_early_gets_no_note():
    settled = history([(e, 0.05, 0.975) for e in range(1, 41)])
    assert still_learning(settled, 40) == ""
    rising_dev_only = history([(1, 0.5, 0.90), (2, 0.499, 0.95)])  # the loss no longer falls
    assert still_learning(rising_dev_only, 2) == ""
    early_stopped = history([(10, 2.25, 0.18), (20, 2.04, 0.266)])  # patience ended it before --epochs
    assert still_learning(early_stopped, 40) == ""
    no_dev = history([(1, 2.8, math.nan), (2, 2.4, math.nan)])
    assert still_learning(no_dev, 2) == "" and still_learning([], 5) == ""


def test_scratchnn_doctor_gives_the_note_train_ended_with(tmp_path, capsys):
    """The doctor audit: `train --preset seed --epochs 20` ended with the note, and `scratchnn
    doctor` of the same run said only "no findings; the run looks healthy"."""
    from scratchnn.cli.main import main
    from scratchnn.doctor.record import HealthLog
    from scratchnn.training.config import TrainConfig

    TrainConfig(preset="seed", batch_size=0, epochs=40).save(tmp_path / "config.toml")
    log = HealthLog()
    for epoch, loss, dev in [(10, 2.25, 0.18), (20, 2.04, 0.266), (30, 1.88, 0.317), (40, 1.73, 0.383)]:
        log.evaluation(epoch, train_loss=loss, train_accuracy=dev, dev_loss=loss, dev_accuracy=dev)
    log.save(tmp_path)
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == ("Note: still learning when it ended: from iteration 30 to 40 the train loss "
                                    "fell 8% and the dev accuracy rose 6.6 points; more iterations would likely "
                                    "help (--epochs 80)"), out
    assert main(["doctor", str(tmp_path), "--json"]) == 0  # the outputs audit: --json dropped the note
    out, err = capsys.readouterr()
    assert out.strip() == "[]" and err.startswith("Note: still learning when it ended: from iteration 30 to 40"), err
    TrainConfig(preset="seed", batch_size=0, epochs=80).save(tmp_path / "config.toml")  # stopped short: no note
    assert main(["doctor", str(tmp_path)]) == 0 and "still learning" not in capsys.readouterr().out


def test_a_run_with_a_warning_is_not_told_to_train_longer(tmp_path, capsys):
    """A web-doctor audit: an mlp at lr 1 got [lr-too-high] and, beside it, "more epochs would
    likely help (--epochs 10)": more of a rate too high is not the fix."""
    import numpy as np

    from scratchnn.cli.main import main
    from scratchnn.doctor.record import HealthLog
    from scratchnn.training.config import TrainConfig

    TrainConfig(preset="seed", batch_size=0, epochs=40).save(tmp_path / "config.toml")
    log = HealthLog()
    weights = np.random.default_rng(0).normal(0, 0.05, (784, 10))
    log.weights(0, "W1", weights * 1.6, before=weights)  # the first step moved them by 60%
    for epoch, loss, dev in [(10, 2.25, 0.18), (20, 2.04, 0.266), (30, 1.88, 0.317), (40, 1.73, 0.383)]:
        log.evaluation(epoch, train_loss=loss, train_accuracy=dev, dev_loss=loss, dev_accuracy=dev)
    log.save(tmp_path)
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[lr-too-high]" in out and "still learning" not in out, out


def test_the_note_is_left_out_only_where_more_epochs_is_no_advice():
    """The review: any warning hid the note (a lopsided-labels one too), and an advice-level
    [train-dev-gap], which says more epochs will not close its gap, kept it."""
    from scratchnn.doctor.findings import Finding
    from scratchnn.training.run_health import more_epochs_may_help

    def found(rule_id, severity):
        return [Finding(rule_id, severity, 1, "message", "explanation", "fix")]
    assert more_epochs_may_help([]) and more_epochs_may_help(found("lopsided-labels", "warning"))
    assert not more_epochs_may_help(found("train-dev-gap", "advice"))
    assert not more_epochs_may_help(found("lr-too-high", "warning"))
    assert not more_epochs_may_help(found("symmetric-units", "error"))
