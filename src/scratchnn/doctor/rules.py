"""The diagnoses: one rule per classic way training goes wrong, causes first.

Each rule's docstring is its trigger, word for word what the code checks. Thresholds are
module constants so a test can sit at, just below and just above each of them. Signals are
those of doctor/signals.py; "an evaluation" is an epoch with rows in the tables (epoch 0 is
the untrained network and its first step).
"""
from __future__ import annotations

import math

from .findings import RunHealth, Trigger, rule

UNSCALED = 10.0          # |pixel| beyond this: raw 0..255 values, not scaled ones
SYMMETRIC = 1e-3         # unit_spread below this: the layer's units are copies of each other
SCALAR_BIAS = 1e-6       # spread of a bias update across units below this: one number for all
LARGE_LOGITS = 30.0      # |logit| of the untrained network beyond this: e^30 makes it certain
SMALL_WEIGHTS = 1e-3     # weight RMS of the untrained network below this (He for 4,608 inputs: 0.02)
VANISHING = 1e-2         # first layer's gradient RMS / last layer's below this (healthy presets: 0.1-4)
SATURATED = 0.5          # share of sigmoid/tanh outputs on the flat tails
HIGH_UPDATE = 0.1        # ‖ΔW‖/‖W‖ of one step above this, evaluation after evaluation: too large
FIRST_UPDATE = 0.5       # ‖ΔW‖/‖W‖ of the very first step above this: it rewrote the initial weights
DIVERGED_UPDATE = 1e-2   # a run that diverged after steps of 10x the healthy 1e-3
WEIGHT_GROWTH = 10.0     # weight RMS this many times its initial value: steps blew the weights up
LOW_UPDATE = 1e-5        # ‖ΔW‖/‖W‖ below this in every layer: nothing moves
STILL = 0.005            # relative change of the train loss below this: the loss "barely moves"
DEAD = 0.5               # share of a ReLU layer's units that never fired
ONE_CLASS = 0.6          # share of predictions taken by one class
CHANCE_BAND = 0.1        # train loss within ±10% of ln C ...
CHANCE_ACCURACY = 1.5    # ... and train accuracy below 1.5 / C: a uniform guess
PERSIST = 2              # evaluations a condition must hold in a row (one is noise)
MEMORISING_GAP = 0.03    # train accuracy this far above a dev accuracy stuck at chance
SANE_WEIGHTS = 1e6       # weight RMS below this: finite weights that give finite logits
OSCILLATION = 1.2        # a train loss back over this many times its lowest: climbing
LOSS_NOISE = 0.1         # ... and more than this (nats) above it: a nearly fitted network's loss of
                         # 0.02 wobbling to 0.03 is noise, not a climb (the mlp preset does that)
EXPLODED_LOSS = 2.0      # a train loss rising three evaluations in a row to this many times its lowest
GRAD_GROWTH = 10.0       # gradient RMS growth over three evaluations
OVERFIT_RISE = 1.1       # dev loss this many times its lowest, after rising three evaluations in a row
UNDERFIT_ACCURACY = 0.8  # train accuracy a network of any size should pass on digits
UNDERFIT_PLATEAU = 0.01  # ... rising by less than this over the last three evaluations
UNDERFIT_AFTER = 5       # evaluations before underfitting is judged


def _held(series, test, times: int = PERSIST) -> int | None:
    """The epoch at which ``test(value)`` had held for ``times`` evaluations in a row, or None."""
    run = 0
    for epoch, value in series:
        run = run + 1 if test(value) else 0
        if run >= times:
            return epoch
    return None


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


@rule("unscaled-inputs", "warning",
      "The pixels reach the network as raw values (0..255) instead of 0..1. Every weighted sum "
      "is then hundreds of times larger than the initialisation expects, so the first steps "
      "overshoot, the softmax saturates and the loss explodes or stalls.",
      "scale the pixels to 0..1 (divide by 255), as scratchnn's data loaders do; if your own "
      "loop feeds the network, fix it there")
def unscaled_inputs(run: RunHealth):
    """The sampled input batch has a pixel beyond ±UNSCALED (10): input_max > 10 or input_min < -10."""
    highs = dict(run.series("input_max"))
    for epoch, low in run.series("input_min"):
        high = highs.get(epoch, low)
        if max(abs(low), abs(high)) > UNSCALED:
            return Trigger(epoch, f"the input pixels range from {low:g} to {high:g}; the network expects 0..1")
    return None


@rule("memorising", "error",
      "The network gets better on its training images but stays at chance on the dev images: "
      "it is learning the training labels by heart because they carry no signal it can "
      "generalise, as if they were shuffled. No setting fixes that; the labels must.",
      "check that labels belong to their images (same order after any shuffle or sort; "
      "the right labels file); --preset seed on the original data is a known-good baseline")
def memorising(run: RunHealth):
    """At two evaluations in a row the dev accuracy is below CHANCE_ACCURACY / C (1.5 / C) and
    the dev loss is at least ln C, while the train loss is below ln C and falling (lower than
    at the previous evaluation), or the train accuracy is MEMORISING_GAP (3 points) above the
    dev accuracy; and the predictions are varied (top_class_share, where recorded, at most
    ONE_CLASS: a network giving one answer for every image is not recalling labels)."""
    chance, limit = run.chance_loss, CHANCE_ACCURACY / run.classes
    rows = [m for m in run.metrics if not math.isnan(m["dev_accuracy"])]
    streak = 0
    for before, now in zip([None, *rows], rows):
        falling = before is not None and now["train_loss"] < min(chance, before["train_loss"])
        learning = falling or now["train_accuracy"] > now["dev_accuracy"] + MEMORISING_GAP
        stuck = now["dev_accuracy"] < limit and now["dev_loss"] >= chance
        share = run.value("top_class_share", epoch=now["epoch"])
        varied = share is None or share <= ONE_CLASS  # one answer for every image is one-class, not recall
        streak = streak + 1 if learning and stuck and varied else 0
        if streak >= PERSIST:
            return Trigger(now["epoch"], f"train accuracy {now['train_accuracy']:.3f} and loss "
                           f"{now['train_loss']:.3f} improve while dev accuracy stays at {now['dev_accuracy']:.3f} "
                           f"(chance: {1 / run.classes:.2f})")
    return None


@rule("symmetric-units", "error",
      "Every unit of a layer has the same weights, so every unit computes the same thing and "
      "receives the same gradient: they stay copies of each other forever and the layer works "
      "like a single unit. Zero or constant initial weights do this; only random ones break "
      "the symmetry.",
      "--init he_normal (ReLU) or --init glorot_uniform (tanh, sigmoid); keep --bias-init zeros")
def symmetric_units(run: RunHealth):
    """A layer with weights has unit_spread < SYMMETRIC (1e-3) at any evaluation."""
    for layer in run.layers("unit_spread"):
        for epoch, spread in run.series("unit_spread", layer):
            if spread < SYMMETRIC:
                return Trigger(epoch, f"{layer}: its units are identical (spread {spread:.2g} across units)", layer)
    return None


@rule("scalar-bias-gradient", "warning",
      "Every unit's bias moved by exactly the same amount in a step. The gradient of a bias is "
      "one number per unit (the sum of that unit's upstream gradients over the batch); summing "
      "over the units as well gives one number for all of them, the original tutorial's bug, "
      "and the biases can no longer learn what each unit needs.",
      "sum the upstream gradient over the batch axis only: db = dy.sum(axis=0) / N, shape (units,)")
def scalar_bias_gradient(run: RunHealth):
    """A layer's last bias update had bias_update_spread < SCALAR_BIAS (1e-6) at any evaluation
    (the spread across units of Δb over its RMS; only recorded when the bias moved)."""
    for layer in run.layers("bias_update_spread"):
        for epoch, spread in run.series("bias_update_spread", layer):
            if spread < SCALAR_BIAS:
                return Trigger(epoch, f"{layer}: every bias moved by the same amount in one step "
                                      f"(spread {spread:.2g} across units; a correct gradient: about 1)", layer)
    return None


@rule("softmax-overflow", "error",
      "The loss became NaN or infinite while every weight was still finite: the softmax itself "
      "overflowed. exp(z) is infinite in float32 for z > 88, inf / inf is NaN, and a probability "
      "that underflows to 0 has log 0 = -inf. Subtracting the largest "
      "logit first (log-sum-exp) gives the same probabilities without overflow.",
      "compute the softmax as exp(z - z.max()) / sum(...), and the loss as log-sum-exp; "
      "scratchnn's SoftmaxCrossEntropy does")
def softmax_overflow(run: RunHealth):
    """Training diverged with a loss that is NaN or infinite (diverged_loss) while every recorded
    weight_rms at that epoch is below SANE_WEIGHTS (1e6): finite weights give finite logits, and a stable
    log-sum-exp gives a finite loss for any finite logits."""
    diverged = run.series("diverged_loss")
    if not diverged or math.isfinite(diverged[0][1]):
        return None
    epoch, loss = diverged[0]
    weights = [run.value("weight_rms", layer, epoch) for layer in run.layers("weight_rms")]
    if weights and all(w is not None and w < SANE_WEIGHTS for w in weights):
        return Trigger(epoch, f"the loss became {loss} at epoch {epoch} while the weights were finite")
    return None


@rule("large-init", "warning",
      "The untrained network is already certain of its answers: its initial weights are so "
      "large that the logits reach hundreds, the softmax puts all its mass on one class and "
      "the loss starts far above chance. Gradients through such a network are huge or zero.",
      "--init he_normal for ReLU, --init glorot_uniform for tanh and sigmoid: weights scaled "
      "by 1/sqrt(fan_in) keep every layer's output near unit size")
def large_init(run: RunHealth):
    """At epoch 0 (the untrained network) logit_max > LARGE_LOGITS (30)."""
    logits = run.value("logit_max", epoch=0)
    if logits is not None and logits > LARGE_LOGITS:
        return Trigger(0, f"the untrained network's logits reach {logits:.3g} (a fresh network should be "
                          f"unsure: about 1)")
    return None


@rule("small-init", "error",
      "The initial weights are so small that every layer passes on almost nothing: each "
      "image produces nearly the same output, and the gradients, which are products of the "
      "same weights, fade to nothing on their way back. The network starts deaf to its input.",
      "--init he_normal for ReLU, --init glorot_uniform for tanh and sigmoid: weights of size "
      "1/sqrt(fan_in)")
def small_init(run: RunHealth):
    """At epoch 0 (the untrained network) some layer's weight_rms is below SMALL_WEIGHTS (1e-3)
    but above 0 (all-zero weights are symmetric-units)."""
    for layer in run.layers("weight_rms"):
        size = run.value("weight_rms", layer, epoch=0)
        if size is not None and 0 < size < SMALL_WEIGHTS:
            return Trigger(0, f"{layer}'s initial weights have an RMS of {size:.2g} (He or Glorot: about "
                              "1/sqrt(inputs))", layer)
    return None


@rule("vanishing-gradients", "warning",
      "The gradient shrinks on its way back through the layers, so the first layers barely "
      "learn while the last ones do. Small weights and saturating activations (sigmoid's slope "
      "is at most 0.25) multiply it down at every layer.",
      "--activation relu --init he_normal, or --batchnorm; fewer layers (--hidden 256,128)")
def vanishing_gradients(run: RunHealth):
    """grad_rms of the first layer with weights is below VANISHING (1e-2) times that of the last
    one at epoch 0 (the untrained network: depth and initialisation alone), or at two
    evaluations in a row after it (evaluations where both were recorded)."""
    layers = run.layers("grad_rms")
    if len(layers) < 2:
        return None
    first, last = dict(run.series("grad_rms", layers[0])), dict(run.series("grad_rms", layers[-1]))
    ratios = [(e, first[e] / last[e]) for e in sorted(first) if e in last and last[e] > 0 and math.isfinite(first[e])]
    small = dict(ratios)
    epoch = 0 if small.get(0, 1.0) < VANISHING else _held([(e, r) for e, r in ratios if e > 0],
                                                           lambda ratio: ratio < VANISHING)
    if epoch is None:
        return None
    return Trigger(epoch, f"{layers[0]}'s gradient is {small[epoch]:.2g} of {layers[-1]}'s", layers[0])


@rule("saturated", "warning",
      "Most outputs of a sigmoid or tanh layer sit on the flat ends of the curve, where its "
      "slope is almost 0: almost no gradient passes through them, so the layers before stop "
      "learning. Weights or inputs that are too large push the units there.",
      "--init glorot_uniform; --batchnorm; or --activation relu")
def saturated(run: RunHealth):
    """A sigmoid or tanh layer has saturated_fraction > SATURATED (0.5) at two evaluations in a row."""
    for layer in run.layers("saturated_fraction"):
        epoch = _held(run.series("saturated_fraction", layer), lambda share: share > SATURATED)
        if epoch is not None:
            share = run.value("saturated_fraction", layer, epoch)
            return Trigger(epoch, f"{layer}: {_percent(share)} of its outputs are saturated", layer)
    return None


@rule("lr-too-high", "warning",
      "Each step changes the weights by a large part of their size, so the network jumps past "
      "the minimum instead of descending into it: the loss bounces up and down or climbs. "
      "A healthy step changes the weights by about a thousandth.",
      "lower --lr by 10x (or use --schedule cosine --warmup 1)")
def lr_too_high(run: RunHealth):
    """Some layer's update_ratio of the first step (epoch 0) > FIRST_UPDATE (0.5); or > HIGH_UPDATE
    (0.1) at two evaluations in a row after it; or training diverged and the last update_ratio
    recorded before was > DIVERGED_UPDATE (1e-2); or some layer's weight_rms grew over
    WEIGHT_GROWTH (10) times its epoch-0 value; or the train loss rose at two of the last three
    evaluations and ends over OSCILLATION (1.2) times its lowest value and more than
    LOSS_NOISE (0.1) above it."""
    diverged = run.series("diverged_loss")
    for layer in run.layers("weight_rms"):
        series = run.series("weight_rms", layer)
        start = dict(series).get(0)
        grown = next(((e, w) for e, w in series if start and e > 0 and w > WEIGHT_GROWTH * start), None)
        if grown:
            return Trigger(grown[0], f"{layer}'s weights grew {grown[1] / start:.0f}x their initial size "
                                     f"(RMS {start:.3g} -> {grown[1]:.3g})", layer)
    for layer in run.layers("update_ratio"):
        series = [(e, r) for e, r in run.series("update_ratio", layer) if math.isfinite(r)]
        first = dict(series).get(0)
        epoch = 0 if first is not None and first > FIRST_UPDATE else _held(
            [(e, r) for e, r in series if e > 0], lambda ratio: ratio > HIGH_UPDATE)
        if epoch is None and diverged and series and series[-1][1] > DIVERGED_UPDATE:
            epoch = series[-1][0]
        if epoch is not None:
            ratio = dict(series)[epoch]
            return Trigger(epoch, f"one step changed {layer}'s weights by {_percent(ratio)} of their size "
                                  "(healthy: about 0.1%)", layer)
    losses = run.metric("train_loss")
    if len(losses) >= 4:
        recent = [v for _, v in losses[-4:]]
        rises = sum(b > a for a, b in zip(recent, recent[1:]))
        lowest = min(v for _, v in losses)
        if rises >= 2 and recent[-1] > OSCILLATION * lowest and recent[-1] - lowest > LOSS_NOISE:
            return Trigger(losses[-1][0], f"the train loss goes up and down and climbs to {recent[-1]:.3f} "
                                          f"(lowest {min(v for _, v in losses):.3f})")
    return None


@rule("lr-too-low", "warning",
      "Each step changes the weights by less than a hundred-thousandth of their size, so the "
      "loss hardly moves. The gradients are there and point the right way, but the learning "
      "rate scales them down to nothing: the network would need millions of steps to learn.",
      "raise --lr by 10x or more (try scratchnn lr-find for a first guess)")
def lr_too_low(run: RunHealth):
    """At two evaluations in a row every layer's update_ratio is below LOW_UPDATE (1e-5), some
    layer has a nonzero grad_rms, and the train loss stays above half of ln C and changes by
    less than STILL (0.5%) between them."""
    layers = run.layers("update_ratio")
    losses = dict(run.metric("train_loss"))
    streak, previous = 0, None
    for epoch in run.epochs:
        ratios = [run.value("update_ratio", layer, epoch) for layer in layers]
        grads = [run.value("grad_rms", layer, epoch) or 0.0 for layer in layers]
        if not any(g > 0 for g in grads):
            continue  # nothing to step with: a dead or symmetric network, not a small learning rate
        loss = losses.get(epoch)
        if not ratios or None in ratios or not all(map(math.isfinite, ratios)) or loss is None:
            continue
        still = previous is not None and abs(loss - previous) < STILL * abs(previous)
        slow = max(ratios) < LOW_UPDATE and loss > run.chance_loss / 2
        streak = streak + 1 if slow else 0
        previous = loss
        if streak >= PERSIST and still:
            return Trigger(epoch, f"steps change the weights by {max(ratios):.2g} of their size and the loss "
                                  f"stays at {loss:.3f}")
    return None


@rule("exploding", "error",
      "The loss or the gradients grow without bound until the numbers overflow: each step "
      "makes the next one larger. A learning rate too high for the network, or weights and "
      "inputs too large, start it; in float32 anything past about 3e38 becomes infinite.",
      "lower --lr by 10x; scale inputs to 0..1; --init he_normal; gradient-friendly --schedule "
      "cosine --warmup 1")
def exploding(run: RunHealth):
    """Training diverged (a diverged_loss row), or the train loss rose at three evaluations in a
    row to over EXPLODED_LOSS (2) times its lowest value and more than LOSS_NOISE (0.1) above it,
    or some layer's grad_rms rose at each of three evaluations in a row to over GRAD_GROWTH (10)
    times the first of them and above its epoch-0 value (the gradients of a nearly fitted
    network are tiny, and one hard batch multiplies them without anything exploding)."""
    diverged = run.series("diverged_loss")
    if diverged:
        epoch, loss = diverged[0]
        grads = [(layer, run.value("grad_rms", layer, epoch)) for layer in run.layers("grad_rms")]
        worst = max(((l, g) for l, g in grads if g is not None and not math.isnan(g)), key=lambda lg: lg[1],
                    default=None)
        detail = f"; gradient RMS of {worst[0]} was {worst[1]:.3g}" if worst else ""
        return Trigger(epoch, f"training diverged at epoch {epoch}: the loss became {loss:.4g}{detail}")
    losses = run.metric("train_loss")
    for i in range(3, len(losses)):
        window = [v for _, v in losses[i - 3:i + 1]]
        lowest = min(v for _, v in losses[:i + 1])
        if all(b > a for a, b in zip(window, window[1:])) and window[-1] > EXPLODED_LOSS * lowest \
                and window[-1] - lowest > LOSS_NOISE:
            return Trigger(losses[i][0], f"the train loss grew three evaluations in a row to {window[-1]:.4g}")
    for layer in run.layers("grad_rms"):
        series = run.series("grad_rms", layer)
        start = dict(series).get(0, 0.0)
        for i in range(2, len(series)):
            window = [v for _, v in series[i - 2:i + 1]]
            if all(b > a for a, b in zip(window, window[1:])) and window[0] > 0 \
                    and window[-1] > GRAD_GROWTH * window[0] and window[-1] > start:
                return Trigger(series[i][0], f"{layer}'s gradient grew {window[-1] / window[0]:.0f}x in "
                                             "three evaluations", layer)
    return None


@rule("dead-relu", "warning",
      "Most units of a ReLU layer output 0 for every image: their weighted sums went negative "
      "for all inputs, and a ReLU passes no gradient back from 0, so they never recover. Too "
      "large steps or a negative bias push them there.",
      "lower --lr; --init he_normal --bias-init zeros; or --activation leaky-relu")
def dead_relu(run: RunHealth):
    """A ReLU layer has dead_fraction > DEAD (0.5) at two evaluations in a row."""
    for layer in run.layers("dead_fraction"):
        epoch = _held(run.series("dead_fraction", layer), lambda share: share > DEAD)
        if epoch is not None:
            share = run.value("dead_fraction", layer, epoch)
            return Trigger(epoch, f"{layer}: {_percent(share)} of its units never fired on the sampled batch", layer)
    return None


@rule("one-class", "error",
      "The network gives the same answer for almost every image: it has found that one class "
      "is a safe bet and ignores the picture. Batches that each hold one class (not shuffled), "
      "or a step size that wipes out what the last batches taught, cause it.",
      "shuffle the training data every epoch (scratchnn does unless told not to); lower --lr")
def one_class(run: RunHealth):
    """After training started (epoch > 0), top_class_share > ONE_CLASS (0.6) at two evaluations in a row."""
    series = [(e, v) for e, v in run.series("top_class_share") if e > 0]
    epoch = _held(series, lambda share: share > ONE_CLASS)
    if epoch is None:
        return None
    top = run.value("top_class", epoch=epoch)
    name = f"class {int(top)}" if top is not None else "one class"
    return Trigger(epoch, f"{name} takes {_percent(run.value('top_class_share', epoch=epoch))} of the predictions")


@rule("chance-loss", "error",
      "The loss stays at ln C, what a uniform guess over C classes scores, and the accuracy at "
      "1/C: the network has learned nothing yet. Something upstream (the learning rate, the "
      "initial weights, the labels) stops it; the other findings say which.",
      "run scratchnn gradcheck to rule out a wrong backward pass; try --preset seed on the same data")
def chance_loss(run: RunHealth):
    """At three evaluations in a row the train loss is within ±10% of ln C and the train accuracy
    is below CHANCE_ACCURACY / C (1.5 / C)."""
    chance, limit = run.chance_loss, CHANCE_ACCURACY / run.classes
    rows = [(m["epoch"], m) for m in run.metrics]
    epoch = _held(rows, lambda m: abs(m["train_loss"] - chance) <= CHANCE_BAND * chance
                  and m["train_accuracy"] < limit, times=3)
    if epoch is None:
        return None
    loss = next(m["train_loss"] for e, m in rows if e == epoch)
    return Trigger(epoch, f"the train loss stays at {loss:.3f}, chance level is ln {run.classes} = {chance:.3f}")


@rule("overfitting", "warning",
      "The network keeps improving on its training images while it gets worse on images it "
      "has not seen: it is fitting the training set's quirks. More training only widens the gap.",
      "--patience 5 (early stopping), --dropout 0.3, --weight-decay 0.01, --augment, or fewer epochs")
def overfitting(run: RunHealth):
    """The dev loss rose at three evaluations in a row to over OVERFIT_RISE (1.1) times its lowest value while the
    train loss fell and the train-dev accuracy gap widened over the same evaluations."""
    rows = [m for m in run.metrics if not math.isnan(m["dev_loss"])]
    for i in range(3, len(rows)):
        window = rows[i - 3:i + 1]
        rising = all(b["dev_loss"] > a["dev_loss"] for a, b in zip(window, window[1:]))
        lowest = min(m["dev_loss"] for m in rows[:i + 1])
        gap = [m["train_accuracy"] - m["dev_accuracy"] for m in window]
        if rising and window[-1]["dev_loss"] > OVERFIT_RISE * lowest and window[-1]["train_loss"] < window[0]["train_loss"] \
                and gap[-1] > gap[0]:
            return Trigger(window[-1]["epoch"], f"dev loss rose to {window[-1]['dev_loss']:.3f} (lowest {lowest:.3f}) "
                                               f"while train accuracy is {gap[-1]:.3f} above dev")
    return None


@rule("underfitting", "warning",
      "The training accuracy has levelled off well below what a network of this size reaches "
      "on digits (over 90%). The network cannot even fit the images it trains on: it is too "
      "small, its learning rate too low, or its training too short.",
      "more epochs (--epochs), a larger --lr, wider or more layers (--hidden 512,256), "
      "--optimizer adam")
def underfitting(run: RunHealth):
    """After at least UNDERFIT_AFTER (5) evaluations, the train accuracy is above chance (1.5 / C)
    and below UNDERFIT_ACCURACY (0.8), and rose by less than UNDERFIT_PLATEAU (1 point) over the
    last three evaluations."""
    accuracy = run.metric("train_accuracy")
    if len(accuracy) < UNDERFIT_AFTER:
        return None
    (_, before), (epoch, now) = accuracy[-4], accuracy[-1]
    if CHANCE_ACCURACY / run.classes < now < UNDERFIT_ACCURACY and now - before < UNDERFIT_PLATEAU:
        return Trigger(epoch, f"train accuracy levelled off at {now:.3f}")
    return None
