"""scale_by_rss and adagrad against the seeds' rule in NumPy and against optax."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.optimizers.common import (
    Case,
    RuleChecks,
)


def adagrad_ref(s0=None, eps=1e-7, lr=None):
    """cache <- cache + g^2; step = g / sqrt(cache + eps) (0 where the cache is 0)."""

    def ref(gs, p, hp):
        s = np.full_like(gs[0], hp if s0 is None else s0)
        out = []
        for g in gs:
            s = s + g * g
            u = np.where(s > 0, g / np.sqrt(s + eps), 0.0)
            out.append(u if lr is None else -hp * u)
        return out

    return ref


CASES = [
    Case(
        "scale_by_rss",
        lambda s0: ol.scale_by_rss(s0),
        lambda s0: optax.scale_by_rss(s0),
        adagrad_ref(),
        hp=0.1,
        hp2=0.3,
        block="scale_by_rss",
    ),
    Case(
        "scale_by_rss-zero-init",
        lambda e: ol.scale_by_rss(0.0, eps=e),
        lambda e: optax.scale_by_rss(0.0, eps=e),
        lambda gs, p, e: adagrad_ref(s0=0.0, eps=e)(gs, p, e),
        hp=1e-3,
        hp2=1e-2,
        block="scale_by_rss",
    ),
    Case(
        "adagrad",
        lambda lr: ol.adagrad(lr),
        lambda lr: optax.adagrad(lr),
        lambda gs, p, lr: adagrad_ref(s0=0.1, lr=True)(gs, p, lr),
        block="scale_by_rss",
    ),
]


class TestRules(RuleChecks):
    CASES = tuple(CASES)


def test_zero_gradient_with_zero_accumulator_gives_zero_step():
    tx = ol.scale_by_rss(initial_accumulator_value=0.0)
    u, _ = tx.update(jnp.zeros(3), tx.init(jnp.zeros(3)))
    np.testing.assert_array_equal(np.asarray(u), np.zeros(3))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ol.adagrad(-1.0), r"adagrad: learning_rate must be >= 0, got learning_rate=-1.0"),
        (
            lambda: ol.adagrad(0.1, initial_accumulator_value=-0.1),
            r"adagrad: initial_accumulator_value must be >= 0, got initial_accumulator_value=-0.1",
        ),
        (lambda: ol.adagrad(0.1, eps=0.0), r"adagrad: eps must be > 0, got eps=0.0"),
        (lambda: ol.scale_by_rss(eps=float("inf")), r"scale_by_rss: eps must be finite"),
    ],
    ids=["negative-lr", "negative-initial", "zero-eps", "inf-eps"],
)
def test_bad_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_complex_gradients_accumulate_the_squared_modulus():
    """s_t sums |g|^2 (real) for complex parameters, as optax does."""
    g = jnp.array([1 + 2j, -1j], jnp.complex64)
    tx = ol.scale_by_rss(initial_accumulator_value=0.0, eps=1e-12)
    state = tx.init(jnp.zeros(2, jnp.complex64))
    u, state = tx.update(g, state)
    np.testing.assert_allclose(np.asarray(state.sum_of_squares).real, [5.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(u), np.asarray(g) / np.sqrt([5.0, 1.0]), rtol=1e-6)
