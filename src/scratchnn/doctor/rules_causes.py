"""The diagnoses of causes: mistakes in the data, the initialisation and the code, which the
first evaluations already show (the untrained network and its first step are epoch 0).

Each rule's docstring is its trigger, word for word what the code checks; thresholds live in
doctor/thresholds.py. Signals are those of doctor/signals.py; "an evaluation" is an epoch with
rows in the tables. These register before the symptoms (doctor/rules_symptoms.py): a finding
that names the cause outranks one that names what it does to training.
"""
from __future__ import annotations

import math

from .findings import RunHealth, Trigger, rule
from .thresholds import (
    CHANCE_ACCURACY, LARGE_LOGITS, LOPSIDED, LOPSIDED_MOST, DEV_FALL_SHARE, MEMORISING_GAP, MEMORISING_Z, PERSIST, RARE,
    READABLE, SANE_WEIGHTS, SATURATED, SCALAR_BIAS, SMALL_WEIGHTS, SYMMETRIC, TINY_INPUTS, UNDERFIT_ACCURACY,
    UNREADABLE_SHARE, UNSCALED, VANISHING, apart, held, layer_held_above, learned_at_first, one_class_limit, percent)


@rule("unscaled-inputs", "warning",
      "The pixels reach the network as raw values (0..255) instead of 0..1, or scaled twice (0 to "
      "1/255). Raw, every weighted sum is hundreds of times larger than the initialisation "
      "expects, so the first steps overshoot, the softmax saturates and the loss explodes or "
      "stalls. Scaled twice, the first layer's sums are hundreds of times too small: its "
      "gradients (input times upstream gradient) shrink with them, and the network barely learns.",
      "scale the pixels to 0..1 once: divide by 255 the raw 0..255 values, as scratchnn's data loaders "
      "do (so a data file of 0/1 pixels must store them as 0 and 255); if your own loop feeds the "
      "network, fix it there")
def unscaled_inputs(run: RunHealth):
    """The sampled input batch has a pixel beyond ±UNSCALED (10), input_max > 10 or input_min < -10;
    or none beyond ±TINY_INPUTS (0.05): 0..1 divided by 255 again reaches 0.004."""
    highs = dict(run.series("input_max"))
    for epoch, low in run.series("input_min"):
        high = highs.get(epoch, low)
        if max(abs(low), abs(high)) > UNSCALED:
            return Trigger(epoch, f"the input pixels range from {low:g} to {high:g}; the network expects 0..1"
                                  + (" (standardised pixel by pixel?)" if -UNSCALED < low < 0 else ""))
        if epoch in highs and max(abs(low), abs(high)) < TINY_INPUTS:
            return Trigger(epoch, f"the input pixels range only from {low:.3g} to {high:.3g}; the network expects "
                                  "0..1 (divided by 255 twice, or 0/1 pixels divided by 255?)")
    return None


# The fix when dev holds classes that training lacks: no setting teaches a class it never sees
SPLIT_FIX = ("the dev labels hold classes the training labels lack, as when data sorted by label is split before it "
             "is shuffled: shuffle first (order = rng.permutation(len(labels)); x, labels = x[order], labels[order]), "
             "then split, so each set gets every class")


def dev_only_classes(run: RunHealth) -> int:
    """How many classes the dev labels hold that the training labels lack (dev_only_classes, epoch 0; 0 if none)."""
    return int(run.value("dev_only_classes", epoch=0) or 0)


@rule("lopsided-labels", "warning",
      "The training labels do not cover the classes evenly: some class has no training image at "
      "all, or hardly any, or one class has most of them. A network learns what the data shows: a "
      "class it never sees it can never predict, one it sees a few times it barely learns (the "
      "overall accuracy hardly notices), and one that dominates becomes its answer whenever it is "
      "unsure, so its accuracy says more about the labels than about what it learned.",
      "check that --csv (or --labels) is the right file and was not cut from one sorted by label "
      "(np.bincount(labels) counts each class); give every class its share of the training images "
      "(for a task that is lopsided by nature, resample the rare classes)")
def lopsided_labels(run: RunHealth):
    """The training labels hold fewer classes than the network has (label_classes < C, epoch 0),
    or the most common one holds at least min(LOPSIDED / C, LOPSIDED_MOST) of them (5 / C: half,
    for 10 classes; with fewer classes 0.9) (top_label_share), or the rarest one they hold under
    RARE / C (least_label_share; 1% for 10 classes; an older run's table has none). Where the dev
    labels hold classes the training labels lack (dev_only_classes), it says so and its fix is
    the split's (SPLIT_FIX)."""
    held_classes, share = run.value("label_classes"), run.value("top_label_share")
    if held_classes is None or share is None:
        return None
    missing = run.classes - int(held_classes)
    if missing > 0:
        never = "one class has no training images" if missing == 1 else f"{missing} classes have no training images"
        dev_only = dev_only_classes(run)
        in_dev = ("" if not dev_only else "; the dev labels hold it" if missing == 1
                  else f"; the dev labels hold {dev_only} of them")
        return Trigger(0, f"the training labels hold {int(held_classes)} of the network's {run.classes} classes "
                          f"({never}{in_dev}); the most common has {percent(share)} of them",
                       fix=SPLIT_FIX if dev_only else None)
    if share >= min(LOPSIDED / run.classes, LOPSIDED_MOST):
        return Trigger(0, f"one class has {percent(share)} of the training labels (an even share is "
                          f"{percent(1 / run.classes)})")
    least = run.value("least_label_share")
    if least is not None and least < RARE / run.classes:
        return Trigger(0, f"the rarest class has {percent(least)} of the training labels (an even share is "
                          f"{percent(1 / run.classes)})")
    return None


@rule("unreadable-augmentation", "warning",
      "The augmentation moves, turns, scales or bends the training images so far that little of "
      "what tells the classes apart is left. Even a template of each class's average image "
      "cannot read them, and the network learns little from them.",
      "weaken it (smaller shift, rotate, scale or elastic_alpha in the config's augmentation table, "
      "or a lower p; the run's report shows what it trained on: augmentation.png), or train once without --augment")
def unreadable_augmentation(run: RunHealth):
    """A nearest-class-mean template reads fewer than READABLE / C (2.5 / C) of the augmented
    sampled training images right and fewer than UNREADABLE_SHARE (half) of what it reads of
    them as they are (augmented_template_accuracy against template_accuracy, epoch 0), and the
    train accuracy is below UNDERFIT_ACCURACY (0.8) at an evaluation: reported there."""
    plain, seen = run.value("template_accuracy"), run.value("augmented_template_accuracy")
    if plain is None or seen is None or not (seen < READABLE / run.classes and seen < UNREADABLE_SHARE * plain):
        return None
    for epoch, accuracy in run.metric("train_accuracy"):
        if accuracy < UNDERFIT_ACCURACY:
            return Trigger(epoch, f"a template of each class's mean image reads {percent(plain)} of the sampled "
                                  f"training images as they are, {percent(seen)} once augmented (chance "
                                  f"{percent(1 / run.classes)}); train accuracy {accuracy:.3f}")
    return None


@rule("memorising", "error",
      "The network gets better on its training images but stays at chance on the dev images: "
      "it is learning the training labels by heart because they carry no signal it can "
      "generalise, as if they were shuffled. No setting fixes that; the labels must.",
      "check that labels belong to their images (same order after any shuffle or sort; "
      "the right labels file); --preset seed on the original data is a known-good baseline")
def memorising(run: RunHealth):
    """At two evaluations in a row the dev accuracy is below CHANCE_ACCURACY / C (1.5 / C) and
    the dev loss is at least ln C, while the network learns its training images: their loss is
    below ln C and falling (lower than at the previous evaluation), or their accuracy is
    MEMORISING_GAP (3 points) above the dev accuracy and, where the run recorded how many images
    each counts (train_images, dev_images), MEMORISING_Z (1.5) standard errors above it (twice
    that at the first evaluation, which has none before it to compare losses with); the dev
    loss did not fall by DEV_FALL_SHARE (a fifth) of the train loss's fall over those
    evaluations (from the one before them: a network whose dev loss follows its train loss is
    generalising, however few dev digits it reads right yet); and the predictions are varied
    (top_class_share, where recorded, at most thresholds.one_class_limit: a network giving one
    answer for every image is not recalling labels). Healthy seed runs on 100 training and 100
    dev digits were flagged at iterations 2-7 (train 0.19, dev 0.13: 1.2 standard errors; their
    dev loss fell half as fast as the train loss, where labels that carry no signal make it fall
    a tenth as fast) and went on to dev 0.5-0.66."""
    chance, limit = run.chance_loss, CHANCE_ACCURACY / run.classes
    rows = [m for m in run.metrics if not math.isnan(m["dev_accuracy"])]
    counts, one_class = (run.value("train_images"), run.value("dev_images")), one_class_limit(run)
    streak = 0
    for i, now in enumerate(rows):
        before = rows[i - 1] if i else None
        falling = before is not None and now["train_loss"] < min(chance, before["train_loss"])
        sure = MEMORISING_Z if before is not None else 2 * MEMORISING_Z  # the first: no dev loss to follow yet
        recalling = (now["train_accuracy"] > now["dev_accuracy"] + MEMORISING_GAP
                     and beyond_noise(now["train_accuracy"], now["dev_accuracy"], *counts, z=sure))
        stuck = now["dev_accuracy"] < limit and now["dev_loss"] >= chance
        share = run.value("top_class_share", epoch=now["epoch"])
        varied = share is None or share <= one_class  # one answer for every image is one-class, not recall
        since = rows[i - streak - 1] if i - streak >= 1 else None  # the evaluation before this streak
        generalising = since is not None and since["dev_loss"] - now["dev_loss"] >= DEV_FALL_SHARE * max(
            since["train_loss"] - now["train_loss"], 0) and since["dev_loss"] > now["dev_loss"]
        streak = streak + 1 if (falling or recalling) and stuck and varied and not generalising else 0
        if streak >= PERSIST:
            return Trigger(now["epoch"], f"train accuracy {now['train_accuracy']:.3f} and loss "
                           f"{now['train_loss']:.3f} improve while dev accuracy stays at {now['dev_accuracy']:.3f} "
                           f"(chance: {1 / run.classes:.2f})")
    return None


def beyond_noise(train_accuracy: float, dev_accuracy: float, train_images: float | None,
                 dev_images: float | None, z: float = MEMORISING_Z) -> bool:
    """Whether train_accuracy is ``z`` standard errors above dev_accuracy, each a share
    of its count of images (thresholds.apart). True when the counts are
    unknown (a run's own loop, a run from before 2026-12-07): the gap rule then stands alone."""
    if not train_images or not dev_images:
        return True
    return apart(train_accuracy, dev_accuracy, train_images, dev_images) > z


@rule("symmetric-units", "error",
      "Every unit of a layer has the same weights, so every unit computes the same thing and "
      "receives the same gradient: they stay copies of each other forever and the layer works "
      "like a single unit. Zero or constant initial weights do this; only random ones break "
      "the symmetry.",
      "--init he_normal (ReLU) or --init glorot_uniform (tanh, sigmoid), with --bias-init zeros")
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
      "sum the upstream gradient over the batch axis only: db = dy.sum(axis=0) for dy of (N, units) "
      "(a mean loss's dy already carries its 1/N), or np.sum(dZ, axis=1, keepdims=True) / m for the "
      "tutorial's dZ of (units, m)")
def scalar_bias_gradient(run: RunHealth):
    """A layer's last bias update had bias_update_spread < SCALAR_BIAS (1e-3) at two evaluations
    in a row (the spread across units of Δb over its RMS; only recorded when the bias moved). The
    bug shows from the first step on; once, late in a run, it is rounding: Adam at a rate decayed
    to 1e-8 moves every bias by the same float32 step."""
    for layer in run.layers("bias_update_spread"):
        series = run.series("bias_update_spread", layer)
        epoch = held(series, lambda spread: spread < SCALAR_BIAS)
        if epoch is not None:
            spread = dict(series)[epoch]
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
        return Trigger(epoch, f"the loss became {loss} while the weights were finite")  # the line adds the epoch
    return None


@rule("large-init", "warning",
      "The untrained network is already certain of its answers: its initial weights are so "
      "large that the logits reach tens or hundreds, the softmax puts all its mass on one class and "
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
    but above 0 (all-zero weights are symmetric-units), unless the first evaluation's train or
    dev accuracy already reached UNDERFIT_ACCURACY (0.8): batch norm rescales tiny weights, and
    the mlp with them reads 92% of its dev digits after one epoch."""
    if learned_at_first(run):
        return None
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
      "--activation relu --init he_normal, or --batchnorm; past two hidden layers, fewer (--hidden 256,128)")
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
    epoch = 0 if small.get(0, 1.0) < VANISHING else held([(e, r) for e, r in ratios if e > 0],
                                                           lambda ratio: ratio < VANISHING)
    if epoch is None:
        return None
    share = f"0: nothing reaches it back from {layers[-1]}" if small[epoch] == 0 else \
        f"{small[epoch]:.2g} of {layers[-1]}'s"
    return Trigger(epoch, f"{layers[0]}'s gradient is {share}", layers[0])


@rule("saturated", "warning",
      "Most outputs of a sigmoid or tanh layer sit on the flat ends of the curve, where its "
      "slope is almost 0: almost no gradient passes through them, so the layers before stop "
      "learning. Weights or inputs that are too large push the units there.",
      "--init glorot_uniform; --batchnorm; or --activation relu")
def saturated(run: RunHealth):
    """A sigmoid or tanh layer has saturated_fraction > SATURATED (0.5) at two evaluations in a row."""
    found = layer_held_above(run, "saturated_fraction", SATURATED)
    if found is None:
        return None
    layer, epoch, share = found
    return Trigger(epoch, f"{layer}: {percent(share)} of its outputs are saturated", layer)
