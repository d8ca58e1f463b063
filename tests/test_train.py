import numpy as np
import pytest

from scratchnn.errors import ShapeError
from scratchnn.optim import SGD
from scratchnn.training.config import TrainConfig
from scratchnn.training.fit import evaluate, fit


def blobs(n, seed=0, noise=0.3):
    """Ten noisy prototypes in 784 dimensions: a learnable stand-in for digits."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(99).random((10, 784), dtype=np.float32)
    labels = rng.integers(0, 10, n)
    x = prototypes[labels] + noise * rng.standard_normal((n, 784)).astype(np.float32)
    return x.astype(np.float32), labels


def mlp(seed=0, hidden=(32,)):
    return TrainConfig(hidden=list(hidden), init="he_normal", bias_init="zeros").build_model(
        np.random.default_rng(seed))


def test_fifty_images_overfit_to_100_percent():
    x, y = blobs(50, noise=1.0)
    model = mlp()
    history = fit(model, SGD(0.1), x, y, epochs=300, batch_size=0)
    assert history[-1].train_accuracy == 1.0 and evaluate(model, x, y)[1] == 1.0
    assert history[-1].train_loss < history[0].train_loss / 10


def test_mini_batches_learn_and_report_every_epoch():
    x, y = blobs(600)
    xd, yd = blobs(200, seed=1)
    seen = []
    history = fit(mlp(), SGD(0.05), x, y, epochs=3, batch_size=32, x_dev=xd, y_dev=yd,
                  rng=np.random.default_rng(0), on_epoch_end=seen.append)
    assert [h.epoch for h in history] == [1, 2, 3] and seen == history
    assert history[-1].dev_accuracy > 0.9
    assert all(h.seconds > 0 and h.lr == 0.05 for h in history)


def test_same_seed_gives_bit_identical_weights():
    x, y = blobs(300)
    weights = []
    for _ in range(2):
        model = mlp(seed=7)
        fit(model, SGD(0.1), x, y, epochs=2, batch_size=50, rng=np.random.default_rng(3))
        weights.append(model.state_dict())
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)


def test_full_batch_step_equals_one_hand_computed_gradient_step():
    x, y = blobs(40)
    model, reference = mlp(seed=1), mlp(seed=1)
    fit(model, SGD(0.5), x, y, epochs=1, batch_size=0)
    from scratchnn.nn import SoftmaxCrossEntropy

    loss = SoftmaxCrossEntropy()
    loss.forward(reference.forward(x), y)
    reference.backward(loss.backward())
    for (name, p, g), (_, q, _) in zip(reference.named_parameters(), model.named_parameters()):
        np.testing.assert_allclose(q, p - 0.5 * g, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("batch_size", [0, 16])
def test_blank_input_columns_are_skipped_without_changing_the_result(batch_size):
    x, y = blobs(64)
    x[:, :100] = 0  # a blank border: fit trains on the other 684 columns only
    trained, reference = mlp(seed=2), mlp(seed=2)
    fit(trained, SGD(0.1), x, y, epochs=1, batch_size=batch_size, rng=np.random.default_rng(0))
    from scratchnn.nn import SoftmaxCrossEntropy

    loss = SoftmaxCrossEntropy()
    for rows in ([slice(None)] if not batch_size else np.random.default_rng(0).permutation(64).reshape(-1, 16)):
        loss.forward(reference.forward(x[rows]), y[rows])
        reference.backward(loss.backward())
        for _, p, g in reference.named_parameters():
            p -= 0.1 * g
    for (name, p, _), (_, q, _) in zip(reference.named_parameters(), trained.named_parameters()):
        np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not trained.layers[0].grads["W"][:100].any()


@pytest.mark.parametrize("mutate, message", [
    (lambda x, y: (x[:, :700], y), r"samples of shape \(700,\)"),
    (lambda x, y: (np.where(x > 0.99, np.nan, x), y), "NaN"),
    (lambda x, y: (x, y[:-1]), "expected 50 labels"),
    (lambda x, y: (x, y + 10), r"lie in 0\.\.9"),
    (lambda x, y: (x[:0], y[:0]), "training set is empty"),
])
def test_bad_training_data_fails_before_training(mutate, message):
    x, y = blobs(50)
    x, y = mutate(x, y)
    with pytest.raises(ShapeError, match=message):
        fit(mlp(), SGD(0.1), x, y, epochs=1)


def test_evaluate_empty_set_is_nan():
    loss, acc = evaluate(mlp(), np.zeros((0, 784), np.float32), np.zeros(0, int))
    assert np.isnan(loss) and np.isnan(acc)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    from scratchnn.training.early_stopping import EarlyStopping
    x, y = blobs(400, noise=1.0)
    xd, _ = blobs(100, seed=1, noise=1.0)
    yd = np.random.default_rng(2).integers(0, 10, 100)  # unlearnable: dev loss rises as train fits
    snapshots = {}
    model = mlp()
    stopping = EarlyStopping("dev_loss", patience=3)
    history = fit(model, SGD(0.1), x, y, epochs=100, batch_size=50, x_dev=xd, y_dev=yd,
                  rng=np.random.default_rng(0), early_stopping=stopping,
                  on_epoch_end=lambda r: snapshots.setdefault(r.epoch, model.state_dict()))
    best = min(history, key=lambda r: r.dev_loss)
    assert len(history) < 100 and history[-1].epoch == best.epoch + 3 == stopping.best_epoch + 3
    for name, array in model.state_dict().items():
        assert np.array_equal(array, snapshots[best.epoch][name]), name


def test_a_schedule_sets_the_learning_rate_of_every_step():
    from scratchnn.optim.schedules import StepDecay
    x, y = blobs(100)
    history = fit(mlp(), SGD(0.1), x, y, epochs=4, batch_size=50, rng=np.random.default_rng(0),
                  schedule=StepDecay(0.1, step_size=2, gamma=0.5))  # 2 steps per epoch
    assert [h.lr for h in history] == [0.1, 0.05, 0.025, 0.0125]


@pytest.mark.parametrize("lr", [1e4, 1e12])
def test_divergence_raises_with_the_epoch_and_the_hint(lr):
    from scratchnn.errors import TrainingDiverged
    x, y = blobs(100)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1 .*try a lower learning rate \(--lr\)"):
        fit(mlp(), SGD(lr), x, y, epochs=3, batch_size=10, rng=np.random.default_rng(0))


def test_a_divergence_at_the_first_step_names_the_initial_weights_not_the_rate():
    """A follow-the-fix audit: ReLU units on the tutorial's uniform weights diverged at step 1
    (loss 373), and lowering the rate, as told, gave the same loss: no step had been taken."""
    from scratchnn.errors import TrainingDiverged
    x, y = blobs(100)
    model = mlp()
    model.layers[0].params["W"] *= 1e4  # logits in the thousands before any step
    with pytest.raises(TrainingDiverged, match=r"at epoch 1 \(step 1, .*the untrained network's loss, before any "
                                               r"step: the initial weights are too large") as caught:
        fit(model, SGD(1e-6), x, y, epochs=3, batch_size=10, rng=np.random.default_rng(0))
    assert "lower learning rate" not in str(caught.value)


@pytest.mark.parametrize("fast", [True, False])
def test_a_stop_request_ends_training_after_that_batch_and_reports_it(fast):
    rng = np.random.default_rng(0)
    x, y = rng.random((100, 8), dtype=np.float32), rng.integers(0, 3, 100)
    model = TrainConfig(hidden=[4], init="he_normal").build_model(np.random.default_rng(1), image_shape=(2, 4),
                                                                  num_classes=3)
    batches = []
    history = fit(model, SGD(0.1), x, y, epochs=5, batch_size=10, rng=np.random.default_rng(2), eval_every=2,
                  on_batch_end=lambda *progress: batches.append(progress[:2]),
                  stop_requested=lambda: len(batches) == 13, fast=fast)
    assert batches[-1] == (2, 3)  # epoch 2, its third batch: nothing ran after the request
    assert [r.epoch for r in history] == [2]
    assert np.isfinite(history[-1].train_loss) and 0 <= history[-1].train_accuracy <= 1
    halted = fit(model, SGD(0.1), x, y, epochs=5, batch_size=10, rng=np.random.default_rng(2), eval_every=2,
                 stop_requested=lambda: True, fast=fast)
    assert [r.epoch for r in halted] == [1] and np.isnan(halted[0].train_accuracy)  # epoch 1 is not measured


def test_a_learning_step_is_forward_loss_backward_update_and_refuses_a_diverged_loss():
    from scratchnn.nn import SoftmaxCrossEntropy
    from scratchnn.training.fit import StepDiverged, learning_step

    x, y = blobs(8)
    model, loss_fn, optimizer = mlp(), SoftmaxCrossEntropy(), SGD(0.1)
    before = [param.copy() for _, param, _ in model.named_parameters()]
    loss = loss_fn.forward(model.forward(x), y)
    loss_sum, _ = learning_step(model, loss_fn, x, y, lambda: optimizer.step(model.named_parameters()))
    assert loss_sum == pytest.approx(8 * loss, rel=1e-6) and optimizer.steps == 1
    assert all(not np.array_equal(a, p) for a, (_, p, _) in zip(before, model.named_parameters()))
    taken = []
    with pytest.raises(StepDiverged, match="loss became") as error:
        learning_step(model, loss_fn, x, y, lambda: taken.append(1), max_loss=1e-9)
    assert not taken and error.value.loss > 1e-9  # the update never ran
