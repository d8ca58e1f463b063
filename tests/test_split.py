"""Dev split, pixel scaling and batch iteration."""
import numpy as np
import pytest

from scratchnn.data.split import batch_indices, scale_pixels, train_dev_split
from scratchnn.errors import ConfigError, DataError, ShapeError


@pytest.fixture
def data():
    """100 images whose first pixel is their row number, so rows can be told apart."""
    images = np.zeros((100, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(100)
    return images, (np.arange(100) % 10).astype(np.uint8)


def test_split_sizes_and_shapes(data):
    x, y, dx, dy = train_dev_split(*data, 30, np.random.default_rng(0))
    assert x.shape == (70, 28, 28) and y.shape == (70,) and dx.shape == (30, 28, 28) and dy.shape == (30,)
    assert x.dtype == dx.dtype == np.uint8


def test_split_is_a_disjoint_cover_with_labels_kept_in_step(data):
    x, y, dx, dy = train_dev_split(*data, 25, np.random.default_rng(1))
    ids, dev_ids = x[:, 0, 0].astype(int), dx[:, 0, 0].astype(int)
    assert not set(ids) & set(dev_ids)
    assert sorted([*ids, *dev_ids]) == list(range(100))
    np.testing.assert_array_equal(y, ids % 10)
    np.testing.assert_array_equal(dy, dev_ids % 10)


def test_split_holds_out_the_first_rows_of_the_permutation(data):
    order = np.random.default_rng(7).permutation(100)
    _, _, dx, _ = train_dev_split(*data, 10, np.random.default_rng(7))
    np.testing.assert_array_equal(dx[:, 0, 0], order[:10])


def test_same_seed_same_split_other_seed_other_split(data):
    a = train_dev_split(*data, 10, np.random.default_rng(3))
    b = train_dev_split(*data, 10, np.random.default_rng(3))
    c = train_dev_split(*data, 10, np.random.default_rng(4))
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[2], c[2])


def test_empty_dev_set_keeps_trailing_shape(data):
    x, y, dx, dy = train_dev_split(*data, 0, np.random.default_rng(0))
    assert x.shape == (100, 28, 28) and dx.shape == (0, 28, 28) and dy.shape == (0,)


@pytest.mark.parametrize("dev_size", [-1, 100, 101])
def test_dev_size_out_of_range(data, dev_size):
    with pytest.raises(ConfigError, match=f"between 0 and 99 .*100 images.*got {dev_size}"):
        train_dev_split(*data, dev_size, np.random.default_rng(0))


def test_split_rejects_bad_arguments(data):
    with pytest.raises(ConfigError, match="whole number"):
        train_dev_split(*data, 1.5, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="Generator"):
        train_dev_split(*data, 10, 42)
    with pytest.raises(DataError, match="100 images but 99 labels"):
        train_dev_split(data[0], data[1][:99], 10, np.random.default_rng(0))


def test_scale_pixels_for_an_mlp(data):
    images = data[0].copy()
    images[1, 5, 5] = 255
    x = scale_pixels(images)
    assert x.shape == (100, 784) and x.dtype == np.float32 and x.flags.c_contiguous
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x, images.reshape(100, 784) / np.float32(255))
    assert images[1, 5, 5] == 255  # input untouched


def test_scale_pixels_for_a_cnn_from_a_non_contiguous_view(data):
    view = data[0][::2]
    x = scale_pixels(view, (1, 28, 28))
    assert x.shape == (50, 1, 28, 28) and x.flags.c_contiguous
    np.testing.assert_array_equal(x[:, 0, 0, 0] * 255, np.arange(0, 100, 2))


def test_scale_pixels_errors(data):
    with pytest.raises(ShapeError, match=r"784 pixels, the model input \(100,\) needs 100"):
        scale_pixels(data[0], (100,))
    with pytest.raises(ShapeError, match="integer pixels"):
        scale_pixels(data[0] / 255)
    with pytest.raises(ShapeError, match="0..255"):
        scale_pixels(np.full((1, 784), 300))


def test_scale_pixels_empty():
    assert scale_pixels(np.zeros((0, 28, 28), np.uint8)).shape == (0, 784)


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (10, 1), (7, 6)])
@pytest.mark.parametrize("seed", [None, 0])
def test_batches_cover_every_row_once(n, batch_size, seed):
    rng = None if seed is None else np.random.default_rng(seed)
    batches = list(batch_indices(n, batch_size, rng))
    assert [len(b) for b in batches] == [min(batch_size, n - i) for i in range(0, n, batch_size)]
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(n))
    assert (seed is None) == (order.tolist() == list(range(n)))  # shuffled exactly when rng given


def test_batches_are_deterministic_and_reshuffled_each_call():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    first = [b.tolist() for b in batch_indices(50, 8, rng_a)]
    assert first == [b.tolist() for b in batch_indices(50, 8, rng_b)]
    assert first != [b.tolist() for b in batch_indices(50, 8, rng_a)]  # next epoch, new order


@pytest.mark.parametrize("batch_size", [None, 10, 11])
def test_full_batch_is_one_slice(batch_size):
    x = np.arange(10)
    batches = list(batch_indices(10, batch_size, np.random.default_rng(0)))
    assert batches == [slice(None)]
    assert np.shares_memory(x[batches[0]], x)  # no copy


def test_no_rows_no_batches():
    assert list(batch_indices(0, None)) == [] and list(batch_indices(0, 4)) == []


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_bad_batch_size(batch_size):
    with pytest.raises(ConfigError, match="batch size"):
        list(batch_indices(10, batch_size))
