"""The fitted fixes of what the data and the fit show: overfitting, a train-dev gap, labels that
cover the classes unevenly, an augmentation that leaves the images unreadable. Their fixes change
the data, how much of it the network memorises, or how long it trains; ``advice`` fits the rest
(the rate, the initialisation, the units) and holds the machinery both use (``fits``, ``fitted``).
Imported by ``diagnosis``, which registers these fitters so.
"""
from __future__ import annotations

import math

from ..data.augment import augmentation_for
from .advice import Settings, fits, listed, number, step_name
from .findings import Finding, RunHealth
from .thresholds import OVERFIT_Z, UNSCALED, apart


def regularisers(settings: Settings) -> list[str]:
    """More of what keeps a network from memorising: dropout, weight decay, augmentation."""
    dropout, decay = settings.get("dropout", 0.0), settings.get("weight_decay", 0.0)
    return [f"--dropout {number(min(0.5, dropout + 0.2))} (now {number(dropout)})" if dropout < 0.5 else "",
            f"--weight-decay {number(decay * 3 if decay else 0.01)} (now {number(decay)})",
            "" if settings.get("augment") else "--augment"]


@fits("overfitting")
def _overfitting(run: RunHealth, settings: Settings, finding: Finding) -> str:
    """Fewer epochs: as many as gave the lowest dev loss, or the best dev accuracy where that is
    OVERFIT_Z standard errors better (on the run's dev_images): the lowest loss can come well
    before the most digits read right (full-batch Adam on 500 digits: 0.839 there, 0.862 later),
    and on 100 dev digits a best accuracy two digits up is noise."""
    loss = [(e, v) for e, v in run.metric("dev_loss") if e <= finding.epoch and not math.isnan(v)]
    accuracy = {e: a for e, a in run.metric("dev_accuracy") if e <= finding.epoch and not math.isnan(a)}
    fewer, step = "fewer epochs", step_name(settings, run)
    if not loss:
        return _with_cures(settings, fewer)
    lowest = min(loss, key=lambda ev: ev[1])[0]
    best = max(accuracy, key=lambda e: (accuracy[e], -e)) if accuracy else lowest  # the earliest of equals
    images = run.value("dev_images", epoch=0)
    if images and best != lowest and lowest in accuracy:
        then, now = accuracy[lowest], accuracy[best]
        if apart(now, then, images, images) > OVERFIT_Z:
            return _with_cures(settings, f"{fewer} (dev accuracy was best at {step} {best}: --epochs {best})"
                               if 0 < best < finding.epoch else fewer)
    if 0 < lowest < finding.epoch:  # a learner's table may begin at epoch 0: "--epochs 0" is no advice
        fewer = f"{fewer} (the dev loss was lowest at {step} {lowest}: --epochs {lowest})"
    return _with_cures(settings, fewer)


def _with_cures(settings: Settings, fewer: str) -> str:
    return listed(["" if settings.get("patience") else "--patience 5 (early stopping, the best weights kept)",
                   *regularisers(settings), fewer])


@fits("train-dev-gap")
def _train_dev_gap(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    """None (the split's fix, the rule's) where dev holds classes training lacks."""
    if run.value("dev_only_classes", epoch=0):
        return None
    size = settings.get("train_size")
    more = f"more training images (--train-size {2 * size}, or 0 for all; now {size})" if size else \
        "more training images"
    return listed([more, *regularisers(settings)])


@fits("lopsided-labels")
def _lopsided_labels(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    """A --train-size too small for every class to get its share, before the file (--train-size 20);
    for data that holds fewer classes than the network has, --class-names, which sizes the network
    to them (a CSV of the digits 0 and 1 got ten outputs, the doctor audit). A loop of one's own
    (settings without a config file) is told the same without scratchnn's flags."""
    size, enough = settings.get("train_size"), 20 * run.classes
    if size and size < enough:  # the labels' own fix after it (the advice audit: labels 5..14 were told
        labels = _labels_fix(run, settings) if settings.config_file else None  # --train-size, then "check --csv")
        return (f"--train-size {enough} or more, or 0 for all (now {size}: too few images for {run.classes} "
                "classes each to get a share); if it persists, "
                + (labels or "check that --csv (or --labels) is the right file"))
    if run.value("dev_only_classes", epoch=0):  # the data has those classes: the rule's fix, the split's
        return None
    held = run.value("label_classes", epoch=0)
    if not settings.config_file:  # a loop of one's own has no --csv nor --class-names
        fewer = (f"; if the data has only these {int(held)} classes, give the network {int(held)} outputs"
                 if held is not None and 2 <= held < run.classes else "")
        return ("check that these are the right labels and not cut from data sorted by label (np.bincount(labels) "
                "counts each class); give every class its share of the training images (for a task lopsided by "
                f"nature, resample the rare classes){fewer}")
    return _labels_fix(run, settings)


def _labels_fix(run: RunHealth, settings: Settings) -> str | None:
    """What to do with labels that leave outputs untrained: numbered from 1, numbered with gaps,
    or fewer classes than --class-names names; None where the labels say nothing of it."""
    held = run.value("label_classes", epoch=0)
    if held is None or not 2 <= held < run.classes:
        return None
    held, low, high = int(held), run.value("lowest_label", epoch=0), run.value("highest_label", epoch=0)
    if settings.get("class_names"):  # a file of exactly 0..held-1 under more names (else cut from sorted data?)
        return (f"--class-names names {run.classes} classes, and the labels are 0 to {held - 1}: give one name a "
                "label") if (low, high) == (0, held - 1) else None
    if low == 1 and high == held:
        return (f"the labels run from 1 to {held}: subtract 1 from every label, so they are 0 to {held - 1} and no "
                "output is left that nothing trains; else check that --csv (or --labels) is the right file")
    if low is not None and high is not None and low > 1:  # 5..14 (a gap from 0 or 1 may be sorted data cut)
        gaps = " with gaps" if high - low + 1 != held else ""
        return (f"the labels run from {low:g} to {high:g}{gaps}: number them 0 to {held - 1} in the file "
                "(np.unique(labels, return_inverse=True)[1] does it) and name them with --class-names")
    if (low, high) != (0, held - 1):  # an older run's table has neither: --class-names may not fit its labels
        return None
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    names = ",".join(words[:held]) if held <= len(words) else f"{','.join(words[:3])},... ({held} names)"
    return (f"the labels are 0 to {held - 1}: name the {held} classes and the network gets that many outputs: "
            f"--class-names {names} (one name a label); else check that --csv (or --labels) is the right file")


@fits("unreadable-augmentation")
def _unreadable_augmentation(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    """Back to the dataset's own strengths for each setting the run turned up past them."""
    default = augmentation_for(str(settings.get("dataset") or "")).to_dict()
    table = {**default, **(settings.get("augmentation") or {})}
    stronger = [name for name in ("shift", "rotate", "scale", "shear", "elastic_alpha")
                if isinstance(table.get(name), (int, float)) and table[name] > default[name]]
    if not stronger:
        return None
    back = ",".join(f"{name}={number(default[name])}" for name in stronger)
    now = ", ".join(f"{name} {number(table[name])}" for name in stronger)
    return (f"--augmentation {back} (now {now}; those are the data's own strengths), or train once with "
            "--no-augment; the run's report shows what it trained on (augmentation.png)")


@fits("unscaled-inputs")
def _unscaled_inputs(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    """Inputs below 0 were standardised, not left raw: "divide by 255" would scale them twice. Per
    pixel, a border pixel that is almost always 0 has a standard deviation near 0, so its rare ink
    becomes a huge value (the learner-mistakes audit: up to 162, or 7e7 with eps 1e-8)."""
    low = min((value for _, value in run.series("input_min")), default=0.0)
    if not -UNSCALED < low < 0:  # raw pixels, or centred ones (-33..222): the rule's own fix
        return None
    return ("the inputs go below 0: standardised pixel by pixel? A pixel that is almost always 0 (the border) has a "
            "standard deviation near 0, so its rare ink becomes a huge value: standardise with one mean and one "
            "standard deviation over all pixels, (x - x.mean()) / x.std(), or feed the pixels / 255")
