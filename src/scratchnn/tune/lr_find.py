"""The learning-rate range test (Leslie Smith, 2015; fastai's ``lr_find``): a first guess at ``--lr``.

Train a throwaway copy of the network for a few hundred mini-batches while the learning rate
grows exponentially, and watch the loss. At tiny rates nothing happens, then the loss starts to
fall, falls fastest, bottoms out, and finally explodes. A good learning rate sits where the loss
still falls steeply, well before the bottom.

The steps, for i = 0 .. steps−1 (β = ``smoothing``, a₋₁ = 0):

    lrᵢ = start_lr · (end_lr / start_lr)^(i / (steps − 1))         (evenly spaced in log10 lr)
    Lᵢ  = the mini-batch loss at lrᵢ, then one optimizer step at lrᵢ
    aᵢ  = β·aᵢ₋₁ + (1 − β)·Lᵢ,    sᵢ = aᵢ / (1 − β^(i+1))           (bias-corrected moving average)

and the test stops after recording step i when sᵢ > ``stop_factor``·minⱼ sⱼ or sᵢ is not finite.
The bias correction is Adam's: a moving average started at 0 underestimates the early losses
by the factor 1 − β^(i+1), so dividing by it makes s₀ = L₀ instead of 0.02·L₀.

Two readings of the smoothed curve s(log10 lr), as fastai offers them, and the suggestion
halfway between them (``LRFindResult.suggestion``):

- ``steepest``: the lr where ds/d(log10 lr) is most negative (``np.gradient`` over the points
  from the first tenth on, up to the minimum of s: the first steps average too few losses to be
  trusted, and past the minimum the loss is diverging, not learning).
- ``min_over_10``: the lr at the minimum of s, divided by 10: the minimum is already on the
  edge of divergence, one decade lower is safely inside the stable range.

A network that learned nothing gets no suggestion: when the raw loss never gets 3% below
chance (ln C, a uniform guess over C classes) by its lowest median of 10 steps in a row, the
steepest point of a flat curve is noise (``LRFindResult.learned_nothing``; ``suggestion`` then
raises a ConfigError that says what to check).

NOTE: the moving average lags the raw losses by about β/(1 − β) steps (49 at β = 0.98), so both
readings sit somewhat to the right of where the raw curve would put them; the figure shows both
curves so the lag is visible.
"""
from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..data.split import batch_indices, refuse_non_real, refuse_raw_pixels
from ..errors import ConfigError, OtherConvention, ShapeError
from ..model import Sequential
from ..nn.base import generator
from ..nn.losses import SoftmaxCrossEntropy, check_labels
from ..optim.optimizers import Optimizer
from ..optim.schedule_state import MAX_RATE
from ..training.batch_norm_batches import check_batches
from ..training.fit_arguments import check_objects, check_output_layer

MIN_STEPS = 10  # fewer points than this do not make a curve with a steepest part
LOWEST_RATE = 1e-12  # below, float32 steps round to nothing; the top is any learning rate's (MAX_RATE)
MAX_STEPS = 100_000  # a range test of more is hours of training for one curve (10**30 broke np.arange)
MIN_POINTS = 5  # a test that stops earlier has no suggestion worth printing
NOTHING_LEARNED = 0.97  # a loss that never went 3% below chance (ln C): the test found no rate to suggest


@dataclass(frozen=True)
class LRFindResult:
    """What the range test recorded, K ≤ steps points: ``lrs``, ``losses`` (raw mini-batch
    losses, before each step) and ``smoothed`` (bias-corrected moving average), each (K,);
    the two readings of the curve; ``stopped_early`` when the loss diverged before ``end_lr``;
    ``chance``, the loss of a uniform guess, ln C (None: not known, the test is not judged)."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest: float
    min_over_10: float
    stopped_early: bool
    chance: float | None = None

    @property
    def lowest(self) -> float:
        """Where the raw loss got to: its lowest median of 10 steps in a row (``typical_lowest``)."""
        return typical_lowest(self.losses)

    @property
    def learned_nothing(self) -> bool:
        """Whether the loss never got 3% below ``chance``: no rate to suggest (``suggestion`` raises)."""
        return self.chance is not None and self.lowest > NOTHING_LEARNED * self.chance

    @property
    def turned_up(self) -> bool:
        """Whether the smoothed loss reached a minimum and rose from it before the test ended:
        only then is ``min_over_10`` a reading (a loss still falling at ``end_lr`` has its
        lowest point at the end of the range, wherever the true minimum lies)."""
        return bool(self.stopped_early or 10 * self.min_over_10 < self.lrs[int(0.95 * (len(self.lrs) - 1))])

    def why_no_suggestion(self, more_steps: str = "steps=200") -> str:
        """What a test that learned nothing says instead of a suggestion, and what to check;
        ``more_steps``: how to ask for more steps where it is read (``--steps 200`` on the command line)."""
        return (f"the loss never fell below {self.lowest:.3f} (the lowest median of 10 steps in a row), chance "
                f"level being ln {round(math.exp(self.chance))} = {self.chance:.3f}: the network learned nothing at "
                f"any rate from {self.lrs[0]:g} to {self.lrs[-1]:.2g}, so there is no rate to suggest. "
                + (f"{len(self.lrs)} steps are few: try 200 ({more_steps}); else look" if len(self.lrs) < 100
                   else "Look") + " at the data and the network: labels that belong to their images, pixels "
                "scaled to 0..1 from 0..255 (a short run and scratchnn doctor say more)")

    @property
    def suggestion(self) -> float:
        """The learning rate to try first: halfway, on the log scale, between ``steepest`` and
        ``min_over_10`` (their geometric mean); ``steepest`` when the loss never turned up.

        Measured on 11 networks (the presets and their usual variants, each trained 3 epochs at
        every reading, 127 runs): the steepest point is 1.5–3 points of dev accuracy behind on
        every batch-normalised MLP and CNN (the loss falls fastest where the network first starts
        to learn, well below a good training rate), and min/10 sits on the edge of instability in
        some; halfway between them was within half a point of the best rate in 8 of 11, its mean
        shortfall 0.9 points against the steepest point's 2.3, and it moved least with ``steps``
        and the seed. Not for every network: the seed network with Adam trains best ten times
        lower still (README, "Find a learning rate").

        Raises ConfigError when the network learned nothing (``learned_nothing``).
        """
        if self.learned_nothing:
            raise ConfigError(self.why_no_suggestion())
        return math.sqrt(self.steepest * self.min_over_10) if self.turned_up else self.steepest

    def plot(self):
        """The range test as a matplotlib Figure (shown inline when a notebook cell ends with it):
        each batch's loss, the smoothed curve and both readings, as ``scratchnn lr-find`` draws it."""
        from ..plots import lr_find_figure  # matplotlib only when a plot is asked for

        return lr_find_figure(self.lrs, self.losses, self.smoothed, self.steepest,
                              self.min_over_10 if self.turned_up else None,
                              None if self.learned_nothing else self.suggestion)


def lr_find(model: Sequential, optimizer: Optimizer, x: np.ndarray, y: np.ndarray, *, start_lr: float = 1e-7,
            end_lr: float = 10.0, steps: int = 200, batch_size: int = 128,
            rng: np.random.Generator | int | None = None, smoothing: float = 0.98, stop_factor: float = 4.0,
            loss_fn=None, on_step: Callable[[int, float, float], None] | None = None) -> LRFindResult:
    """Run the range test on x (N, *input_shape) with labels y (N,); the caller's objects are untouched.

    It trains a copy: the architecture rebuilt from ``model.config()`` with the weights and
    buffers (BatchNorm's running statistics) of ``model.state_dict()``, and a fresh optimizer of
    ``type(optimizer)`` with the same settings (every argument of its constructor read from the
    attribute of that name: momentum, betas, weight decay...) and no state (no momentum or moment
    estimates carried over). ``rng`` (a Generator or an int seed; None: fresh entropy) shuffles
    the batches, a new order each pass through the data, and draws the copy's dropout masks.
    ``loss_fn`` (default ``SoftmaxCrossEntropy()``) has ``forward(logits, y) -> mean loss`` and
    ``backward() -> dlogits``. ``on_step(i, lr, loss)`` runs after each recorded step (progress).

    Each step is the textbook one: ``optimizer.lr = lrᵢ``; ``model.forward(x, training=True)``;
    the loss; ``model.backward``; ``optimizer.step(model.named_parameters())``. See the module
    docstring for the schedule, the smoothing, the stopping rule and the two suggestions.
    """
    check_settings(start_lr=start_lr, end_lr=end_lr, steps=steps, batch_size=batch_size, smoothing=smoothing,
                   stop_factor=stop_factor)
    check_objects("lr_find", model, optimizer)
    x, y = np.asarray(x), np.asarray(y)
    refuse_non_real(x, "x")
    refuse_raw_pixels(x, "x", whole_floats=True)  # 0..255 floats learn nothing at any rate (the habits audit)
    if x.dtype.kind == "f" and not np.isfinite(x).all():  # else "diverged after 4 steps; start lower"
        raise ShapeError(f"x holds {np.count_nonzero(~np.isfinite(x)):,} NaN or infinite value(s); the range test "
                         "needs finite inputs (scaled to 0..1)")
    if x.shape[1:] != model.input_shape:
        raise ShapeError(f"x has samples of shape {x.shape[1:]}, the model takes {model.input_shape}"
                         + model.reshape_hint(x.shape))
    if len(x) == 0 or len(y) != len(x):
        raise ShapeError(f"need as many labels as samples, at least one: got {len(x)} samples, {len(y)} labels")
    check_labels(y, len(x), model.num_classes)  # one-hot rows: said of all of them, not of a batch of 32
    check_batches(model, len(x), batch_size)  # a batch-norm batch of 1 image, before any step (as train does)
    rng = generator(rng)
    net, opt = copy_model(model, rng), fresh_optimizer(optimizer)
    if loss_fn is None or isinstance(loss_fn, SoftmaxCrossEntropy):
        check_output_layer(model)
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    losses, smoothed = [], []
    average, best, stopped = 0.0, math.inf, False
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging loss is the expected end, not a warning
        for i, rows in zip(range(steps), _endless_batches(len(x), batch_size, rng)):
            opt.lr = float(lrs[i])
            loss = float(loss_fn.forward(net.forward(x[rows], training=True), y[rows]))
            average = smoothing * average + (1 - smoothing) * loss
            smooth = average / (1 - smoothing ** (i + 1))
            losses.append(loss)
            smoothed.append(smooth)
            if on_step is not None:
                on_step(i, opt.lr, loss)
            if not math.isfinite(smooth) or smooth > stop_factor * best:
                stopped = True
                break
            best = min(best, smooth)
            net.backward(loss_fn.backward())
            opt.step(net.named_parameters())
    count = len(losses)
    if not math.isfinite(losses[0]):  # measured before any step: no learning rate made it
        raise ConfigError(f"the loss is {losses[0]} before the first step, at the initial weights: no learning "
                          "rate can help; check the inputs (NaN or huge values) and the initial weights")
    if count < MIN_POINTS:
        raise ConfigError(f"the loss diverged after {count} step(s), at learning rate {lrs[count - 1]:.3g}; "
                          f"start lower (start_lr {start_lr:g}, --start-lr)")
    lrs, losses, smoothed = lrs[:count], np.array(losses), np.array(smoothed)
    steepest, min_over_10 = suggestions(lrs, smoothed)
    return LRFindResult(lrs, losses, smoothed, steepest, min_over_10, stopped_early=stopped,
                        chance=math.log(model.num_classes))


def typical_lowest(losses: np.ndarray, window: int = 10) -> float:
    """The lowest median of ``window`` steps in a row of the raw losses (finite ones): where the
    loss got to, without one lucky batch, and without the smoothed curve's lag of ~50 steps
    (short tests end before the smoothed curve comes down)."""
    finite = losses[np.isfinite(losses)]
    if len(finite) < window:
        return float(np.median(finite)) if len(finite) else math.inf
    return float(np.median(np.lib.stride_tricks.sliding_window_view(finite, window), axis=1).min())


def suggestions(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """(steepest, min_over_10) of a smoothed loss curve over lrs (K,) growing exponentially.

    ``steepest`` is searched from K//10 up to the minimum; when the minimum comes before that
    (the loss never fell), it is the lr at the minimum.

    >>> lrs = np.logspace(-4, 0, 9)                          # 1e-4 .. 1, half a decade apart
    >>> s = np.array([2.3, 2.3, 2.2, 1.6, 0.9, 0.5, 0.4, 0.6, 3.0])
    >>> [f"{v:.3g}" for v in suggestions(lrs, s)]            # falls fastest at 1e-2.5; minimum at 1e-1
    ['0.00316', '0.01']
    """
    finite = np.where(np.isfinite(smoothed), smoothed, np.inf)
    lowest = int(np.argmin(finite))
    start = len(lrs) // 10
    if lowest - start < 1:
        return float(lrs[lowest]), float(lrs[lowest] / 10)
    window = slice(start, lowest + 1)
    slopes = np.gradient(finite[window], np.log10(lrs[window]))
    return float(lrs[window][np.argmin(slopes)]), float(lrs[lowest] / 10)


def copy_model(model: Sequential, rng: np.random.Generator) -> Sequential:
    """An independent copy of ``model``: each layer rebuilt by its own class from its config (a
    learner's own class stays theirs, not the registry's of that name), then its parameters and
    buffers copied in (in the model's dtype); dropout masks drawn from ``rng``."""
    with warnings.catch_warnings():  # the learner's model was warned about when they built it
        warnings.simplefilter("ignore", OtherConvention)
        copy = Sequential([type(layer)(**layer.config()) for layer in model.layers], model.input_shape, rng=rng)
    copy.astype(model.dtype)
    copy.load_state_dict(model.state_dict())
    return copy


def fresh_optimizer(optimizer: Optimizer) -> Optimizer:
    """A new optimizer of the same class and settings, with no state and its step count at 0.

    The settings are the constructor's arguments, each read from the attribute of the same name
    (``SGD(lr, momentum, nesterov, weight_decay)`` keeps ``self.momentum``...), the convention
    of every optimizer in ``scratchnn.optim``.
    """
    kind = type(optimizer)
    names = [name for name, parameter in list(inspect.signature(kind.__init__).parameters.items())[1:]
             if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)]
    missing = [name for name in names if not hasattr(optimizer, name)]
    if missing:
        raise ConfigError(f"cannot copy {kind.__name__}: it keeps no attribute {', '.join(missing)} for its "
                          "constructor argument(s) of that name; store each setting under its argument's name")
    return kind(**{name: getattr(optimizer, name) for name in names})


def _endless_batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray | slice]:
    """Shuffled mini-batches of 0..n-1, pass after pass, each pass in a new order."""
    while True:
        yield from batch_indices(n, batch_size, rng)


def check_settings(*, start_lr: float, end_lr: float, steps: int, batch_size: int = 1, smoothing: float = 0.98,
                   stop_factor: float = 4.0) -> None:
    """A ConfigError naming the first setting of ``lr_find`` out of its range (commands check first)."""
    if not (0 < start_lr < end_lr < math.inf):
        raise ConfigError(f"need 0 < start_lr < end_lr < inf (--start-lr, --end-lr); got {start_lr:.10g} and "
                          f"{end_lr:.10g}")
    if start_lr < LOWEST_RATE or end_lr > MAX_RATE:  # 1e-320 or 1e308: "diverged at lr inf; start lower" (fuzz audit)
        raise ConfigError(f"the range test runs from {LOWEST_RATE:g} to {MAX_RATE:g} at most (--start-lr, --end-lr); "
                          f"got {start_lr:.10g} to {end_lr:.10g}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS:,} (the points of the curve, "
                          f"a mini-batch each), got {str(steps)[:40]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1 (the range test runs on mini-batches), "
                          f"got {batch_size!r}")
    if not 0 <= smoothing < 1:
        raise ConfigError(f"smoothing must be in [0, 1), got {smoothing}")
    if not 1 < stop_factor <= math.inf:
        raise ConfigError(f"stop_factor must be > 1 (stop once the loss exceeds that many times its minimum), "
                          f"got {stop_factor}")
