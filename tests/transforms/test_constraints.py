"""Tests of optlab.transforms.constraints: max-norm, non-negativity, projections."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import TraceCounter, assert_trees_close, random_tree, to_numpy64


def np_max_norm(q, r, axis):
    n = np.sqrt(np.sum(q * q, axis=axis, keepdims=True))
    return q * np.minimum(1.0, r / n)


def _run_sgd(constrained, steps=100):
    # A loss whose minimum lies far outside the ball: the weights grow without the constraint.
    rng = np.random.default_rng(3)
    params = {
        "kernel": jnp.asarray(0.1 * rng.standard_normal((4, 3)), jnp.float32),
        "bias": jnp.zeros(3),
    }
    target = jnp.asarray(5.0 * rng.standard_normal((4, 3)), jnp.float32)
    tx = (
        ol.chain(ol.scale_by_learning_rate(0.05), ol.max_norm(1.0))
        if constrained
        else ol.scale_by_learning_rate(0.05)
    )

    def loss(p):
        return 0.5 * jnp.sum((p["kernel"] - target) ** 2) + 0.5 * jnp.sum((p["bias"] - 3.0) ** 2)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        p = ol.apply_updates(p, u)
        return (p, s), jnp.max(jnp.linalg.norm(p["kernel"], axis=0))

    (p, _), max_norms = jax.jit(
        lambda: jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    )()
    return p, np.asarray(max_norms)


def test_max_norm_bounds_every_column_over_100_steps():
    _, norms_free = _run_sgd(False)
    p, norms = _run_sgd(True)
    assert norms_free[-1] > 2.0  # the unconstrained run exceeds r = 1
    # Every incoming (column) norm within r after every step, up to float32 rounding.
    assert np.all(norms <= 1.0 + 1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(p["kernel"]), axis=0), 1.0, rtol=1e-6)
    # Biases (ndim 1) are not constrained by default: plain gradient descent on
    # 0.5 (b - 3)^2 from 0, closed form b_100 = 3 (1 - (1 - lr)^100).
    np.testing.assert_allclose(np.asarray(p["bias"]), 3.0 * (1 - 0.95**100), rtol=1e-5)


def test_max_norm_leaves_weights_inside_untouched(rng):
    params = {
        "kernel": jnp.asarray(0.1 * rng.standard_normal((5, 4)), jnp.float32),
        "bias": jnp.asarray(rng.standard_normal(4), jnp.float32),
    }
    updates = jax.tree.map(lambda x: 0.01 * x, params)
    tx = ol.max_norm(10.0)
    u, _ = tx.update(updates, tx.init(params), params)
    assert_trees_close(u, updates, rtol=0, atol=0)  # bit-for-bit the incoming update


@pytest.mark.parametrize(
    ("shape", "axis", "ref_axis"),
    [((4, 3), None, (0,)), ((4, 3), 1, 1), ((3, 3, 2, 4), None, (0, 1, 2)), ((4, 3), 0, 0)],
    ids=["dense_default", "dense_rows_like_seed", "conv_hwio", "dense_axis0"],
)
def test_max_norm_matches_numpy(shape, axis, ref_axis, rng):
    p = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    u = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    tx = ol.max_norm(1.5, axis=axis)
    out, _ = tx.update(u, tx.init(p), p)
    expected = np_max_norm(np.asarray(p, np.float64) + np.asarray(u, np.float64), 1.5, ref_axis)
    # (p + u') is compared: float32 rounding of a subtraction and an addition.
    np.testing.assert_allclose(np.asarray(p + out, np.float64), expected, rtol=1e-5, atol=1e-6)


def test_max_norm_mask_and_errors(rng):
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.full(4, 2.0)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    tx = ol.max_norm(1.0, mask={"kernel": False, "bias": True})
    u, _ = tx.update(zeros, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(u["kernel"]), 0.0)
    np.testing.assert_allclose(
        np.linalg.norm(np.asarray(params["bias"] + u["bias"])), 1.0, rtol=1e-6
    )
    with pytest.raises(ValueError, match="max_norm: the mask tree does not match"):
        bad = ol.max_norm(1.0, mask={"kernel": True})
        bad.update(zeros, bad.init(params), params)
    with pytest.raises(ValueError, match="max_norm: this transformation needs the current"):
        tx.update(zeros, tx.init(params))
    with pytest.raises(ValueError, match=r"max_norm: max_norm must be > 0, got max_norm=-1\.0"):
        ol.max_norm(-1.0)
    with pytest.raises(ValueError, match="max_norm: max_norm must be finite"):
        ol.max_norm(float("inf"))


def test_keep_params_nonnegative_matches_optax(rng):
    params = jax.tree.map(jnp.abs, random_tree(rng))
    ours, ref = ol.keep_params_nonnegative(), optax.keep_params_nonnegative()
    for _ in range(3):
        g = random_tree(rng)
        u, _ = ours.update(g, ours.init(params), params)
        v, _ = ref.update(g, ref.init(params), params)
        assert_trees_close(u, v, rtol=0, atol=0)
        params = ol.apply_updates(params, u)
        assert all(np.all(np.asarray(x) >= 0) for x in jax.tree.leaves(params))


def test_project_l2_ball_matches_optax(rng):
    params = random_tree(rng)
    g = random_tree(rng, scale=2.0)
    tx = ol.project_l2_ball(1.5)
    u, _ = tx.update(g, tx.init(params), params)
    proposed = optax.apply_updates(params, g)
    expected = optax.projections.projection_l2_ball(proposed, 1.5)
    # Rounding of (projected - p) + p in float32.
    assert_trees_close(ol.apply_updates(params, u), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(ol.global_norm(ol.apply_updates(params, u))), 1.5, rtol=1e-5)


def test_project_box_numpy_and_tree_bounds(rng):
    params = random_tree(rng)
    g = random_tree(rng)
    tx = ol.project_box(-0.5, 0.75)
    u, _ = tx.update(g, tx.init(params), params)
    p64, g64 = to_numpy64(params), to_numpy64(g)
    expected = jax.tree.map(lambda p, d: np.clip(p + d, -0.5, 0.75), p64, g64)
    assert_trees_close(ol.apply_updates(params, u), expected, rtol=1e-6, atol=1e-6)
    lower = jax.tree.map(lambda x: jnp.full_like(x, -jnp.inf), params)
    upper = jax.tree.map(jnp.zeros_like, params)
    tree_tx = ol.project_box(lower, upper)
    u2, _ = tree_tx.update(g, tree_tx.init(params), params)
    assert all(np.all(np.asarray(x) <= 0) for x in jax.tree.leaves(ol.apply_updates(params, u2)))
    with pytest.raises(ValueError, match="project_box: lower must be <= upper"):
        ol.project_box(1.0, 0.0)


def test_project_params_with_optax_simplex(rng):
    params = jnp.full(4, 0.25)
    g = jnp.asarray(rng.standard_normal(4), jnp.float32)
    tx = ol.chain(
        ol.scale_by_learning_rate(0.1), ol.project_params(optax.projections.projection_simplex)
    )
    u, _ = tx.update(g, tx.init(params), params)
    new = np.asarray(ol.apply_updates(params, u))
    expected = np.asarray(optax.projections.projection_simplex(params - 0.1 * g))
    np.testing.assert_allclose(new, expected, atol=1e-6)
    np.testing.assert_allclose(new.sum(), 1.0, rtol=1e-6)


def test_dtypes_kept(rng):
    # Shapes and dtypes only: traced with eval_shape, nothing compiled.
    params = {"bf16": random_tree(rng, jnp.bfloat16), "f32": random_tree(rng, jnp.float32)}
    g = jax.tree.map(lambda x: -x, params)
    for tx in [
        ol.max_norm(0.5),
        ol.keep_params_nonnegative(),
        ol.project_l2_ball(1.0),
        ol.project_box(-0.1, 0.1),
    ]:
        u = jax.eval_shape(lambda g, p, tx=tx: tx.update(g, tx.init(p), p, value=0.0)[0], g, params)
        assert jax.tree.map(lambda x: x.dtype, u) == jax.tree.map(lambda x: x.dtype, params)


def test_jit_equals_eager_without_recompiling(rng):
    params = {"kernel": jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)}
    tx = ol.chain(ol.max_norm(1.0), ol.project_l2_ball(1.5), ol.keep_params_nonnegative())
    counted = TraceCounter(tx.update)
    jitted = jax.jit(counted)
    state = tx.init(params)
    for scale in (1.0, 2.0):
        g = jax.tree.map(lambda x, s=scale: s * x, params)
        assert_trees_close(
            jitted(g, state, params)[0], tx.update(g, state, params)[0], rtol=1e-6, atol=1e-6
        )
    assert counted.count == 1


def test_max_norm_f64(x64, rng):
    p = jnp.asarray(rng.standard_normal((5, 3)), jnp.float64)
    u = jnp.asarray(rng.standard_normal((5, 3)), jnp.float64)
    tx = ol.max_norm(0.5)
    out, _ = tx.update(u, tx.init(p), p)
    assert out.dtype == jnp.float64
    expected = np_max_norm(np.asarray(p) + np.asarray(u), 0.5, 0)
    np.testing.assert_allclose(np.asarray(p + out), expected, rtol=1e-13, atol=1e-14)
