"""Augmentation: pure functions of (batch, key), checked against NumPy re-implementations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab.data as od

IMAGES = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.0, (6, 5, 7, 2)), jnp.float32)
KEY = jax.random.key(0)


def test_gaussian_noise_statistics():
    x = jnp.zeros((100_000,))
    y = np.asarray(od.gaussian_noise(x, KEY, 0.2))
    assert abs(y.std() - 0.2) < 0.005 and abs(y.mean()) < 0.005


def test_mixup_is_a_convex_combination_of_pairs():
    # Row c of x is the vector c * (1, 2, 3) and its label is class c, so the mixed label says
    # which rows were mixed and with which weights: x_mixed must be y_mixed @ x.
    x = jnp.arange(8.0)[:, None] * jnp.array([1.0, 2.0, 3.0])
    y = jax.nn.one_hot(jnp.arange(8), 8)
    xm, ym = (np.asarray(a, np.float64) for a in od.mixup(x, y, KEY, alpha=0.4))
    np.testing.assert_allclose(xm, ym @ np.asarray(x, np.float64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ym.sum(-1), 1.0, rtol=1e-6)  # still distributions
    assert np.all(ym >= 0) and np.all((ym > 1e-6).sum(-1) <= 2)  # pairs of examples
    assert np.any((ym > 1e-3).sum(-1) == 2)  # some rows really are mixed
    with pytest.raises(ValueError, match="one-hot"):
        od.mixup(x, jnp.arange(8), KEY)


def test_cutout_zeroes_one_clipped_square_per_image():
    out = np.asarray(od.cutout(IMAGES, KEY, size=3))
    for img in out:
        zero = np.all(img == 0, axis=-1)
        rows, cols = np.nonzero(zero)
        assert 1 <= zero.sum() <= 9
        assert rows.max() - rows.min() < 3 and cols.max() - cols.min() < 3
        assert zero.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    np.testing.assert_array_equal(out[out != 0], np.asarray(IMAGES)[out != 0])


def test_random_shift_against_numpy():
    s = 2
    out = np.asarray(od.random_shift(IMAGES, KEY, max_shift=s))
    shifts = np.asarray(jax.random.randint(KEY, (6, 2), -s, s + 1))
    x = np.asarray(IMAGES)
    for img, ref, (dy, dx) in zip(out, x, shifts, strict=True):
        expected = np.zeros_like(ref)  # out[i, j] = x[i - dy, j - dx], zeros outside
        for i in range(5):
            for j in range(7):
                if 0 <= i - dy < 5 and 0 <= j - dx < 7:
                    expected[i, j] = ref[i - dy, j - dx]
        np.testing.assert_array_equal(img, expected)


def test_random_flip():
    out = np.asarray(od.random_flip_left_right(IMAGES, KEY, 0.5))
    x = np.asarray(IMAGES)
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)]
    same = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or s for f, s in zip(flipped, same, strict=True)) and any(flipped)
    np.testing.assert_array_equal(
        np.asarray(od.random_flip_left_right(IMAGES, KEY, 1.0)), x[:, :, ::-1]
    )


def test_jit_and_image_shape_errors():
    f = jax.jit(lambda x, k: od.random_flip_left_right(od.cutout(x, k, 2), k))
    assert f(IMAGES, KEY).shape == IMAGES.shape
    with pytest.raises(ValueError, match="expects image batches"):
        od.cutout(IMAGES.reshape(6, -1), KEY)
