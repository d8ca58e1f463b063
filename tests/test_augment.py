"""Random shifts, rotations, scaling, shear and elastic distortion of digit batches (data/augment.py)."""
import dataclasses
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from ci_guard import require_module

from scratchnn.data.augment import CLOTHES, DIGITS, Augmentation
from scratchnn.data.warp import affine, elastic_field, smoothing_matrix, warp
from scratchnn.data.idx import read_idx
from scratchnn.errors import ConfigError, ShapeError

H = W = 28
CENTRE = (H - 1) / 2


def blob(row: float, col: float, sigma: float = 1.5, size: int = H) -> np.ndarray:
    """(size, size) float32 Gaussian spot at (row, col), peak 1: smooth, so bilinear reads it well."""
    y, x = np.mgrid[:size, :size]
    return np.exp(-((y - row) ** 2 + (x - col) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def ring(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 28, 28) digit-like '0's: rings of radius 5..8 px, 1.2 px thick, near the centre."""
    y, x = np.mgrid[:H, :W]
    radius = rng.uniform(5, 8, (n, 1, 1))
    dy, dx = rng.uniform(-1, 1, (2, n, 1, 1))
    r = np.hypot(y - CENTRE - dy, x - CENTRE - dx)
    return np.exp(-(r - radius) ** 2 / (2 * 1.2 ** 2)).astype(np.float32)


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    """(N, 2) intensity-weighted (row, col) of images (N, H, W)."""
    y, x = np.mgrid[:images.shape[1], :images.shape[2]]
    mass = images.sum(axis=(1, 2))
    return np.stack([(images * y).sum(axis=(1, 2)) / mass, (images * x).sum(axis=(1, 2)) / mass], axis=1)


def shifted_with_zeros(images: np.ndarray, down: int, right: int) -> np.ndarray:
    """np.roll by (down, right) over (H, W), with the rows/columns that wrap around set to 0."""
    out = np.roll(images, (down, right), axis=(1, 2))
    if down > 0:
        out[:, :down] = 0
    elif down < 0:
        out[:, down:] = 0
    if right > 0:
        out[:, :, :right] = 0
    elif right < 0:
        out[:, :, right:] = 0
    return out


@pytest.fixture
def batch():
    """(16, 28, 28) float32 in [0, 1]: smooth random blobs plus some exact 0s and 1s."""
    rng = np.random.default_rng(42)
    images = np.stack([blob(*rng.uniform(6, 22, 2), sigma=rng.uniform(1, 4)) for _ in range(16)])
    images[::4] = np.minimum(1, 2 * images[::4])  # saturated digits: plenty of exact 1.0
    return images


# ------------------------------------------------------------------ known answers

def test_all_strengths_zero_is_exactly_the_input(batch):
    for aug in (Augmentation(), Augmentation(rotate=30, shift=3, elastic_alpha=30, p=0)):
        assert aug.is_identity
        out = aug(batch, np.random.default_rng(0))
        assert out is not batch and not np.shares_memory(out, batch)
        np.testing.assert_array_equal(out, batch)


def test_identity_warp_is_exact(batch):
    n = len(batch)
    out = warp(batch, np.broadcast_to(np.eye(2), (n, 2, 2)), np.zeros((n, 2)), np.zeros((n, 2, H, W)))
    np.testing.assert_array_equal(out, batch)


@pytest.mark.parametrize("down,right", [(1, 0), (0, 2), (-3, 1), (2, -2), (0, 0), (-1, -4)])
def test_integer_shift_is_roll_with_zero_fill(batch, down, right):
    np.testing.assert_array_equal(affine(batch, shift=(down, right)), shifted_with_zeros(batch, down, right))


def test_per_image_shifts_and_displacement_field_move_content_the_same_way(batch):
    shifts = np.array([(i % 5 - 2, 2 - i % 3) for i in range(len(batch))])
    expected = np.stack([shifted_with_zeros(img[None], *s)[0] for img, s in zip(batch, shifts)])
    np.testing.assert_array_equal(affine(batch, shift=shifts), expected)
    # warp is a pull-back: reading at q − t moves the content by +t
    field = np.broadcast_to(-shifts[:, :, None, None], (len(batch), 2, H, W)).astype(np.float32)
    identity = np.broadcast_to(np.eye(2), (len(batch), 2, 2))
    np.testing.assert_array_equal(warp(batch, identity, np.zeros((len(batch), 2)), field), expected)


@pytest.mark.parametrize("angle,k", [(90, 1), (180, 2), (-90, -1), (270, 3)])
def test_quarter_turns_match_rot90(batch, angle, k):
    # counter-clockwise as displayed, like np.rot90; exact up to float rounding of cos(90°) = 6e-17
    np.testing.assert_allclose(affine(batch, rotate=angle), np.rot90(batch, k, axes=(1, 2)), atol=1e-5)


def test_affine_moves_a_spot_where_the_formula_says():
    """q = c + F (p − c) + t with F = scale · R(angle) · [[1, 0], [tan(shear), 1]], in (row, col)."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        p = CENTRE + rng.uniform(-5, 5, 2)
        angle, scale, shear, t = rng.uniform(-30, 30), rng.uniform(0.8, 1.2), rng.uniform(-20, 20), rng.uniform(-2, 2, 2)
        out = affine(blob(*p, sigma=2)[None], shift=t, rotate=angle, scale=scale, shear=shear)
        a, k = np.deg2rad(angle), np.tan(np.deg2rad(shear))
        f = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[1, 0], [k, 1]])
        np.testing.assert_allclose(centre_of_mass(out)[0], CENTRE + f @ (p - CENTRE) + t, atol=0.05,
                                   err_msg=f"angle {angle:.1f} scale {scale:.2f} shear {shear:.1f} shift {t}")


def test_positive_rotation_turns_counter_clockwise():
    right_of_centre = blob(CENTRE, CENTRE + 8)[None]
    row, col = centre_of_mass(affine(right_of_centre, rotate=30))[0]
    assert row < CENTRE - 3 and col > CENTRE  # moved up (rows grow downwards), still on the right


def test_no_transform_within_the_limits_mirrors_a_digit():
    """Three spots keep the orientation of their triangle (a mirror would flip its sign)."""
    spots = np.stack([blob(CENTRE - 5, CENTRE - 4), blob(CENTRE + 5, CENTRE - 3), blob(CENTRE, CENTRE + 6)])

    def signed_area(points):
        (y0, x0), (y1, x1), (y2, x2) = points
        return (y1 - y0) * (x2 - x0) - (x1 - x0) * (y2 - y0)

    before = signed_area(centre_of_mass(spots))
    rng = np.random.default_rng(11)
    for _ in range(50):  # the extremes Augmentation allows: rotate 180°, shear 45°, scale ±50 %
        out = affine(spots, rotate=rng.uniform(-180, 180), scale=rng.uniform(0.5, 1.5), shear=rng.uniform(-45, 45))
        assert np.sign(signed_area(centre_of_mass(out))) == np.sign(before)


def test_mass_is_roughly_preserved_by_small_transforms():
    images = ring(128, np.random.default_rng(1))
    mass = images.sum(axis=(1, 2))
    moved = Augmentation(shift=2, rotate=15, shear=8)(images, np.random.default_rng(2)).sum(axis=(1, 2))
    np.testing.assert_allclose(moved / mass, 1, atol=0.005)  # area-preserving; bilinear loses a little
    # elastic distortion stretches and squeezes strokes locally (area factor 1 / (1 + div d)):
    # per image the mass changes by up to ~10 % for alpha = 10, on average by nothing
    bent = Augmentation(elastic_alpha=10)(images, np.random.default_rng(3)).sum(axis=(1, 2)) / mass
    assert abs(bent.mean() - 1) < 0.015 and np.all(np.abs(bent - 1) < 0.2)
    # scaling by s changes the area, hence the mass, by s²
    np.testing.assert_allclose(affine(images, scale=1.1).sum(axis=(1, 2)) / mass, 1.21, rtol=0.01)


# ------------------------------------------------------------------ elastic field and smoothing

@pytest.mark.parametrize("size,sigma", [(28, 4.0), (9, 1.0), (8, 10.0)])  # 8/10: taps reach past both ends
def test_smoothing_matrix_is_convolution_with_mirrored_borders(size, sigma):
    g = smoothing_matrix(size, sigma)
    radius = max(1, int(4 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    v = np.random.default_rng(3).standard_normal(size)
    expected = np.convolve(np.pad(v, radius, mode="symmetric"), taps, mode="valid")
    np.testing.assert_allclose(g @ v, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.sum(axis=1), 1, rtol=1e-6)
    assert g.dtype == np.float32 and not g.flags.writeable


def test_elastic_field_has_the_predicted_spread():
    """d = alpha · G_H u G_Wᵀ with u ~ U(−1, 1) (variance 1/3) per pixel: zero mean, known spread."""
    alpha, sigma = 30.0, 4.0
    field = elastic_field(2000, (H, W), alpha, sigma, np.random.default_rng(4))
    assert field.shape == (2000, 2, H, W) and field.dtype == np.float32
    # pixel (i, j) has var alpha² / 3 · a_i a_j with a_i = Σ_k G[i, k]²; pooled over the middle 4x4
    energy = (smoothing_matrix(H, sigma)[12:16].astype(np.float64) ** 2).sum(axis=1)
    predicted = alpha * energy.mean() / np.sqrt(3)  # ~1.2 px
    inner = field[:, :, 12:16, 12:16]
    assert abs(inner.mean()) < 0.03 * predicted
    assert inner.std() == pytest.approx(predicted, rel=0.03)
    # smooth: neighbours move together, far pixels independently
    a, b, far = field[:, 0, 14, 14], field[:, 0, 14, 15], field[:, 0, 14, 2]
    assert np.corrcoef(a, b)[0, 1] > 0.9 and abs(np.corrcoef(a, far)[0, 1]) < 0.2


def test_elastic_distortion_bends_digits_but_keeps_them_in_place():
    images = ring(128, np.random.default_rng(5))
    out = Augmentation(elastic_alpha=34, elastic_sigma=4)(images, np.random.default_rng(6))
    assert np.abs(out - images).max() > 0.5  # strokes really move
    # the field's slow part moves a whole digit: ~1.2 px on average for a per-pixel std of 1.4 px
    moved = np.linalg.norm(centre_of_mass(out) - centre_of_mass(images), axis=1)
    assert moved.mean() < 1.6 and moved.max() < 4


# ------------------------------------------------------------------ properties

def test_same_generator_state_same_output_other_seed_other_output(batch):
    a = DIGITS(batch, np.random.default_rng(7))
    np.testing.assert_array_equal(a, DIGITS(batch, np.random.default_rng(7)))
    assert not np.array_equal(a, DIGITS(batch, np.random.default_rng(8)))
    rng = np.random.default_rng(7)
    first, second = DIGITS(batch, rng), DIGITS(batch, rng)
    assert not np.array_equal(first, second)  # each mini-batch gets fresh draws


@pytest.mark.parametrize("shape", [(16, 784), (16, 28, 28), (16, 1, 28, 28)])
def test_layouts_give_the_same_images_and_keep_shape_and_dtype(batch, shape):
    x = batch.reshape(shape)
    out = DIGITS(x, np.random.default_rng(9))
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_array_equal(out.reshape(16, 28, 28), DIGITS(batch, np.random.default_rng(9)))
    doubled = DIGITS(x.astype(np.float64), np.random.default_rng(9))
    assert doubled.dtype == np.float64 and doubled.shape == shape


@pytest.mark.parametrize("shape", [(16, 784), (16, 28, 28), (16, 1, 28, 28)])
def test_input_is_never_modified(batch, shape):
    x = batch.reshape(shape).copy()
    before = x.copy()
    x.flags.writeable = False  # any write would raise
    for aug in (DIGITS, Augmentation(elastic_alpha=20), Augmentation()):
        out = aug(x, np.random.default_rng(10))
        assert not np.shares_memory(out, x)
    field = np.zeros((16, 2, 28, 28), np.float32)
    field.flags.writeable = False
    warp(x, np.broadcast_to(np.eye(2), (16, 2, 2)), np.zeros((16, 2)), field)
    np.testing.assert_array_equal(x, before)


def test_values_stay_in_unit_interval(batch):
    strong = Augmentation(shift=5, rotate=45, scale=0.3, shear=30, elastic_alpha=60, elastic_sigma=3)
    for images in (batch, np.ones((8, 28, 28), np.float32), batch.astype(np.float64)):
        out = strong(images, np.random.default_rng(12))
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("part", [{"rotate": 30}, {"shift": 2}, {"scale": 0.2}, {"shear": 20},
                                  {"elastic_alpha": 20}, {"flip": 1.0}])
def test_p_is_the_fraction_of_images_augmented_and_the_rest_are_untouched(part):
    images = np.random.default_rng(13).random((400, 12, 12), dtype=np.float32)
    out = Augmentation(**part, p=0.5)(images, np.random.default_rng(14))
    unchanged = np.all(out == images, axis=(1, 2))
    assert 0.4 < unchanged.mean() < 0.6, f"{part}: {unchanged.mean():.0%} of the images unchanged"


def test_digits_leave_one_in_five_sharp_because_every_move_blurs():
    # a read between pixels mixes neighbours, so a moved digit loses some of its edges' contrast;
    # DIGITS keeps a fifth of the digits as they are, so a network also sees the sharp digits it is asked about
    images = (np.random.default_rng(15).random((1000, 28, 28)) < 0.3).astype(np.float32)
    half_pixel = affine(images, shift=(0.5, 0.0))
    edges = np.abs(np.diff(images[:, 2:-2], axis=1)).sum()
    assert np.abs(np.diff(half_pixel[:, 2:-2], axis=1)).sum() < 0.6 * edges
    out = DIGITS(images, np.random.default_rng(16))
    unchanged = np.all(out == images, axis=(1, 2))
    assert DIGITS.p == 0.8 and 0.17 < unchanged.mean() < 0.23


def test_empty_batch_and_other_image_sizes():
    assert DIGITS(np.zeros((0, 784), np.float32), np.random.default_rng(0)).shape == (0, 784)
    wide = np.zeros((3, 20, 32), np.float32)
    wide[:, 8:12, 14:18] = 1
    out = DIGITS(wide, np.random.default_rng(0))
    assert out.shape == (3, 20, 32) and out.sum() > 0


def test_augmented_mnist_digits_keep_their_centre_of_mass(shared_dir):
    images = read_idx(shared_dir / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz")[:1000]
    x = images.astype(np.float32) / 255
    out = DIGITS(x, np.random.default_rng(15))
    moved = np.linalg.norm(centre_of_mass(out) - centre_of_mass(x), axis=1)
    # shifts alone move a centre up to 2·√2 ≈ 2.8 px; rotation, scaling and bending add a little
    assert moved.mean() < 2.0 and moved.max() < 4.5, f"mean {moved.mean():.2f} px, max {moved.max():.2f} px"
    assert moved.mean() > 0.5  # the digits do move
    ratio = out.sum(axis=(1, 2)) / x.sum(axis=(1, 2))
    assert 0.95 < np.median(ratio) < 1.05


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("x,message", [
    (np.zeros(784, np.float32), "got shape"),
    (np.zeros((4, 783), np.float32), "must be square"),
    (np.zeros((4, 3, 28, 28), np.float32), "grayscale"),
    (np.zeros((2, 4, 1, 28, 28), np.float32), "got shape"),
    (np.zeros((4, 784), np.uint8), "scale_pixels"),
    (np.zeros((4, 784), np.int64), "dtype int64"),
    (np.zeros((4, 784), np.float16), "dtype float16"),
    (np.full((4, 784), 255.0, np.float32), r"in \[0, 1\], got 255"),
    (np.full((4, 784), np.nan, np.float32), r"in \[0, 1\]"),
])
def test_bad_images_raise_shape_error(x, message):
    with pytest.raises(ShapeError, match=message):
        DIGITS(x, np.random.default_rng(0))


def test_bad_warp_arguments_raise_shape_error(batch):
    with pytest.raises(ShapeError, match=r"matrix \(N, 2, 2\)"):
        warp(batch, np.eye(2), np.zeros((16, 2)))
    with pytest.raises(ShapeError, match="displacement"):
        warp(batch, np.broadcast_to(np.eye(2), (16, 2, 2)), np.zeros((16, 2)), np.zeros((16, 2, 27, 28)))


@pytest.mark.parametrize("settings,message", [
    ({"rotate": -5}, "rotate must be between 0 and 180 degrees, got -5"),
    ({"rotate": 200}, "rotate must be between 0 and 180 degrees, got 200"),
    ({"shift": -1}, "shift must be >= 0 pixels, got -1"),
    ({"scale": 1.0}, r"scale must be in \[0, 1\)"),
    ({"scale": -0.1}, r"scale must be in \[0, 1\)"),
    ({"shear": 60}, "shear must be between 0 and 45 degrees"),
    ({"elastic_alpha": -3}, "elastic_alpha must be between 0 and 100"),
    ({"elastic_alpha": 30, "elastic_sigma": 0}, "elastic_sigma must be > 0"),
    ({"elastic_sigma": -1}, "elastic_sigma must be > 0"),
    ({"p": 1.5}, r"p is the probability .* got 1.5"),
    ({"flip": 2}, r"flip is the probability of mirroring an image left to right, in \[0, 1\]; got 2"),
    ({"p": -0.1}, r"p is the probability"),
    ({"shift": float("nan")}, "shift must be a finite number"),
    ({"rotate": float("inf")}, "rotate must be a finite number"),
    ({"rotate": "10"}, "rotate must be a number, got '10'"),
    ({"shift": True}, "shift must be a number"),
])
def test_bad_strengths_raise_config_error(settings, message):
    with pytest.raises(ConfigError, match=message):
        Augmentation(**settings)


def test_errors_at_call_time(batch):
    with pytest.raises(ConfigError, match="shift of 14 px would move a 28x28 image out of its frame"):
        Augmentation(shift=14)(batch, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="rng must be a numpy Generator"):
        DIGITS(batch, 0)
    with pytest.raises(ConfigError, match="scale must be a factor > 0"):
        affine(batch, scale=0)


# ------------------------------------------------------------------ config round trip

def test_to_dict_from_dict_round_trip():
    assert Augmentation.from_dict(json.loads(json.dumps(DIGITS.to_dict()))) == DIGITS
    assert set(DIGITS.to_dict()) == {f.name for f in dataclasses.fields(Augmentation)}
    partial = Augmentation.from_dict({"rotate": 10, "shift": 2})  # ints become floats, the rest defaults
    assert partial == Augmentation(rotate=10.0, shift=2.0) and isinstance(partial.rotate, float)
    with pytest.raises(ConfigError, match="unknown augmentation setting.*rotation.*known: shift"):
        Augmentation.from_dict({"rotation": 10})
    with pytest.raises(ConfigError, match="must be a table"):
        Augmentation.from_dict([("rotate", 10)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        DIGITS.rotate = 30  # the shared preset cannot be changed by accident


def test_flip_mirrors_that_share_of_the_images_and_nothing_else():
    images = np.random.default_rng(20).random((1000, 6, 5), dtype=np.float32)
    out = Augmentation(flip=0.3)(images, np.random.default_rng(21))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2))
    assert np.all(mirrored | np.all(out == images, axis=(1, 2)))  # each image: itself or its mirror
    assert 0.25 < mirrored.mean() < 0.35


def test_each_dataset_gets_an_augmentation_that_suits_it():
    from scratchnn.data import CLOTHES, augmentation_for
    from scratchnn.training.config import TrainConfig

    assert augmentation_for("mnist") is DIGITS and augmentation_for("") is DIGITS and DIGITS.flip == 0
    assert augmentation_for("fashion-mnist") is CLOTHES and CLOTHES.flip > 0 and CLOTHES.rotate == 0
    assert TrainConfig(augment=True, dataset="fashion-mnist").build_augmentation() == CLOTHES
    assert TrainConfig(augment=True, csv="digits.csv").build_augmentation() == DIGITS
    assert TrainConfig(augment=False).build_augmentation() is None


def test_digits_preset_is_valid_and_mild():
    assert DIGITS.validate() is DIGITS and not DIGITS.is_identity
    assert DIGITS.shift <= 3 and DIGITS.rotate <= 15 and DIGITS.scale <= 0.15 and DIGITS.p > 0


# ------------------------------------------------------------------ the preview script

def test_preview_script_writes_a_png(shared_dir, tmp_path, capsys):
    require_module("matplotlib", "plots", "the preview tests")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "augment_preview.py"
    mnist = shared_dir / "datasets" / "mnist"
    argv = [str(script), "--images", str(mnist / "t10k-images-idx3-ubyte.gz"),
            "--labels", str(mnist / "t10k-labels-idx1-ubyte.gz"), "--out", str(tmp_path / "grid.png"),
            "--columns", "3", "--batch", "16", "--repeats", "2"]
    old_argv, sys.argv = sys.argv, argv
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old_argv
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "median ms" in printed and "affine only" in printed and "elastic only" in printed


def test_parameters_that_are_not_finite_or_absurd_are_one_clear_error():
    """The augmentation audit: NaN or infinite parameters failed with 'IndexError: index -9223372036854775808',
    elastic_alpha 3e38 overflowed to inf (1e38: all-black images), and sigma 2e5 took seconds and gigabytes."""
    x = np.zeros((2, 28, 28), np.float32)
    for kwargs in ({"shift": (np.nan, 0)}, {"rotate": np.inf}, {"scale": np.nan}):
        with pytest.raises(ConfigError, match="must be finite numbers"):
            affine(x, **kwargs)
    with pytest.raises(ShapeError, match="NaN or infinite"):
        warp(x, np.full((2, 2, 2), np.nan), np.zeros((2, 2)))
    for name, value in (("elastic_alpha", 3e38), ("elastic_sigma", 2e5)):
        with pytest.raises(ConfigError, match=f"{name} must be"):
            Augmentation(**{name: value, "elastic_alpha": 20.0 if name != "elastic_alpha" else value})
    with pytest.raises(ShapeError, match=r"got one 28x28 image; augmentation takes a batch: pass x\[None\]"):
        DIGITS(np.zeros((28, 28), np.float32), np.random.default_rng(0))


def test_small_images_are_told_the_digits_distances_are_pixels_of_28():
    """The shapes audit: on 8x8 images the digits' 2-pixel shifts and 20-pixel bends went without a word."""
    note = DIGITS.small_image_note((8, 8))
    assert note.startswith("Note: the augmentation moves and bends images by pixels set for 28x28 digits (shift 2, "
                           "elastic_alpha 20, elastic_sigma 4), 3.5x as far for the size of 8x8 images."), note
    assert "--augmentation shift=0.57,elastic_alpha=5.7,elastic_sigma=1.1), 0.957 with --no-augment" in note
    assert DIGITS.small_image_note((28, 28)) is None and DIGITS.small_image_note((20, 64)) is None
    assert dataclasses.replace(DIGITS, shift=0.5).small_image_note((8, 8)) is None  # chosen for them: no note
    assert CLOTHES.small_image_note((8, 8)) is None
