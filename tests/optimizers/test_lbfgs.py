"""scale_by_lbfgs against a dense NumPy float64 L-BFGS matrix and optax.scale_by_lbfgs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import TraceCounter, assert_trees_close, random_tree


def dense_lbfgs_directions(xs, gs, memory_size, skip=()):
    """P_k g_k for each k, with P_k formed as a matrix by the recursion
    P <- V^T P V + rho s s^T, V = I - rho y s^T, from gamma I (Nocedal & Wright eq. 7.19)."""
    n = xs[0].size
    pairs, out, gamma = [], [], None
    for k, (x, g) in enumerate(zip(xs, gs, strict=True)):
        if k > 0 and k not in skip:
            s, y = x - xs[k - 1], g - gs[k - 1]
            pairs = [*pairs, (s, y)][-memory_size:]
            gamma = (s @ y) / (y @ y)
        if not pairs:
            out.append(min(1.0, 1.0 / np.linalg.norm(g)) * g)
            continue
        p = gamma * np.eye(n)
        for s, y in pairs:
            rho = 1.0 / (s @ y)
            v = np.eye(n) - rho * np.outer(y, s)
            p = v.T @ p @ v + rho * np.outer(s, s)
        out.append(p @ g)
    return out


def convex_sequence(rng, steps, n=5):
    """Points and gradients of a convex quadratic (every pair has s'y > 0)."""
    m = rng.standard_normal((n, n))
    a, b = m @ m.T + np.eye(n), rng.standard_normal(n)
    xs = [rng.standard_normal(n) for _ in range(steps)]
    return xs, [a @ x + b for x in xs]


@pytest.fixture
def lbfgs_update():
    """One jitted update shared by the tests below (memory_size=3)."""
    tx = ol.scale_by_lbfgs(memory_size=3)
    counter = TraceCounter(tx.update)
    return tx, counter, jax.jit(counter)


def run(tx, update, xs, gs):
    state = tx.init(jnp.asarray(xs[0]))
    directions = []
    for x, g in zip(xs, gs, strict=True):
        d, state = update(jnp.asarray(g), state, jnp.asarray(x))
        directions.append(np.asarray(d))
    return directions, state


def test_two_loop_matches_dense_numpy_reference(x64, rng, lbfgs_update):
    tx, counter, update = lbfgs_update
    xs, gs = convex_sequence(rng, steps=7)
    ours, state = run(tx, update, xs, gs)
    # 7 steps with memory 3: the ring buffer wraps around twice.
    for k, (a, e) in enumerate(zip(ours, dense_lbfgs_directions(xs, gs, 3), strict=True)):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, err_msg=f"step {k}")
    assert int(state.num_pairs) == 3 and counter.count == 1  # one compilation for 7 calls
    s, y = xs[-1] - xs[-2], gs[-1] - gs[-2]
    assert float(ol.get(state, "gamma")) == pytest.approx((s @ y) / (y @ y), rel=1e-12)


def test_pairs_without_positive_curvature_are_skipped(x64, rng, lbfgs_update):
    tx, _, update = lbfgs_update
    xs, gs = convex_sequence(rng, steps=5)
    gs[3] = gs[2] - 2.0 * (xs[3] - xs[2])  # s'y = -2 |s|^2 < 0 at step 3
    ours, state = run(tx, update, xs, gs)
    expected = dense_lbfgs_directions(xs, gs, 3, skip=(3,))
    for k, (a, e) in enumerate(zip(ours, expected, strict=True)):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, err_msg=f"step {k}")
    assert int(state.num_pairs) == 3  # pairs 1, 2 and 4
    # -P g stays a descent direction.
    assert all(float(a @ g) > 0 for a, g in zip(ours, gs, strict=True))


def test_matches_optax_scale_by_lbfgs_on_pytrees(rng):
    # Leafwise positive curvature: g = d * x + c, so every pair has s'y > 0 and optax (which
    # keeps every pair) and optlab (which skips non-positive ones) must agree.
    d = random_tree(rng)
    d = jax.tree.map(lambda v: 1.0 + jnp.abs(v), d)
    c = random_tree(rng)
    ours_tx, theirs_tx = ol.scale_by_lbfgs(memory_size=4), optax.scale_by_lbfgs(memory_size=4)
    params = random_tree(rng)
    ours_state, theirs_state = ours_tx.init(params), theirs_tx.init(params)
    ours_update, theirs_update = jax.jit(ours_tx.update), jax.jit(theirs_tx.update)
    for _ in range(10):
        grads = jax.tree.map(lambda a, x, b: a * x + b, d, params, c)
        ours, ours_state = ours_update(grads, ours_state, params)
        theirs, theirs_state = theirs_update(grads, theirs_state, params)
        # float32 two-loop recursions in a different order of operations: 1e-4 relative.
        assert_trees_close(ours, theirs, rtol=1e-4, atol=1e-5)
        params = jax.tree.map(lambda x, u: x - 0.1 * u, params, ours)


def test_dtypes_and_abstract_init():
    # a bfloat16 and a float32 leaf in one tree: both dtypes checked by one compilation
    tx = ol.scale_by_lbfgs(memory_size=2)
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.zeros(3, jnp.float32)}
    state = tx.init(params)
    u, state = jax.jit(tx.update)(jax.tree.map(jnp.ones_like, params), state, params)
    assert (u["w"].dtype, u["b"].dtype) == (jnp.bfloat16, jnp.float32)
    abstract = jax.eval_shape(
        tx.init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    )
    assert abstract.diff_params_memory["w"].shape == (2, 2, 3)


def test_lbfgs_alias_is_the_documented_chain(x64):
    f = lambda x: jnp.sum(jnp.array([1.0, 10.0, 100.0]) * (x - 1.0) ** 2)
    x = jnp.zeros(3)
    with_lr = ol.lbfgs(learning_rate=0.5, linesearch=None)
    state = with_lr.init(x)
    u, state = jax.jit(with_lr.update)(jax.grad(f)(x), state, x)
    g = np.asarray(jax.grad(f)(x))
    np.testing.assert_allclose(np.asarray(u), -0.5 * g / np.linalg.norm(g), rtol=1e-12)
    assert float(ol.get(state, "learning_rate")) == 0.5


def test_bad_arguments():
    with pytest.raises(
        ValueError,
        match=r"scale_by_lbfgs: memory_size must be an integer >= 1, "
        r"got memory_size=0",
    ):
        ol.scale_by_lbfgs(memory_size=0)
    with pytest.raises(ValueError, match=r"memory_size must be an integer >= 1"):
        ol.lbfgs(memory_size=-2)
    with pytest.raises(ValueError, match=r"lbfgs: learning_rate must be >= 0"):
        ol.lbfgs(learning_rate=-1.0)
    tx = ol.scale_by_lbfgs()
    with pytest.raises(
        ValueError,
        match=r"scale_by_lbfgs: update\(\) needs the current "
        r"parameters.*tx\.update\(grad, state, params",
    ):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
    with pytest.raises(ValueError, match=r"scale_by_lbfgs: the updates do not have the structure"):
        tx.update({"a": jnp.ones(2)}, tx.init(jnp.ones(2)), {"a": jnp.ones(2)})
