"""The fast path (scratchnn.fast) computes what the textbook path computes.

Whole runs: every preset trains to the same weights either way, and a checkpoint written on one
path resumes on the other. Pieces: each trick against the textbook object it replaces, bit for
bit where the arithmetic is the same.
"""
import dataclasses
import tracemalloc

import numpy as np
import pytest
from test_model import small_model
from test_optim import CONFIGS

from scratchnn import Sequential, SoftmaxCrossEntropy
from scratchnn.data import scale_pixels
from scratchnn.fast import prepare
from scratchnn.fast.columns import DenseOnColumns
from scratchnn.fast.flat_optim import FlatStep
from scratchnn.fast.maxpool import BlockMaxPool2D
from scratchnn.fast.order import run_order
from scratchnn.fast.packing import pack_parameters
from scratchnn.fast.products import DenseProducts
from scratchnn.fast.threads import Blocks
from scratchnn.gradcheck import check_layer
from scratchnn.io import write_tensors
from scratchnn.nn import (
    LAYER_TYPES,
    AvgPool2D,
    BatchNorm2d,
    Conv2D,
    Dense,
    Flatten,
    LeakyReLU,
    MaxPool2D,
    ReLU,
)
from scratchnn.optim import SGD, Adam, AdamW
from scratchnn.training.checkpoint import (
    Checkpoint,
    checkpoint_contents,
    load_checkpoint,
)
from scratchnn.training.config import TrainConfig
from scratchnn.training.fit import fit
from scratchnn.training.presets import PRESETS, get_preset

RELATIVE = 1e-6  # where the arithmetic differs (Adam's folded bias corrections, BLAS memory orders)
# NOTE: whole runs compare in float64. In float32 the two paths' products round differently
# (~1e-7), and where a gradient is a sum that nearly cancels, Adam's step m̂/√v̂, which has size
# ≈ lr whatever the gradient's size, turns that rounding into a different step: after 6 mlp
# steps ~0.002% of the weights differ by up to 2e-4 relative. float64 rounding (~1e-16) keeps
# every weight within 1e-6; the SGD seed preset agrees to 1e-6 in float32 too.


def digits(n=256, seed=0):
    """n 28x28 'digits' (uint8) with a blank 3-pixel border, like MNIST's, and their labels."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 3:-3, 3:-3] = rng.integers(0, 256, (n, 22, 22))
    return images, rng.integers(0, 10, n)


def train_preset(name, fast, epochs=3, stop=None, state=None, start_epoch=0, dtype=np.float64, **changes):
    """Train preset ``name`` (with the options ``changes``) for ``epochs`` (x4 for the full-batch seed)
    on 256 digits, in ``dtype``, stopping after epoch ``stop`` if given; return (model, optimizer,
    schedule, generators)."""
    config = dataclasses.replace(get_preset(name), **changes)
    config.epochs = epochs if config.batch_size else 4 * epochs  # the seed: full-batch steps
    images, labels = digits()
    gens = {key: np.random.default_rng([7, k]) for k, key in enumerate(("init", "layers", "order", "augment"))}
    model = config.build_model(gens["init"], layer_rng=gens["layers"]).astype(dtype)
    optimizer = config.build_optimizer()
    schedule = config.build_schedule(1 if not config.batch_size else -(-len(images) // config.batch_size))
    if state is not None:
        state.restore(model=model, optimizer=optimizer, schedule=schedule, generators=gens)
    fit(model, optimizer, scale_pixels(images, model.input_shape).astype(dtype), labels, epochs=stop or config.epochs,
        batch_size=config.batch_size, rng=gens["order"], schedule=schedule, start_epoch=start_epoch,
        augment=config.build_augmentation(), augment_rng=gens["augment"], fast=fast)
    return model, optimizer, schedule, gens


def assert_close(fast: dict, textbook: dict, what: str, exact: bool = False, noise=()):
    """Same keys; arrays bit for bit, or each within RELATIVE of the largest value of its kind.

    "Of its kind": over every array whose name ends the same ("W", "b", "m", ...). NOTE: a bias
    followed by BatchNorm has a gradient of exactly 0 in exact arithmetic (the normalising removes
    it), so it holds rounding noise only, which no tolerance of its own fits: the names in
    ``noise`` (``noise_biases``) are instead checked to stay under NOISE on both paths.
    """
    assert fast.keys() == textbook.keys(), what
    scale: dict[str, float] = {}
    for name, expected in textbook.items():
        kind = name.rsplit(".", 1)[-1]
        scale[kind] = max(scale.get(kind, 0.0), float(np.abs(expected).max(initial=0)))
    for name, expected in textbook.items():
        if exact:
            np.testing.assert_array_equal(fast[name], expected, err_msg=f"{what}: {name}")
        elif name in noise:
            for path, array in (("fast", fast[name]), ("textbook", expected)):
                assert np.abs(array).max(initial=0) < NOISE, f"{what}: {name} moved on the {path} path"
        else:
            atol = RELATIVE * scale[name.rsplit(".", 1)[-1]]
            np.testing.assert_allclose(fast[name], expected, rtol=RELATIVE, atol=atol, err_msg=f"{what}: {name}")


# A bias a batch norm follows moves only by rounding: float64 noise in its gradient (~1e-13: the
# textbook's column sums run row by row down 100,352 pixels of a 28x28 layer; the folded first
# layer's is exactly 0), which Adam steps by lr·noise/eps: ~5e-8 after 6 steps.
NOISE = 1e-6


def noise_biases(model) -> set[str]:
    """The names of the biases a batch norm follows (see NOISE)."""
    pairs = enumerate(zip(model.layers, model.layers[1:]))
    return {f"{i}.b" for i, (layer, after) in pairs if "b" in layer.params and "running_mean" in after.buffers}


def flat_state(optimizer) -> dict:
    return {f"{name}.{slot}": array for name, slots in optimizer.state_dict()["state"].items()
            for slot, array in slots.items()}


@pytest.mark.parametrize("preset, dtype", [*((name, np.float64) for name in PRESETS), ("seed", np.float32)])
def test_every_preset_trains_to_the_same_weights_on_both_paths(preset, dtype):
    textbook, textbook_opt, _, _ = train_preset(preset, fast=False, dtype=dtype)
    fast, fast_opt, _, _ = train_preset(preset, fast=True, dtype=dtype)
    assert fast_opt.steps == textbook_opt.steps >= 6
    assert_close(fast.state_dict(), textbook.state_dict(), preset, noise=noise_biases(textbook))
    assert_close(flat_state(fast_opt), flat_state(textbook_opt), f"{preset} optimizer state")
    initial = get_preset(preset).build_model(np.random.default_rng([7, 0])).state_dict()
    for name, p, _ in textbook.named_parameters():
        assert not np.array_equal(p, initial[name]), f"{preset}: {name} never moved, comparing it proves nothing"


def test_a_cnn_with_batchnorm2d_trains_to_the_same_weights_on_both_paths():
    textbook, textbook_opt, _, _ = train_preset("cnn", fast=False, batchnorm=True)
    fast, fast_opt, _, _ = train_preset("cnn", fast=True, batchnorm=True)
    assert [type(layer) for layer in fast.layers].count(BatchNorm2d) == 2
    assert fast_opt.steps == textbook_opt.steps >= 6
    # running statistics too
    assert_close(fast.state_dict(), textbook.state_dict(), "cnn --batchnorm", noise=noise_biases(textbook))
    assert_close(flat_state(fast_opt), flat_state(textbook_opt), "cnn --batchnorm optimizer state")
    assert not np.array_equal(fast.layers[1].buffers["running_var"], np.ones(32)), "the statistics never moved"


def test_a_cnn_with_conv_dropout_trains_to_the_same_weights_on_both_paths():
    textbook, textbook_opt, _, _ = train_preset("cnn", fast=False, conv_dropout=0.25)
    fast, fast_opt, _, _ = train_preset("cnn", fast=True, conv_dropout=0.25)
    assert [type(layer).__name__ for layer in fast.layers].count("Dropout") == 3  # 2 blocks + the dense one
    assert_close(fast.state_dict(), textbook.state_dict(), "cnn --conv-dropout")
    assert_close(flat_state(fast_opt), flat_state(textbook_opt), "cnn --conv-dropout optimizer state")


@pytest.mark.parametrize("preset, first, then", [("mlp", True, False), ("mlp", False, True),
                                                 ("seed", True, False), ("lenet5", False, True)])
def test_a_checkpoint_resumes_on_the_other_path(tmp_path, preset, first, then):
    from scratchnn.training.fit import EpochResult

    epoch = 1 if get_preset(preset).batch_size else 4
    model, optimizer, schedule, gens = train_preset(preset, fast=first, stop=epoch)
    history = [EpochResult(epoch, 0.0, 0.0, 0.0, 0.0, optimizer.lr, 0.0)]
    contents = checkpoint_contents(model=model, optimizer=optimizer, schedule=schedule, generators=gens,
                                   history=history)
    # the file holds float32 (scratchnn files always do): its keys are the by-name state of either path
    float32 = {name: array.astype(np.float32) for name, array in contents[0].items()}
    write_tensors(tmp_path / "c.safetensors", float32, contents[1])
    assert sorted(k for k in load_checkpoint(tmp_path / "c.safetensors").tensors if k.startswith("optim.")) == \
        sorted(f"optim.{k}" for k in flat_state(optimizer))
    state = Checkpoint(tmp_path / "c.safetensors", epoch, history, *contents)  # float64, as trained
    resumed, resumed_opt, _, _ = train_preset(preset, fast=then, state=state, start_epoch=epoch)
    whole, whole_opt, _, _ = train_preset(preset, fast=then)
    assert resumed_opt.steps == whole_opt.steps
    assert_close(resumed.state_dict(), whole.state_dict(), f"{preset} resumed")


def test_the_fast_path_uses_its_pieces_and_the_textbook_path_none():
    model = TrainConfig(hidden=[32, 16]).build_model(np.random.default_rng(0))
    images, labels = digits(64)
    x = scale_pixels(images)
    run = prepare(model, AdamW(1e-3), x, full_batch=False)
    kinds = [type(layer) for layer in run.net.layers]
    assert kinds[0] is DenseOnColumns and kinds.count(DenseProducts) == 2 and Dense not in kinds
    assert run.x.shape == (64, 22 * 22) and run.net.input_shape == (22 * 22,)
    assert isinstance(run.step.__self__, FlatStep)
    assert pack_parameters(model)[0].size == model.num_parameters
    textbook = TrainConfig(hidden=[32, 16]).build_model(np.random.default_rng(0))
    arrays = [p for _, p, _ in textbook.named_parameters()]
    fit(textbook, AdamW(1e-3), x, labels, epochs=1, batch_size=32, rng=np.random.default_rng(0), fast=False)
    assert all(p is q and p.base is None for (_, p, _), q in zip(textbook.named_parameters(), arrays))


# --- packing ----------------------------------------------------------------------------------

def test_pack_parameters_keeps_names_and_values_in_one_flat_array():
    model = small_model(sizes=(8, 7, 6, 10))
    before = {name: p.copy() for name, p, _ in model.named_parameters()}
    flat_params, flat_grads = pack_parameters(model)
    named = model.named_parameters()
    assert [name for name, _, _ in named] == list(before)
    assert all(p.base is flat_params and g.base is flat_grads for _, p, g in named)
    for name, p, _ in named:
        np.testing.assert_array_equal(p, before[name])
    assert flat_params.size == model.num_parameters


def test_tied_weights_are_not_packed_apart():
    model = small_model(sizes=(6, 6, 6, 10))
    model.layers[2].params["W"] = model.layers[0].params["W"]  # one array, two layers
    assert pack_parameters(model) is None
    assert model.layers[2].params["W"] is model.layers[0].params["W"]
    assert model.layers[0].params["W"].base is None


def test_packing_twice_keeps_the_arrays():
    model = small_model()
    first = pack_parameters(model)
    arrays = [(p, g) for _, p, g in model.named_parameters()]
    second = pack_parameters(model)
    assert first[0] is second[0] and first[1] is second[1]
    assert all(p is a and g is b for (_, p, g), (a, b) in zip(model.named_parameters(), arrays))


def test_an_unknown_optimizer_steps_by_name_on_packed_parameters():
    class Halving(SGD):  # a user's own rule: the fast path does not know it
        def update(self, name, param, grad):
            param *= 0.5

    model, x = small_model(), np.random.default_rng(0).random((16, 8), dtype=np.float32)
    expected = {name: p * 0.5 ** 2 for name, p, _ in model.named_parameters()}
    fit(model, Halving(0.1), x, np.zeros(16, int), epochs=2, batch_size=0)
    assert_close(model.state_dict(), expected, "halving", exact=True)


# --- flat optimizer state ---------------------------------------------------------------------

# CONFIGS (every optimizer configuration) and small_model come from test_optim and test_model
FOLDED = {"adam", "adam-wd", "adamw"}  # Adam's bias corrections are folded: float rounding differs


def packed_model(seed=0):
    model = small_model(seed, sizes=(5, 4, 3))
    return model, pack_parameters(model)


def random_grads(model, rng):
    for _, _, g in model.named_parameters():
        g[...] = rng.standard_normal(g.shape)


@pytest.mark.parametrize("config", CONFIGS)
def test_flat_steps_match_the_textbook_steps(config):
    textbook, (fast, packed) = small_model(0, sizes=(5, 4, 3)), packed_model()  # the textbook steps by name
    textbook_opt, fast_opt = CONFIGS[config](), CONFIGS[config]()
    step = FlatStep.for_model(fast_opt, fast, packed).step
    for k in range(6):
        random_grads(textbook, np.random.default_rng(k))
        random_grads(fast, np.random.default_rng(k))
        textbook_opt.step(textbook.named_parameters())
        step(fast.named_parameters())
    exact = config not in FOLDED
    assert_close(fast.state_dict(), textbook.state_dict(), config, exact=exact)
    assert_close(flat_state(fast_opt), flat_state(textbook_opt), f"{config} state", exact=exact)
    assert fast_opt.steps == textbook_opt.steps == 6


@pytest.mark.parametrize("config", CONFIGS)
def test_flat_steps_on_blocks_of_chunks_give_the_same_numbers_bit_for_bit(config, monkeypatch):
    monkeypatch.setattr("scratchnn.fast.flat_optim.STEP_CHUNK", 7)  # blocks of several chunks, a short last one
    monkeypatch.setattr("scratchnn.fast.flat_optim.THREADED_STEP", 0)
    (one, packed_one), (two, packed_two) = packed_model(), packed_model()
    opt_one, opt_two = CONFIGS[config](), CONFIGS[config]()
    step_one = FlatStep.for_model(opt_one, one, packed_one).step
    step_two = FlatStep.for_model(opt_two, two, packed_two, Blocks(2, min_floats=0)).step
    for k in range(4):
        random_grads(one, np.random.default_rng(k))
        random_grads(two, np.random.default_rng(k))
        step_one(one.named_parameters())
        step_two(two.named_parameters())
    assert_close(two.state_dict(), one.state_dict(), config)
    assert_close(flat_state(opt_two), flat_state(opt_one), f"{config} state")


@pytest.mark.parametrize("config", CONFIGS)
def test_flat_state_starts_from_the_state_by_name_and_stays_readable_by_name(config):
    # 3 textbook steps, then the flat path continues from its state_dict: the state by name
    # is copied in, and state_dict keeps reading the flat arrays through their views.
    reference, opt = small_model(0, (5, 4, 3)), CONFIGS[config]()
    for k in range(3):
        random_grads(reference, np.random.default_rng(k))
        opt.step(reference.named_parameters())
    model, packed = packed_model()
    model.load_state_dict(reference.state_dict())
    resumed = CONFIGS[config]()
    resumed.load_state_dict(opt.state_dict())
    step = FlatStep.for_model(resumed, model, packed).step
    for k in range(3, 6):
        random_grads(reference, np.random.default_rng(k))
        random_grads(model, np.random.default_rng(k))
        opt.step(reference.named_parameters())
        step(model.named_parameters())
    assert_close(flat_state(resumed), flat_state(opt), config, exact=config not in FOLDED)
    assert_close(model.state_dict(), reference.state_dict(), config, exact=config not in FOLDED)


def test_state_of_the_wrong_shape_names_the_parameter():
    from scratchnn.errors import ShapeError

    model, packed = packed_model()
    opt = Adam()
    opt.load_state_dict({"lr": 1e-3, "steps": 1, "state": {"0.W": {"m": np.zeros(3), "v": np.zeros(3)}}})
    with pytest.raises(ShapeError, match=r"0\.W\.m has shape \(3,\).*\(5, 4\)"):
        FlatStep.for_model(opt, model, packed)


def test_replaced_parameters_are_refused_not_silently_left_untrained():
    model, packed = packed_model()
    step = FlatStep.for_model(SGD(0.1), model, packed).step
    model.layers[0].params["W"] = model.layers[0].params["W"].copy()
    with pytest.raises(RuntimeError, match="replaced during fit"):
        step(model.named_parameters())


@pytest.mark.parametrize("config", CONFIGS)
def test_a_flat_step_allocates_no_parameter_sized_arrays(config):
    model = Sequential([Dense(1000, 100, rng=0)])  # 100,100 parameters, 400 kB
    step = FlatStep.for_model(CONFIGS[config](), model, pack_parameters(model)).step
    random_grads(model, np.random.default_rng(0))
    step(model.named_parameters())
    tracemalloc.start()
    step(model.named_parameters())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20_000, f"{config}: a step allocated {peak} bytes"


def test_vanishing_state_is_flushed_to_zero_every_50_steps():
    model, packed = packed_model()
    opt = Adam(1e-3)
    step = FlatStep.for_model(opt, model, packed).step
    random_grads(model, np.random.default_rng(0))
    step(model.named_parameters())
    for _, _, g in model.named_parameters():
        g[...] = 0  # dead units: m decays by 0.9 a step, toward float32's slow subnormals
    while opt.steps < 800:  # 0.9 ** 800 · |m| < 1e-30 (flushed at step 700), yet > 0 unflushed
        step(model.named_parameters())
    m = np.concatenate([s["m"].ravel() for s in opt.state.values()])
    assert np.all(m == 0), f"m should have been flushed to exactly 0, largest {np.abs(m).max():.3g}"


# --- products and column skipping ---------------------------------------------------------------

@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("rows", [3, 5])  # fewer and more rows than outputs: both product orders
def test_dense_products_give_the_dense_layers_numbers(order, rows):
    rng = np.random.default_rng(0)
    dense = Dense(6, 4, rng=rng).astype(np.float64)
    fast = DenseProducts(dense)
    x = np.asarray(rng.standard_normal((rows, 6)), order=order)
    dy = np.asarray(rng.standard_normal((rows, 4)), order=order)
    y, dx = dense.forward(x), dense.backward(dy)
    grads = {k: v.copy() for k, v in dense.grads.items()}
    np.testing.assert_allclose(fast.forward(x), y, rtol=1e-13)
    np.testing.assert_allclose(fast.backward(dy), dx, rtol=1e-13)
    for key in grads:
        np.testing.assert_allclose(dense.grads[key], grads[key], rtol=1e-13, err_msg=key)


def test_dense_on_columns_gives_the_dense_layers_numbers():
    rng = np.random.default_rng(0)
    dense = Dense(8, 3, init="glorot_uniform", bias_init="glorot_uniform", rng=rng).astype(np.float64)
    x = rng.standard_normal((5, 8))
    used = np.array([1, 2, 5, 6])
    x[:, np.setdiff1d(np.arange(8), used)] = 0  # blank in every row, like MNIST's border
    dy = rng.standard_normal((5, 3))
    y_full = dense.forward(x)
    dx_full = dense.backward(dy)
    grads_full = {k: v.copy() for k, v in dense.grads.items()}
    view = DenseOnColumns(dense, used)
    np.testing.assert_allclose(view.forward(x[:, used]), y_full, rtol=1e-13)
    np.testing.assert_allclose(view.backward(dy), dx_full[:, used], rtol=1e-13)
    for key in grads_full:
        np.testing.assert_allclose(dense.grads[key], grads_full[key], rtol=1e-13, err_msg=key)


@pytest.mark.parametrize("full_batch", [False, True])
def test_the_used_columns_are_laid_out_for_the_steps_reads(full_batch):
    """Mini-batches gather rows: each row's used columns one run of memory (x[:, columns] would
    lay them out column by column, a batch's gather then ~50x slower); a full batch is stored
    feature-major (see products.affine)."""
    images, _ = digits(40)
    x = scale_pixels(images, (784,)).astype(np.float32)
    model = Sequential([Dense(784, 8, rng=0), ReLU(), Dense(8, 10, rng=1)], input_shape=(784,))
    run = prepare(model, SGD(0.1), x, full_batch=full_batch)
    columns = run.net.layers[0].columns
    assert len(columns) < 784
    np.testing.assert_array_equal(run.x, x[:, columns])
    assert run.x.flags["F_CONTIGUOUS" if full_batch else "C_CONTIGUOUS"]


def test_fast_dense_layers_match_finite_differences():
    rng = np.random.default_rng(4)
    dense = Dense(7, 4, init="glorot_uniform", rng=rng)
    for layer, x in ((DenseOnColumns(dense, np.array([0, 3, 4])), rng.standard_normal((5, 3))),
                     (DenseProducts(dense), rng.standard_normal((5, 7)))):
        for check in check_layer(layer, x, rng):
            assert check.error < 1e-7, f"{layer!r} {check.what} d{check.wrt}: {check.error:.2e}"


def test_fast_layers_are_not_saveable_layer_types():
    assert "DenseOnColumns" not in LAYER_TYPES and "DenseProducts" not in LAYER_TYPES


# --- ReLU after pooling -----------------------------------------------------------------------

def test_relu_then_maxpool_runs_pooled_first_with_identical_numbers():
    # The fast path pools before the ReLU (4x fewer numbers); outputs and every gradient must be
    # exactly those of the declared order, also for windows that are all <= 0 or hold ties.
    rng = np.random.default_rng(14)
    model = Sequential([Conv2D(1, 4, 3, rng=rng), ReLU(), MaxPool2D(2), ReLU(), MaxPool2D(3, stride=1), Flatten(),
                        Dense(4 * 11 * 11, 10, rng=rng)], input_shape=(1, 28, 28))
    assert run_order(model.layers) == [0, 2, 1, 4, 3, 5, 6]
    x = rng.standard_normal((3, 1, 28, 28)).round(1)  # rounded: many exact ties within windows
    x[0, :, :10] = -1.0  # a flat region: every window a tie, all < 0 in the channels that map -1 below 0
    labels = rng.integers(0, 10, 3)

    def passes(order):
        layers, y = model.layers, x
        for i in order:
            y = layers[i].forward(y, training=True)
        loss = SoftmaxCrossEntropy()
        loss.forward(y, labels)
        dy = loss.backward()
        for i in reversed(order):
            dy = layers[i].backward(dy)
        return y, dy, [g.copy() for _, _, g in model.named_parameters()]

    declared, reordered = passes(range(len(model.layers))), passes(run_order(model.layers))
    np.testing.assert_array_equal(declared[0], reordered[0])
    np.testing.assert_array_equal(declared[1], reordered[1])
    for a, b in zip(declared[2], reordered[2]):
        np.testing.assert_array_equal(a, b)
    run = prepare(model, SGD(0.1), x.astype(np.float32), full_batch=False)
    textbook = []  # the fast path wraps them: a BlockMaxPool2D applying the ReLU
    for layer in run.evaluator.layers:
        parts = [layer.pool, layer.relu] if isinstance(layer, BlockMaxPool2D) else [layer]
        textbook += [getattr(part, "relu", part) for part in parts if part is not None]
    assert [type(layer) for layer in textbook][:3] == [Conv2D, MaxPool2D, ReLU]


def test_only_relu_moves_behind_max_pooling():
    model = Sequential([Conv2D(1, 2, 3), LeakyReLU(), MaxPool2D(2), ReLU(), AvgPool2D(2)], input_shape=(1, 12, 12))
    assert run_order(model.layers) == [0, 1, 2, 3, 4]


# --- the switch -------------------------------------------------------------------------------

def test_train_textbook_flag_runs_the_plain_path_to_the_same_weights(tmp_path):
    import subprocess
    import sys

    from scratchnn.data import write_idx
    from scratchnn.io import MODEL_FILE, read_tensors

    images, labels = digits(300)
    write_idx(tmp_path / "images.idx.gz", images)
    write_idx(tmp_path / "labels.idx.gz", labels.astype(np.uint8))
    common = ["--preset", "seed", "--images", str(tmp_path / "images.idx.gz"),
              "--labels", str(tmp_path / "labels.idx.gz"), "--hidden", "16", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--epochs", "3",
              "--batch-size", "50", "--dev-size", "50", "--eval-every", "1", "--quiet", "--no-report"]
    weights = {}
    for name, flags in (("fast", []), ("textbook", ["--textbook"])):
        done = subprocess.run([sys.executable, "-m", "scratchnn", "train", *common, *flags,
                               "--out", str(tmp_path / name)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        weights[name] = read_tensors(tmp_path / name / MODEL_FILE)[0]
        saved = TrainConfig.load(tmp_path / name / "config.toml")
        assert saved.textbook is (name == "textbook")
    assert_close(weights["fast"], weights["textbook"], "train --textbook")


@pytest.mark.parametrize("fast", [False, True], ids=["textbook", "fast"])
def test_a_trained_model_keeps_nothing_of_its_last_batches(fast):
    """After fit, no layer holds a forward cache or a convolution's work arrays (135-200 MB after
    a cnn-best epoch of batches of 128): a notebook that keeps the model keeps only its weights."""
    tracemalloc.start()
    try:
        model, _, _, _ = train_preset("cnn-best", fast, epochs=2, dtype=np.float32)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert all(layer._cache is None for layer in model.layers)
    assert all(not getattr(layer, "_scratch", {}) for layer in model.layers)
    weights = sum(p.nbytes for _, p, _ in model.named_parameters())
    assert held < 6 * weights, (held, weights)  # grads and Adam's moments beside the weights: ~2x measured
