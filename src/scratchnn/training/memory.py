"""The memory training needs at least, worked out on paper before the first step.

Back-propagation needs what each layer computed on the way forward (Dense its input, ReLU
where it was positive, batch norm the normalised values...), so a step on a batch of B images
keeps every layer's output until its backward pass is done, beside the weights, their
gradients and the optimizer's state (Adam keeps two more numbers per weight, momentum one),
and the training images as float32 numbers:

    at least  B × (every layer's output for one image) + parameters × (2 + optimizer slots)
              + images × (numbers in one image),  × 4 bytes a number

and a convolution keeps its work arrays: im2col's matrix, in_channels · kh · kw numbers per
output pixel, or Winograd's tiles where the whole batch is transformed at once (the textbook
path, and the fast path on one thread; on more threads each transforms a few tiles at a time).
It is a lower bound: the batch's own copy, gradients on the way back and the fast path's copies
come on top. ``benchmarks/memory_bound.py`` measures how far (2,000 images, on two threads and on
one): for steps over 100 MB NumPy's peak was 1.04-1.8x it and the process grew 1.2-2.3x. So a
run above what the machine has available cannot run: ``check_training_memory`` refuses it
before its first step (a full batch of 60,000 images through ``cnn``: 16 GB of layer outputs
on two threads, over twice that on one), instead of a MemoryError, or the kernel's out-of-memory
killer, partway into the first epoch; ``fit`` checks its batches alike
(``check_batch_memory``). A run within LIKELY times the bound may still not fit: it gets a note
(cnn with ``--conv 4096 --batch-size 512``, at least 15.6 GB, was killed on a machine with 24.6 GB
available).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, shell_word
from ..fast.threads import blas_thread_count
from ..fast.winograd import FAST_RULE
from ..host.resources import ADDRESS_SPACE, MACHINE, MEMORY_WORDS, inference_budget, memory_limits, tightest_limit
from ..nn import Conv2D
from ..nn.conv import AUTO_MIN_CHANNELS_SMALL, scheme_for
from ..nn.im2col import as_pair
from .architecture import network_shapes
from .config import TrainConfig
from .health import SAMPLE_CHUNK

BYTES_PER_NUMBER = 4  # float32, what training computes in
HEADROOM = 4  # the batch suggested holds a quarter of what the bound allows: a process grew up to 2.3x it
TOO_BIG = "the network is too big to train here even a few images at a time: use smaller layers"
# a note when the bound fits but this many times it would not: big steps measured (over 100 MB)
# grew the process 1.2-2.3x the bound, on either path (before Winograd's tiles were counted, a
# full-batch cnn on one thread grew 2.6x, and the textbook path up to 3.5x)
LIKELY = 2
# and under ``ulimit -v``, whose address space grows by what RSS does not count (each thread's glibc
# arena and stack, OpenBLAS's buffers): cnn-best's grew 2.5x the bound (VmPeak 710 MB, 220 MB bound)
LIKELY_ADDRESS_SPACE = 3


@dataclass(frozen=True)
class StepMemory:
    """Bytes a training step holds at least: ``per_image`` for each image of the batch (layer
    outputs, work matrices), ``fixed`` whatever the batch (weights, gradients, optimizer state)."""

    per_image: int
    fixed: int

    def of(self, batch: int) -> int:
        """Bytes for a batch of ``batch`` images."""
        return self.fixed + batch * self.per_image

    def largest_batch(self, available: int) -> int:
        """The largest batch the bound lets fit in ``available`` bytes (0: not one image)."""
        return max(0, (available - self.fixed) // max(1, self.per_image))


def step_memory(config: TrainConfig, image_shape=(28, 28), num_classes: int = 10,
                whole_batch: bool | None = None) -> StepMemory:
    """The lower bound above for ``config``'s network, by arithmetic alone (nothing is built);
    a network too big to build is refused first (``layer_specs``). ``whole_batch``: whether
    Winograd's tiles are of the whole batch (default: as ``config`` trains: on the textbook
    path, or the fast one on one thread; True for a pass of the textbook layers)."""
    input_shape, specs = config.layer_specs(image_shape, num_classes)
    state, outputs = network_shapes(input_shape, specs)
    if whole_batch is None:
        whole_batch = config.textbook or (config.threads or blas_thread_count()) == 1
    numbers = sum(math.prod(shape) for shape in outputs) + sum(
        _work_matrix(args, before, shape, whole_batch)
        for (kind, args), before, shape in zip(specs, [input_shape, *outputs], outputs) if kind is Conv2D)
    trained = [shape for name, shape in state.items() if not name.rsplit(".", 1)[-1].startswith("running")]
    parameters = sum(math.prod(shape) for shape in trained)  # batch norm's running averages get no gradient
    slots = len(config.build_optimizer().state_slots())
    return StepMemory(numbers * BYTES_PER_NUMBER, parameters * (2 + slots) * BYTES_PER_NUMBER)


def _work_matrix(args: dict, input_shape: tuple, output_shape: tuple, whole_batch: bool = False) -> int:
    """Numbers a convolution keeps in its work arrays between steps, one image: im2col's matrix
    (output pixels, in_channels · kh · kw); for Winograd (an "auto" 3x3 stride-1 convolution of
    enough input channels), its tiles of the whole batch, forward's (``Conv2D.work_floats``) and
    backward's product tiles and their gradient (dM, dV), where the batch is transformed at once:
    the textbook path, and the fast path on one thread (``whole_batch``; the web audit: a
    full-batch ``cnn`` on one thread held 2.6x the bound that left them out). On more threads
    the fast path transforms the batch a chunk at a time, each thread's few tiles (counted 0),
    and may run Winograd wherever its own rule allows (``FAST_RULE``)."""
    kernel, stride = (as_pair(args[name] if name in args else 1, name) for name in ("kernel_size", "stride"))
    padding = as_pair(args.get("padding", 0), "padding", minimum=0)
    algorithm, c, f = args.get("algorithm", "auto"), args["in_channels"], args["out_channels"]
    scheme = scheme_for(algorithm, kernel, stride, padding, c, *input_shape[1:])
    if whole_batch and scheme is not None:
        _, _, th, tw = scheme.tiles(*input_shape[1:], padding)
        return scheme.work_floats(input_shape, f, padding) + (scheme.TILE + 2) ** 2 * th * tw * (c + f)
    winograd_may_run = algorithm != "im2col" and kernel == (3, 3) and stride == (1, 1) and (
        algorithm != "auto" or c >= min(AUTO_MIN_CHANNELS_SMALL, FAST_RULE[1]))
    return 0 if winograd_may_run else math.prod(output_shape[1:]) * c * kernel[0] * kernel[1]


def per_image_bytes(model) -> int:
    """``step_memory``'s ``per_image`` for a built model (a Sequential): what one image of a
    batch keeps for the backward pass, at least (Winograd's tiles left out: their thread count is
    the caller's)."""
    shapes = model.output_shapes()
    numbers = sum(math.prod(shape) + (_work_matrix(layer.config(), before, shape) if isinstance(layer, Conv2D) else 0)
                  for layer, before, shape in zip(model.layers, [model.input_shape, *shapes], shapes))
    return numbers * BYTES_PER_NUMBER


def check_batch_memory(model, images: int, batch_size: int | None, available: int | None = None) -> None:
    """For ``fit`` called by hand (a notebook, a learner's own loop): refuse batches whose layer
    outputs alone cannot fit in the memory available, instead of a MemoryError partway in, or a
    kernel the out-of-memory killer ends without a word. Weights and data already exist."""
    available, where, _ = memory_room(available)
    batch = min(batch_size or images, images)
    per_image = per_image_bytes(model)
    if available is None or batch * per_image <= available:
        return
    fits = available // per_image // HEADROOM
    what = f"the full batch of {batch:,} images" if not batch_size or batch_size >= images else \
        f"batches of {batch:,} images"
    advice = f"pass batch_size={_batch_to_try(fits):,} (or less)" if fits >= 2 else TOO_BIG
    raise ConfigError(f"training needs at least {_size(batch * per_image)} of memory for {what} ({_size(per_image)} "
                      f"an image, for the backward pass) and {where}; {advice}")


def memory_room(available: int | None = None) -> tuple[int | None, str, int]:
    """(bytes, words for a message, how many times the bound a run likely takes of them):
    ``available`` as the machine's when given, else what this process's tightest memory limit
    leaves and its name ("this machine has 1.4 GB available", "...address-space limit (ulimit -v)
    leaves 1.4 GB"); (None, "", LIKELY) where nothing says."""
    if available is not None:
        return available, MEMORY_WORDS[MACHINE].format(_size(available)), LIKELY
    limits = memory_limits()
    if not limits:
        return None, "", LIKELY
    tightest = tightest_limit(limits)
    room = limits[tightest]
    growth = LIKELY_ADDRESS_SPACE if tightest == ADDRESS_SPACE else LIKELY
    return room, MEMORY_WORDS[tightest].format(_size(room)), growth


def check_training_memory(config: TrainConfig, data_shape: tuple, num_classes: int = 10,
                          available: int | None = None, log: Callable[[str], None] = print,
                          cap: tuple[int, str] | None = None, resume_of: Path | None = None) -> None:
    """Refuse (ConfigError) a run whose training cannot fit in ``available`` bytes (default:
    ``memory_room()``), and ``log`` a note when it fits but LIKELY times the bound would
    not (LIKELY_ADDRESS_SPACE times under ``ulimit -v``). ``data_shape`` (N, H, W) is the images
    loaded, dev set included: their float32 copy is made before training, and a full-batch run's
    batch is its training set.
    ``cap`` (bytes, the flag that set them) is a limit of the caller's below the machine's (a
    server's for a run started from its page); the bound times LIKELY is held to it, without the
    note (the web audit: a full-batch CNN of a 2.4 GB bound under a 4 GB cap reached 13 GB).
    ``resume_of`` is the run folder being resumed: its batch size is fixed, so the advice is to
    resume it with more memory or to start it again with another."""
    available, where, likely = memory_room(available)
    capped = cap is not None and (available is None or cap[0] < available)
    if capped:
        available, where, likely = cap[0], f"a run may use {_size(cap[0])} here ({cap[1]})", LIKELY
    if available is None:
        return
    count, *image_shape = data_shape
    dev = min(config.dev_size, count - 1)
    train = min(count - dev, config.train_size or count)  # as run_split takes the sets
    scaled = (train + dev) * math.prod(image_shape) * BYTES_PER_NUMBER
    memory = step_memory(config, tuple(image_shape), num_classes)
    batch = min(config.batch_size or train, train)
    measuring = measuring_memory(config, memory, dev or train, available, tuple(image_shape), num_classes)
    need = scaled + memory.of(batch) + measuring
    if need * likely <= available:
        return
    promise = capped and need <= available  # a limit someone chose: the bound's likely growth must fit too
    fits = memory.largest_batch(max(0, available - scaled - measuring) // (LIKELY if promise else 1)) // HEADROOM
    batch_to_try = f"--batch-size {_batch_to_try(fits):,}" if fits >= 2 else ""
    if need <= available and not capped:
        log(f"Note: training needs at least {_size(need)} of memory, often {likely}x that, and {where}; "
            f"if the run is killed (out of memory), try {batch_to_try or 'smaller layers'}")
        return
    if scaled >= available:
        advice = "the images alone take more than that: train on fewer (--train-size)"
    elif not batch_to_try:
        advice = f"{TOO_BIG} (--hidden, --conv)"
    else:
        advice = f"try {batch_to_try}, or smaller layers (--hidden, --conv)"
    if resume_of is not None and scaled < available:
        advice = (f"resume it where more memory is free, or start it again smaller (scratchnn train --config "
                  f"{shell_word(Path(resume_of) / 'config.toml')} {batch_to_try or '--hidden ... --conv ...'})")
    what = f"a full batch of {batch:,} images" if not config.batch_size else f"a batch of {batch:,} images"
    often = f", often {LIKELY}x that," if promise else ""
    raise ConfigError(f"training needs at least {_size(need)} of memory{often} and {where} ({what} keeps "
                      f"{_size(batch * memory.per_image)} of what its layers computed, for the "
                      f"backward pass; the weights, gradients and optimizer state take {_size(memory.fixed)}, the "
                      f"images as numbers {_size(scaled)}, checking it as it learns (dev set, doctor) "
                      f"{_size(measuring)}); {advice}")


def measuring_memory(config: TrainConfig, memory: StepMemory, rows: int, available: int | None,
                     image_shape=(28, 28), num_classes: int = 10) -> int:
    """Bytes held at once beside a training step's when the run measures itself, at least: its
    evaluation's batches (their budget where ``available`` bytes may be allocated, or all
    ``rows`` of the set evaluated if they take less) or the doctor's sample through the textbook
    layers, SAMPLE_CHUNK images at a time or as many as that budget holds (one at least),
    whichever takes more (they take turns). Left out, cnn-best passed the check with 512 MiB free
    and peaked at 627 MB, 250 MB of it the doctor's sample, then measured whole, and 230 MB the
    evaluation's batches."""
    budget = inference_budget(available)
    evaluation = min(budget, rows * memory.per_image)
    if config.doctor == "off":
        return evaluation
    per_image = step_memory(config, image_shape, num_classes, whole_batch=True).per_image
    return max(evaluation, min(SAMPLE_CHUNK, max(1, budget // per_image)) * per_image)


def _batch_to_try(fits: int) -> int:
    """The power of two at most ``fits`` (>= 1): a batch size that reads as a choice, not a sum."""
    return 1 << (fits.bit_length() - 1)


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
