"""Batching: shapes, permutation, remainder policy, special cases, pytrees, jit."""

import jax
import numpy as np
import pytest

import optlab.data as od


def _xy(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return x, np.arange(n)


@pytest.mark.parametrize(
    ("n", "batch_size", "drop", "expected"),
    [
        pytest.param(10, 4, True, (2, 4), id="drop"),
        pytest.param(10, 4, False, (3, 4), id="pad"),
        pytest.param(12, 4, True, (3, 4), id="exact"),
        pytest.param(10, None, True, (1, 10), id="full-batch-none"),
        pytest.param(10, 50, True, (1, 10), id="full-batch-large"),
        pytest.param(10, 1, True, (10, 1), id="stochastic"),
    ],
)
def test_shapes(n, batch_size, drop, expected):
    x, y = _xy(n)
    b = od.batches(x, y, batch_size, 0, drop_remainder=drop)
    assert b.x.shape == (*expected, 3) and b.y.shape == expected and b.mask.shape == expected
    assert od.num_batches(n, batch_size, drop) == expected[0]


def test_rows_are_a_permutation_and_stay_paired():
    x, y = _xy(10)
    b = od.batches(x, y, 4, jax.random.key(1), drop_remainder=False)
    real = np.asarray(b.mask).reshape(-1) == 1
    ys = np.asarray(b.y).reshape(-1)[real]
    assert sorted(ys.tolist()) == list(range(10))
    np.testing.assert_array_equal(np.asarray(b.x).reshape(-1, 3)[real], x[ys])
    assert np.asarray(b.mask).sum() == 10


def test_drop_remainder_uses_distinct_rows_and_reshuffles():
    x, y = _xy(10)
    a = np.asarray(od.batches(x, y, 4, 0).y).reshape(-1)
    b = np.asarray(od.batches(x, y, 4, 1).y).reshape(-1)
    assert len(set(a.tolist())) == 8 and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, np.asarray(od.batches(x, y, 4, 0).y).reshape(-1))


def test_no_shuffle_keeps_order_and_pytrees():
    x, y = _xy(6)
    b = od.batches((x, x[:, :1]), {"label": y}, 3, shuffle=False)
    np.testing.assert_array_equal(np.asarray(b.y["label"]), [[0, 1, 2], [3, 4, 5]])
    assert b.x[1].shape == (2, 3, 1)


def test_scannable_and_jittable():
    x, y = _xy(12)
    f = jax.jit(lambda k: od.batches(x, y, 4, k), static_argnums=())
    b = f(jax.random.key(0))

    def step(carry, batch):
        return carry + (batch.y * batch.mask).sum(), None

    total, _ = jax.lax.scan(step, 0.0, b)
    assert float(total) == float(y.sum())


@pytest.mark.parametrize("drop", [True, False], ids=["drop", "pad"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "ordered"])
def test_jit_with_a_traced_key_equals_eager(drop, shuffle):
    # The engine calls batches inside its compiled epoch with a key folded from (seed, epoch):
    # batch_size, drop_remainder and shuffle are static, the key and the arrays are traced.
    x, y = _xy(11)
    seed_key = jax.random.key(3)

    @jax.jit
    def epoch(x, y, epoch):
        key = jax.random.fold_in(seed_key, epoch)
        return od.batches((x, x[:, 0]), y, 4, key, drop_remainder=drop, shuffle=shuffle)

    for e in range(2):
        eager = od.batches(
            (x, x[:, 0]),
            y,
            4,
            jax.random.fold_in(seed_key, e),
            drop_remainder=drop,
            shuffle=shuffle,
        )
        jitted = epoch(x, y, e)
        for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("n", "batch_size"), [(1, 4), (7, 3), (10, 4), (12, 4), (13, 5), (9, 1), (10, None)]
)
def test_padding_covers_every_row_exactly_once_per_epoch(n, batch_size):
    x, y = _xy(n)
    for seed in range(3):
        b = od.batches(x, y, batch_size, seed, drop_remainder=False)
        mask = np.asarray(b.mask).reshape(-1)
        ys = np.asarray(b.y).reshape(-1)
        assert mask.sum() == n  # the mask counts every row once
        assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
        np.testing.assert_array_equal(np.sort(ys[mask == 1]), np.arange(n))  # each row once
        size = min(batch_size or n, n)  # a batch_size of at least n is the full batch
        assert b.mask.shape == (od.num_batches(n, batch_size, False), size)
        assert len(mask) - n < size  # less than one batch of padding
        # Padding is copies of real rows (finite, harmless under augmentation), paired.
        np.testing.assert_array_equal(np.asarray(b.x).reshape(-1, 3), x[ys])


def test_raw_prng_keys_and_typed_keys_agree():
    x, y = _xy(10)
    typed = od.batches(x, y, 3, jax.random.key(5))
    raw = od.batches(x, y, 3, jax.random.PRNGKey(5))
    seed = od.batches(x, y, 3, 5)
    np.testing.assert_array_equal(np.asarray(typed.y), np.asarray(raw.y))
    np.testing.assert_array_equal(np.asarray(typed.y), np.asarray(seed.y))


X, Y = _xy(10)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        pytest.param(lambda: od.batches(X, Y[:5], 2), ValueError, "same number of rows", id="rows"),
        pytest.param(
            lambda: od.batches(X, Y, 0), ValueError, "batch_size must be an integer >= 1", id="zero"
        ),
        pytest.param(lambda: od.batches(X, Y, -3), ValueError, "batch_size", id="negative"),
        pytest.param(
            lambda: od.batches(X, Y, 2.5),
            TypeError,
            "batch_size must be an integer",
            id="float-size",
        ),
        pytest.param(
            lambda: od.batches(X, Y, True),
            TypeError,
            "batch_size must be an integer",
            id="bool-size",
        ),
        pytest.param(lambda: od.batches(X, Y, "4"), TypeError, "batch_size", id="str-size"),
        pytest.param(
            lambda: od.batches(X, Y, 2, "key"),
            TypeError,
            "key must be a jax.random key",
            id="str-key",
        ),
        pytest.param(lambda: od.batches(X, Y, 2, 1.5), TypeError, "key", id="float-key"),
        pytest.param(lambda: od.batches(X, Y, 2, None), TypeError, "key", id="none-key"),
        pytest.param(lambda: od.batches(X, Y, 2, -1), ValueError, "key", id="negative-seed"),
        pytest.param(
            lambda: od.batches(X, Y, 2, jax.random.split(jax.random.key(0))),
            TypeError,
            "key",
            id="batch-of-keys",
        ),
        pytest.param(
            lambda: od.batches(X, Y, 2, drop_remainder="no"),
            TypeError,
            "drop_remainder must be True or False",
            id="str-drop",
        ),
        pytest.param(
            lambda: od.batches(X, Y, 2, shuffle=None),
            TypeError,
            "shuffle must be True or False",
            id="none-shuffle",
        ),
        pytest.param(lambda: od.batches("abc", Y, 2), ValueError, "leading row axis", id="str-x"),
        pytest.param(
            lambda: od.batches([[1.0, 2.0]], [0], 2), ValueError, "leading row axis", id="list-x"
        ),
        pytest.param(
            lambda: od.batches(np.array(["a", "b"]), np.arange(2), 1),
            TypeError,
            "array of",
            id="str-array",
        ),
        pytest.param(lambda: od.batches(X[:0], Y[:0], 2), ValueError, "no rows", id="empty"),
        pytest.param(
            lambda: od.batches(None, None, 2), ValueError, "x holds no arrays", id="none-x"
        ),
        pytest.param(
            lambda: od.num_batches(float("nan"), 4), TypeError, "num_examples", id="nan-rows"
        ),
        pytest.param(lambda: od.num_batches(0, 4), ValueError, "num_examples", id="zero-rows"),
        pytest.param(lambda: od.num_batches(10, -1), ValueError, "batch_size", id="neg-size"),
        pytest.param(
            lambda: od.num_batches(10, 4, "yes"), TypeError, "drop_remainder", id="str-drop-count"
        ),
    ],
)
def test_bad_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert str(info.value).startswith(("batches:", "num_batches:"))
    assert "\n" not in str(info.value)
