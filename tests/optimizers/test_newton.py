"""Newton (dense and Newton-CG) and dense BFGS against NumPy float64 references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol

N = 6


def spd_problem(seed=0):
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((N, N)))[0]
    a = q @ np.diag(np.logspace(0, 3, N)) @ q.T
    return a, rng.standard_normal(N)


A, B = spd_problem()


def quadratic(x):
    return 0.5 * x @ jnp.asarray(A) @ x - jnp.asarray(B) @ x


@pytest.mark.parametrize(
    "tx",
    [ol.newton(), ol.newton(solver="cg", cg_tol=1e-12)],
    ids=["dense", "cg"],
)
def test_newton_solves_a_quadratic_in_one_step(x64, tx):
    result = ol.minimize(quadratic, jnp.zeros(N), method=tx, tol=1e-8, max_steps=10)
    assert int(result.num_steps) == 1 and bool(result.converged)
    np.testing.assert_allclose(np.asarray(result.params), np.linalg.solve(A, B), rtol=1e-8)
    assert int(result.num_fun_evals) == 2  # x0, then the accepted unit step


@pytest.mark.parametrize("solver", ["dense", "cg"], ids=["dense", "cg"])
def test_damped_direction_matches_numpy_solve(x64, solver):
    tx = ol.scale_by_newton(damping=3.0, solver=solver, cg_tol=1e-12)
    x = jnp.asarray(np.linspace(-1.0, 1.0, N))
    g = jax.grad(quadratic)(x)
    u, state = jax.jit(tx.update, static_argnames="value_fn")(g, tx.init(x), x, value_fn=quadratic)
    expected = np.linalg.solve(A + 3.0 * np.eye(N), np.asarray(g))
    np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-8)
    assert not bool(state.used_gradient)
    if solver == "cg":
        assert 1 <= int(state.num_cg_steps) <= 3 * N


@pytest.mark.parametrize("solver", ["dense", "cg"], ids=["dense", "cg"])
def test_indefinite_hessian_falls_back_to_the_gradient(solver):
    saddle = lambda x: x[0] ** 2 - x[1] ** 2
    x = jnp.array([0.5, 1.0])  # g = (1, -2); H^-1 g = (0.5, 1) is not a descent direction
    tx = ol.scale_by_newton(solver=solver)
    g = jax.grad(saddle)(x)
    u, state = jax.jit(tx.update, static_argnames="value_fn")(g, tx.init(x), x, value_fn=saddle)
    assert bool(state.used_gradient)
    np.testing.assert_allclose(np.asarray(u), np.asarray(g))


def bfgs_reference(xs, gs):
    """Dense BFGS directions H_k g_k in NumPy float64, with H scaled by s'y/y'y before the
    first update (Nocedal & Wright eq. 6.20) and min(1, 1/|g|) g before any pair."""
    h, out = None, []
    for k, (x, g) in enumerate(zip(xs, gs, strict=True)):
        if k > 0:
            s, y = x - xs[k - 1], g - gs[k - 1]
            rho = 1.0 / (s @ y)
            if h is None:
                h = (s @ y) / (y @ y) * np.eye(len(x))
            v = np.eye(len(x)) - rho * np.outer(y, s)
            h = v.T @ h @ v + rho * np.outer(s, s)
        out.append(min(1.0, 1.0 / np.linalg.norm(g)) * g if h is None else h @ g)
    return out


def test_bfgs_matches_numpy_reference_on_a_pytree(x64, rng):
    tx = ol.scale_by_bfgs(scale_init_precond=True)
    update = jax.jit(tx.update)
    xs = [rng.standard_normal(N) for _ in range(5)]
    gs = [A @ x - B for x in xs]

    def tree(v):  # the same vector as a two-leaf pytree
        return {"a": jnp.asarray(v[:2]), "b": jnp.asarray(v[2:].reshape(2, 2))}

    state = tx.init(tree(xs[0]))
    for k, (x, g, e) in enumerate(zip(xs, gs, bfgs_reference(xs, gs), strict=True)):
        u, state = update(tree(g), state, tree(x))
        flat = np.concatenate([np.asarray(u["a"]), np.asarray(u["b"]).ravel()])
        np.testing.assert_allclose(flat, e, rtol=1e-10, err_msg=f"step {k}")
    assert int(state.num_pairs) == 4


def test_bfgs_skips_pairs_without_positive_curvature(x64):
    tx = ol.scale_by_bfgs()
    x0, x1 = jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0])
    state = tx.init(x0)
    update = jax.jit(tx.update)
    _, state = update(jnp.array([1.0, 1.0]), state, x0)
    u, state = update(jnp.array([0.0, 1.0]), state, x1)  # s'y = -1
    assert int(state.num_pairs) == 0
    np.testing.assert_allclose(np.asarray(u), [0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(state.inv_hessian), np.eye(2))


def test_bad_arguments():
    with pytest.raises(
        ValueError,
        match=r"scale_by_newton: damping must be >= 0, got "
        r"damping=-1.0",
    ):
        ol.newton(damping=-1.0)
    with pytest.raises(ValueError, match=r"solver must be 'dense' or 'cg', got solver='lu'"):
        ol.scale_by_newton(solver="lu")
    with pytest.raises(ValueError, match=r"cg_max_steps must be an integer >= 1"):
        ol.scale_by_newton(solver="cg", cg_max_steps=0)
    with pytest.raises(ValueError, match=r"cg_tol must be > 0"):
        ol.scale_by_newton(solver="cg", cg_tol=0.0)
    tx = ol.scale_by_newton()
    x = jnp.ones(2)
    with pytest.raises(
        ValueError,
        match=r"needs value_fn=.*minimize\(f, params, "
        r"method='newton'\)",
    ):
        tx.update(x, tx.init(x), x)
    with pytest.raises(ValueError, match=r"value_fn must return a scalar, got \(2,\)"):
        tx.update(x, tx.init(x), x, value_fn=lambda p: p**2)
    with pytest.raises(
        ValueError,
        match=r"scale_by_bfgs: update\(\) needs the current "
        r"parameters",
    ):
        ol.scale_by_bfgs().update(x, ol.scale_by_bfgs().init(x))


@pytest.mark.parametrize("name", ["lbfgs", "bfgs", "newton"], ids=["lbfgs", "bfgs", "newton"])
def test_abstract_init_matches_concrete_init(name):
    tx = getattr(ol, name)()
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.zeros(3, jnp.float32)}
    abstract = jax.eval_shape(
        tx.init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    )
    concrete = tx.init(params)
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    for a, c in zip(jax.tree.leaves(abstract), jax.tree.leaves(concrete), strict=True):
        assert (a.shape, a.dtype) == (c.shape, c.dtype)
