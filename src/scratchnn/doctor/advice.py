"""Fixes fitted to the run: a finding's fix, written with the settings the run trained with.

The rules diagnose from the two tables alone, and their fix is general advice ("lower --lr by
10x (or use --schedule cosine --warmup 1)"). Told the run's settings (``scratchnn train`` tells
the live doctor; ``scratchnn doctor RUN_DIR`` and the report read the run's config.toml), the
doctor names values instead and leaves out what the run already does: a run at ``--lr 50``
that warms up already is told "lower --lr from 50 to 0.05", not to warm up. A run with
``--fault`` gets the general advice: the doctor is not told what was broken on purpose.

How far to lower the rate comes from the first step's update ratio ‖ΔW‖/‖W‖, which is
proportional to the learning rate for SGD and Adam alike: a first step that moved the weights by
1,100% of their size needs a rate 1,100% / 10% = 110 times smaller to move them by the 10% that
the doctor still lets pass, rounded up to a power of ten (1,000: the mlp preset at --lr 50 is
told 0.05, which trains as well as its own 2e-3; the seed network at --lr 10 is told 0.1, its
own rate). How far to raise a rate that barely moves anything comes from the ratio when the
finding fired against 1%, the upper end of what healthy runs show (the seed network at its own
0.1: 0.2-1%). Both are first guesses; ``scratchnn lr-find`` measures one.

A symptom whose cause the doctor found too (weights that grew from a start near zero, one class
for every image from labels that are mostly one class) is not blamed on the learning rate: its
fix points to the cause's finding (``CAUSES``). Without settings, too. The fixes of what the
data and the fit show (overfitting, a train-dev gap, lopsided labels, unreadable augmentation)
are fitted in ``advice_data``.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import shell_word
from .findings import Finding, RunHealth
from .thresholds import HIGH_UPDATE

HEALTHY_UPDATE = 1e-3  # a healthy step changes the weights by about a thousandth of their size
BRISK_UPDATE = HIGH_UPDATE / 10  # where a too-low rate is raised to: the upper end of healthy steps
# The most a raised rate is told to be, by update rule: where the gradients themselves are tiny, a
# 1% step asks for far more (lenet5 with SGD at 1e-5 took 1e-10 steps and was told 1e+03, which
# diverged at once; 0.1 trains it). Each is its rule's usual upper end; lr-find measures the rest.
MOST_RAISED = {"sgd": 0.1, "rmsprop": 0.01, "adam": 0.01, "adamw": 0.01}
LABELS_SUSPECT = 0.5  # a plateau of train accuracy below this: even the seed network passes 0.8 on digits
HEAVY_DROPOUT = 0.5  # dropping more than half: the presets drop 0.3-0.4 of their hidden units

# Findings that cause others: the rules that read the untrained network, the inputs, the labels and
# the loss code. What a cause sets off (a ratio measured against weights near zero, one class for
# every image) is for the cause's fix; vanishing gradients and saturation cause it only in a
# sigmoid or tanh network (in a ReLU one, steps too large killed the units first).
CAUSES = ("unscaled-inputs", "lopsided-labels", "unreadable-augmentation", "memorising", "symmetric-units",
          "scalar-bias-gradient", "softmax-overflow", "large-init", "small-init")
SATURATING_CAUSES = ("vanishing-gradients", "saturated")
SYMPTOMS = ("lr-too-high", "lr-too-low", "exploding", "dead-relu", "one-class", "chance-loss", "underfitting")
# Without such a cause, a rate found too high is the cause of the rest: dead units, one class,
# a loss at chance, a plateau (whose own fix, "a larger --lr", would contradict it).
RATE_CAUSES = ("lr-too-high", "exploding")
RATE_SYMPTOMS = ("lr-too-low", "dead-relu", "one-class", "chance-loss", "underfitting")
# A rate found too low is the cause of a loss left at chance, of a plateau, and of an untrained
# network's favourite class still taking most answers (whose own fix, "lower --lr", contradicts it).
SLOW_SYMPTOMS = ("chance-loss", "underfitting", "one-class")
# Pixels 255 times too large make an untrained network's logits as large as a bad init's, and
# saturate its units: their fixes (--init ...) would change the wrong thing.
UNSCALED_SYMPTOMS = ("large-init", "saturated", "vanishing-gradients")


@dataclass(frozen=True)
class Settings:
    """What a run trained with: any of ``TrainConfig``'s fields by name (lr, optimizer, schedule,
    warmup, init, bias_init, activation, batchnorm, hidden, dropout, weight_decay, augment,
    patience, epochs), and the config file that ``scratchnn lr-find --config`` can read."""

    values: Mapping[str, object] = field(default_factory=dict)
    config_file: str = ""

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    @property
    def lr_name(self) -> str:
        """"--lr" for a scratchnn run (it has a config file), "the learning rate" for a loop of one's own."""
        return "--lr" if self.config_file else "the learning rate"


FITTERS: dict[str, Callable[[RunHealth, Settings, Finding], str | None]] = {}


def fits(rule_id: str):
    """Register the decorated function as the fitted fix of rule ``rule_id``: given the run's
    tables, its settings and the finding, it returns the fix with the run's values, or None to
    keep the rule's general one."""
    def register(fitter):
        FITTERS[rule_id] = fitter
        return fitter
    return register


def fitted(findings: list[Finding], run: RunHealth, settings: Settings | None,
           earlier: Iterable[Finding] = (), step: str | None = None) -> list[Finding]:
    """The findings, each fix fitted to ``settings`` where its rule has a fitter; a symptom of a
    cause also found (now, or ``earlier`` by the live doctor) points to that cause instead.
    ``step``: what their numbers count (default: ``step_name``)."""
    everything = [*earlier, *findings]
    cause = root_cause(everything, settings)
    rate = next((f for f in everything if f.id in RATE_CAUSES), None)
    slow = next((f for f in everything if f.id == "lr-too-low"), None)
    step = step or step_name(settings, run)
    out = []
    for finding in findings:
        fitter = FITTERS.get(finding.id) if settings is not None else None
        fix = fitter(run, settings, finding) if fitter else None
        caused = (finding.id in SYMPTOMS
                  or cause is not None and cause.id == "unscaled-inputs" and finding.id in UNSCALED_SYMPTOMS
                  or finding.id == "vanishing-gradients" and not saturating(settings)  # zero weights: not --batchnorm
                  and cause is not None and cause.id in ("symmetric-units", "small-init"))
        because = (cause if cause is not None and caused
                   else rate if rate is not None and _from_rate(finding, rate, settings)
                   else slow if finding.id in SLOW_SYMPTOMS else None)
        if because is not None and because is not finding:
            fix = f"this follows from [{because.id}] ({step} {because.epoch}): fix that first"
        out.append(dataclasses.replace(finding, fix=fix or finding.fix, step=step))
    return out


def _from_rate(finding: Finding, rate: Finding, settings: Settings | None) -> bool:
    """Whether ``finding`` follows from ``rate`` (a rate too high): RATE_SYMPTOMS do; so do
    gradients that vanished in a ReLU network once the rate was found, through the units its steps
    killed (a CNN at Adam's lr 0.2 was sent to --batchnorm; at epoch 0 it is the depth and the
    initialisation, and in a sigmoid or tanh network a cause of its own)."""
    relu = settings is not None and settings.get("activation") == "relu"  # a leaky unit does not die
    return finding.id in RATE_SYMPTOMS or (finding.id == "vanishing-gradients" and relu
                                           and 0 < finding.epoch and rate.epoch <= finding.epoch)


def saturating(settings: Settings | None) -> bool:
    """Whether the run's units saturate (sigmoid, tanh), or may (a loop of one's own, not told):
    there vanishing gradients and saturation are causes of their own; in a ReLU network, symptoms."""
    return settings is None or settings.get("activation") in (None, "sigmoid", "tanh")


def step_name(settings: Settings | None, run: RunHealth | None = None) -> str:
    """What a finding's number counts: "iteration" for a full-batch run (an epoch is one step),
    else "epoch"; from the settings' batch size, else from the tables' step counts."""
    batch_size = settings.get("batch_size") if settings is not None else None
    if batch_size is not None:
        return "iteration" if batch_size == 0 else "epoch"
    return "iteration" if run is not None and run.one_step_per_epoch else "epoch"


def root_cause(findings: list[Finding], settings: Settings | None) -> Finding | None:
    """The finding that causes others (CAUSES; SATURATING_CAUSES unless the run is known to use
    ReLU-like units) that comes first in that order, the earliest of its kind; or None. By that
    order, not by the order of ``findings``: the live doctor meets them in time (a large init at
    epoch 0, the naive softmax's overflow at 1) and ``scratchnn doctor`` in rule order, and both
    must name the same cause (the overflow: with a stable softmax, the same logits train)."""
    causes = CAUSES + (SATURATING_CAUSES if saturating(settings) else ())
    found = [(causes.index(f.id), f.epoch, f) for f in findings if f.id in causes]
    return min(found, key=lambda entry: entry[:2])[2] if found else None


def number(value: float) -> str:
    """0.5, 2e-05, 50: a learning rate as a learner would type it."""
    return f"{value:.3g}"


def listed(parts: list[str], last: str = "or") -> str:
    """'a', 'a or b', 'a, b or c'."""
    parts = [p for p in parts if p]
    return "" if not parts else parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {last} {parts[-1]}"


def _power_of_ten_above(factor: float) -> float:
    """The power of ten at or above ``factor``, and at least 10."""
    return 10.0 ** max(1, math.ceil(math.log10(factor) - 1e-9)) if factor > 1 else 10.0


def step_ratio(run: RunHealth, epoch: int) -> float | None:
    """The largest finite update ratio over the layers at ``epoch``, if recorded."""
    ratios = [run.value("update_ratio", layer, epoch) for layer in run.layers("update_ratio")]
    finite = [r for r in ratios if r is not None and math.isfinite(r)]
    return max(finite) if finite else None


def first_step_ratio(run: RunHealth) -> float | None:
    """The largest update ratio of the first step (epoch 0) over the layers, if recorded."""
    return step_ratio(run, 0)


def lr_factor(run: RunHealth, settings: Settings) -> float:
    """How many times too large the rate is, from the first step's update ratio: a power of ten, at
    least 10, and with momentum μ (SGD's, RMSprop's) at least 10/(1 − μ) to the nearest power of
    ten: the velocity adds the gradients up, so later steps reach 1/(1 − μ) times a first step
    that looked 10x too large (the learner-mistakes audit: lr 5 with momentum 0.9 was told 0.5,
    where 77% of the ReLUs died, then 0.05, which trained). A floor, not a scale: a first step
    that shows 100x already has the momentum in it (scaled, 0.005 trained worse than 0.05)."""
    ratio = first_step_ratio(run)
    momentum = settings.get("momentum", 0.0) if settings.get("optimizer", "sgd") in ("sgd", "rmsprop") else 0.0
    floor = 10.0 ** round(math.log10(10 / (1 - min(momentum, 0.99))))
    return max(_power_of_ten_above(ratio / HIGH_UPDATE) if ratio else 10.0, floor)


def lower_lr(run: RunHealth, settings: Settings) -> str:
    """'lower --lr from 50 to 0.05', by ``lr_factor``."""
    lr = settings.get("lr")
    if not lr:
        return f"lower {settings.lr_name} by 10x"
    return f"lower {settings.lr_name} from {number(lr)} to {number(lr / lr_factor(run, settings))}"


def warm_up(settings: Settings) -> str:
    """The warm-up a run lacks ('' when it warms up already, or trains on the full batch: there a
    warm-up epoch is one step)."""
    if settings.get("warmup", 0) > 0 or settings.get("batch_size") == 0:
        return ""
    if not settings.config_file:
        return "a warm-up (the rate rising from 0 over the first epoch)"
    return "--warmup 1" if settings.get("schedule", "constant") != "constant" else "--schedule cosine --warmup 1"


def lr_find(settings: Settings) -> str:
    """The lr-find command for this run (its range test needs mini-batches: a full-batch run's gets some);
    for a loop of one's own, the range test in words."""
    if not settings.config_file:
        return ("a range test finds one: raise the rate step by step from 1e-6 and take the rate halfway, on a "
                "log scale, between where the loss falls fastest and a tenth of where it is lowest")
    batches = " --batch-size 128" if settings.get("batch_size") == 0 else ""
    return (f"scratchnn lr-find --config {shell_word(settings.config_file)}{batches} measures one for this network in "
            "seconds")


def unit_init(settings: Settings) -> str:
    """The initialiser for the run's activation ('' when the run uses it already)."""
    wanted = "glorot_uniform" if settings.get("activation") in ("sigmoid", "tanh") else "he_normal"
    init = settings.get("init")
    if init == wanted:
        return ""
    if not settings.config_file:  # a loop of one's own: the initialisation in words
        return ("weights drawn as He's N(0, 2/fan_in)" if wanted == "he_normal"
                else "weights drawn as Glorot's U(±√(6/(fan_in + fan_out)))")
    return f"--init {wanted}" + (f" (now {init})" if init else "")


@fits("lr-too-high")
def _lr_too_high(run: RunHealth, settings: Settings, finding: Finding) -> str:
    warm = warm_up(settings) if lr_factor(run, settings) <= 10 else ""  # a warm-up tames a rate a little too large
    fix = f"{lower_lr(run, settings)}{f' (or keep it and add {warm})' if warm else ''}; {lr_find(settings)}"
    return fix + own_backward(settings)


def own_backward(settings: Settings) -> str:
    """For a loop of one's own: a backward pass with a wrong sign climbs at any rate (a learner's
    sign error was told to lower the rate, and lower again); scratchnn's own passes are checked."""
    if settings.config_file:
        return ""
    return ("; if the loss climbs at a rate 10x lower too, check your backward pass against finite differences "
            "(scratchnn.gradcheck.numerical_gradient): a gradient with the wrong sign climbs at any rate")


@fits("exploding")
def _exploding(run: RunHealth, settings: Settings, finding: Finding) -> str:
    warm = warm_up(settings) if lr_factor(run, settings) <= 10 else ""
    return "; ".join(p for p in (lower_lr(run, settings), unit_init(settings), warm) if p) + own_backward(settings)


@fits("lr-too-low")
def _lr_too_low(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    """The ratio at the finding's epoch, not the last one: a schedule may have decayed the rate since."""
    lr, ratio = settings.get("lr"), step_ratio(run, finding.epoch)
    if not lr or ratio is None or ratio <= 0:
        return None
    raised = lr * _power_of_ten_above(BRISK_UPDATE / ratio)
    raised = max(lr * 10, min(raised, MOST_RAISED.get(settings.get("optimizer"), raised)))  # at least 10x, as before
    return (f"raise {settings.lr_name} from {number(lr)} to {number(raised)} (each step changes the weights by "
            f"{ratio:.2g} of their size; a healthy step, by {HEALTHY_UPDATE:g} to {BRISK_UPDATE:g}); "
            f"{lr_find(settings)}")


@fits("dead-relu")
def _dead_relu(run: RunHealth, settings: Settings, finding: Finding) -> str:
    init = [f"--{flag.replace('_', '-')} {wanted}" for flag, wanted in (("init", "he_normal"), ("bias_init", "zeros"))
            if settings.get(flag) != wanted]
    leaky = "--activation leaky-relu" if settings.get("activation", "relu") == "relu" else ""
    if heavy := heavy_dropout(settings):  # units that rarely get an input fire rarely: not the rate's doing
        return f"first {listed(heavy, last='and')}; then {listed([lower_lr(run, settings), leaky])}"
    return listed([lower_lr(run, settings), " ".join(init), leaky])


def heavy_dropout(settings: Settings) -> list[str]:
    """Each dropout of the run switching off more than HEAVY_DROPOUT of its units, lowered (not the rate)."""
    return [f"--{name.replace('_', '-')} {number(usual)} (now {number(rate)}: every training step switches off "
            f"{rate:.0%} of the {what})"
            for name, usual, what in (("dropout", 0.3, "hidden units"), ("input_dropout", 0.2, "pixels"),
                                      ("conv_dropout", 0.25, "feature maps"))
            if isinstance(rate := settings.get(name), (int, float)) and rate > HEAVY_DROPOUT]


@fits("train-below-dev")
def _train_below_dev(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    parts = [*heavy_dropout(settings), "weaken the augmentation (--augmentation p=0.5), or train once with "
                                       "--no-augment" if settings.get("augment") else ""]
    return listed(parts, last="and") if any(parts) else None


@fits("one-class")
def _one_class(run: RunHealth, settings: Settings, finding: Finding) -> str:
    """Steps that were never large point away from the rate, to the data: labels that are not
    their images' (a seed network on shuffled labels was told to lower its healthy 0.1)."""
    shuffled = " (scratchnn shuffles every epoch already)" if settings.config_file else "; shuffle the data every epoch"
    ratios = [r for layer in run.layers("update_ratio") for e, r in run.series("update_ratio", layer)
              if e <= finding.epoch and math.isfinite(r)]
    if heavy := heavy_dropout(settings):
        return f"first {listed(heavy, last='and')}; then, if it persists, {lower_lr(run, settings)}"
    if ratios and max(ratios) < HIGH_UPDATE:
        mixed = "" if settings.config_file else " and that batches mix the classes"
        return (f"its steps were never large (at most {max(ratios):.2g} of the weights' size), so look at the data "
                f"first: check that each image has its own label{mixed}; else {lower_lr(run, settings)}"
                f"{shuffled if settings.config_file else ''}")
    return f"{lower_lr(run, settings)}{shuffled}"


@fits("chance-loss")
def _chance_loss(run: RunHealth, settings: Settings, finding: Finding) -> str:
    """Steps smaller than a healthy one: the raised rate. Otherwise what is left upstream: the labels
    (a label column shifted by a row, or shuffled, trains to chance at healthy steps), the
    backward pass, a known-good recipe, the augmentation."""
    ratio = step_ratio(run, finding.epoch)
    if ratio is not None and 0 < ratio < HEALTHY_UPDATE:  # learned nothing, at steps below a healthy one
        raised = _lr_too_low(run, settings, finding)
        if raised:
            return raised
    parts = [*heavy_dropout(settings), "check that each image has its own label (a label column shifted by one row, "
             "or shuffled, trains to chance)", "run scratchnn gradcheck to rule out a wrong backward pass"]
    if settings.get("preset") != "seed":
        parts.append("try --preset seed on the same data")
    if settings.get("augment"):
        parts.append("train once with --no-augment")
    return "; ".join(parts)


@fits("vanishing-gradients")
def _vanishing(run: RunHealth, settings: Settings, finding: Finding) -> str:
    hidden = settings.get("hidden") or []
    parts = ["--activation relu --init he_normal" if settings.get("activation") in ("sigmoid", "tanh")
             else unit_init(settings),
             "" if settings.get("batchnorm") else "--batchnorm",
             f"fewer layers than {len(hidden)} (--hidden 256,128)" if len(hidden) > 2 else ""]
    if any(parts):
        return " or ".join(filter(None, parts))  # "he_normal, --batchnorm" read as one choice
    return ("this run has the usual cures already (ReLU, He initialisation, batch norm, at most two hidden "
            "layers): look at the other findings. Steps too large kill units, and a dead layer passes no gradient back")


@fits("saturated")
def _saturated(run: RunHealth, settings: Settings, finding: Finding) -> str:
    """The initialisation for the units, batch norm, or ReLU units with their own initialisation:
    --activation relu alone kept the tutorial's uniform weights, whose logits then reached 1,220
    and diverged at the first step (a follow-the-fix audit)."""
    relu = "--activation relu" + ("" if settings.get("init") == "he_normal" else " --init he_normal")
    return " or ".join(filter(None, [unit_init(settings), "" if settings.get("batchnorm") else "--batchnorm", relu]))


@fits("large-init")
@fits("small-init")
@fits("symmetric-units")
def _init(run: RunHealth, settings: Settings, finding: Finding) -> str | None:
    return unit_init(settings) or None


@fits("underfitting")
def _underfitting(run: RunHealth, settings: Settings, finding: Finding) -> str:
    epochs, lr, hidden = settings.get("epochs"), settings.get("lr"), settings.get("hidden") or []
    rate = settings.lr_name.removeprefix("the ")  # "--lr", or "learning rate" for a loop of one's own
    level = dict(run.metric("train_accuracy")).get(finding.epoch, 1.0)
    parts = [*heavy_dropout(settings),
             f"more epochs (--epochs {2 * epochs}, now {epochs})" if epochs else "more epochs (--epochs)",
             f"a larger {rate} than {number(lr)} ({lr_find(settings)})" if lr else f"a larger {rate}",
             "wider or more layers (--hidden 512,256" + (f"; now {','.join(map(str, hidden))})" if hidden else ")")
             if sum(hidden) < 768 and not settings.get("conv") else "",
             "--optimizer adam" if settings.get("optimizer") == "sgd" else ""]
    if level < LABELS_SUSPECT:
        return (f"first check that each image has its own label (at {level:.0%}, a label column shifted by one row "
                f"is likelier than a network too small); then {listed(parts)}")
    return listed(parts)
