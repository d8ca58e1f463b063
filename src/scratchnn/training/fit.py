"""fit(): the training loop, full batch (the seed) or mini-batch, and evaluate()."""
from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import fast as fast_path
from ..data.split import batch_indices
from ..errors import ConfigError, TrainingDiverged
from ..model import Sequential
from ..nn.base import generator
from ..nn.losses import SoftmaxCrossEntropy
from .early_stopping import EarlyStopping
from .fit_arguments import as_arrays, check_data, check_objects, check_output_layer, checked_arguments
from .health import HealthRecorder
from .history import History

DIVERGED_FACTOR = 100  # a mean cross-entropy of 100 ln C (230 for digits): logits wrong by hundreds


@dataclass
class EpochResult:
    """Metrics of one evaluated epoch. Train figures average the mini-batches of that epoch as
    they were seen (before each update, like Keras); dev figures are measured after the epoch;
    seconds is the training time since the previous evaluation."""

    epoch: int
    train_loss: float
    train_accuracy: float
    dev_loss: float
    dev_accuracy: float
    lr: float
    seconds: float


def evaluate(model: Sequential, x: np.ndarray, labels: np.ndarray, batch_size: int | None = None,
             loss_fn=None) -> tuple[float, float]:
    """(mean loss, accuracy) of the model on x (N, ...) with labels (N,); NaN for an empty set.

    Batches of ``batch_size`` rows, by default ``model.inference_batch_size()``."""
    check_objects("evaluate", model, needs_optimizer=False)
    x, labels = as_arrays(x, labels)
    check_data(model, x, labels, "evaluation", empty=True, raw_floats=True)  # batch_size -1 gave (0.0, 0.0), NaN
    # inputs a NaN loss, and floats of 0..255 (x_test.astype("float32") without / 255) a loss of 49
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                   or batch_size < 1):
        raise ConfigError(f"batch_size is a whole number >= 1 (or None), got {repr(batch_size)[:40]}")
    return _evaluate(model, x.astype(model.dtype, copy=False), labels, batch_size, loss_fn)  # a list: float64


def evaluate_checked(model: Sequential, x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``evaluate`` on arrays ``fit`` took (checked there, 0..255 floats of the lab included)."""
    return _evaluate(model, x.astype(model.dtype, copy=False), labels)


def _evaluate(model: Sequential, x: np.ndarray, labels: np.ndarray, batch_size: int | None = None,
              loss_fn=None) -> tuple[float, float]:
    """``evaluate`` on arrays already checked (fit's dev set, checked once before the first epoch)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    batch_size = batch_size or model.inference_batch_size()
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        logits = model.forward(x[start:start + batch_size])
        y = labels[start:start + batch_size]
        total_loss += loss_fn.forward(logits, y) * len(y)
        correct += int(np.count_nonzero(logits.argmax(axis=1) == y))
    model.release_caches()  # no backward follows: a training's next steps would hold them beside theirs
    return total_loss / len(x), correct / len(x)


def fit(model: Sequential, optimizer, x_train: np.ndarray, y_train: np.ndarray, *, epochs: int,
        batch_size: int | None = None, x_dev: np.ndarray | None = None, y_dev: np.ndarray | None = None,
        rng: np.random.Generator | int | None = None, schedule=None, early_stopping: EarlyStopping | None = None,
        eval_every: int = 1, start_epoch: int = 0, loss_fn=None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        augment_rng: np.random.Generator | None = None,
        on_epoch_end: Callable[[EpochResult], None] | None = None,
        on_batch_end: Callable[[int, int, int, float, float], None] | None = None,
        health: HealthRecorder | None = None, stop_requested: Callable[[], bool] | None = None,
        fast: bool = True, shuffle: bool = True) -> History:
    """Train ``model`` in place; return a History (a list) of an EpochResult for every
    ``eval_every``-th epoch and the last; ``history.plot()`` draws the curves.

    Each step: lr = schedule(step), then ``learning_step``: logits = forward(batch); loss;
    backward(∂L/∂logits); optimizer.step. ``batch_size`` None or 0 means the full batch, one step per epoch (the
    seed's gradient descent); otherwise the rows are reshuffled every epoch with ``rng`` (a
    Generator or an int seed; None: fresh entropy), unless ``shuffle`` is False (then batches
    come in the data's order, which for data stored class by class teaches one class a batch).
    ``augment(x_batch, augment_rng)``, if given, returns a randomly transformed copy of each
    batch (see scratchnn.data.augment); the model never sees the same image twice.
    Accuracy and dev metrics are measured on evaluated epochs only: with full batches an epoch
    is a single step, and measuring every one would cost a fifth of the training time.

    After each evaluation a plateau schedule observes the dev loss, ``early_stopping`` may end
    training (restoring its best weights), then ``on_epoch_end(result)`` runs (checkpoints go
    there: everything is up to date). ``start_epoch`` continues a run whose state (weights,
    optimizer, schedule, generators) was restored from the checkpoint of that epoch.
    ``on_batch_end(epoch, batch, batches, loss, accuracy)`` is for progress bars (the batch's
    mean loss and accuracy; accuracy is NaN on epochs that are not measured).

    ``health``, if given, records the network's health signals for the doctor: the training
    labels' balance (and dev classes they lack) and the untrained network (epoch 0, on a fresh
    start), the last step before each evaluation (gradient RMS and update-to-weight ratio) and
    the network at each evaluation, before ``on_epoch_end`` (for a recorder told of a long run,
    each ``health.every``-th evaluation and the last); and the step that diverged, if one does.

    ``stop_requested()``, polled after every batch, ends training early when it returns True (a
    Stop button): the interrupted epoch is evaluated on the batches it ran (its train accuracy
    is NaN unless it was an evaluated epoch) and reported like any other.

    Raises TrainingDiverged as soon as the loss is not finite or over DIVERGED_FACTOR times that of a
    uniform guess (ln C): a learning rate too high for Adam makes the loss explode (1e8 and
    more) and the ReLUs die, without ever reaching NaN. At evaluations, weights must be finite.

    ``fast`` (the default) trains through ``scratchnn.fast``: the same math laid out for speed,
    equal to float rounding (tests/test_fast.py: 1e-6 relative, in float64): the loss sums over
    the classes in another order, products run in other memory orders, Adam folds its bias
    corrections, and a CNN's Winograd layers sum per thread, a batch norm before a max pool
    normalises the pooled quarter and the first convolution takes its batch norm into its
    product. One exception to "equal": a bias right before batch norm, whose true gradient is 0,
    under Adam or RMSprop with weight decay (L2, not AdamW's): the textbook path's rounding noise
    (1e-17) is divided by Adam's equally tiny √v̂ and the decay grows it by lr·λ/ε each step, so
    that bias drifts and the running mean with it (eval logits 1.7e-3 apart after 4 steps, the
    gradient audit); the fast path folds it to an exact 0. AdamW agrees to 1e-9.

    NOTE: it packs the model's parameters into one flat array (arrays taken from
    ``layer.params`` before are no longer the model's) and asks glibc to keep freed memory for
    the whole process. ``fast=False`` runs the textbook objects as they are: ``model.forward``,
    ``model.backward``, ``optimizer.step``.
    """
    if isinstance(model, Sequential) and (loss_fn is None or isinstance(loss_fn, SoftmaxCrossEntropy)):
        check_output_layer(model)  # (checked_arguments names what else it was given; another loss may want it)
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    x_train, y_train, x_dev, y_dev, augment_rng = checked_arguments(
        model, optimizer, x_train, y_train, x_dev, y_dev, batch_size, (epochs, start_epoch, eval_every), early_stopping,
        augment, augment_rng)
    if early_stopping is not None and start_epoch == 0:  # a run begins: nothing of an earlier one's best
        early_stopping.reset()
    if hasattr(optimizer, "attach"):  # (an optimizer of the learner's own has only step)
        optimizer.attach(model)
    rng = generator(rng) if shuffle else None
    passes = _passes(model, optimizer, x_train, loss_fn, batch_size, augment, fast)  # textbook or fast objects
    loop = _Loop(model, optimizer, passes, x_train, y_train, batch_size, rng, schedule, augment, augment_rng, health,
                 on_batch_end, stop_requested)
    _check_schedule_length(schedule, optimizer.steps + (epochs - start_epoch) * loop.batches)
    if health is not None and start_epoch == 0:
        health.record_labels(y_train, model.num_classes, y_dev)  # what a learner's own split left each set
        health.record(model, 0, optimizer.steps, steps_per_epoch=loop.batches, images=(len(x_train), len(x_dev)))
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught (learning_step), not warned
        for epoch in range(start_epoch + 1, epochs + 1):
            measured = epoch % eval_every == 0 or epoch == epochs
            loop.watched = measured and (health is None or health.due(epoch // eval_every, epoch == epochs))
            sums = loop.train_epoch(epoch, measured)
            if not measured and not sums.halted:
                continue
            result = loop.evaluated(epoch, sums, measured, x_dev, y_dev, start)
            if hasattr(schedule, "observe"):
                schedule.observe(result.dev_loss if len(x_dev) else result.train_loss)
            stop = early_stopping is not None and early_stopping.update(
                epoch, getattr(result, early_stopping.monitor), model)
            if on_epoch_end is not None:
                on_epoch_end(result)
            start = time.perf_counter()
            if stop or sums.halted:
                if health is not None and measured and not loop.watched:  # the last evaluation, off a long
                    health.record(model, epoch, optimizer.steps)  # run's thinned ones (a Stop, early stopping)
                break
    if early_stopping is not None:
        early_stopping.restore(model)
    for used in (passes.net, passes.evaluator, model):  # a trained model keeps nothing of its last batches
        used.release_caches()
    return loop.history


def learning_step(net: Sequential, loss_fn, x: np.ndarray, labels: np.ndarray, update: Callable[[], None], *,
                  count_correct: bool = True, max_loss: float = math.inf) -> tuple[float, int]:
    """One step of gradient descent on a batch x (B, ...) with labels (B,):

        logits = net.forward(x, training=True)
        loss = loss_fn.forward(logits, labels)     the batch's mean loss
        net.backward(loss_fn.backward())           ∂loss/∂θ into every layer's grads
        update()                                   the optimizer's step, optimizer.step(model.named_parameters())

    Returns (the batch's summed loss, how many rows the logits classify right; 0 unless
    ``count_correct``). A mean loss that is not finite or over ``max_loss`` raises StepDiverged
    (a TrainingDiverged, with the ``loss``) before ``update``: no weight takes that step.
    """
    logits = net.forward(x, training=True)
    loss_sum = loss_fn.forward(logits, labels) * len(labels)
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels)) if count_correct else 0
    net.backward(loss_fn.backward())
    if not loss_sum <= max_loss * len(labels):  # also catches NaN
        raise StepDiverged(loss_sum / len(labels))
    update()
    return loss_sum, correct


class StepDiverged(TrainingDiverged):
    """learning_step's refusal of a step whose mean ``loss`` is not finite or too large."""

    def __init__(self, loss: float):
        super().__init__(f"loss became {loss:.4g}: training diverged")
        self.loss = loss


@dataclass
class _Passes:
    """What the loop runs: the textbook objects as they are, or the fast path's (``scratchnn.fast``)."""

    net: Sequential                # training batches' forward and backward passes
    evaluator: Sequential          # the dev set's forward passes
    x: np.ndarray                  # the training inputs as ``net`` reads them
    step: Callable[[list], None]   # the optimizer's step(named_parameters)
    loss_fn: object                # the training loss
    dev_loss_fn: object            # the dev set's: plain cross-entropy, whatever the training loss


def _passes(model: Sequential, optimizer, x_train: np.ndarray, loss_fn, batch_size: int | None, augment,
            fast: bool) -> _Passes:
    """The textbook objects, or with ``fast`` the fast path's (the same numbers to float rounding)."""
    if not fast:
        return _Passes(model, model, x_train, optimizer.step, loss_fn, SoftmaxCrossEntropy())
    run = fast_path.prepare(model, optimizer, x_train, full_batch=not batch_size, fixed_inputs=augment is None)
    return _Passes(run.net, run.evaluator, run.x, run.step, fast_path.fast_loss(loss_fn),
                   fast_path.fast_loss(SoftmaxCrossEntropy()))


@dataclass
class _Sums:
    """One epoch's batches so far: summed loss, right answers, rows seen; halted by stop_requested."""

    loss: float = 0.0
    correct: int = 0
    seen: int = 0
    halted: bool = False


class _Loop:
    """fit's epochs: the batches of each (a ``learning_step`` apiece, with the schedule, the
    health recorder, progress and stop requests around it) and each evaluation."""

    def __init__(self, model: Sequential, optimizer, passes: _Passes, x_train: np.ndarray, y_train: np.ndarray,
                 batch_size: int | None, rng, schedule, augment, augment_rng, health: HealthRecorder | None,
                 on_batch_end, stop_requested):
        self.model, self.optimizer, self.passes, self.x_train, self.y_train = model, optimizer, passes, x_train, y_train
        self.batch_size, self.rng, self.schedule = batch_size, rng, schedule
        self.augment, self.augment_rng, self.health = augment, augment_rng, health
        self.on_batch_end, self.stop_requested = on_batch_end, stop_requested
        self.batches = 1 if not batch_size else -(-len(passes.x) // batch_size)
        self.max_loss = DIVERGED_FACTOR * math.log(model.num_classes)
        self.history = History(step_name="iteration" if self.batches == 1 else "epoch")  # full batch: iterations
        self.watched = True  # this epoch's evaluation is one the health recorder records

    def train_epoch(self, epoch: int, measured: bool) -> _Sums:
        """A learning step on each batch of the (reshuffled) training rows, or until a stop is requested."""
        sums, optimizer, x_fit = _Sums(), self.optimizer, self.passes.x
        for batch, rows in enumerate(batch_indices(len(x_fit), self.batch_size or None, self.rng)):
            if self.schedule is not None:
                optimizer.lr = self.schedule(optimizer.steps)
            y = self.y_train[rows]
            x = x_fit[rows] if self.augment is None else self.augment(x_fit[rows], self.augment_rng)
            first = optimizer.steps == 0  # its figures describe the untrained network (epoch 0)
            watched = self.health is not None and (first or self.watched and batch + 1 == self.batches)
            try:
                loss_sum, correct = learning_step(self.passes.net, self.passes.loss_fn, x, y,
                                                  partial(self._update, watched, first), count_correct=measured,
                                                  max_loss=self.max_loss)
            except StepDiverged as error:
                raise self._diverged_at(epoch, error.loss) from None
            sums.loss += loss_sum
            sums.correct += correct
            sums.seen += len(y)
            if self.on_batch_end is not None:
                self.on_batch_end(epoch, batch + 1, self.batches, loss_sum / len(y),
                                  correct / len(y) if measured else math.nan)
            if self.stop_requested is not None and self.stop_requested():
                sums.halted = True
                break
        return sums

    def _update(self, watched: bool, first: bool) -> None:
        """The optimizer's step on the model's parameters; the health recorder, when ``watched``,
        sees the weights before and after it."""
        if watched:
            self.health.before_step(self.model)
        self.passes.step(self.model.named_parameters())
        if watched:
            self.health.after_step(self.model, first=first)

    def _diverged_at(self, epoch: int, loss: float) -> TrainingDiverged:
        """The error for a step whose loss diverged (recorded for the doctor first)."""
        if self.health is not None:
            self.health.record_divergence(self.model, epoch, loss)
        at = f"iteration {epoch} (" if self.batches == 1 else f"epoch {epoch} (step {self.optimizer.steps + 1}, "
        return _diverged(f"loss became {loss:.4g} at {at}learning rate {self.optimizer.lr:g}): training diverged",
                         self.history, self.x_train, first_step=self.optimizer.steps == 0)

    def evaluated(self, epoch: int, sums: _Sums, measured: bool, x_dev: np.ndarray, y_dev: np.ndarray,
                  start: float) -> EpochResult:
        """The epoch's EpochResult (dev set measured now, seconds since ``start``), after checking
        the weights are finite; added to the history, and the network's health recorded."""
        try:
            _check_weights(self.model, f"{'iteration' if self.batches == 1 else 'epoch'} {epoch}", self.optimizer.lr)
        except TrainingDiverged as error:
            if self.health is not None:
                self.health.record_divergence(self.model, epoch, math.nan)
            raise _diverged(str(error), self.history, self.x_train) from None
        dev_loss, dev_accuracy = _evaluate(self.passes.evaluator, x_dev, y_dev, loss_fn=self.passes.dev_loss_fn)
        result = EpochResult(epoch, sums.loss / sums.seen, sums.correct / sums.seen if measured else math.nan,
                             dev_loss, dev_accuracy, self.optimizer.lr, time.perf_counter() - start)
        self.history.append(result)
        if self.health is not None and (self.watched or not measured):  # a halted epoch is the last: recorded
            self.health.record(self.model, epoch, self.optimizer.steps)
        return result


def _check_weights(model: Sequential, when: str, lr: float) -> None:
    """Stop before a NaN or infinite weight, or batch-norm statistic, can reach a checkpoint or a
    model file; ``when``: 'epoch 3'. (The numerics audit: inputs of 1e19 made a running variance
    infinite, and the model then predicted 0.1 for every class without a word.)"""
    for name, param, _ in model.named_parameters():
        if not np.isfinite(param).all():
            raise TrainingDiverged(f"weights {name} became NaN or infinite at {when} (learning rate {lr:g})")
    for name, buffer in model.named_buffers():
        if not np.isfinite(buffer).all():
            raise TrainingDiverged(f"the batch norm's running statistics {name} became NaN or infinite at {when}: "
                                   f"what reaches that layer overflows float32 (learning rate {lr:g})")


def _divergence_remedy(x: np.ndarray, first_step: bool) -> str:
    """What to try after a divergence: inputs that look like pixels 0..255 first; at the first
    step, whose loss no rate has touched yet, the initial weights; else a lower rate."""
    top = float(np.max(x)) if x.size else 0.0
    if top > 2 and float(np.min(x)) >= 0:
        return f"the inputs reach {top:g}: scale them to 0..1 first (pixels / 255)"
    if first_step:  # a follow-the-fix audit: ReLU units on the tutorial's uniform weights, told to lower the rate
        return ("that is the untrained network's loss, before any step: the initial weights are too large for "
                "the network, not the learning rate; draw them to its size (--init he_normal for ReLU units, "
                "glorot_uniform for tanh or sigmoid)")
    return "try a lower learning rate (--lr)"


def _diverged(message: str, history: History, x: np.ndarray, first_step: bool = False) -> TrainingDiverged:
    """The error, with what to try (read from the inputs ``x`` only now, not on every run) and the
    evaluations made before it (``error.history``, for the doctor)."""
    error = TrainingDiverged(f"{message}; {_divergence_remedy(x, first_step)}")
    error.history = history
    return error


def _check_schedule_length(schedule, last_step: int) -> None:
    """Warn when a schedule with a length (Cosine, OneCycle) ends before the run: it then holds its
    last rate, 0 for a cosine, for the rest (total_steps given in epochs is the usual slip)."""
    total = getattr(schedule, "total_steps", None) or getattr(getattr(schedule, "schedule", None), "total_steps", None)
    if total and total < last_step:
        warnings.warn(f"the schedule ends at step {total:,} and the run takes {last_step:,}: from there on it stays at "
                      f"its last learning rate ({schedule(total):.3g}); total_steps counts steps (epochs x batches "
                      "per epoch), not epochs", UserWarning, stacklevel=3)
