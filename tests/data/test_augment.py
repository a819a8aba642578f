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
    x = jnp.arange(6.0)[:, None] * jnp.array([1.0, 2.0, 3.0])  # 6 rows: one compiled sampler
    y = jax.nn.one_hot(jnp.arange(6), 6)
    xm, ym = (np.asarray(a, np.float64) for a in od.mixup(x, y, KEY, alpha=0.4))
    np.testing.assert_allclose(xm, ym @ np.asarray(x, np.float64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ym.sum(-1), 1.0, rtol=1e-6)  # still distributions
    assert np.all(ym >= 0) and np.all((ym > 1e-6).sum(-1) <= 2)  # pairs of examples
    assert np.any((ym > 1e-3).sum(-1) == 2)  # some rows really are mixed
    with pytest.raises(ValueError, match="one-hot"):
        od.mixup(x, jnp.arange(6), KEY)


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


# --- batch augmentations: augment(batch, key) -> batch, against NumPy references --------------
# The references re-derive each random draw with the jax.random call the docstring documents
# (the draw is jax's definition) and do the arithmetic in NumPy float64.

MASK = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # two padded rows, as in a last batch
LABELS = jnp.array([0, 1, 2, 0, 1, 2])
BATCH = od.Batches(IMAGES, LABELS, MASK)


def _keep_padding(out, ref):
    return np.where(np.asarray(MASK)[:, None, None, None] > 0, out, ref)


def _noise_ref(x, key, stddev):
    eps = np.asarray(jax.random.normal(key, x.shape, x.dtype), np.float64)
    return np.asarray(x, np.float64) + stddev * eps


def _cutout_ref(x, key, size):
    x = np.asarray(x, np.float64)
    n, h, w, _ = x.shape
    k_y, k_x = jax.random.split(key)
    cy = np.asarray(jax.random.randint(k_y, (n, 1, 1), 0, h)).reshape(n)
    cx = np.asarray(jax.random.randint(k_x, (n, 1, 1), 0, w)).reshape(n)
    out = x.copy()
    for i in range(n):
        top, left = cy[i] - size // 2, cx[i] - size // 2
        out[i, max(top, 0) : max(top + size, 0), max(left, 0) : max(left + size, 0)] = 0.0
    return out


def _shift_ref(x, key, s):
    x = np.asarray(x, np.float64)
    n, h, w, _ = x.shape
    shifts = np.asarray(jax.random.randint(key, (n, 2), -s, s + 1))
    out = np.zeros_like(x)
    for k, (dy, dx) in enumerate(shifts):
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[k, i, j] = x[k, i - dy, j - dx]
    return out


def _flip_ref(x, key, p):
    x = np.asarray(x, np.float64)
    flip = np.asarray(jax.random.bernoulli(key, p, (len(x), 1, 1, 1)))
    return np.where(flip, x[:, :, ::-1], x)


def _mixup_ref(x, y, key, alpha, mask):
    """Mixup's definition with the documented draws; partners among the real rows only."""
    x, y, real = np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(mask) > 0
    n = len(x)
    k_lam, k_perm = jax.random.split(key)
    lam = np.where(real, np.asarray(jax.random.beta(k_lam, alpha, alpha, (n,)), np.float64), 1)
    k1, k2 = jax.random.split(k_perm)
    o1 = np.argsort(np.where(real, 0.0, 2.0) + np.asarray(jax.random.uniform(k1, (n,))))
    o2 = np.argsort(np.where(real, 0.0, 2.0) + np.asarray(jax.random.uniform(k2, (n,))))
    partner = np.empty(n, int)
    partner[o1] = np.where(real[o1], o2, o1)
    assert sorted(partner[real].tolist()) == np.flatnonzero(real).tolist()  # a permutation
    lx = lam.reshape(-1, *[1] * (x.ndim - 1))
    ly = lam.reshape(-1, *[1] * (y.ndim - 1))
    return lx * x + (1 - lx) * x[partner], ly * y + (1 - ly) * y[partner]


@pytest.mark.parametrize(
    ("augment", "reference"),
    [
        pytest.param(od.GaussianNoise(0.3), lambda x, k: _noise_ref(x, k, 0.3), id="noise"),
        pytest.param(od.Cutout(3), lambda x, k: _cutout_ref(x, k, 3), id="cutout"),
        pytest.param(od.RandomShift(2), lambda x, k: _shift_ref(x, k, 2), id="shift"),
        pytest.param(od.RandomFlipLeftRight(0.5), lambda x, k: _flip_ref(x, k, 0.5), id="flip"),
    ],
)
def test_batch_augmentations_against_numpy_and_padding_untouched(augment, reference):
    key = jax.random.key(7)
    out = augment(BATCH, key)
    assert isinstance(out, od.Batches) and out.x.dtype == IMAGES.dtype
    expected = _keep_padding(reference(IMAGES, key), np.asarray(IMAGES, np.float64))
    np.testing.assert_allclose(np.asarray(out.x, np.float64), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.x[4:]), np.asarray(IMAGES[4:]))  # padding
    np.testing.assert_array_equal(np.asarray(out.y), np.asarray(LABELS))
    np.testing.assert_array_equal(np.asarray(out.mask), np.asarray(MASK))
    assert not np.array_equal(np.asarray(out.x[:4]), np.asarray(IMAGES[:4]))  # it did something


def test_batch_mixup_against_numpy_mixes_real_rows_only():
    # Row c of x is c * ones and its label is class c: a mixed label names the rows mixed.
    x = jnp.arange(6.0)[:, None] * jnp.ones((1, 3))
    batch = od.Batches(x, jnp.arange(6), MASK)
    key = jax.random.key(11)
    out = od.Mixup(alpha=0.4, num_classes=6)(batch, key)
    xr, yr = _mixup_ref(x, jax.nn.one_hot(jnp.arange(6), 6), key, 0.4, MASK)
    np.testing.assert_allclose(np.asarray(out.x, np.float64), xr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.y, np.float64), yr, rtol=1e-6, atol=1e-6)
    y = np.asarray(out.y)
    assert np.all(y[:4, 4:] == 0)  # no real row received any of a padded row
    np.testing.assert_array_equal(y[4:], np.eye(6)[4:])  # padded rows: unchanged, one-hot
    np.testing.assert_array_equal(np.asarray(out.x[4:]), np.asarray(x[4:]))
    np.testing.assert_allclose(y @ np.asarray(x), np.asarray(out.x), rtol=1e-5, atol=1e-5)
    assert np.any((y[:4] > 1e-3).sum(-1) == 2)  # some rows really are mixed


def test_mixup_labels_policy():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="pass num_classes="):
        od.Mixup()(BATCH, key)  # integer labels need num_classes to be one-hot encoded
    soft = od.Batches(IMAGES, jax.nn.one_hot(LABELS, 3), MASK)
    a = od.Mixup(0.3)(soft, key)  # float labels are used as they are
    b = od.Mixup(0.3, num_classes=3)(BATCH, key)  # integer labels, one-hot first
    np.testing.assert_array_equal(np.asarray(a.y), np.asarray(b.y))
    assert b.y.dtype == jnp.float32 and b.y.shape == (6, 3)
    with pytest.raises(ValueError, match=r"\(batch, num_classes=4\)"):
        od.Mixup(0.3, num_classes=4)(soft, key)


def _all_augmentations():
    return od.compose(
        od.RandomFlipLeftRight(0.5),
        od.RandomShift(1),
        od.Cutout(2),
        od.GaussianNoise(0.05),
        od.Mixup(0.2, num_classes=3),
    )


def test_compose_under_jit_and_scan_equals_eager_sequential_application():
    # One test, so that the eager steps reuse the ops compiled for the first one (the image
    # shapes match IMAGES; jax.random.beta in particular is slow to compile, once per shape).
    augment = _all_augmentations()
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(10, 5, 7, 2)), jnp.float32)
    y = jnp.arange(10) % 3
    epoch = od.batches(x, y, 6, jax.random.key(0), drop_remainder=False)  # 2 steps of 6
    assert float(epoch.mask.sum()) == 10 and epoch.mask.shape == (2, 6)  # 2 padded rows
    key = jax.random.key(9)

    @jax.jit
    def scanned(epoch, key):
        def step(total, inputs):
            i, batch = inputs
            out = augment(batch, jax.random.fold_in(key, i))
            return total + jnp.sum(out.y * out.mask[:, None]), out

        return jax.lax.scan(step, 0.0, (jnp.arange(2), epoch))

    total, outs = scanned(epoch, key)
    for i in range(2):
        batch = jax.tree.map(lambda a, i=i: a[i], epoch)
        step_key = jax.random.fold_in(key, i)
        manual = batch  # compose's definition: in order, the k-th gets split(key, 5)[k]
        for aug, k in zip(augment.augmentations, jax.random.split(step_key, 5), strict=True):
            manual = aug(manual, k)
        for a, b in zip(jax.tree.leaves(manual), jax.tree.leaves(outs), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=1e-6, atol=1e-6)
        padded = np.asarray(batch.mask) == 0
        np.testing.assert_array_equal(np.asarray(outs.x[i])[padded], np.asarray(batch.x)[padded])
    assert abs(float(total) - 10.0) < 1e-4  # mixed labels stay distributions: one per real row
    again = scanned(epoch, key)[1]
    np.testing.assert_array_equal(np.asarray(again.x), np.asarray(outs.x))  # same key: same
    other = scanned(epoch, jax.random.key(10))[1]
    assert not np.allclose(np.asarray(other.x), np.asarray(outs.x))  # another key: another
    assert od.compose()(BATCH, key) is BATCH  # compose() is the identity


def test_batch_augmentations_are_hashable_configurations():
    assert od.GaussianNoise(0.1) == od.GaussianNoise(0.1)
    assert hash(_all_augmentations()) == hash(_all_augmentations())
    assert _all_augmentations() == _all_augmentations()
    assert od.Cutout(2) != od.Cutout(3)
    assert repr(od.compose(od.Cutout(2))) == "compose(Cutout(size=2))"


def test_pytree_inputs_get_one_key_per_leaf():
    x = (IMAGES, IMAGES.reshape(6, -1))
    out = od.GaussianNoise(0.1)(od.Batches(x, LABELS, MASK), jax.random.key(0))
    for leaf, out_leaf, k in zip(x, out.x, jax.random.split(jax.random.key(0)), strict=True):
        np.testing.assert_allclose(
            np.asarray(out_leaf[:4], np.float64), _noise_ref(leaf, k, 0.1)[:4], rtol=1e-6, atol=1e-6
        )
        np.testing.assert_array_equal(np.asarray(out_leaf[4:]), np.asarray(leaf[4:]))


KEY0 = jax.random.key(0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        pytest.param(lambda: od.GaussianNoise(-0.1), ValueError, "stddev must be >= 0", id="neg"),
        pytest.param(lambda: od.GaussianNoise("a"), TypeError, "stddev must be a real", id="str"),
        pytest.param(lambda: od.GaussianNoise(None), TypeError, "stddev", id="none"),
        pytest.param(lambda: od.GaussianNoise(float("nan")), ValueError, "stddev", id="nan"),
        pytest.param(lambda: od.Mixup(0.0), ValueError, "alpha must be > 0", id="alpha-0"),
        pytest.param(lambda: od.Mixup(True), TypeError, "alpha", id="alpha-bool"),
        pytest.param(lambda: od.Mixup(0.2, 1.5), TypeError, "num_classes", id="classes-float"),
        pytest.param(lambda: od.Mixup(0.2, 1), ValueError, "num_classes", id="classes-1"),
        pytest.param(lambda: od.Cutout(0), ValueError, "size must be an integer >= 1", id="cut0"),
        pytest.param(lambda: od.Cutout(2.0), TypeError, "size must be an integer", id="cut-f"),
        pytest.param(lambda: od.RandomShift(-1), ValueError, "max_shift", id="shift-neg"),
        pytest.param(lambda: od.RandomShift([1]), TypeError, "max_shift", id="shift-list"),
        pytest.param(lambda: od.RandomFlipLeftRight(1.5), ValueError, r"in \[0, 1\]", id="p"),
        pytest.param(lambda: od.RandomFlipLeftRight(None), TypeError, "probability", id="p-n"),
        pytest.param(lambda: od.compose(od.Cutout(2), 3), TypeError, "augmentation 1", id="c"),
        pytest.param(
            lambda: od.Cutout(2)((IMAGES, LABELS), KEY0), TypeError, "Batches", id="not-batches"
        ),
        pytest.param(
            lambda: od.Cutout(2)(BATCH, 0), TypeError, "key must be one jax.random", id="int-key"
        ),
        pytest.param(
            lambda: od.Cutout(2)(od.batches(IMAGES, LABELS, 3), KEY0),
            ValueError,
            r"batch.mask must have shape \(batch_size,\) \(one step's batch\), got \(2, 3\)",
            id="whole-epoch",
        ),
        pytest.param(
            lambda: od.GaussianNoise()(od.Batches(IMAGES, LABELS[:5], MASK), KEY0),
            ValueError,
            r"needs 6 rows like its mask, got shape \(5,\)",
            id="rows",
        ),
        pytest.param(
            lambda: od.compose(lambda b, k: b.x)(BATCH, KEY0),
            TypeError,
            "returned",
            id="returns-array",
        ),
        pytest.param(
            lambda: od.Cutout(2)(od.Batches(IMAGES.reshape(6, -1), LABELS, MASK), KEY0),
            ValueError,
            "expects image batches",
            id="flat-images",
        ),
        pytest.param(
            lambda: od.gaussian_noise(jnp.arange(3), KEY0), TypeError, "floating", id="int-x"
        ),
        pytest.param(
            lambda: od.gaussian_noise("abc", KEY0), TypeError, "x must be an array", id="str-x"
        ),
        pytest.param(
            lambda: od.mixup(IMAGES, LABELS, KEY0), ValueError, "one-hot", id="mixup-int-y"
        ),
        pytest.param(
            lambda: od.mixup(IMAGES, jnp.ones((5, 3)), KEY0),
            ValueError,
            "same number of rows",
            id="mixup-rows",
        ),
        pytest.param(
            lambda: od.random_shift(IMAGES, KEY0, 1.5), TypeError, "max_shift", id="shift-fn"
        ),
        pytest.param(lambda: od.cutout(IMAGES, "key"), TypeError, "key", id="cutout-key"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)
