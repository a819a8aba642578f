"""scale_by_adadelta and adadelta against Zeiler's rule in NumPy and against optax."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.optimizers.common import (
    Case,
    RuleChecks,
)


def adadelta_ref(rho=None, eps=1e-6, lr=False, wd=0.0):
    """E[g^2] <- rho E[g^2] + (1 - rho) g^2; dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g;
    E[dx^2] <- rho E[dx^2] + (1 - rho) dx^2; step = -lr dx. ``hp`` is lr or rho."""

    def ref(gs, p, hp):
        r = rho if rho is not None else hp
        eg, ex = np.zeros_like(gs[0]), np.zeros_like(gs[0])
        out = []
        for g in gs:
            g = g + wd * p
            eg = r * eg + (1 - r) * g * g
            dx = np.sqrt(ex + eps) / np.sqrt(eg + eps) * g
            ex = r * ex + (1 - r) * dx * dx
            out.append(-hp * dx if lr else dx)
        return out

    return ref


CASES = [
    Case(
        "scale_by_adadelta",
        lambda r: ol.scale_by_adadelta(r),
        lambda r: optax.scale_by_adadelta(r),
        adadelta_ref(),
        hp=0.9,
        hp2=0.5,
        block="scale_by_adadelta",
    ),
    Case(
        "adadelta",
        lambda lr: ol.adadelta(lr),
        lambda lr: optax.adadelta(lr),
        adadelta_ref(rho=0.9, lr=True),
        hp=1.0,
        hp2=0.5,
        block="scale_by_adadelta",
    ),
    Case(
        "adadelta-weight-decay",
        lambda lr: ol.adadelta(lr, rho=0.8, weight_decay=0.1),
        lambda lr: optax.adadelta(lr, rho=0.8, weight_decay=0.1),
        adadelta_ref(rho=0.8, lr=True, wd=0.1),
        hp=1.0,
        hp2=0.5,
        block="add_decayed_weights",
    ),
]


class TestRules(RuleChecks):
    CASES = tuple(CASES)


def test_no_learning_rate_is_the_papers_unit_descent_step():
    """learning_rate=None is eta = 1 (descent), where optax's None skips the sign flip."""
    g, p = jnp.array([0.5, -1.0]), jnp.zeros(2)
    ours, one = ol.adadelta(), ol.adadelta(1.0)
    u, _ = ours.update(g, ours.init(p), p)
    v, _ = one.update(g, one.init(p), p)
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert np.all(np.sign(np.asarray(u)) == -np.sign(np.asarray(g)))


def test_weight_decay_mask_leaves_unmasked_leaves_alone():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    grads = {"w": jnp.zeros(2), "b": jnp.zeros(2)}
    tx = ol.adadelta(1.0, weight_decay=0.5, weight_decay_mask={"w": True, "b": False})
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(u["b"]), np.zeros(2))
    assert np.all(np.asarray(u["w"]) < 0)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ol.adadelta(rho=1.0), r"adadelta: rho must be in \[0, 1\), got rho=1.0"),
        (lambda: ol.adadelta(eps=0.0), r"adadelta: eps must be > 0, got eps=0.0"),
        (lambda: ol.adadelta(-1.0), r"adadelta: learning_rate must be >= 0"),
        (lambda: ol.adadelta(weight_decay=-0.1), r"adadelta: weight_decay must be >= 0"),
        (
            lambda: ol.scale_by_adadelta(rho=lambda n: 0.9),
            r"scale_by_adadelta: rho must be a number or a jax array",
        ),
    ],
    ids=["rho-1", "zero-eps", "negative-lr", "negative-weight-decay", "schedule-rho"],
)
def test_bad_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
