"""The protocol's primitives: identity, set_to_zero, stateless, apply_updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import random_tree


def test_fields_match_optax():
    # Field compatibility is what lets optax, flax and optlab exchange transformations.
    assert ol.GradientTransformation._fields == optax.GradientTransformation._fields


@pytest.mark.parametrize(
    ("name", "tx", "expected"),
    [
        ("identity", ol.identity(), lambda g: g),
        ("set_to_zero", ol.set_to_zero(), lambda g: 0.0 * g),
        (
            "stateless",
            ol.stateless(lambda u, p: jax.tree.map(lambda x: -2.0 * x, u)),
            lambda g: -2.0 * g,
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_stateless_primitives(name, tx, expected, rng):
    grads = random_tree(rng)
    updates, state = tx.update(grads, tx.init(grads), unused_extra=1.0)
    assert state == ol.EmptyState()
    for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(expected(g)))
        assert u.dtype == g.dtype


def test_stateless_receives_params():
    tx = ol.stateless(lambda u, p: jax.tree.map(lambda x, y: x * y, u, p))
    u, _ = tx.update(jnp.array([2.0, 3.0]), tx.init(None), jnp.array([4.0, 5.0]))
    np.testing.assert_array_equal(np.asarray(u), [8.0, 15.0])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32], ids=["bf16", "f32"])
def test_apply_updates_keeps_param_dtype(dtype, rng):
    params = random_tree(rng, dtype)
    updates = jax.tree.map(lambda p: jnp.ones_like(p, jnp.float32), params)
    new = ol.apply_updates(params, updates)
    expected = optax.apply_updates(params, updates)
    for n, e, p in zip(
        jax.tree.leaves(new), jax.tree.leaves(expected), jax.tree.leaves(params), strict=True
    ):
        assert n.dtype == p.dtype
        np.testing.assert_array_equal(np.asarray(n, np.float32), np.asarray(e, np.float32))


def test_apply_updates_passes_none_leaves():
    new = ol.apply_updates({"a": jnp.ones(2), "b": None}, {"a": jnp.ones(2), "b": None})
    assert new["b"] is None
    np.testing.assert_array_equal(np.asarray(new["a"]), [2.0, 2.0])


def test_optlab_transformations_run_inside_optax_chain():
    tx = optax.chain(ol.scale(2.0), optax.scale(-0.5), ol.scale_by_learning_rate(0.1))
    state = tx.init(jnp.zeros(2))
    u, _ = tx.update(jnp.array([1.0, 2.0]), state)
    np.testing.assert_allclose(np.asarray(u), [0.1, 0.2], rtol=1e-6)
