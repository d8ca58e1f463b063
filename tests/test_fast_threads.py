"""Block threading on the fast path (fast/threads.py, fast/batchnorm.py, fast/winograd.py): the
blocks cover every row once, and the layers that run on them compute what the textbook layers
compute (the Winograd forward bit for bit: the same calls on views of the same numbers)."""
import os
import signal
import threading
import time

import numpy as np
import pytest
from test_fast import assert_close, flat_state, noise_biases, train_preset

import scratchnn.fast as fast_path
from scratchnn.fast.batchnorm import BlockBatchNorm2d
from scratchnn.fast.batchnorm_rows import RowBatchNorm
from scratchnn.fast.maxpool import BlockMaxPool2D
from scratchnn.fast.order import with_relus_applied
from scratchnn.fast.relu import BlockReLU
from scratchnn.fast.threads import Blocks, chunks, split
from scratchnn.fast.winograd import FAST_RULE, BlockConv2D
from scratchnn.nn import BatchNorm2d, Conv2D, LeakyReLU, MaxPool2D, ReLU
from scratchnn.nn.conv import WINOGRAD
from scratchnn.nn.batchnorm import batchnorm_with_random_affine
from scratchnn.nn.im2col import from_pixel_major
from scratchnn.training.presets import get_preset


@pytest.mark.parametrize("rows, parts", [(1, 4), (7, 2), (14, 3), (100, 8), (5, 1)])
def test_split_covers_every_row_once_in_near_equal_blocks(rows, parts):
    blocks = split(rows, parts)
    assert len(blocks) == min(rows, parts)
    assert blocks[0][0] == 0 and blocks[-1][1] == rows
    assert all(a < b for a, b in blocks) and all(b == a2 for (_, b), (a2, _) in zip(blocks, blocks[1:]))
    sizes = [b - a for a, b in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_chunks_cover_the_range_in_pieces_of_the_given_size():
    assert list(chunks(3, 10, 4, chunk_floats=8)) == [(3, 5), (5, 7), (7, 9), (9, 10)]
    assert list(chunks(0, 3, 100, chunk_floats=8)) == [(0, 1), (1, 2), (2, 3)]  # a row wider than a chunk


def test_blocks_run_on_several_threads_and_return_in_block_order():
    seen = []
    results = Blocks(3, min_floats=0).run(lambda a, b: seen.append(threading.get_ident()) or (a, b), 9, 9)
    assert results == [(0, 3), (3, 6), (6, 9)]
    assert len(set(seen)) >= 2  # the calling thread and the pool


def test_blocks_run_one_after_another_where_no_thread_can_start(monkeypatch):
    """The resource audit: under ulimit -u or -v, "can't start new thread" ended the run with a
    traceback; the same blocks run on the calling thread instead, with the same results."""
    from scratchnn.fast import threads as fast_threads

    def no_threads(count):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(fast_threads, "_workers", no_threads)
    seen = []
    results = Blocks(3, min_floats=0).run(lambda a, b: seen.append(threading.get_ident()) or (a, b), 9, 9)
    assert results == [(0, 3), (3, 6), (6, 9)] and set(seen) == {threading.get_ident()}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_runs_blocks_on_threads_of_its_own():
    blocks = Blocks(2, min_floats=0)
    blocks.run(lambda a, b: None, 2, 2)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: exits 0 only if both blocks ran (a pool without threads would hang)
        os._exit(0 if blocks.run(lambda a, b: b - a, 2, 2) == [1, 1] else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's blocks never ran")


@pytest.mark.parametrize("rows, row_floats, chunk_floats, workers", [(14, 10, 20, 2), (7, 10, 10, 3), (3, 5, 100, 2),
                                                                    (5, 1, 1, 8)])
def test_deal_gives_each_worker_a_contiguous_run_of_chunks_covering_every_row_once(rows, row_floats, chunk_floats,
                                                                                   workers):
    shares = Blocks(workers).deal(lambda k, pieces: (k, pieces), list(chunks(0, rows, row_floats, chunk_floats)))
    assert [k for k, _ in shares] == list(range(len(shares))) and len(shares) <= workers
    pieces = [piece for _, share in shares for piece in share]
    assert pieces == list(chunks(0, rows, row_floats, chunk_floats))  # in order, each row once
    assert all(share for _, share in shares)


def test_one_blas_thread_limits_blas_inside_and_restores_it_after():
    from threadpoolctl import threadpool_info

    from scratchnn.fast.threads import blas_thread_count, one_blas_thread
    before = blas_thread_count()
    with one_blas_thread():
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
    assert blas_thread_count() == before


@pytest.mark.parametrize("first_out", ["A", "B"])
def test_overlapping_one_blas_thread_contexts_of_two_threads_keep_the_limit_and_restore_the_setting(first_out):
    """Two requests to a web server, each in a one_blas_thread context on its own thread: the
    limit holds until both have left, and the setting from before comes back (each thread
    restoring what it saw on entry left BLAS on one thread for good)."""
    from scratchnn.fast.threads import blas_thread_count, one_blas_thread
    before = blas_thread_count()
    if before < 2:
        pytest.skip("BLAS runs on one thread here already")
    inside, left, seen = threading.Barrier(2), threading.Event(), {}

    def request(name):
        with one_blas_thread():
            inside.wait(timeout=30)
            if name != first_out:
                left.wait(timeout=30)
                seen["after the other left"] = blas_thread_count()
        if name == first_out:
            left.set()

    threads = [threading.Thread(target=request, args=(name,)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen == {"after the other left": 1}
    assert blas_thread_count() == before


def test_small_passes_run_in_one_block():
    assert Blocks(4).run(lambda a, b: (a, b), 10, 100) == [(0, 10)]


def test_blocks_run_inside_a_block_and_from_two_threads_at_once_each_get_their_own_results():
    import threading

    blocks = Blocks(2, min_floats=0)
    assert blocks.run(lambda a, b: blocks.run(lambda c, d: (a, c, d), 4, 4), 4, 4) == [
        [(0, 0, 2), (0, 2, 4)], [(2, 0, 2), (2, 2, 4)]]  # the inner calls run in turn on a worker
    seen = {}

    def caller(name):
        seen[name] = all(blocks.run(lambda a, b: (name, a, b), 6, 6) == [(name, 0, 3), (name, 3, 6)]
                         for _ in range(200))

    threads = [threading.Thread(target=caller, args=(name,)) for name in "xy"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"x": True, "y": True}


def test_an_error_in_a_block_reaches_the_caller_after_every_block_finished():
    done = []

    def fn(a, b):
        if a:
            raise ValueError(f"block {a}")
        done.append(a)

    with pytest.raises(ValueError, match="block"):
        Blocks(2, min_floats=0).run(fn, 4, 4)
    assert done == [0]


CONV_CASES = [  # (N, C, F, H, W, padding): odd sides (a last tile half outside), uneven padding, 1 tile row
    (3, 2, 3, 5, 6, (1, 0)), (2, 4, 3, 7, 7, (1, 1)), (4, 3, 2, 8, 9, (0, 0)), (2, 2, 2, 12, 11, (1, 1)),
    (2, 3, 4, 4, 4, (2, 1)), (2, 2, 2, 3, 3, (0, 0)), (2, 2, 3, 18, 10, (1, 1))]


@pytest.mark.parametrize("n, c, f, h, w, padding", CONV_CASES)
@pytest.mark.parametrize("workers, piece_floats", [(2, None), (3, None), (5, None), (2, 1), (3, 1), (2, 200)])
@pytest.mark.parametrize("algorithm", ["winograd", "winograd4", "winograd5", "winograd7"])
def test_a_winograd_conv_on_blocks_computes_what_the_layer_computes(n, c, f, h, w, padding, workers, piece_floats,
                                                                    algorithm, monkeypatch):
    """piece_floats 1: each piece one tile row of one image, so a worker takes several through its
    pipeline and the input gradient's shared rows are added across pieces; 200: a few of each."""
    if piece_floats:
        monkeypatch.setattr("scratchnn.fast.winograd.PIECE_FLOATS", {2: piece_floats, 4: piece_floats, 5: piece_floats, 7: piece_floats})
    rng = np.random.default_rng(h * w + workers)
    textbook = Conv2D(c, f, 3, padding=padding, algorithm=algorithm, bias_init="glorot_uniform", rng=0)
    layer = Conv2D(c, f, 3, padding=padding, algorithm=algorithm, bias_init="glorot_uniform", rng=0)
    blocked = BlockConv2D(layer, Blocks(workers, min_floats=0))
    x = rng.standard_normal((n, c, h, w))
    y = textbook.forward(x, training=True)
    # the pieces' products have other shapes than the whole batch's (one image's tiles: a matrix-
    # vector product), so BLAS may round the last bit differently
    np.testing.assert_allclose(blocked.forward(x, training=True), y, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(blocked.backward(dy), textbook.backward(dy), rtol=1e-12, atol=1e-12)
    for name in textbook.grads:
        np.testing.assert_allclose(layer.grads[name], textbook.grads[name], rtol=1e-12, atol=1e-12)
    assert blocked.params is layer.params and blocked.grads is layer.grads


@pytest.mark.parametrize("c, side, padding, fast_scheme", [
    (16, 13, 0, "winograd4"), (8, 13, 0, None), (1, 28, 1, None)])
def test_auto_on_the_fast_path_takes_winograd_where_two_threads_made_it_faster(c, side, padding, fast_scheme):
    """The layer's own rule (one thread) keeps im2col for these; the fast path's (FAST_RULE,
    measured on its two-thread pipelines) does not, and computes what the layer computes."""
    conv = Conv2D(c, 8, 3, padding=padding, bias_init="glorot_uniform", rng=0)
    assert conv.winograd_scheme(side, side) is None
    scheme = conv.winograd_scheme(side, side, rule=FAST_RULE)
    assert scheme is WINOGRAD.get(fast_scheme)
    assert conv.may_use_winograd(FAST_RULE) == (c >= 8)
    x = np.random.default_rng(c).standard_normal((3, c, side, side))
    blocked = BlockConv2D(Conv2D(c, 8, 3, padding=padding, bias_init="glorot_uniform", rng=0), Blocks(2, min_floats=0))
    y = conv.forward(x, training=True)
    np.testing.assert_allclose(blocked.forward(x, training=True), y, rtol=1e-10, atol=1e-12)
    assert blocked._cache[0] == ("blocks" if fast_scheme else "textbook")  # which way it ran
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(blocked.backward(dy), conv.backward(dy), rtol=1e-10, atol=1e-12)


def test_an_im2col_conv_runs_as_it_is():
    conv = Conv2D(1, 4, 3, rng=0)
    blocked = BlockConv2D(conv, Blocks(2, min_floats=0))
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    np.testing.assert_array_equal(blocked.forward(x, training=True), conv.forward(x))
    assert blocked.backward(np.ones((2, 4, 4, 4)), need_dx=False) is None
    with pytest.raises(RuntimeError, match="before forward"):
        BlockConv2D(Conv2D(2, 2, 3, rng=0), Blocks(2)).backward(np.ones((1, 2, 2, 2)))


@pytest.mark.parametrize("layout", ["pixel-major", "C order", "a slice with gaps", "dy in another order"])
def test_relu_on_blocks_computes_what_the_layer_computes(layout):
    rng = np.random.default_rng(4)
    x = from_pixel_major(rng.standard_normal((5, 6, 3, 4)))  # (N, C, H, W) = (3, 4, 5, 6), as a conv passes it
    if layout == "C order":
        x = np.ascontiguousarray(x)
    elif layout == "a slice with gaps":
        x = x[:, :, :, :4]
    x[0, 0, 0, :2] = 0.0  # ReLU'(0) is 0 both ways
    dy = rng.standard_normal(x.shape)
    if layout != "dy in another order":
        dy = np.empty_like(x)
        dy[...] = rng.standard_normal(x.shape)
    textbook, blocked = ReLU(), BlockReLU(ReLU(), Blocks(3, min_floats=0))
    y = blocked.forward(x, training=True)
    np.testing.assert_array_equal(y, textbook.forward(x, training=True))
    np.testing.assert_array_equal(blocked.backward(dy), textbook.backward(dy))
    if layout in ("pixel-major", "C order"):
        assert y.strides == x.strides  # the next layer reads the memory order it would have read


def pool_row_by_row(monkeypatch):
    """BlockMaxPool2D's chunks one output row each, so every block takes several."""
    monkeypatch.setattr("scratchnn.fast.maxpool.chunks", lambda a, b, row: chunks(a, b, row, chunk_floats=1))


def assert_raises_alike(expected_call, call):
    """``call`` raises what ``expected_call`` (the textbook layer, on input it refuses) raises."""
    with pytest.raises(Exception) as expected:
        expected_call()
    with pytest.raises(type(expected.value)):
        call()


@pytest.mark.parametrize("shape", [(3, 4, 8, 6), (2, 3, 7, 9), (1, 2, 2, 2), (2, 2, 1, 4)])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_maxpool_on_blocks_computes_what_the_layer_computes(shape, workers, monkeypatch):
    """Odd sides drop a row or column (no gradient there); ties (zeros after a ReLU) go to the
    first maximum both ways (the textbook's argmax, the views' top-then-left); a 1-row image
    runs the textbook's way (and its error)."""
    pool_row_by_row(monkeypatch)
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    x = from_pixel_major(np.maximum(rng.standard_normal((h, w, n, c)), 0))  # ties: zeros after a ReLU
    textbook, blocked = MaxPool2D(2), BlockMaxPool2D(MaxPool2D(2), Blocks(workers, min_floats=0))
    if h < 2:
        return assert_raises_alike(lambda: textbook.forward(x, training=True), lambda: blocked.forward(x, training=True))
    np.testing.assert_array_equal(blocked.forward(x), textbook.forward(x))  # evaluation: views too
    y = blocked.forward(x, training=True)
    np.testing.assert_array_equal(y, textbook.forward(x, training=True))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(blocked.backward(dy), textbook.backward(dy))


@pytest.mark.parametrize("shape", [(3, 4, 8, 6), (2, 3, 7, 9), (2, 2, 1, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_maxpool_applying_the_relu_after_it_computes_what_the_two_layers_compute(shape, training, monkeypatch):
    """Pooled values of exactly 0 (windows of zeros) and below: ReLU'(0) = 0 both ways; a 1-row
    image runs the textbook layers one after the other."""
    pool_row_by_row(monkeypatch)
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    x = rng.standard_normal((h, w, n, c))
    x[:2, :2, 0] = 0.0  # one window of zeros: its pooled value is exactly 0
    x = from_pixel_major(x)
    pool, relu = MaxPool2D(2), ReLU()
    fused = BlockMaxPool2D(MaxPool2D(2), Blocks(2, min_floats=0), relu=BlockReLU(ReLU(), Blocks(2, min_floats=0)))
    if h < 2:
        return assert_raises_alike(lambda: pool.forward(x, training=training), lambda: fused.forward(x, training=training))
    y = fused.forward(x, training=training)
    np.testing.assert_array_equal(y, relu.forward(pool.forward(x, training=training), training=training))
    if training:
        dy = rng.standard_normal(y.shape)
        np.testing.assert_array_equal(fused.backward(dy), pool.backward(relu.backward(dy)))


@pytest.mark.parametrize("shape", [(2, 3, 3, 4), (5, 4, 7, 3), (1, 2, 1, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_applying_the_relu_after_it_computes_what_the_two_layers_compute(shape, training):
    """Exactly the threaded layer's numbers then the ReLU's (ReLU'(0) = 0 both ways), close to the
    textbook's; evaluation runs on one thread (RowBatchNorm), a 1-pixel batch raises the layer's error."""
    rng = np.random.default_rng(sum(shape))
    x = from_pixel_major(rng.standard_normal((shape[2], shape[3], shape[0], shape[1])))
    blocks = Blocks(2, min_floats=0)
    layers = [batchnorm_with_random_affine(shape[1], np.random.default_rng(2), BatchNorm2d) for _ in range(3)]
    fused = with_relus_applied([BlockBatchNorm2d(layers[0], blocks), BlockReLU(ReLU(), blocks)])
    assert len(fused) == 1 and fused[0].relu is not None
    fused, separate, relu = fused[0], BlockBatchNorm2d(layers[1], blocks), ReLU()
    textbook = layers[2]
    if shape[0] * shape[2] * shape[3] < 2:
        return assert_raises_alike(lambda: textbook.forward(x, training=True), lambda: fused.forward(x, training=True))
    y = fused.forward(x, training=training)
    np.testing.assert_array_equal(y, relu.forward(separate.forward(x, training=training), training=training))
    tolerance = {"rtol": 1e-12} if training else {"rtol": 1e-6, "atol": 1e-6}  # evaluation: γ/σ rounded first
    np.testing.assert_allclose(y, np.maximum(textbook.forward(x, training=training), 0), **tolerance)
    if training:
        dy = rng.standard_normal(y.shape)
        np.testing.assert_array_equal(fused.backward(dy), separate.backward(relu.backward(dy)))
        assert_close(layers[0].grads, layers[1].grads, "grads")
        assert_close(layers[0].buffers, layers[1].buffers, "running statistics")


def test_only_a_relu_right_after_a_threaded_pool_or_batch_norm_is_applied_by_it():
    blocks = Blocks(2)
    pool, relu, block_relu = BlockMaxPool2D(MaxPool2D(2), blocks), ReLU(), BlockReLU(ReLU(), blocks)
    conv = Conv2D(1, 2, 3, rng=0)
    fused = with_relus_applied([conv, pool, block_relu, relu])
    assert len(fused) == 3 and fused[1].relu is block_relu and fused[2] is relu  # a second ReLU stays
    assert with_relus_applied([pool, relu])[0].relu is relu
    leaky = LeakyReLU()
    assert with_relus_applied([pool, leaky]) == [pool, leaky]  # only ReLU (see order.py)
    assert with_relus_applied([relu, pool]) == [relu, pool]
    assert pool.relu is None  # the originals are left as they were
    norm = BlockBatchNorm2d(BatchNorm2d(2), blocks)
    fused = with_relus_applied([conv, norm, relu, pool, block_relu])
    assert [type(layer) for layer in fused] == [Conv2D, BlockBatchNorm2d, BlockMaxPool2D]
    assert fused[1].relu is relu and fused[2].relu is block_relu and norm.relu is None
    assert with_relus_applied([norm, leaky]) == [norm, leaky]


@pytest.mark.parametrize("shape", [(2, 3, 3, 4), (5, 4, 7, 3), (1, 2, 1, 2)])
@pytest.mark.parametrize("workers", [2, 3])
def test_batchnorm2d_on_blocks_computes_what_the_layer_computes(shape, workers):
    rng = np.random.default_rng(sum(shape))
    textbook = batchnorm_with_random_affine(shape[1], np.random.default_rng(2), BatchNorm2d)
    layer = batchnorm_with_random_affine(shape[1], np.random.default_rng(2), BatchNorm2d)
    blocked = BlockBatchNorm2d(layer, Blocks(workers, min_floats=0))
    x = from_pixel_major(rng.standard_normal((shape[2], shape[3], shape[0], shape[1])))  # as a conv passes it
    np.testing.assert_allclose(blocked.forward(x, training=True), textbook.forward(x, training=True), rtol=1e-12)
    dy = rng.standard_normal(shape)
    np.testing.assert_allclose(blocked.backward(dy), textbook.backward(dy), rtol=1e-11, atol=1e-12)
    assert_close(layer.grads, textbook.grads, "grads", exact=False)
    assert_close(layer.buffers, textbook.buffers, "running statistics", exact=False)
    np.testing.assert_array_equal(blocked.forward(x), RowBatchNorm(textbook).forward(x))  # evaluation: one thread


def test_batchnorm2d_on_blocks_keeps_the_layers_errors():
    blocked = BlockBatchNorm2d(BatchNorm2d(2), Blocks(2, min_floats=0))
    with pytest.raises(Exception, match="expects images"):
        blocked.forward(np.ones((2, 3, 2, 2)), training=True)
    with pytest.raises(Exception, match="at least 2"):
        blocked.forward(np.ones((1, 2, 1, 1)), training=True)


def test_the_record_preset_trains_to_the_same_weights_on_blocks(monkeypatch):
    """cnn-best (BatchNorm2d, Winograd layers) with every pass split over 2 threads."""
    textbook, textbook_opt, _, _ = train_preset("cnn-best", fast=False, epochs=2)
    monkeypatch.setattr(fast_path, "blas_thread_count", lambda: 2)
    monkeypatch.setattr("scratchnn.fast.threads.MIN_FLOATS", 0)
    fast, fast_opt, _, _ = train_preset("cnn-best", fast=True, epochs=2)
    assert fast_opt.steps == textbook_opt.steps >= 4
    assert_close(fast.state_dict(), textbook.state_dict(), "cnn-best on blocks", noise=noise_biases(textbook))
    assert_close(flat_state(fast_opt), flat_state(textbook_opt), "cnn-best on blocks optimizer state")


def test_prepare_puts_the_block_layers_in_only_with_more_than_one_thread(monkeypatch):
    model = get_preset("cnn-best").build_model(np.random.default_rng(0))
    kinds = lambda run: {type(layer).__name__ for layer in run.net.layers}  # noqa: E731
    x = np.zeros((4, 1, 28, 28))
    optimizer = get_preset("cnn-best").build_optimizer()
    one = fast_path.prepare(model, optimizer, x, full_batch=False, blocks=Blocks(1))
    two = fast_path.prepare(model, optimizer, x, full_batch=False, blocks=Blocks(2))
    assert {"Conv2D", "RowBatchNorm"} <= kinds(one) and not kinds(one) & {"BlockConv2D", "BlockBatchNorm2d"}
    assert {"BlockConv2D", "BlockBatchNorm2d"} <= kinds(two) and "BatchNorm2d" not in kinds(two)
    pooling_first = [layer for layer in two.net.layers if type(layer).__name__ == "BlockBatchNormPool"]
    assert len(pooling_first) == 2 and all(layer.relu is not None for layer in pooling_first)
    convs = [type(layer).__name__ for layer in two.net.layers if "Conv" in type(layer).__name__]
    # the first layer (1 channel) never runs Winograd, and its batch norm is folded into it
    assert convs == ["ConvBatchNorm"] + 3 * ["BlockConv2D"]
    assert type(two.net.layers[0].norm).__name__ == "BlockBatchNorm2d" and two.net.layers[0].relu is not None


def test_a_worker_keeps_nothing_of_a_call_once_it_has_answered():
    """A pass's closure holds its work arrays: a worker waiting for its next call must not keep them."""
    import gc
    import weakref

    class WorkArrays:
        pass

    pieces = [WorkArrays(), WorkArrays()]  # one a worker, one the calling thread
    alive = [weakref.ref(piece) for piece in pieces]
    assert Blocks(2, min_floats=0).deal(lambda k, share: k, pieces) == [0, 1]
    del pieces
    gc.collect()
    assert [ref() for ref in alive] == [None, None]
