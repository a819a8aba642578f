"""scale, scale_by_schedule and scale_by_learning_rate against NumPy and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import TraceCounter, random_tree


def test_scale_by_schedule_matches_optax(rng):
    sched = lambda n: 1.0 / (1.0 + n)
    ours, theirs = ol.scale_by_schedule(sched), optax.scale_by_schedule(sched)
    s1, s2 = ours.init(None), theirs.init(None)
    for _ in range(10):
        g = random_tree(rng)
        u1, s1 = ours.update(g, s1)
        u2, s2 = theirs.update(g, s2)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_learning_rate_schedule_matches_numpy_and_is_recorded():
    tx = ol.scale_by_learning_rate(lambda n: 0.5 * 0.9**n)
    state = tx.init(None)
    g = np.array([1.0, -2.0])
    for t in range(5):
        u, state = tx.update(jnp.asarray(g, jnp.float32), state)
        np.testing.assert_allclose(np.asarray(u), -0.5 * 0.9**t * g, rtol=1e-6)
        assert float(ol.get(state, "learning_rate")) == pytest.approx(0.5 * 0.9**t, rel=1e-6)


def test_flip_sign_false_ascends():
    tx = ol.scale_by_learning_rate(0.1, flip_sign=False)
    u, _ = tx.update(jnp.ones(1), tx.init(None))
    np.testing.assert_allclose(np.asarray(u), [0.1])


def test_array_learning_rate_does_not_recompile_and_vmaps():
    def step(lr, g):
        tx = ol.scale_by_learning_rate(lr)
        return tx.update(g, tx.init(g))[0]

    counter = TraceCounter(step)
    jitted = jax.jit(counter)
    a = jitted(jnp.asarray(0.1), jnp.ones(3))
    b = jitted(jnp.asarray(0.2), jnp.ones(3))
    assert counter.count == 1
    np.testing.assert_allclose(np.asarray(b), 2 * np.asarray(a))
    swept = jax.vmap(step, in_axes=(0, None))(jnp.array([0.1, 0.2, 0.3]), jnp.ones(2))
    np.testing.assert_allclose(
        np.asarray(swept), -np.array([[0.1] * 2, [0.2] * 2, [0.3] * 2]), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32], ids=["bf16", "f32"])
def test_updates_keep_gradient_dtype(dtype):
    tx = ol.chain(ol.scale(2.0), ol.scale_by_learning_rate(jnp.asarray(0.1)))
    u, _ = tx.update(jnp.ones(3, dtype), tx.init(jnp.ones(3, dtype)))
    assert u.dtype == dtype


def test_float64_under_x64(x64):
    tx = ol.scale_by_learning_rate(0.1)
    u, _ = tx.update(jnp.ones(2, jnp.float64), tx.init(None))
    assert u.dtype == jnp.float64


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            lambda: ol.scale_by_learning_rate(-1.0),
            r"scale_by_learning_rate: learning_rate must be >= 0",
        ),
        (lambda: ol.scale(float("inf")), r"scale: step_size must be finite"),
    ],
    ids=["negative-lr", "inf-scale"],
)
def test_bad_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
