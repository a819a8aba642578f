"""trace and sgd: NumPy rules, optax, jit, dtypes, and the seeds' forms of momentum."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.optimizers.common import (
    Case,
    RuleChecks,
)


def _trace_ref(nesterov, lr=None):
    def ref(gs, p, hp):
        decay = hp if lr is None else 0.9
        m = np.zeros_like(gs[0])
        out = []
        for g in gs:
            m = g + decay * m
            u = g + decay * m if nesterov else m
            out.append(u if lr is None else -hp * u)
        return out

    return ref


CASES = [
    Case(
        "trace",
        lambda d: ol.trace(d),
        lambda d: optax.trace(d),
        _trace_ref(False),
        hp=0.9,
        hp2=0.5,
        block="trace",
    ),
    Case(
        "trace-nesterov",
        lambda d: ol.trace(d, nesterov=True),
        lambda d: optax.trace(d, nesterov=True),
        _trace_ref(True),
        hp=0.9,
        hp2=0.5,
        block="trace",
    ),
    Case(
        "sgd",
        lambda lr: ol.sgd(lr),
        lambda lr: optax.sgd(lr),
        lambda gs, p, lr: [-lr * g for g in gs],
    ),
    Case(
        "sgd-momentum",
        lambda lr: ol.sgd(lr, momentum=0.9),
        lambda lr: optax.sgd(lr, momentum=0.9),
        _trace_ref(False, lr=True),
        block="trace",
    ),
    Case(
        "sgd-nesterov",
        lambda lr: ol.sgd(lr, momentum=0.9, nesterov=True),
        lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
        _trace_ref(True, lr=True),
        block="trace",
    ),
]
WITH_STATE = [c for c in CASES if c.block]


class TestRules(RuleChecks):
    CASES = tuple(CASES)
    MISMATCH_CASES = tuple(WITH_STATE)


def test_accumulator_dtype():
    tx = ol.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16)
    state = tx.init(jnp.ones(3))
    u, state = tx.update(jnp.full(3, 0.3), state)
    assert state[0].trace.dtype == jnp.bfloat16
    assert u.dtype == jnp.float32


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ol.sgd(-0.1), r"sgd: learning_rate must be >= 0, got learning_rate=-0.1"),
        (lambda: ol.sgd(float("nan")), r"sgd: learning_rate must be finite"),
        (lambda: ol.sgd(0.1, momentum=1.0), r"sgd: momentum must be in \[0, 1\), got momentum=1.0"),
        (lambda: ol.sgd(0.1, nesterov=True), r"sgd: nesterov=True needs a momentum"),
        (lambda: ol.trace(-0.5), r"trace: decay must be in \[0, 1\], got decay=-0.5"),
        (lambda: ol.trace(lambda n: 0.9), r"trace: decay must be a number or a jax array"),
    ],
    ids=[
        "negative-lr",
        "nan-lr",
        "momentum-1",
        "nesterov-no-momentum",
        "negative-decay",
        "schedule-decay",
    ],
)
def test_bad_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


# ---------------------------------------------------------------------------------------------
# The seeds' forms of momentum, in float64 NumPy, against optlab on an ill-conditioned quadratic.

A = np.diag([1.0, 10.0, 0.5])
B = np.array([1.0, -2.0, 0.5])
X0 = np.array([2.0, 1.0, -3.0])
ALPHA, RHO, STEPS = 0.05, 0.8, 25


def grad(x):
    return A @ x - B


def optlab_trajectory(tx, x0=X0, steps=STEPS):
    x = jnp.asarray(x0)
    state = tx.init(x)
    out = []
    for _ in range(steps):
        u, state = tx.update(grad(np.asarray(x)), state, x)
        x = ol.apply_updates(x, u)
        out.append(np.asarray(x))
    return np.array(out)


def form_velocity_plus(alpha, rho):  # seed 001: v <- rho v + g, x <- x - alpha v
    x, v, out = X0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = rho * v + grad(x)
        x = x - alpha * v
        out.append(x)
    return np.array(out)


def form_velocity_minus(alpha, rho):  # seed 001: v <- rho v - alpha g, x <- x + v
    x, v, out = X0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = rho * v - alpha * grad(x)
        x = x + v
        out.append(x)
    return np.array(out)


def form_m(etas, beta):  # seed 000: m <- beta m + eta g, w <- w - m (eta may vary per step)
    w, m, out = X0.copy(), np.zeros(3), []
    for eta in etas:
        m = beta * m + eta * grad(w)
        w = w - m
        out.append(w)
    return np.array(out)


def form_ema(alpha, beta):  # seed 003: V <- beta V + (1 - beta) alpha g, W <- W - V
    w, v, out = X0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = beta * v + (1 - beta) * alpha * grad(w)
        w = w - v
        out.append(w)
    return np.array(out)


def nesterov_lookahead(alpha, rho):
    """seed 001: v <- rho v - alpha grad(x + rho v), x <- x + v; returns x~ = x + rho v."""
    x, v, out = X0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = rho * v - alpha * grad(x + rho * v)
        x = x + v
        out.append(x + rho * v)
    return np.array(out)


def nesterov_lookahead_003(alpha, beta):
    """seed 003: W' = W - beta V, V <- beta V + alpha grad(W'), W <- W - V; returns W'."""
    w, v, out = X0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = beta * v + alpha * grad(w - beta * v)
        w = w - v
        out.append(w - beta * v)
    return np.array(out)


def nesterov_practical(alpha, beta):
    """seed 003 rewritten: V <- beta V + alpha g(W), W <- W - beta V - alpha g(W)."""
    w, v, out = X0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        g = grad(w)
        v = beta * v + alpha * g
        w = w - beta * v - alpha * g
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize(
    ("form", "tx"),
    [
        (lambda: form_velocity_plus(ALPHA, RHO), lambda: ol.sgd(ALPHA, momentum=RHO)),
        (lambda: form_velocity_minus(ALPHA, RHO), lambda: ol.sgd(ALPHA, momentum=RHO)),
        (lambda: form_m([ALPHA] * STEPS, RHO), lambda: ol.sgd(ALPHA, momentum=RHO)),
        (lambda: form_ema(ALPHA, RHO), lambda: ol.sgd((1 - RHO) * ALPHA, momentum=RHO)),
        (
            lambda: nesterov_lookahead(ALPHA, RHO),
            lambda: ol.sgd(ALPHA, momentum=RHO, nesterov=True),
        ),
        (
            lambda: nesterov_lookahead_003(ALPHA, RHO),
            lambda: ol.sgd(ALPHA, momentum=RHO, nesterov=True),
        ),
        (
            lambda: nesterov_practical(ALPHA, RHO),
            lambda: ol.sgd(ALPHA, momentum=RHO, nesterov=True),
        ),
    ],
    ids=[
        "v-plus-g",
        "v-minus-alpha-g",
        "m-eta-g",
        "ema-form",
        "nesterov-lookahead",
        "nesterov-lookahead-seed003",
        "nesterov-practical",
    ],
)
def test_momentum_forms_give_the_same_trajectory(form, tx, x64):
    expected = form()
    ours = optlab_trajectory(tx())
    # float64 on both sides; the forms differ only by a constant factor in the velocity.
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(expected[-1] - np.linalg.solve(A, B)) < np.linalg.norm(
        X0 - np.linalg.solve(A, B)
    )


def test_forms_differ_once_the_learning_rate_changes(x64):
    """With a decaying learning rate the m-form bakes each eta_t into the velocity, while
    optlab scales the raw trace by the current rate: the trajectories separate."""
    etas = [ALPHA * 0.8**t for t in range(STEPS)]
    m_form = form_m(etas, RHO)
    ours = optlab_trajectory(ol.sgd(lambda t: ALPHA * 0.8**t, momentum=RHO))
    np.testing.assert_allclose(ours[0], m_form[0], rtol=1e-12)  # identical first step
    assert np.max(np.abs(ours - m_form)) > 1e-3


def test_plain_heavy_ball_differs_from_nesterov(x64):
    heavy = optlab_trajectory(ol.sgd(ALPHA, momentum=RHO))
    nesterov = optlab_trajectory(ol.sgd(ALPHA, momentum=RHO, nesterov=True))
    assert np.max(np.abs(heavy - nesterov)) > 1e-3


def test_trace_with_decay_one_is_a_running_sum_as_in_optax():
    grads = [np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([-1.0, 3.0])]
    tx, ref = ol.trace(decay=1.0), optax.trace(decay=1.0)
    state, ref_state = tx.init(jnp.zeros(2)), ref.init(jnp.zeros(2))
    for t, g in enumerate(grads):
        u, state = tx.update(jnp.asarray(g), state)
        ref_u, ref_state = ref.update(jnp.asarray(g), ref_state)
        np.testing.assert_allclose(np.asarray(u), np.sum(grads[: t + 1], axis=0), rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(u), np.asarray(ref_u))
