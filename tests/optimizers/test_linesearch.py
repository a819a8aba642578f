"""Line searches: the conditions they claim, their evaluation counts and their failures.

Accepted steps are checked against NumPy float64 evaluations of the objective and its
analytic gradient (not the library's), over random smooth functions
:math:`f(x) = \\tfrac12 x^\\top P x + b^\\top x + \\sum_j c_j \\sin(w_j^\\top x)`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optlab as ol

DIM, WAVES = 3, 2


def smooth(x, theta):
    p, b, c, w = theta
    return 0.5 * x @ p @ x + b @ x + jnp.sum(c * jnp.sin(w @ x))


def smooth_np(x, theta):
    p, b, c, w = (np.asarray(t, np.float64) for t in theta)
    value = 0.5 * x @ p @ x + b @ x + np.sum(c * np.sin(w @ x))
    grad = p @ x + b + w.T @ (c * np.cos(w @ x))
    return value, grad


def random_problem(seed):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((DIM, DIM))
    theta = (
        m @ m.T + 0.1 * np.eye(DIM),
        rng.standard_normal(DIM),
        2.0 * rng.standard_normal(WAVES),
        2.0 * rng.standard_normal((WAVES, DIM)),
    )
    x0 = 2.0 * rng.standard_normal(DIM)
    precond = rng.standard_normal((DIM, DIM))
    precond = precond @ precond.T + 0.1 * np.eye(DIM)  # u = -M g: a descent direction
    scale = 10.0 ** rng.uniform(-2, 1)  # first trial steps that are too short or too long
    return theta, x0, precond, scale


ZOOM = ol.scale_by_zoom_linesearch(max_linesearch_steps=30, approx_dec_rtol=None)
BACKTRACK = ol.scale_by_backtracking_linesearch(max_backtracking_steps=30)
C1, C2 = 1e-4, 0.9


@jax.jit
def zoom_search(theta, x0, precond, scale):
    value, grad = jax.value_and_grad(smooth)(x0, theta)
    u = -scale * precond @ grad
    updates, state = ZOOM.update(
        u, ZOOM.init(x0), x0, value=value, grad=grad, value_fn=lambda x: smooth(x, theta)
    )
    return updates, state


@jax.jit
def backtracking_search(theta, x0, precond, scale):
    value, grad = jax.value_and_grad(smooth)(x0, theta)
    u = -scale * precond @ grad
    updates, state = BACKTRACK.update(
        u, BACKTRACK.init(x0), x0, value=value, grad=grad, value_fn=lambda x: smooth(x, theta)
    )
    return updates, state


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**31 - 1))
def test_accepted_steps_satisfy_the_conditions_they_claim(x64, seed):
    theta, x0, precond, scale = random_problem(seed)
    f0, g0 = smooth_np(x0, theta)
    u = -scale * precond @ g0
    d0 = g0 @ u
    assert d0 < 0

    updates, state = zoom_search(theta, x0, precond, scale)
    eta = float(state.learning_rate)
    f1, g1 = smooth_np(x0 + eta * u, theta)
    np.testing.assert_allclose(np.asarray(updates), eta * u, rtol=1e-12, atol=1e-15)
    assert float(state.value) == pytest.approx(f1, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(np.asarray(state.grad), g1, rtol=1e-8, atol=1e-10)
    # Armijo holds for every returned step (accepted, or the safe fallback of a failure).
    assert f1 <= f0 + C1 * eta * d0 + 1e-12
    if not bool(state.failed):
        assert eta > 0
        assert abs(g1 @ u) <= C2 * abs(d0) + 1e-12  # strong Wolfe curvature
        assert float(state.info.decrease_error) == 0.0
        assert float(state.info.curvature_error) == 0.0

    updates, state = backtracking_search(theta, x0, precond, scale)
    eta = float(state.learning_rate)
    if not bool(state.failed):
        f1, _ = smooth_np(x0 + eta * u, theta)
        assert f1 <= f0 + C1 * eta * d0 + 1e-12
        np.testing.assert_allclose(np.asarray(updates), eta * u, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(np.asarray(updates), 0.0)


def backtracking_reference(f, x, u, g, steps, max_lr=1.0, dec=0.8, inc=1.5, c=1e-4):
    """NumPy float64 backtracking over consecutive searches: returns [(eta, evals), ...]."""
    out, lr = [], max_lr
    for _ in range(steps):
        f0, slope = f(x), g(x) @ u(x)
        eta, evals = min(lr * inc, max_lr), 0
        while True:
            evals += 1
            if f(x + eta * u(x)) <= f0 + c * eta * slope:
                break
            eta *= dec
        out.append((eta, evals))
        x, lr = x + eta * u(x), eta
    return out


def test_backtracking_matches_reference_and_counts_evaluations(x64):
    a = np.array([1.0, 30.0])

    def f(x):
        return 0.5 * jnp.sum(a * x**2)

    tx = ol.scale_by_backtracking_linesearch(max_backtracking_steps=40, store_grad=True)
    x = jnp.array([1.0, 1.0])
    state = tx.init(x)
    calls = []

    def counted(p):
        jax.debug.callback(lambda: calls.append(1))
        return f(p)

    expected = backtracking_reference(
        lambda v: 0.5 * np.sum(a * v**2),
        np.array([1.0, 1.0]),
        lambda v: -a * v,
        lambda v: a * v,
        steps=4,
    )
    update = jax.jit(tx.update, static_argnames="value_fn")
    for eta, evals in expected:
        value, grad = jax.value_and_grad(f)(x)
        before = len(calls)
        u, state = update(-grad, state, x, value=value, grad=grad, value_fn=counted)
        jax.effects_barrier()
        assert float(state.learning_rate) == pytest.approx(eta, rel=1e-12)
        assert int(state.info.num_linesearch_steps) == evals == len(calls) - before
        x = ol.apply_updates(x, u)
        np.testing.assert_allclose(np.asarray(state.grad), np.asarray(jax.grad(f)(x)))
    assert int(ol.get(state, "num_fun_evals")) == sum(e for _, e in expected)


def test_zoom_counts_its_evaluations(x64):
    theta, x0, _, _ = random_problem(3)
    calls = []

    def counted(x):
        jax.debug.callback(lambda: calls.append(1))
        return smooth(x, theta)

    value, grad = jax.value_and_grad(smooth)(x0, theta)
    _, state = ZOOM.update(
        -100.0 * grad, ZOOM.init(x0), x0, value=value, grad=grad, value_fn=counted
    )
    jax.effects_barrier()
    assert int(ol.get(state, "num_fun_evals")) == len(calls) > 1


@pytest.mark.parametrize("search", [ZOOM, BACKTRACK], ids=["zoom", "backtracking"])
def test_failure_is_reported_and_returns_a_safe_step(search):
    x = jnp.array([1.0, -1.0])
    f = lambda p: jnp.sum(p**2)
    value, grad = jax.value_and_grad(f)(x)
    # An ascent direction: no step decreases f.
    u, state = search.update(grad, search.init(x), x, value=value, grad=grad, value_fn=f)
    assert bool(state.failed)
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    # The next search, along a descent direction, starts afresh and succeeds.
    u, state = search.update(-grad, state, x, value=value, grad=grad, value_fn=f)
    assert not bool(state.failed) and float(f(x + u)) < float(value)
    # An objective that is NaN everywhere but at x: never NaN parameters.
    nan_away = lambda p: jnp.where(jnp.all(p == x), f(p), jnp.nan)
    u, state = search.update(-grad, search.init(x), x, value=value, grad=grad, value_fn=nan_away)
    assert bool(state.failed)
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    assert np.isfinite(float(state.value))


def test_value_and_grad_from_state_reuses_the_stored_values():
    f = lambda x: jnp.sum((x - 1.0) ** 2)
    tx = ol.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)
    x = jnp.zeros(2)
    state = tx.init(x)
    value_and_grad = ol.value_and_grad_from_state(f)
    value, grad = value_and_grad(x, state=state)  # nothing stored yet: computed
    assert float(value) == 2.0
    u, state = tx.update(-grad, state, x, value=value, grad=grad, value_fn=f)
    x = ol.apply_updates(x, u)
    value, grad = value_and_grad(x, state=state)
    assert float(value) == float(ol.get(state, "value")) == pytest.approx(float(f(x)))
    np.testing.assert_allclose(np.asarray(grad), np.asarray(jax.grad(f)(x)), rtol=1e-6)
    with pytest.raises(ValueError, match="store_grad=True"):
        ol.value_and_grad_from_state(f)(x, state=BACKTRACK.init(x)._replace(value=jnp.ones(())))


@pytest.mark.parametrize("search", [ZOOM, BACKTRACK], ids=["zoom", "backtracking"])
def test_missing_or_bad_extra_arguments(search):
    x = jnp.zeros(2)
    f = lambda p: jnp.sum(p**2)
    state = search.init(x)
    with pytest.raises(ValueError, match=r"needs value_fn .*value_fn=f\)"):
        search.update(x, state, x, value=f(x), grad=x)
    with pytest.raises(ValueError, match=r"needs params, value, grad, value_fn.*tx\.update\("):
        search.update(x, state)
    with pytest.raises(ValueError, match=r"value_fn must return a scalar, got \(2,\)"):
        search.update(x, state, x, value=f(x), grad=x, value_fn=lambda p: p**2)


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (
            ol.scale_by_zoom_linesearch,
            {"max_linesearch_steps": 0},
            r"scale_by_zoom_linesearch: max_linesearch_steps must be an integer >= 1",
        ),
        (
            ol.scale_by_zoom_linesearch,
            {"max_linesearch_steps": 5, "curv_rtol": 1e-5},
            r"slope_rtol must be < curv_rtol",
        ),
        (
            ol.scale_by_zoom_linesearch,
            {"max_linesearch_steps": 5, "tol": -1.0},
            r"tol must be >= 0, got tol=-1.0",
        ),
        (
            ol.scale_by_zoom_linesearch,
            {"max_linesearch_steps": 5, "stepsize_precision": 0.0},
            r"stepsize_precision must be > 0",
        ),
        (
            ol.scale_by_zoom_linesearch,
            {"max_linesearch_steps": 5, "initial_guess_strategy": "two"},
            r"initial_guess_strategy must be 'one', 'keep' or 'quadratic'",
        ),
        (
            ol.scale_by_backtracking_linesearch,
            {"max_backtracking_steps": 5, "decrease_factor": 1.0},
            r"decrease_factor must be in \(0, 1\), got decrease_factor=1.0",
        ),
        (
            ol.scale_by_backtracking_linesearch,
            {"max_backtracking_steps": 5, "atol": -1.0},
            r"atol must be >= 0",
        ),
        (
            ol.scale_by_backtracking_linesearch,
            {"max_backtracking_steps": 5, "max_learning_rate": math.nan},
            r"max_learning_rate must be finite",
        ),
    ],
    ids=[
        "zoom_steps",
        "zoom_c2_below_c1",
        "zoom_tol",
        "zoom_precision",
        "zoom_guess",
        "bt_decrease",
        "bt_atol",
        "bt_max_lr_nan",
    ],
)
def test_factory_arguments_are_validated(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)
