"""The doctor's thresholds: how much of a signal is too much, and for how long.

Module constants, so a test can sit at, just below and just above each of them; the rules
(doctor/rules_causes.py, doctor/rules_symptoms.py) and the Health plots read them here.
"""
from __future__ import annotations

import math

UNSCALED = 10.0          # |pixel| beyond this: raw 0..255 values, not scaled ones
TINY_INPUTS = 0.05       # no |pixel| beyond this: scaled twice (0..1 / 255 reaches 0.004)
SYMMETRIC = 1e-3         # unit_spread below this: the layer's units are copies of each other
SCALAR_BIAS = 1e-3       # spread of a bias update across units below this: one number for all (the bug's is
                         # float32 rounding, 0 to 2e-6 on the seed network; a correct gradient's 0.15-1 in 80
                         # runs of every preset, broken ones included)
LARGE_LOGITS = 30.0      # |logit| of the untrained network beyond this: e^30 makes it certain
SMALL_WEIGHTS = 1e-3     # weight RMS of the untrained network below this (He for 4,608 inputs: 0.02)
VANISHING = 1e-2         # first layer's gradient RMS / last layer's below this (healthy presets: 0.1-4)
SATURATED = 0.5          # share of sigmoid/tanh outputs on the flat tails
HIGH_UPDATE = 0.1        # ‖ΔW‖/‖W‖ of one step above this, evaluation after evaluation: too large
FIRST_UPDATE = 0.5       # ‖ΔW‖/‖W‖ of the very first step above this: it rewrote the initial weights
DIVERGED_UPDATE = 1e-2   # a run that diverged after steps of 10x the healthy 1e-3
WEIGHT_GROWTH = 10.0     # weight RMS this many times its initial value: steps blew the weights up
LOW_UPDATE = 1e-5        # ‖ΔW‖/‖W‖ below this in every layer: nothing moves
SLOW_UPDATE = 5e-4       # ... below this at the run's full rate while train accuracy is under UNDERFIT_ACCURACY:
                         # learning at a crawl (seed preset at lr 1e-4: 4e-5, at 1e-3: 3e-4; mlp on SGD at
                         # 1e-3: 3.8e-4, with Adam at 2e-5: 1.5e-4; the seed preset itself stays above 1e-3
                         # until it passes 0.8, and 80 audited runs that learn at 0.8x-1x: above 7e-4)
STILL = 0.005            # relative change of the train loss below this: the loss "barely moves"
DEAD = 0.5               # share of a ReLU layer's units that never fired
ONE_CLASS_REST = 5 / 9   # one class takes "every answer" past the commonest label's share and this share of the
                         # rest (one_class_limit): 0.78 for two classes, 0.91 for three whose labels are 80% one
ONE_CLASS = 0.6          # ... and for ten even classes, this
ONE_CLASS_MARGIN = 0.03  # below it, one class this far past its label share counts while dev accuracy gained
BASELINE_SKILL = 0.75    # ... less than this share of the way from always answering it to reading all right
CHANCE_BAND = 0.1        # train loss within ±10% of ln C (or above it and still) ...
CHANCE_ACCURACY = 1.5    # ... and train accuracy below 1.5 / C: a uniform guess
CHANCE_FALL = 0.01       # ... unless the loss fell by more than this share since the evaluation before: the seed
                         # network evaluated every iteration passes through the band at 1.3-3% an iteration
WARMING_FALL = 0.0005    # ... nor while a warm-up raises the rate and the loss falls by this share an evaluation
PERSIST = 2              # evaluations a condition must hold in a row (one is noise)
MEMORISING_GAP = 0.03    # train accuracy this far above a dev accuracy stuck at chance ...
MEMORISING_Z = 1.5       # ... and this many standard errors above it, where the counts are known (a gap of
                         # noise on 100 dev digits is not one)
DEV_FALL_SHARE = 0.2     # ... while the dev loss fell by less than this share of the train loss's fall: the labels
                         # carry no signal (shuffled: 0-12% over a streak; healthy runs on 100/100 digits: 30-65%,
                         # on 50/50: 23-24%)
SANE_WEIGHTS = 1e6       # weight RMS below this: finite weights that give finite logits
OSCILLATION = 1.2        # a train loss back over this many times its lowest: climbing
LOSS_NOISE = 0.1         # ... and more than this (nats) above it: a nearly fitted network's loss of
                         # 0.02 wobbling to 0.03 is noise, not a climb (the mlp preset does that)
EXPLODED_LOSS = 2.0      # a train loss rising three evaluations in a row to this many times its lowest
GRAD_GROWTH = 10.0       # gradient RMS growth over three evaluations
OVERFIT_RISE = 1.1       # dev loss this many times its lowest, after rising three evaluations in a row
OVERFIT_NOISE = 0.01     # ... and more than this (nats) above it: one digit whose loss goes from 2 to 6 adds
                         # 0.004 to the mean over 1,000, so a smaller rise is a few confident mistakes growing
                         # surer (cnn-best's dev loss 0.022 -> 0.026 over its last epochs, accuracy steady)
OVERFIT_Z = 2.0          # ... unless the dev accuracy is this many standard errors above its value at the lowest loss
GAP = 0.1                # train accuracy this far above dev accuracy at two evaluations in a row, while
                         # dev rose by less than UNDERFIT_PLATEAU over three: fitting what does not carry over
                         # (200 training digits: train 1.000, dev 0.84; the presets: under 0.03)
UNDERFIT_ACCURACY = 0.8  # train accuracy a network of any size should pass on digits
BELOW_DEV = 0.25         # train accuracy this far below the dev accuracy of the evaluation before it, while under
                         # UNDERFIT_ACCURACY: training sees harder images than dev (mlp with --dropout 0.95:
                         # 0.31-0.49; unshuffled batches: 0.26; healthy runs 0.18 at most, lenet5 and cnns
                         # on 3,000 augmented digits, a huge init that batch norm rescues)
UNDERFIT_PLATEAU = 0.01  # ... rising by less than this over the last three evaluations
UNDERFIT_AFTER = 5       # evaluations before underfitting is judged
UNDERFIT_SPAN = 0.2      # ... and the plateau spans at least this share of the epochs so far
UNDERFIT_SWING = 0.03    # ... without swinging by this much within it: a bounce that recovers is no plateau
LOPSIDED = 5.0           # one class holding 5 / C of the training labels (half, for digits) ...
LOPSIDED_MOST = 0.9      # ... or, with few classes (5 / C > 0.9), 90% of them: the data is lopsided
RARE = 0.1               # ... or one class has under a tenth of its even share 1 / C (digits: under 1%;
                         # MNIST's rarest, the 5s, has 9%; EMNIST byclass's rarest about a sixth)
READABLE = 2.5           # a class-mean template reading below 2.5 / C of the augmented images ...
UNREADABLE_SHARE = 0.5   # ... and below half of what it reads of them as they are: the augmentation leaves
                         # little to learn from (digits 0.86 as they are; DIGITS 0.67, turns of 90° 0.34,
                         # 180° 0.24, elastic 80 px 0.23, shifts of 8 px 0.14; clothes 0.68, CLOTHES 0.61)


def held(series, test, times: int = PERSIST) -> int | None:
    """The epoch at which ``test(value)`` had held for ``times`` evaluations in a row, or None."""
    run = 0
    for epoch, value in series:
        run = run + 1 if test(value) else 0
        if run >= times:
            return epoch
    return None


def apart(a: float, b: float, n: float, m: float) -> float:
    """How many standard errors accuracy ``a`` (a share of ``n`` images) is above ``b`` (of ``m``):
    (a − b) / √(a(1 − a)/n + b(1 − b)/m). A gap is noise until it is a few of these (on 100
    dev digits one standard error is 3-4 points). 0 for two certainties that agree."""
    error = math.sqrt(a * (1 - a) / n + b * (1 - b) / m)
    return (a - b) / error if error else math.copysign(math.inf, a - b) if a != b else 0.0


def one_class_limit(run) -> float:
    """The share of the predictions past which one class is "every answer": the commonest
    training label's share (top_label_share, epoch 0; 1/C where not recorded) and ONE_CLASS_REST
    of the rest (0.6 for ten even classes)."""
    commonest = run.value("top_label_share", epoch=0)
    commonest = commonest if commonest is not None and 0 < commonest <= 1 else 1 / run.classes
    return commonest + (1 - commonest) * ONE_CLASS_REST


def percent(share: float) -> str:
    """'45%'; a share under 1% keeps a significant figure ('0.03%', not '0%')."""
    return f"{100 * share:.0f}%" if share >= 0.005 or share == 0 else f"{100 * share:.1g}%"


def layer_held_above(run, signal: str, limit: float) -> tuple[str, int, float] | None:
    """(layer, epoch, value) of the first layer whose ``signal`` stayed above ``limit`` for
    PERSIST evaluations in a row (the epoch that made it so), or None."""
    for layer in run.layers(signal):
        epoch = held(run.series(signal, layer), lambda value: value > limit)
        if epoch is not None:
            return layer, epoch, run.value(signal, layer, epoch)
    return None


def learned_at_first(run) -> bool:
    """Whether the first evaluation's train or dev accuracy already reached UNDERFIT_ACCURACY:
    whatever the untrained network looked like, it learned (batch norm rescales tiny weights)."""
    first = run.metrics[0] if run.metrics else {}
    return any(first.get(name, float("nan")) >= UNDERFIT_ACCURACY for name in ("train_accuracy", "dev_accuracy"))
