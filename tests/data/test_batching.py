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


def test_errors():
    x, y = _xy(10)
    with pytest.raises(ValueError, match="same number of rows"):
        od.batches(x, y[:5], 2)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        od.batches(x, y, 0)
