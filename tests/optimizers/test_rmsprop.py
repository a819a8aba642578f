"""scale_by_rms, scale_by_stddev and rmsprop against the seeds' rule in NumPy and optax."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.optimizers.common import (
    Case,
    RuleChecks,
)


def rms_ref(
    decay=None,
    eps=1e-8,
    s0=0.0,
    in_sqrt=True,
    bias=False,
    centered=False,
    lr=False,
    momentum=None,
    nesterov=False,
):
    """cache <- beta cache + (1 - beta) g^2 (centered: minus the squared mean), step =
    g / sqrt(cache + eps) or g / (sqrt(cache) + eps); then -lr, then a momentum trace.
    ``hp`` is the learning rate when ``lr`` is set, else the decay."""

    def ref(gs, p, hp):
        beta = decay if decay is not None else hp
        s, m, trace = np.full_like(gs[0], s0), np.zeros_like(gs[0]), np.zeros_like(gs[0])
        out = []
        for t, g in enumerate(gs, start=1):
            s = beta * s + (1 - beta) * g * g
            m = beta * m + (1 - beta) * g
            c = 1 / (1 - beta**t) if bias else 1.0
            var = s * c - (m * c) ** 2 if centered else s * c
            u = g / np.sqrt(var + eps) if in_sqrt else g / (np.sqrt(var) + eps)
            if lr:
                u = -hp * u
            if momentum is not None:
                trace = u + momentum * trace
                u = u + momentum * trace if nesterov else trace
            out.append(u)
        return out

    return ref


CASES = [
    Case(
        "scale_by_rms",
        lambda d: ol.scale_by_rms(d),
        lambda d: optax.scale_by_rms(d),
        rms_ref(),
        hp=0.9,
        hp2=0.8,
        block="scale_by_rms",
    ),
    Case(
        "scale_by_rms-torch",
        lambda d: ol.scale_by_rms(d, eps_in_sqrt=False),
        lambda d: optax.scale_by_rms(d, eps_in_sqrt=False),
        rms_ref(in_sqrt=False),
        hp=0.9,
        hp2=0.8,
        block="scale_by_rms",
    ),
    Case(
        "scale_by_rms-initial-1",
        lambda d: ol.scale_by_rms(d, initial_scale=1.0),
        lambda d: optax.scale_by_rms(d, initial_scale=1.0),
        rms_ref(s0=1.0),
        hp=0.9,
        hp2=0.8,
        block="scale_by_rms",
    ),
    Case(
        "scale_by_rms-bias-corrected",
        lambda d: ol.scale_by_rms(d, bias_correction=True),
        lambda d: optax.scale_by_rms(d, bias_correction=True),
        rms_ref(bias=True),
        hp=0.9,
        hp2=0.8,
        block="scale_by_rms",
    ),
    Case(
        "scale_by_stddev",
        lambda d: ol.scale_by_stddev(d),
        lambda d: optax.scale_by_stddev(d),
        rms_ref(centered=True),
        hp=0.9,
        hp2=0.8,
        block="scale_by_stddev",
    ),
    # eps 0.5: the bias-corrected variance is exactly 0 at step 1 and small afterwards (a
    # cancellation), so a small eps would amplify float32 roundoff past any honest tolerance.
    Case(
        "scale_by_stddev-bias-corrected",
        lambda d: ol.scale_by_stddev(d, eps=0.5, bias_correction=True),
        lambda d: optax.scale_by_stddev(d, eps=0.5, bias_correction=True),
        rms_ref(centered=True, eps=0.5, bias=True),
        hp=0.9,
        hp2=0.8,
        block="scale_by_stddev",
    ),
    Case(
        "rmsprop",
        lambda lr: ol.rmsprop(lr),
        lambda lr: optax.rmsprop(lr),
        rms_ref(decay=0.9, lr=True),
        block="scale_by_rms",
    ),
    Case(
        "rmsprop-momentum",
        lambda lr: ol.rmsprop(lr, momentum=0.9),
        lambda lr: optax.rmsprop(lr, momentum=0.9),
        rms_ref(decay=0.9, lr=True, momentum=0.9),
        block="scale_by_rms",
    ),
    Case(
        "rmsprop-centered-nesterov",
        lambda lr: ol.rmsprop(lr, centered=True, momentum=0.5, nesterov=True),
        lambda lr: optax.rmsprop(lr, centered=True, momentum=0.5, nesterov=True),
        rms_ref(decay=0.9, centered=True, lr=True, momentum=0.5, nesterov=True),
        block="scale_by_stddev",
    ),
]


class TestRules(RuleChecks):
    CASES = tuple(CASES)


def test_initial_scale_one_damps_the_first_steps():
    """With the accumulator at 1 (TF1) the first step is g / sqrt(0.9 + 0.1 g^2), not the
    sign-like g / |g| of a zero start (the seeds' remark on the two conventions)."""
    g = jnp.array([0.1])
    zero = ol.scale_by_rms(0.9, initial_scale=0.0)
    one = ol.scale_by_rms(0.9, initial_scale=1.0)
    u0, _ = zero.update(g, zero.init(g))
    u1, _ = one.update(g, one.init(g))
    np.testing.assert_allclose(np.asarray(u0), 0.1 / np.sqrt(0.1 * 0.01 + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(u1), 0.1 / np.sqrt(0.9 + 0.001 + 1e-8), rtol=1e-6)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ol.rmsprop(0.1, decay=1.0), r"rmsprop: decay must be in \[0, 1\), got decay=1.0"),
        (lambda: ol.rmsprop(0.1, eps=-1e-8), r"rmsprop: eps must be > 0, got eps=-1e-08"),
        (lambda: ol.rmsprop(0.1, initial_scale=-1.0), r"rmsprop: initial_scale must be >= 0"),
        (lambda: ol.rmsprop(0.1, momentum=1.5), r"rmsprop: momentum must be in \[0, 1\)"),
        (lambda: ol.rmsprop(0.1, nesterov=True), r"rmsprop: nesterov=True needs a momentum"),
        (lambda: ol.rmsprop(-0.1), r"rmsprop: learning_rate must be >= 0"),
        (lambda: ol.scale_by_stddev(decay=-0.1), r"scale_by_stddev: decay must be in \(0, 1\)"),
        # centered with decay 0: the variance g² - g² is 0 and every step is g / sqrt(eps)
        (lambda: ol.rmsprop(0.1, decay=0.0, centered=True), r"rmsprop: decay must be in \(0, 1\)"),
    ],
    ids=[
        "decay-1",
        "negative-eps",
        "negative-initial",
        "momentum-1.5",
        "nesterov-no-momentum",
        "negative-lr",
        "stddev-negative-decay",
        "centered-decay-0",
    ],
)
def test_bad_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_stddev_clamps_a_variance_that_rounding_makes_negative():
    """At the first bias-corrected step s_hat - m_hat^2 is 0 in exact arithmetic; in float32 it
    rounds to a few ulps of g^2 either side of 0 (negative: NaN before the clamp). The step is
    g / sqrt(max(v, 0) + eps), with v the same float32 arithmetic done in NumPy."""
    g = np.array([3.7e2, -1.3e3, 7.1e1, 2.9e4, 5.3e3, -8.9e2, 1.7e4, 6.1e2], np.float32)
    beta, eps = np.float32(0.9), 1e-8
    tx = ol.scale_by_stddev(float(beta), eps=eps, bias_correction=True)
    u, _ = tx.update(jnp.asarray(g), tx.init(jnp.zeros(g.size)))
    one = np.float32(1)
    m, n = (one - beta) * g, (one - beta) * (g * g)
    c = one / (one - beta)
    v = n * c - (m * c) * (m * c)
    assert np.any(v < 0), v  # the case the clamp exists for
    want = g.astype(np.float64) / np.sqrt(np.maximum(v, 0).astype(np.float64) + eps)
    np.testing.assert_allclose(np.asarray(u), want, rtol=1e-3)
