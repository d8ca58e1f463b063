"""Inference on the fast path (``scratchnn.fast.inference_net``) gives the textbook model's
probabilities, leaves the model as it was, and is what ``Ensemble`` predicts with unless told
``fast=False``."""
import tracemalloc
import warnings

import numpy as np
import pytest
from test_fast import digits

from scratchnn.data import scale_pixels
from scratchnn.ensemble import Ensemble, Member, load_ensemble
from scratchnn.fast import SMALL_BATCH, inference_net, prepare
from scratchnn.fast.products import DenseProducts
from scratchnn.fast.threads import Blocks
from scratchnn.fast.winograd import BlockConv2D
from scratchnn.io import MODEL_FILE, save
from scratchnn.model import Sequential
from scratchnn.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from scratchnn.nn.pool import _Pool2D
from scratchnn.training.presets import get_preset

PRESETS = ("seed", "mlp", "deep-mlp", "cnn", "cnn-best", "lenet5")
# probabilities: products in another order, Winograd on threads, batch norm's evaluation in two
# passes (x·γ/σ + (β − μ·γ/σ)) against the textbook's (x − μ)/σ·γ + β. cnn-best's Winograd layers
# amplify float32 rounding: either path's probabilities are ~7e-6 from the float64 model's
# (logits ~3e-5), and so up to ~1e-5 from each other.
TOLERANCE = {"rtol": 5e-5, "atol": 1e-5}


def trained_like(name: str, seed: int = 0):
    """Preset ``name``'s network, its batch norms' γ (some < 0), β and running statistics drawn
    away from the 1s and 0s they start at, as after training."""
    model = get_preset(name).build_model(np.random.default_rng(seed))
    rng = np.random.default_rng([seed, 1])
    for layer in model.layers:
        if "running_var" in layer.buffers:
            shape = layer.buffers["running_var"].shape
            layer.buffers["running_mean"][...] = rng.normal(0, 0.5, shape)
            layer.buffers["running_var"][...] = rng.uniform(0.3, 2.0, shape)
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
            layer.params["beta"][...] = rng.normal(0, 0.3, shape)
    return model


def rows_on_views(model, monkeypatch) -> int:
    """The model's inference batch size with no pool's im2col matrix counted: the fast path pools
    the presets' windows (2x2 max, tiling average) on views of x."""
    with monkeypatch.context() as patch:
        patch.setattr(_Pool2D, "work_floats", lambda self, shape: 0)
        return model.inference_batch_size()


def inputs(model, n=20):
    return scale_pixels(digits(n)[0], model.input_shape)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("preset", PRESETS)
def test_the_fast_net_gives_the_textbook_probabilities(preset, workers, monkeypatch):
    model = trained_like(preset)
    x = inputs(model, 40)
    net = inference_net(model, Blocks(workers, min_floats=0))
    assert net.inference_batch_size() == rows_on_views(model, monkeypatch)
    for tta in (1, 4):
        for batch_size in (1, 33, None):  # 33: a fast batch of 33 (TTA: 8 digits' 32 views), then a small one
            expected = model.predict_proba(x, batch_size, tta=tta)
            np.testing.assert_allclose(net.predict_proba(x, batch_size, tta=tta), expected, **TOLERANCE,
                                       err_msg=f"{preset}, {workers} threads, TTA x{tta}, batch {batch_size}")
    kinds = {type(layer) for layer in net.layers}
    assert DenseProducts in kinds and Dense not in kinds
    if preset.startswith("cnn"):  # their 32-channel layers run as per-thread Winograd pipelines
        assert (BlockConv2D in kinds) == (workers > 1)


def test_a_small_batch_runs_on_the_textbook_layers_a_large_one_on_the_fast_ones(monkeypatch):
    model = trained_like("cnn-best")
    net = inference_net(model, Blocks(2))
    x = inputs(model, SMALL_BATCH)
    np.testing.assert_array_equal(net.forward(x[:SMALL_BATCH - 1]), model.forward(x[:SMALL_BATCH - 1]))
    monkeypatch.setattr(model, "forward", lambda *args, **kwargs: pytest.fail("the textbook layers ran"))
    np.testing.assert_allclose(net.forward(x), trained_like("cnn-best").forward(x), rtol=1e-4, atol=1e-4)  # logits
    for unthreaded in (inference_net(model, Blocks(1)), inference_net(trained_like("mlp"), Blocks(2))):
        assert not unthreaded.threaded  # an MLP's fast products cost nothing extra on a small batch
        monkeypatch.setattr(unthreaded.model, "forward", lambda *args, **kwargs: pytest.fail("textbook"))
        unthreaded.forward(scale_pixels(digits(2)[0], unthreaded.input_shape))


@pytest.mark.filterwarnings("ignore::scratchnn.errors.InferenceBackward")  # a backward after a prediction, on purpose
@pytest.mark.parametrize("preset", ["mlp", "cnn-best"])
def test_the_model_keeps_its_arrays_and_answers_as_before(preset):
    model = trained_like(preset)
    x = inputs(model, 8)
    layers, arrays = list(model.layers), model._live_state()  # the arrays themselves
    values = {name: array.copy() for name, array in arrays.items()}
    before = model.predict_proba(x)
    net = inference_net(model, Blocks(2))
    net.predict_proba(x, tta=2)
    assert model.layers == layers and all(a is b for a, b in zip(model.layers, layers))
    for name, array in model._live_state().items():
        assert array is arrays[name] and array.base is None, f"{name} was replaced or packed"
        np.testing.assert_array_equal(array, values[name], err_msg=name)
    assert all(layer.rng is model.rng for layer in model.layers if layer.uses_rng)
    np.testing.assert_array_equal(model.predict_proba(x), before)  # the textbook path, bit for bit


def test_building_and_running_it_sets_nothing_process_wide_and_warns_of_nothing(monkeypatch):
    """No glibc setting (that is for training's repeated steps), no OpenBLAS-spinning warning."""
    def refuse():
        raise AssertionError("keep_freed_memory is for training")

    monkeypatch.setattr("scratchnn.fast.keep_freed_memory", refuse)
    monkeypatch.setattr("scratchnn.fast.openblas_spins", lambda: True)
    model = trained_like("cnn-best")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inference_net(model, Blocks(2)).predict_proba(inputs(model, 4))


def test_a_fast_pass_holds_no_more_memory_than_the_textbook_one():
    """Traced allocations (work arrays kept between batches, each layer's cache) of two passes
    over 64 digits, each on a fresh cnn-best: the fast net's peak within 10% of the textbook's."""
    peaks = {}
    for path in ("textbook", "fast"):
        model = trained_like("cnn-best")
        x = inputs(model, 64)
        net = inference_net(model, Blocks(2)) if path == "fast" else model
        tracemalloc.start()
        try:
            net.predict_proba(x)
            net.predict_proba(x)
            peaks[path] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks["fast"] <= 1.1 * peaks["textbook"], peaks


@pytest.mark.filterwarnings("ignore::scratchnn.errors.InferenceBackward")  # a backward after a prediction, on purpose
@pytest.mark.parametrize("path", ["textbook", "fast"])
def test_a_prediction_keeps_nothing_once_it_has_answered(path):
    """No backward follows a prediction: every layer's cache and the convolutions' work arrays are
    let go (they were ~70 MB after 1,000 cnn-best digits), and the fast path's worker threads keep
    nothing of the last pass. Traced allocations held after the pass: under 1 MB."""
    model = trained_like("cnn-best")
    x = inputs(model, 64)
    net = inference_net(model, Blocks(2)) if path == "fast" else model
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        probabilities = net.predict_proba(x)
        held = tracemalloc.get_traced_memory()[0] - before - probabilities.nbytes
    finally:
        tracemalloc.stop()
    assert held < 1e6, held
    assert all(layer._cache is None for layer in model.layers)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(np.zeros_like(probabilities))
    assert np.allclose(net.predict_proba(x), probabilities)  # and the next prediction is the same


@pytest.mark.parametrize("preset", ["cnn-best", "cnn", "mlp"])
def test_training_measures_its_dev_set_in_the_models_batches(preset, monkeypatch):
    """The fused fast layers hold fewer outputs than the textbook ones, so their own estimate of
    the rows that fit in memory is too high (cnn-best: 140 rows against 107); fit's dev passes
    use the model's layers' outputs (and no pool's im2col matrix: the fast pools make none)."""
    config = get_preset(preset)
    model = config.build_model(np.random.default_rng(0))
    expected = rows_on_views(model, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy came before scratchnn in this process (openblas_idle)
        run = prepare(model, config.build_optimizer(), inputs(model, 256), full_batch=False, fixed_inputs=False)
    assert run.evaluator.inference_batch_size() == expected


def test_an_ensemble_predicts_on_fast_nets_unless_told_otherwise(tmp_path):
    models = [trained_like("cnn-best", seed) for seed in (0, 1)]
    x = inputs(models[0], 6)
    fast, textbook = Ensemble(models), Ensemble(models, fast=False)
    assert fast.fast and not textbook.fast
    assert textbook.nets == models and all(type(layer) is not DenseProducts for net in textbook.nets
                                           for layer in net.layers)
    assert all(any(type(layer) is DenseProducts for layer in net.layers) for net in fast.nets)
    assert [m.model for m in fast.members] == models  # the members keep their textbook models
    expected = np.mean([m.predict_proba(x, tta=3).astype(np.float64) for m in models], axis=0)
    np.testing.assert_allclose(fast.predict_proba(x, tta=3), expected, **TOLERANCE)
    np.testing.assert_allclose(textbook.predict_proba(x, tta=3), expected, atol=1e-7)
    for seed, model in enumerate(models):
        save(model, tmp_path / str(seed) / MODEL_FILE, metadata={"classes": [str(d) for d in range(10)]})
    assert not load_ensemble([tmp_path / "0"], fast=False).fast and load_ensemble([tmp_path / "0"]).fast
    assert Ensemble([Member("a", models[0])]).nets[0].model is models[0]



def test_predictions_from_several_threads_are_the_ones_made_one_at_a_time():
    """The engineer's audit: 20 threads on one CNN gave probabilities up to 0.49 off, silently (the
    convolutions' work arrays are kept between batches). Calls on one model, or on a fast net of
    it, now take turns."""
    import threading

    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(8 * 14 * 14, 10, rng=rng)], input_shape=(1, 28, 28))
    xs = [rng.random((40, 1, 28, 28), dtype=np.float32) for _ in range(16)]
    alone = [model.predict_proba(x) for x in xs]
    nets, together = [model, inference_net(model)], [None] * len(xs)

    def predict(i):
        together[i] = nets[i % 2].predict_proba(xs[i])

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(len(xs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for mine, theirs in zip(together, alone):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)
