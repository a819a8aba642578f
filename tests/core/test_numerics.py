"""Shared tree numerics against NumPy float64 and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optlab.core import numerics
from tests.helpers import random_tree, to_numpy64


@pytest.mark.parametrize("order", [1, 2], ids=["first", "second"])
def test_update_moment_matches_numpy_ema(order, rng):
    decay = 0.9
    moments = jax.tree.map(jnp.zeros_like, random_tree(rng))
    expected = to_numpy64(moments)
    for _ in range(4):
        g = random_tree(rng)
        moments = numerics.update_moment(g, moments, decay, order)
        expected = jax.tree.map(
            lambda m, x: decay * m + (1 - decay) * x**order, expected, to_numpy64(g)
        )
    for a, e in zip(jax.tree.leaves(moments), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-5, atol=1e-7)


def test_update_moment_per_elem_norm_is_squared_magnitude(rng):
    g = jnp.asarray(rng.standard_normal(5) + 1j * rng.standard_normal(5), jnp.complex64)
    nu = numerics.update_moment_per_elem_norm(g, jnp.zeros(5, jnp.float32), 0.5, 2)
    np.testing.assert_allclose(np.asarray(nu), 0.5 * np.abs(np.asarray(g)) ** 2, rtol=1e-6)


def test_bias_correction_computed_in_float32_for_bf16_moments():
    # In bf16, 1 - 0.999**1 rounds badly (0.999 is not representable); the factor must be f32.
    m = jnp.full((3,), 0.001, jnp.bfloat16)
    corrected = numerics.bias_correction(m, 0.999, jnp.asarray(1))
    assert corrected.dtype == jnp.bfloat16
    exact = float(np.asarray(m, np.float64)[0]) / (1 - 0.999)
    np.testing.assert_allclose(np.asarray(corrected, np.float64), exact, rtol=1e-2)
    # What a bf16 factor would have given: 0.999 rounds to 1.0, the denominator to 0.
    assert float(1 - jnp.asarray(0.999, jnp.bfloat16) ** 1) == 0.0


def test_safe_increment_saturates():
    top = jnp.asarray(np.iinfo(np.int32).max, jnp.int32)
    assert int(numerics.safe_increment(top)) == np.iinfo(np.int32).max
    assert int(numerics.safe_increment(jnp.asarray(5, jnp.int32))) == 6
    assert numerics.safe_increment(jnp.asarray(5, jnp.int32)).dtype == jnp.int32


def test_global_norm_matches_numpy_and_optax(rng):
    tree = random_tree(rng)
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(to_numpy64(tree))])
    np.testing.assert_allclose(float(numerics.global_norm(tree)), np.linalg.norm(flat), rtol=1e-6)
    np.testing.assert_allclose(
        float(numerics.global_norm(tree)), float(optax.tree.norm(tree)), rtol=1e-6
    )


def test_global_norm_accumulates_bf16_in_float32():
    tree = [jnp.full((4096,), 0.01, jnp.bfloat16) for _ in range(4)]
    norm = numerics.global_norm(tree)
    assert norm.dtype == jnp.float32
    exact = np.sqrt(4 * 4096 * float(np.asarray(jnp.bfloat16(0.01), np.float64)) ** 2)
    np.testing.assert_allclose(float(norm), exact, rtol=1e-5)


def test_global_norm_of_empty_tree_is_zero():
    assert float(numerics.global_norm({})) == 0.0


def test_tree_vdot_and_all_finite(rng):
    a, b = random_tree(rng), random_tree(rng)
    expected = sum(
        float(np.vdot(x, y))
        for x, y in zip(jax.tree.leaves(to_numpy64(a)), jax.tree.leaves(to_numpy64(b)), strict=True)
    )
    np.testing.assert_allclose(float(numerics.tree_vdot(a, b)), expected, rtol=1e-5)
    assert bool(numerics.tree_all_finite(a))
    a["b"] = a["b"].at[1].set(jnp.nan)
    assert not bool(numerics.tree_all_finite(a))


def test_zeros_like_works_abstractly():
    shapes = {"w": jax.ShapeDtypeStruct((2, 3), jnp.bfloat16)}
    out = jax.eval_shape(lambda t: numerics.tree_zeros_like(t, jnp.float32), shapes)
    assert out["w"].shape == (2, 3) and out["w"].dtype == jnp.float32


def test_resolve_evaluates_schedules_only():
    assert numerics.resolve(0.5, jnp.asarray(3)) == 0.5
    assert int(numerics.resolve(lambda n: n * 2, jnp.asarray(3))) == 6


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, True),
        (1.5, True),
        (np.float32(2.0), True),
        (np.asarray(1.0), True),
        (True, False),
        (jnp.asarray(1.0), False),
        ("1", False),
    ],
    ids=["int", "float", "np-scalar", "np-0d", "bool", "jax-array", "str"],
)
def test_is_concrete_number(value, expected):
    assert numerics.is_concrete_number(value) is expected
