"""Test-time augmentation: fixed views, tta=1 is plain prediction, the same N gives the same
numbers, and an MLP's rows and a CNN's maps are moved as the same images."""
import numpy as np
import pytest

from scratchnn import Dense, Flatten, ReLU, Sequential
from scratchnn.data.augment import CLOTHES, DIGITS
from scratchnn.data.warp import affine
from scratchnn.data.tta import (MAX_TTA, VIEW_LISTS, VIEWS, check_tta, image_shape_for, tta_views, view_probas,
                                views_for)
from scratchnn.errors import ConfigError, ShapeError
from scratchnn.nn.activations import softmax


def mlp(seed=0, inputs=784):
    return Sequential([Dense(inputs, 32, rng=seed), ReLU(), Dense(32, 10, rng=seed + 1)])


def digits(n=7, side=28, seed=0):
    """Images in [0, 1] with a bright blob somewhere, so shifts change what a model sees."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, side, side), dtype=np.float32) * 0.2
    for k in range(n):
        r, c = rng.integers(6, side - 6, 2)
        x[k, r - 3:r + 3, c - 2:c + 2] = 1
    return x


def test_tta_1_is_plain_predict_proba_bit_for_bit():
    model, x = mlp(), digits().reshape(7, 784)
    expected = np.concatenate([softmax(model.forward(x))])
    assert np.array_equal(model.predict_proba(x, tta=1), expected)
    assert np.array_equal(model.predict_proba(x, tta=1), model.predict_proba(x))
    assert np.array_equal(model.predict(x, tta=1), model.predict(x))


def test_tta_is_the_mean_over_the_views():
    model, images = mlp(), digits()
    x = images.reshape(7, 784)
    views = [images] + [affine(images, shift=v.shift, rotate=v.rotate, scale=v.scale) for v in VIEWS[1:5]]
    expected = np.mean([softmax(model.forward(v.reshape(7, 784)).astype(np.float64)) for v in views], axis=0)
    got = model.predict_proba(x, tta=5)
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=1e-6), abs(got - expected).max()
    assert not np.allclose(got, model.predict_proba(x), atol=1e-4)  # the views do change the answer
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5)


def test_same_n_gives_the_same_numbers_whatever_the_global_random_state():
    model, x = mlp(), digits().reshape(7, 784)
    np.random.seed(1)
    first = model.predict_proba(x, tta=MAX_TTA)
    np.random.seed(2)
    state = np.random.get_state()[1].copy()
    second = model.predict_proba(x, tta=MAX_TTA)
    assert np.array_equal(first, second)
    assert np.array_equal(np.random.get_state()[1], state), "TTA touched the global random state"
    assert tta_views(MAX_TTA) == VIEWS and tta_views(4) == VIEWS[:4]  # N views are a prefix of the list


def test_views_are_distinct_and_small():
    assert VIEWS[0].shift == (0, 0) and VIEWS[0].rotate == 0 and VIEWS[0].scale == 1
    assert len(set(VIEWS)) == MAX_TTA
    for view in VIEWS:
        assert max(map(abs, view.shift)) <= 1 and abs(view.rotate) <= 8 and abs(view.scale - 1) <= 0.05, view


def test_a_one_pixel_shift_moves_the_pixel():
    image = np.zeros((1, 5, 5), np.float32)
    image[0, 2, 2] = 1
    moved = VIEWS[1](image)  # shift (0, 1): one pixel right
    assert moved[0, 2, 3] == 1 and moved.sum() == 1


def test_clothes_views_are_mirrors_and_whole_pixel_shifts():
    """Fashion-MNIST trains on mirrored images only: its views never turn, scale or blur (a
    whole-pixel shift reads exact pixels), and half of them are mirrored."""
    clothes = VIEW_LISTS["clothes"]
    assert len(clothes) == MAX_TTA and len(set(clothes)) == MAX_TTA and clothes[0] == VIEWS[0]
    assert clothes[1].mirror and clothes[1].shift == (0, 0) and sum(v.mirror for v in clothes) == MAX_TTA // 2
    images = digits()
    for view in clothes:
        assert view.rotate == 0 and view.scale == 1 and all(float(s).is_integer() and abs(s) <= 1 for s in view.shift)
        moved = view(images)
        assert moved.shape == images.shape and set(np.unique(moved)) <= set(np.unique(images)) | {0}, view
    assert np.array_equal(clothes[1](images), images[:, :, ::-1])
    assert np.array_equal(clothes[3](images)[:, :, 1:], images[:, :, ::-1][:, :, :-1])  # mirrored, then 1 px right


def test_views_follow_the_training_augmentation_else_the_dataset():
    """A model trained with mirrors is asked mirrored views (a CSV of clothes with --augmentation
    clothes had the digits' turns); one trained without augmentation, its dataset's."""
    assert views_for("fashion-mnist") == "clothes" and views_for("mnist") == views_for("") == "digits"
    assert views_for("", CLOTHES.to_dict()) == "clothes" and views_for("fashion-mnist", DIGITS.to_dict()) == "digits"
    assert views_for("", {"flip": "a lot"}) == "digits" and views_for("fashion-mnist", None) == "clothes"


def test_views_follow_the_dataset_and_change_the_answer():
    assert views_for("fashion-mnist") == "clothes" and views_for("mnist") == views_for("") == "digits"
    model, images = mlp(), digits()
    x = images.reshape(7, 784)
    views = [images, images[:, :, ::-1], affine(images, shift=(0, 1))]
    expected = np.mean([softmax(model.forward(v.reshape(7, 784)).astype(np.float64)) for v in views], axis=0)
    got = model.predict_proba(x, tta=3, views="clothes")
    assert np.allclose(got, expected, atol=1e-6) and not np.allclose(got, model.predict_proba(x, tta=3), atol=1e-4)
    assert np.array_equal(model.predict(x, tta=3, views="clothes"), got.argmax(axis=1))
    assert np.array_equal(model.predict_proba(x, views="clothes"), model.predict_proba(x))  # tta=1: no views
    with pytest.raises(ConfigError, match="views must be one of 'digits', 'clothes', got 'shirts'"):
        model.predict_proba(x, tta=3, views="shirts")


def test_batches_do_not_change_the_answer():
    model, x = mlp(), digits(11).reshape(11, 784)
    assert np.allclose(model.predict_proba(x, batch_size=3, tta=6), model.predict_proba(x, tta=6), atol=1e-7)


def test_an_mlp_and_a_cnn_shaped_model_see_the_same_moved_images():
    """A (1, 28, 28) input flattened first must give what the (784,) MLP gives: the rows are
    turned into images and back the same way."""
    flat = mlp()
    shaped = Sequential([Flatten(), *flat.layers], input_shape=(1, 28, 28))
    images = digits()
    assert np.allclose(flat.predict_proba(images.reshape(7, 784), tta=9),
                       shaped.predict_proba(images.reshape(7, 1, 28, 28), tta=9), atol=1e-6)


def test_a_non_square_mlp_needs_its_image_shape():
    model, images = mlp(inputs=20 * 30), digits(side=30)[:, 5:25, :]
    x = images.reshape(7, 600)
    with pytest.raises(ShapeError, match="image_shape"):
        model.predict_proba(x, tta=3)
    with_shape = model.predict_proba(x, tta=3, image_shape=(20, 30))
    views = [images] + [affine(images, shift=v.shift, rotate=v.rotate, scale=v.scale) for v in VIEWS[1:3]]
    expected = np.mean([softmax(model.forward(v.reshape(7, 600)).astype(np.float64)) for v in views], axis=0)
    assert np.allclose(with_shape, expected, atol=1e-6)
    with pytest.raises(ShapeError, match="does not hold"):
        model.predict_proba(x, tta=3, image_shape=(20, 20))


@pytest.mark.parametrize("n", [0, -1, MAX_TTA + 1, 2.0, True, "4", None])
def test_bad_tta_is_one_clear_line(n):
    with pytest.raises(ConfigError, match=f"from 1 .*to {MAX_TTA}") as error:
        mlp().predict_proba(digits().reshape(7, 784), tta=n)
    assert "\n" not in str(error.value)
    assert check_tta(np.int64(3)) == 3


def test_tta_needs_pixels_in_0_to_1():
    with pytest.raises(ShapeError, match="scale_pixels"):
        mlp().predict_proba(digits().reshape(7, 784) * 255, tta=2)


def test_image_shape_for():
    assert image_shape_for((784,)) == (28, 28)
    assert image_shape_for((1, 28, 28)) == (28, 28)
    with pytest.raises(ShapeError, match="channels"):
        image_shape_for((3, 28, 28))
    with pytest.raises(ShapeError, match="does not fit"):
        image_shape_for((1, 28, 28), (20, 30))


def test_each_views_probabilities_hold_the_plain_and_the_tta_ones_in_one_pass():
    model, x = mlp(), digits().reshape(7, 784)
    each = model.view_probas(x, batch_size=16, tta=5)  # 3 images a batch: their views split over batches
    assert each.shape == (5, 7, 10) and each.dtype == np.float32
    assert np.array_equal(each[0], model.predict_proba(x))
    assert np.array_equal(each.mean(axis=0, dtype=np.float64).astype(np.float32), model.predict_proba(x, tta=5))
    view = tta_views(5)[3]
    assert np.allclose(each[3], model.predict_proba(view(x.reshape(7, 28, 28)).reshape(7, 784)), atol=1e-7)
    assert model.view_probas(x[:0], tta=4).shape == (4, 0, 10)


def test_view_probas_calls_the_model_once_with_the_views_stacked():
    calls = []

    def proba(x):
        calls.append(x.copy())
        return np.full((len(x), 2), 0.5, np.float32)

    x = digits(2).reshape(2, 784)
    assert view_probas(proba, x, 4, (28, 28)).shape == (4, 2, 2)
    assert len(calls) == 1 and calls[0].shape == (8, 784) and np.array_equal(calls[0][:2], x)
    images = x.reshape(2, 28, 28)
    for k, view in enumerate(tta_views(4)[1:], start=1):  # view k of both images, in order
        assert np.array_equal(calls[0][2 * k:2 * k + 2], view(images).reshape(2, 784))


def test_predict_proba_sends_each_rows_views_in_one_batch_of_at_most_batch_size():
    model = mlp()
    seen = []
    forward = model.forward
    model.forward = lambda batch, *a, **k: seen.append(len(batch)) or forward(batch, *a, **k)
    x = digits(7).reshape(7, 784)
    stacked = model.predict_proba(x, batch_size=24, tta=8)
    assert seen == [24, 24, 8]  # 3 + 3 + 1 rows, 8 views each
    seen.clear()
    one_by_one = np.concatenate([model.predict_proba(x[i:i + 1], tta=8) for i in range(7)])
    assert seen == [8] * 7 and np.allclose(stacked, one_by_one, atol=1e-6)
