"""RandomAffine: seeding, identity, exact shifts/rotations/scales, fill, shapes and dtypes."""

import numpy as np
import pytest

from barenet.data import DataLoader, RandomAffine


def _batch(n=6, h=28, w=28, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random((n, 1, h, w)).astype(dtype)


def test_reproducible_from_seed():
    x = _batch()
    aug = RandomAffine(degrees=15, translate=0.1, scale=(0.8, 1.2))
    a = aug(x, np.random.default_rng(3))
    b = aug(x, np.random.default_rng(3))
    c = aug(x, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # __call__ is exactly apply() with the params drawn from the same generator state.
    params = aug.sample_params(len(x), np.random.default_rng(3))
    np.testing.assert_array_equal(aug.apply(x, *params), a)


def test_params_in_range():
    aug = RandomAffine(degrees=10, translate=(0.1, 0.2), scale=(0.9, 1.1), image_shape=(20, 30))
    angles, shifts, scales = aug.sample_params(2000, np.random.default_rng(0))
    assert np.abs(angles).max() <= 10 and np.abs(angles).max() > 9
    assert np.abs(shifts[:, 0]).max() <= 3.0 and np.abs(shifts[:, 0]).max() > 2.7  # 0.1 * W
    assert np.abs(shifts[:, 1]).max() <= 4.0 and np.abs(shifts[:, 1]).max() > 3.6  # 0.2 * H
    assert scales.min() >= 0.9 and scales.max() <= 1.1


def test_identity():
    x = _batch()
    aug = RandomAffine(degrees=0, translate=0, scale=(1, 1), fill=-1.0)
    np.testing.assert_allclose(aug(x, np.random.default_rng(0)), x, atol=1e-6)


@pytest.mark.parametrize("dx,dy", [(3, -2), (-5, 4), (0, 1)])
def test_known_shift(dx, dy):
    h, w, fill = 12, 16, -0.7  # non-square: catches swapped axes
    x = _batch(3, h, w)
    aug = RandomAffine(image_shape=(h, w), fill=fill)
    n = len(x)
    out = aug.apply(x, np.zeros(n), np.tile([dx, dy], (n, 1)), np.ones(n))
    expected = np.full_like(x, fill)
    # +dx moves right, +dy moves down: out[r, c] = x[r - dy, c - dx].
    dst_r, src_r = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h - max(dy, 0))
    dst_c, src_c = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w - max(dx, 0))
    expected[..., dst_r, dst_c] = x[..., src_r, src_c]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_rotation_90_matches_rot90_counter_clockwise():
    x = _batch(4)
    aug = RandomAffine()
    out = aug.apply(x, np.full(4, 90.0), np.zeros((4, 2)), np.ones(4))
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(-2, -1)), atol=1e-5)
    out = aug.apply(x, np.full(4, -90.0), np.zeros((4, 2)), np.ones(4))
    np.testing.assert_allclose(out, np.rot90(x, k=-1, axes=(-2, -1)), atol=1e-5)


def test_scale_about_centre():
    x = np.zeros((1, 9, 9))
    x[0, 4, 6] = 1.0  # 2 px right of the centre (4, 4)
    aug = RandomAffine(image_shape=(9, 9))
    out = aug.apply(x, np.zeros(1), np.zeros((1, 2)), np.array([2.0]))
    assert out[0, 4, 8] == pytest.approx(1.0)  # now 4 px right
    assert out[0, 4, 4] == 0.0


def test_per_image_params_match_single_image_calls():
    x = _batch(5)
    aug = RandomAffine()
    angles, shifts, scales = aug.sample_params(5, np.random.default_rng(9))
    batched = aug.apply(x, angles, shifts, scales)
    for i in range(5):
        single = aug.apply(x[i : i + 1], angles[i : i + 1], shifts[i : i + 1], scales[i : i + 1])
        np.testing.assert_allclose(batched[i : i + 1], single, atol=1e-6)


def test_border_fill():
    x = np.ones((2, 1, 28, 28), np.float32)
    aug = RandomAffine(fill=-0.4242)
    out = aug.apply(x, np.zeros(2), np.array([[10.0, 0.0], [0.0, -10.0]]), np.ones(2))
    assert np.all(out[0, 0, :, :10] == np.float32(-0.4242))
    assert np.all(out[0, 0, :, 10:] == 1.0)
    assert np.all(out[1, 0, -10:, :] == np.float32(-0.4242))


@pytest.mark.parametrize("shape", [(7, 784), (7, 1, 28, 28), (7, 28, 28)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes(shape, dtype):
    x = _batch(7, dtype=dtype).reshape(shape)
    aug = RandomAffine()
    out = aug(x, np.random.default_rng(0))
    assert out.shape == shape and out.dtype == dtype
    assert not np.shares_memory(out, x)
    # Flat and NCHW layouts give the same images.
    ref = aug(_batch(7, dtype=dtype), np.random.default_rng(0))
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)


def test_bad_inputs():
    aug = RandomAffine()
    with pytest.raises(ValueError):
        aug(np.zeros((2, 3, 28, 28)), np.random.default_rng(0))
    with pytest.raises(ValueError):
        aug(np.zeros((2, 783)), np.random.default_rng(0))
    with pytest.raises(TypeError):
        aug(np.zeros((2, 784)), None)
    with pytest.raises(ValueError):
        RandomAffine(scale=(1.2, 0.8))
    assert aug(np.zeros((0, 784)), np.random.default_rng(0)).shape == (0, 784)


def test_in_loader_reproducible():
    x = _batch(20).reshape(20, 784)
    y = np.arange(20)

    def run(seed):
        rng = np.random.default_rng(seed)
        loader = DataLoader(x, y, batch_size=8, shuffle=True, rng=rng, transform=RandomAffine())
        return np.concatenate([xb for xb, _ in loader])

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.allclose(run(1), run(2))
