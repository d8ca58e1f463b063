"""The diagnoses of symptoms: what training does when a setting is off (steps too large or too
small, exploding or dead units, one answer for everything, a loss at chance; how the network
fits its data, over- and underfitting, is doctor/rules_fit.py).

Each rule's docstring is its trigger, word for word what the code checks; thresholds live in
doctor/thresholds.py. They register after the causes (doctor/rules_causes.py).
"""
from __future__ import annotations

import math
from itertools import accumulate

from .findings import RunHealth, Trigger, rule
from .thresholds import (
    BASELINE_SKILL, CHANCE_ACCURACY, CHANCE_BAND, CHANCE_FALL, DEAD, DIVERGED_UPDATE, EXPLODED_LOSS, FIRST_UPDATE,
    GRAD_GROWTH, HIGH_UPDATE, LOSS_NOISE, LOW_UPDATE, ONE_CLASS_MARGIN, OSCILLATION, PERSIST, SLOW_UPDATE, STILL,
    UNDERFIT_ACCURACY, WARMING_FALL, WEIGHT_GROWTH, held, layer_held_above, learned_at_first, one_class_limit,
    percent)


def _not_descending(run: RunHealth, since: int, high: set[int]) -> int | None:
    """``since`` (or the later evaluation that shows it) if the train loss failed to fall by
    STILL at an evaluation with a high step ratio or right after one; None while it falls
    steadily; ``since`` when no loss was recorded."""
    losses = run.metric("train_loss")
    if not losses:
        return since
    for (before, previous), (epoch, loss) in zip(losses, losses[1:]):
        if (epoch in high or before in high) and loss > previous * (1 - STILL):
            return max(epoch, since)
    return None


@rule("lr-too-high", "warning",
      "Each step changes the weights by a large part of their size, so the network jumps past "
      "the minimum instead of descending into it: the loss bounces up and down or climbs. "
      "A healthy step changes the weights by about a thousandth.",
      "lower --lr by 10x (or use --schedule cosine --warmup 1)")
def lr_too_high(run: RunHealth):
    """Some layer's update_ratio of the first step (epoch 0) > FIRST_UPDATE (0.5), unless the first
    evaluation's accuracy reached UNDERFIT_ACCURACY (0.8: a step large against tiny initial weights
    that batch norm rescales); or > HIGH_UPDATE
    (0.1) at two evaluations in a row after it, and at one of those or the one before, the train
    loss fell by less than STILL (0.5%) or rose (without a recorded loss, the ratios alone: the
    seed network at --lr 0.5 takes 12% steps while its loss falls at every evaluation, and ends
    better than at its own 0.1); or training diverged and the last update_ratio
    recorded before was > DIVERGED_UPDATE (1e-2); or some layer's weight_rms grew over
    WEIGHT_GROWTH (10) times its epoch-0 value, unless the first evaluation's accuracy reached
    UNDERFIT_ACCURACY; or the train loss rose at two of the last three
    evaluations and ends over OSCILLATION (1.2) times its lowest value and more than
    LOSS_NOISE (0.1) above it. Of those that hold, the earliest is named (so the live doctor, which
    sees several at its first evaluation, names what ``scratchnn doctor`` names afterwards)."""
    found = [t for t in (_grown_weights(run), _large_steps(run), _climbing_loss(run)) if t is not None]
    return min(found, key=lambda t: t.epoch) if found else None


def _grown_weights(run: RunHealth) -> Trigger | None:
    if learned_at_first(run):  # tiny initial weights growing to a working size: batch norm rescaled them
        return None
    for layer in run.layers("weight_rms"):
        series = run.series("weight_rms", layer)
        start = dict(series).get(0)
        grown = next(((e, w) for e, w in series if start and e > 0 and w > WEIGHT_GROWTH * start), None)
        if grown:
            return Trigger(grown[0], f"{layer}'s weights grew {grown[1] / start:.0f}x their initial size "
                                     f"(RMS {start:.3g} -> {grown[1]:.3g})", layer)
    return None


def _large_steps(run: RunHealth) -> Trigger | None:
    diverged = run.series("diverged_loss")
    for layer in run.layers("update_ratio"):
        series = [(e, r) for e, r in run.series("update_ratio", layer) if math.isfinite(r)]
        first = dict(series).get(0)
        epoch = 0 if first is not None and first > FIRST_UPDATE and not learned_at_first(run) else held(
            [(e, r) for e, r in series if e > 0], lambda ratio: ratio > HIGH_UPDATE)
        if epoch:
            epoch = _not_descending(run, epoch, {e for e, r in series if e > 0 and r > HIGH_UPDATE})
        if epoch is None and diverged and series and series[-1][1] > DIVERGED_UPDATE:
            epoch = series[-1][0]
        if epoch is not None:  # the largest step so far: the evaluation named may be one that did not descend
            ratio = max(r for e, r in series if e <= epoch and (e > 0 or epoch == 0))  # the first step is judged alone
            return Trigger(epoch, f"one step changed {layer}'s weights by {percent(ratio)} of their size "
                                  "(healthy: about 0.1%)", layer)
    return None


def _climbing_loss(run: RunHealth) -> Trigger | None:
    losses = run.metric("train_loss")
    if len(losses) >= 4:
        recent = [v for _, v in losses[-4:]]
        rises = sum(b > a for a, b in zip(recent, recent[1:]))
        lowest = min(v for _, v in losses)
        if rises >= 2 and recent[-1] > OSCILLATION * lowest and recent[-1] - lowest > LOSS_NOISE:
            return Trigger(losses[-1][0], f"the train loss goes up and down and climbs to {recent[-1]:.3f} "
                                          f"(lowest {lowest:.3f})")
    return None


@rule("lr-too-low", "warning",
      "Each step changes the weights by a tiny fraction of their size (healthy steps: about a "
      "thousandth), so the loss hardly moves and the accuracy crawls. The gradients are there and "
      "point the right way, but the learning rate scales them down to almost nothing: the network "
      "would need thousands of times more steps to learn.",
      "raise --lr by 10x or more (try scratchnn lr-find for a first guess)")
def lr_too_low(run: RunHealth):
    """At two evaluations in a row (after the first step) some layer has a nonzero grad_rms and
    every layer's update_ratio, scaled to the run's highest rate so far (a schedule's decay is
    not the rate the user chose: one-cycle's last steps are tiny by design; without an lr
    column, as it is), is either below LOW_UPDATE (1e-5) while the train loss stays above half
    of ln C and changes by less than STILL (0.5%) between them, or below SLOW_UPDATE (5e-4)
    while the train accuracy is below UNDERFIT_ACCURACY (0.8). Never once some step moved a layer by more than
    HIGH_UPDATE (10%): that rate is not too low, and its small steps later are gradients that
    vanished (the seed network at lr 2, its ReLUs dead, got [lr-too-high] and [lr-too-low] both)."""
    layers = run.layers("update_ratio")
    losses, accuracies, rates = (dict(run.metric(column)) for column in ("train_loss", "train_accuracy", "lr"))
    ratio_of, grad_of = ([run.values(signal, layer) for layer in layers] for signal in ("update_ratio", "grad_rms"))
    stalls, crawls, previous, peak, chance = 0, 0, None, 0.0, run.chance_loss
    for epoch in run.epochs:
        peak = max(peak, rates.get(epoch, 0.0))
        ratios = [ratio.get(epoch) for ratio in ratio_of]
        grads = [grad.get(epoch) or 0.0 for grad in grad_of]
        if any(r is not None and r > HIGH_UPDATE for r in ratios):  # (an inf, a NaN: no, as the next lines)
            return None
        if not any(g > 0 for g in grads):
            continue  # nothing to step with: a dead or symmetric network, not a small learning rate
        loss = losses.get(epoch)
        if not ratios or None in ratios or not all(map(math.isfinite, ratios)) or loss is None:
            continue
        still = previous is not None and abs(loss - previous) < STILL * abs(previous)
        full_rate = max(ratios) * peak / rates[epoch] if rates.get(epoch) else max(ratios)  # no lr: constant
        stalled = full_rate < LOW_UPDATE and loss > chance / 2
        crawling = epoch > 0 and full_rate < SLOW_UPDATE and accuracies.get(epoch, 1.0) < UNDERFIT_ACCURACY
        stalls, crawls = stalls + 1 if stalled else 0, crawls + 1 if crawling else 0
        previous = loss
        if stalls >= PERSIST and still:
            return Trigger(epoch, f"steps change the weights by {max(ratios):.2g} of their size and the loss "
                                  f"stays at {loss:.3f}")
        if crawls >= PERSIST:
            return Trigger(epoch, f"steps change the weights by {max(ratios):.2g} of their size (healthy: "
                                  f"about 0.001) and train accuracy is {accuracies[epoch]:.3f}")
    return None


@rule("exploding", "error",
      "The loss or the gradients grow without bound until the numbers overflow: each step "
      "makes the next one larger. A learning rate too high for the network, or weights and "
      "inputs too large, start it; in float32 anything past about 3e38 becomes infinite.",
      "lower --lr by 10x; scale inputs to 0..1; --init he_normal; gradient-friendly --schedule "
      "cosine --warmup 1")
def exploding(run: RunHealth):
    """Training diverged (a diverged_loss row, or a train loss in metrics.csv that is NaN or
    infinite: a loop of one's own that went on), or the train loss rose at three evaluations in a
    row to over EXPLODED_LOSS (2) times its lowest value and more than LOSS_NOISE (0.1) above it,
    or some layer's grad_rms rose at each of three evaluations in a row to over GRAD_GROWTH (10)
    times the first of them and above its epoch-0 value (the gradients of a nearly fitted
    network are tiny, and one hard batch multiplies them without anything exploding; with no
    epoch-0 value, as in a run resumed from a version without health.csv, this test is skipped),
    unless the train loss is lower at the last of those evaluations than at the first (health.csv
    records one batch's gradient, and a network whose loss still falls is learning, not exploding)."""
    diverged = run.series("diverged_loss") or [(m["epoch"], m["train_loss"]) for m in run.metrics
                                               if math.isinf(m["train_loss"]) or math.isnan(m["train_loss"])][:1]
    if diverged:
        epoch, loss = diverged[0]
        grads = [(layer, run.value("grad_rms", layer, epoch)) for layer in run.layers("grad_rms")]
        worst = max(((l, g) for l, g in grads if g is not None and not math.isnan(g)), key=lambda lg: lg[1],
                    default=None)
        detail = f"; gradient RMS of {worst[0]} was {worst[1]:.3g}" if worst else ""
        return Trigger(epoch, f"training diverged: the loss became {loss:.4g}{detail}")
    losses = run.metric("train_loss")
    lowest_so_far = list(accumulate((v for _, v in losses), min))
    for i in range(3, len(losses)):
        window = [v for _, v in losses[i - 3:i + 1]]
        lowest = lowest_so_far[i]
        if all(b > a for a, b in zip(window, window[1:])) and window[-1] > EXPLODED_LOSS * lowest \
                and window[-1] - lowest > LOSS_NOISE:
            return Trigger(losses[i][0], f"the train loss grew three evaluations in a row to {window[-1]:.4g}")
    train_loss = dict(losses)
    for layer in run.layers("grad_rms"):
        series = run.series("grad_rms", layer)
        start = dict(series).get(0)
        if start is None:  # health.csv begun mid-run (a run an older version started, resumed): no scale to judge by
            continue
        for i in range(2, len(series)):
            window = [v for _, v in series[i - 2:i + 1]]
            if all(b > a for a, b in zip(window, window[1:])) and window[0] > 0 \
                    and window[-1] > GRAD_GROWTH * window[0] and window[-1] > start \
                    and not _fell(train_loss, series[i - 2][0], series[i][0]):
                return Trigger(series[i][0], f"{layer}'s gradient grew {window[-1] / window[0]:.0f}x in "
                                             "three evaluations", layer)
    return None


def _fell(loss: dict, first: int, last: int) -> bool:
    """True when ``loss`` (by epoch) is known at ``last`` and lower there than at the first epoch
    from ``first`` on where it is known (metrics.csv has no row for the untrained network's
    epoch 0, so a window from epoch 0 starts at the first evaluation's loss)."""
    start = min((epoch for epoch in loss if first <= epoch < last), default=None)
    return start is not None and last in loss and loss[last] < loss[start]


@rule("dead-relu", "warning",
      "Most units of a ReLU layer output 0 for every image: their weighted sums went negative "
      "for all inputs, and a ReLU passes no gradient back from 0, so they never recover. Too "
      "large steps or a negative bias push them there.",
      "lower --lr; --init he_normal --bias-init zeros; or --activation leaky-relu")
def dead_relu(run: RunHealth):
    """A ReLU layer has dead_fraction > DEAD (0.5) at two evaluations in a row."""
    found = layer_held_above(run, "dead_fraction", DEAD)
    if found is None:
        return None
    layer, epoch, share = found
    return Trigger(epoch, f"{layer}: {percent(share)} of its units never fired on the sampled batch", layer)


@rule("one-class", "error",
      "The network gives the same answer for almost every image: it has found that one class "
      "is a safe bet and ignores the picture. Batches that each hold one class (not shuffled), "
      "or a step size that wipes out what the last batches taught, cause it.",
      "shuffle the training data every epoch (scratchnn does unless told not to); lower --lr")
def one_class(run: RunHealth):
    """After training started (epoch > 0), top_class_share is above the one-class limit at two
    evaluations in a row. The limit is the commonest training label's share (top_label_share,
    epoch 0; 1/C where not recorded) and ONE_CLASS_REST (5/9) of the rest: ONE_CLASS (60%) for
    ten evenly held classes, 78% for two, 91% for three whose labels are 80% one class (a network
    answering that class for 79% of them was told it ignored the picture at dev 0.986, the doctor
    audit). Below that limit, where one class holds half the labels or more and twice its even
    share, a share ONE_CLASS_MARGIN (3 points) past the commonest label's counts
    too where the dev accuracy at that evaluation gained less than BASELINE_SKILL (three quarters)
    of what separates always answering that class from reading every image right: unshuffled
    batches of those 80% ones answered them 84-93% of the time at dev 0.84-0.95 (the re-audit),
    where the healthy runs read 0.985-1.0."""
    limit, commonest = one_class_limit(run), run.value("top_label_share", epoch=0)
    dev = dict(run.metric("dev_accuracy"))
    lopsided = commonest is not None and max(0.5, 2 / run.classes) <= commonest < 1  # the limit's near 1

    def one_answer(epoch: int, share: float) -> bool:
        if share > limit:
            return True
        if not lopsided or not share > commonest + ONE_CLASS_MARGIN:
            return False
        accuracy = dev.get(epoch, math.nan)
        return accuracy - commonest < BASELINE_SKILL * (1 - commonest)  # False for NaN: no dev set

    series = [(e, (e, v)) for e, v in run.series("top_class_share") if e > 0]
    epoch = held(series, lambda point: one_answer(*point))
    if epoch is None:
        return None
    top = run.value("top_class", epoch=epoch)
    name = f"class {int(top)}" if top is not None else "one class"
    return Trigger(epoch, f"{name} takes {percent(run.value('top_class_share', epoch=epoch))} of the predictions")


@rule("chance-loss", "error",
      "The loss stays at ln C (what a uniform guess over C classes scores), or above it and still, "
      "and the accuracy at 1/C: the network has learned nothing yet. Something upstream (the learning rate, the "
      "initial weights, the labels, an augmentation that leaves the images unreadable) stops it; "
      "the other findings say which.",
      "run scratchnn gradcheck to rule out a wrong backward pass; try --preset seed on the same data; "
      "with --augment, train once without it")
def chance_loss(run: RunHealth):
    """At three evaluations in a row the train accuracy is below CHANCE_ACCURACY / C (1.5 / C) and
    the train loss is within ±10% of ln C and fell by at most CHANCE_FALL (1%) since the evaluation
    before, or is above that band and changed by less than STILL (0.5%) since the evaluation before
    (worse than chance and stuck there: the seed network at lr 1e-4, 3.2 for digits, where
    ln 10 = 2.303; an untrained network starts near 3 too, and falls fast); unless the learning
    rate (the lr column, where recorded) rose since the evaluation before while the loss fell by
    WARMING_FALL (0.05%) or more: a warm-up's first steps are small by design (the seed network
    warming up over 100 iterations falls 0.1-0.4% an iteration, faster each time, and was called
    stuck at iteration 4), but a loss that does not move at all is stuck whatever the rate."""
    chance, limit = run.chance_loss, CHANCE_ACCURACY / run.classes
    rows, previous, previous_lr = [], None, math.nan
    for m in run.metrics:
        loss, lr = m["train_loss"], m.get("lr", math.nan)
        stuck = previous is not None and abs(loss - previous) < STILL * abs(previous)
        falling = previous is not None and loss < previous * (1 - CHANCE_FALL)
        at_chance = (abs(loss - chance) <= CHANCE_BAND * chance and not falling
                     or loss > chance * (1 + CHANCE_BAND) and stuck)
        warming = lr > previous_lr and loss < previous * (1 - WARMING_FALL)  # False when an lr is NaN
        rows.append((m["epoch"], at_chance and m["train_accuracy"] < limit and not warming))
        previous, previous_lr = loss, lr
    epoch = held(rows, bool, times=3)
    if epoch is None:
        return None
    loss = next(m["train_loss"] for m in run.metrics if m["epoch"] == epoch)
    return Trigger(epoch, f"the train loss stays at {loss:.3f}, chance level is ln {run.classes} = {chance:.3f}")
