"""The diagnoses of how the network fits its data: overfitting, a train-dev gap, training that
sees harder images than dev, and a training accuracy that levels off too low.

Each rule's docstring is its trigger, word for word what the code checks; thresholds live in
doctor/thresholds.py. They register after the other symptoms (doctor/rules_symptoms.py).
"""
from __future__ import annotations

import math
from itertools import accumulate

from .findings import RunHealth, Trigger, rule
from .rules_causes import SPLIT_FIX, dev_only_classes
from .thresholds import (
    BELOW_DEV, CHANCE_ACCURACY, CHANCE_BAND, GAP, OVERFIT_NOISE, OVERFIT_RISE, OVERFIT_Z, PERSIST, STILL,
    UNDERFIT_ACCURACY, UNDERFIT_AFTER, UNDERFIT_PLATEAU, UNDERFIT_SPAN, UNDERFIT_SWING, apart)


@rule("overfitting", "warning",
      "The network keeps improving on its training images while it gets worse on images it "
      "has not seen: it is fitting the training set's quirks. More training only widens the gap.",
      "--patience 5 (early stopping), --dropout 0.3, --weight-decay 0.01, --augment, or fewer epochs")
def overfitting(run: RunHealth):
    """The dev loss rose at three evaluations in a row to over OVERFIT_RISE (1.1) times its lowest
    value and more than OVERFIT_NOISE (0.01) above it while the train loss fell, to below chance
    (ln C, less CHANCE_BAND: a network that learned nothing fits no quirks), and the train-dev
    accuracy gap widened over the same evaluations and ends positive (train accuracy above dev:
    with augmentation and dropout the as-seen train accuracy sits below dev, and a dev loss
    wobbling under a high learning rate is not overfitting); and, where the run recorded its
    dev_images, the dev accuracy is not OVERFIT_Z (2) standard errors above the one at the lowest
    dev loss (a network growing surer of its mistakes while it reads more digits right is not
    getting worse on them: full-batch Adam on 500 digits, lowest dev loss at 0.839, warned at
    0.862)."""
    rows = [m for m in run.metrics if not math.isnan(m["dev_loss"])]
    lowest_so_far = list(accumulate((m["dev_loss"] for m in rows), min))
    dev_images, learned = run.value("dev_images", epoch=0), (1 - CHANCE_BAND) * run.chance_loss
    for i in range(3, len(rows)):
        window = rows[i - 3:i + 1]
        if not all(b["dev_loss"] > a["dev_loss"] for a, b in zip(window, window[1:])):  # not rising
            continue
        lowest = lowest_so_far[i]
        gap = [m["train_accuracy"] - m["dev_accuracy"] for m in window]
        fitting = (window[-1]["train_loss"] < min(window[0]["train_loss"], learned)
                   and gap[-1] > max(gap[0], 0))
        risen = window[-1]["dev_loss"] > OVERFIT_RISE * lowest and window[-1]["dev_loss"] - lowest > OVERFIT_NOISE
        if risen and fitting and not _reads_more(rows, i, lowest, dev_images):
            return Trigger(window[-1]["epoch"], f"dev loss rose to {window[-1]['dev_loss']:.3f} (lowest {lowest:.3f}) "
                                               f"while train accuracy is {gap[-1]:.3f} above dev")
    return None


def _reads_more(rows: list[dict], i: int, lowest: float, dev_images: float | None) -> bool:
    """Whether rows[i]'s dev accuracy is OVERFIT_Z standard errors above the one at the lowest
    dev loss before it, each a share of ``dev_images`` (False when that count is unknown)."""
    if not dev_images:
        return False
    then = next(m["dev_accuracy"] for m in rows[:i + 1] if m["dev_loss"] == lowest)
    return apart(rows[i]["dev_accuracy"], then, dev_images, dev_images) > OVERFIT_Z


@rule("train-dev-gap", "advice",
      "The network is right about far more of its training images than of images it has not seen, "
      "and its dev accuracy has stopped improving: much of what it learned from the training images "
      "does not carry over to new ones. Few training images, or a large network without "
      "regularisation, do this; more epochs will not close the gap.",
      "more training images; --augment, --dropout 0.3 or --weight-decay 0.01")
def train_dev_gap(run: RunHealth):
    """At two evaluations in a row the train accuracy is more than GAP (10 points) above the dev
    accuracy, and the dev accuracy rose by less than UNDERFIT_PLATEAU (1 point) over the last
    three evaluations. Where the dev labels hold classes the training labels lack
    (dev_only_classes), it says so and its fix is the split's (SPLIT_FIX): dropout or more of the
    same images would not teach them (a learner's split of digits sorted by label, dev all 7-9:
    train 0.96, dev 0.19)."""
    rows = [m for m in run.metrics if not (math.isnan(m["dev_accuracy"]) or math.isnan(m["train_accuracy"]))]
    streak, dev_only = 0, dev_only_classes(run)
    for i, m in enumerate(rows):
        gap = m["train_accuracy"] - m["dev_accuracy"]
        streak = streak + 1 if gap > GAP else 0
        rose = m["dev_accuracy"] - rows[i - 3]["dev_accuracy"] if i >= 3 else math.inf
        if streak >= PERSIST and rose < UNDERFIT_PLATEAU:
            lacking = (f"; the dev labels hold {dev_only} class{'es' if dev_only > 1 else ''} the training labels "
                       "lack") if dev_only else ""
            return Trigger(m["epoch"], f"train accuracy {m['train_accuracy']:.3f}, dev {m['dev_accuracy']:.3f} "
                                       f"({gap:.3f} apart); dev {'rose' if rose >= 0 else 'fell'} {abs(rose):.3f} "
                                       f"over the last three evaluations{lacking}",
                           fix=f"{SPLIT_FIX}; dropout, weight decay or more of the same images will not close "
                               "this gap" if dev_only else None)
    return None


@rule("train-below-dev", "warning",
      "The network gets far fewer of its training images right than of the dev images it never "
      "trains on, so training must be seeing harder images than dev. Dropout switches off most "
      "units at every training step (dev is measured with all of them); an augmentation distorts "
      "the training images past recognition; or the batches are not shuffled, so each holds one or "
      "a few classes and every step pulls the network towards them.",
      "lower the dropout (--dropout 0.3, --input-dropout 0.2: 0.2 to 0.5 is usual); weaken the augmentation "
      "(--augmentation p=0.5, or --no-augment); shuffle the training batches every epoch "
      "(scratchnn does unless told not to)")
def train_below_dev(run: RunHealth):
    """At two evaluations in a row the train accuracy is below UNDERFIT_ACCURACY (0.8) and more
    than BELOW_DEV (25 points) below the best dev accuracy of the evaluations before it. (The
    train accuracy averages the epoch's batches as they were seen, starting from the network the
    evaluation before measured; a healthy first epoch, starting from chance, lags its own dev
    accuracy by up to 50 points. The best, not the last: unshuffled batches on 100 dev digits
    were 33, 24 and 31 points below, the 24 a dip of dev, the doctor audit.)"""
    rows = [m for m in run.metrics if not (math.isnan(m["dev_accuracy"]) or math.isnan(m["train_accuracy"]))]
    best_before = list(accumulate((m["dev_accuracy"] for m in rows), max))
    streak = 0
    for best, m in zip(best_before, rows[1:]):
        below = best - m["train_accuracy"]
        streak = streak + 1 if below > BELOW_DEV and m["train_accuracy"] < UNDERFIT_ACCURACY else 0
        if streak >= PERSIST:
            return Trigger(m["epoch"], f"train accuracy {m['train_accuracy']:.3f}, while the network scored up to "
                                       f"{best:.3f} on dev before this epoch")
    return None


@rule("underfitting", "warning",
      "The training accuracy has levelled off below 80%: the network cannot even fit the images "
      "it trains on (on digits, even the seed's 10 hidden units pass 85% given time). It is too "
      "small, its learning rate too low, or its training too short.",
      "more epochs (--epochs), a larger --lr, wider or more layers (--hidden 512,256), "
      "--optimizer adam")
def underfitting(run: RunHealth):
    """After at least UNDERFIT_AFTER (5) evaluations, the train accuracy is above chance (1.5 / C)
    and below UNDERFIT_ACCURACY (0.8), and moved by less than UNDERFIT_PLATEAU (1 point) either
    way over the last three evaluations and over the last UNDERFIT_SPAN (a fifth) of the epochs
    so far, whichever is longer, without swinging by UNDERFIT_SWING (3 points) or more in between.
    (Evaluated every iteration, the seed network gains 0.4 point an iteration: three evaluations
    are too short to tell slow from stuck; and a dip, 0.67 -> 0.49 -> 0.71, or the seed network
    at --lr 0.5 bouncing 0.63 -> 0.59 -> 0.61 over a few iterations before it climbs on, is no
    plateau.) Nor while the train loss still falls by STILL (0.5%) or more an evaluation over that
    span: on 100 training digits a point is one image, and healthy seed runs held an accuracy for
    3-6 iterations while their loss fell 1.2-1.8% an iteration, then went on to 1.0."""
    accuracy = run.metric("train_accuracy")
    if len(accuracy) < UNDERFIT_AFTER:
        return None
    epoch, now = accuracy[-1]
    start = min(accuracy[-4][0], epoch - UNDERFIT_SPAN * epoch)
    first = max(i for i, (e, _) in enumerate(accuracy) if e <= start)
    span = [value for _, value in accuracy[first:]]
    loss_at = dict(run.metric("train_loss"))
    losses = [loss_at[e] for e, _ in accuracy[first:] if e in loss_at]
    falling = len(losses) > 1 and losses[0] > 0 and (losses[0] - losses[-1]) / losses[0] >= STILL * (len(losses) - 1)
    if CHANCE_ACCURACY / run.classes < now < UNDERFIT_ACCURACY and abs(now - span[0]) < UNDERFIT_PLATEAU \
            and max(span) - min(span) < UNDERFIT_SWING and not falling:
        return Trigger(epoch, f"train accuracy levelled off at {now:.3f}")
    return None
