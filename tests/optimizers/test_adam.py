"""The Adam family against the published rules in NumPy and against optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.optimizers.common import (
    Case,
    RuleChecks,
)


def adam_ref(
    role="lr",
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    nesterov=False,
    wd=0.0,
    amsgrad=False,
    bc_mu=True,
    bc_nu=True,
    adamax=False,
    lr=None,
):
    """Kingma & Ba's Algorithm 1 (with Dozat's look-ahead for ``nesterov``, Reddi et al.'s
    running maximum for ``amsgrad``, section 7.1's infinity norm for ``adamax``), then
    decoupled weight decay and -lr. ``hp`` takes the role named by ``role``."""

    def ref(gs, p, hp):
        h = {"lr": lr, "b1": b1, "b2": b2}
        h[role] = hp
        beta1, beta2 = h["b1"], h["b2"]
        m, v, vmax = (np.zeros_like(gs[0]) for _ in range(3))
        out = []
        for t, g in enumerate(gs, start=1):
            m = beta1 * m + (1 - beta1) * g
            if adamax:
                v = np.maximum(beta2 * v, np.abs(g) + eps)
                u = m / (1 - beta1**t) / v
            else:
                v = beta2 * v + (1 - beta2) * g * g
                mhat = m / (1 - beta1**t) if bc_mu else m
                if nesterov:
                    mhat = beta1 * m / (1 - beta1 ** (t + 1)) + (1 - beta1) * g / (1 - beta1**t)
                vhat = v / (1 - beta2**t) if bc_nu else v
                if amsgrad:
                    vmax = np.maximum(vmax, vhat)
                    vhat = vmax
                u = mhat / (np.sqrt(vhat + eps_root) + eps)
            u = u + wd * p
            out.append(u if h["lr"] is None else -h["lr"] * u)
        return out

    return ref


CASES = [
    Case(
        "scale_by_adam",
        lambda b1: ol.scale_by_adam(b1),
        lambda b1: optax.scale_by_adam(b1),
        adam_ref("b1"),
        hp=0.9,
        hp2=0.8,
        block="scale_by_adam",
    ),
    Case(
        "scale_by_adam-eps-root",
        lambda b2: ol.scale_by_adam(b2=b2, eps_root=1e-6),
        lambda b2: optax.scale_by_adam(b2=b2, eps_root=1e-6),
        adam_ref("b2", eps_root=1e-6),
        hp=0.99,
        hp2=0.9,
        block="scale_by_adam",
    ),
    Case(
        "scale_by_adam-nesterov",
        lambda b1: ol.scale_by_adam(b1, nesterov=True),
        lambda b1: optax.scale_by_adam(b1, nesterov=True),
        adam_ref("b1", nesterov=True),
        hp=0.9,
        hp2=0.8,
        block="scale_by_adam",
    ),
    Case(
        "scale_by_amsgrad",
        lambda b2: ol.scale_by_amsgrad(b2=b2),
        lambda b2: optax.scale_by_amsgrad(b2=b2),
        adam_ref("b2", amsgrad=True),
        hp=0.9,
        hp2=0.99,
        block="scale_by_amsgrad",
    ),
    Case(
        "scale_by_amsgrad-paper",
        lambda b2: ol.scale_by_amsgrad(b2=b2, bias_correction_mu=False, bias_correction_nu=False),
        lambda b2: optax.scale_by_amsgrad(
            b2=b2, bias_correction_mu=False, bias_correction_nu=False
        ),
        adam_ref("b2", amsgrad=True, bc_mu=False, bc_nu=False),
        hp=0.9,
        hp2=0.99,
        block="scale_by_amsgrad",
    ),
    Case(
        "scale_by_adamax",
        lambda b2: ol.scale_by_adamax(b2=b2),
        lambda b2: optax.scale_by_adamax(b2=b2),
        adam_ref("b2", adamax=True),
        hp=0.9,
        hp2=0.99,
        block="scale_by_adamax",
    ),
    Case(
        "adam", lambda lr: ol.adam(lr), lambda lr: optax.adam(lr), adam_ref(), block="scale_by_adam"
    ),
    Case(
        "adamw",
        lambda lr: ol.adamw(lr, weight_decay=0.1),
        lambda lr: optax.adamw(lr, weight_decay=0.1),
        adam_ref(wd=0.1),
        block="scale_by_adam",
    ),
    Case(
        "nadam",
        lambda lr: ol.nadam(lr),
        lambda lr: optax.nadam(lr),
        adam_ref(nesterov=True),
        block="scale_by_adam",
    ),
    Case(
        "nadamw",
        lambda lr: ol.nadamw(lr, weight_decay=0.1),
        lambda lr: optax.nadamw(lr, weight_decay=0.1),
        adam_ref(nesterov=True, wd=0.1),
        block="scale_by_adam",
    ),
    Case(
        "amsgrad",
        lambda lr: ol.amsgrad(lr),
        lambda lr: optax.amsgrad(lr),
        adam_ref(amsgrad=True),
        block="scale_by_amsgrad",
    ),
    Case(
        "adamax",
        lambda lr: ol.adamax(lr),
        lambda lr: optax.adamax(lr),
        adam_ref(adamax=True),
        block="scale_by_adamax",
    ),
]


class TestRules(RuleChecks):
    CASES = tuple(CASES)


def test_adamw_mask_by_pattern_matches_optax_with_a_tree_mask(rng):
    params = {
        "kernel": jnp.asarray(rng.standard_normal((3, 2)), jnp.float32),
        "bias": jnp.asarray(rng.standard_normal(2), jnp.float32),
    }
    ours = ol.adamw(0.1, weight_decay=0.5, mask="*kernel")
    theirs = optax.adamw(0.1, weight_decay=0.5, mask={"kernel": True, "bias": False})
    s1, s2 = ours.init(params), theirs.init(params)
    for _ in range(10):
        g = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), jnp.float32), params)
        u1, s1 = ours.update(g, s1, params)
        u2, s2 = theirs.update(g, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
            # float32 on both sides, same formula: see check_against_optax for the tolerance.
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "mu", "nu"),
    [
        ({"mu_dtype": jnp.bfloat16}, jnp.bfloat16, jnp.float32),
        ({"nu_dtype": jnp.bfloat16}, jnp.float32, jnp.bfloat16),
        ({"mu_dtype": jnp.float32, "nu_dtype": jnp.float32}, jnp.float32, jnp.float32),
    ],
    ids=["mu-bf16", "nu-bf16", "both-f32"],
)
def test_moment_dtypes(kwargs, mu, nu, rng):
    params = jnp.asarray(rng.standard_normal(5), jnp.float32)
    tx = ol.scale_by_adam(**kwargs)
    state = tx.init(params)
    for _ in range(3):
        u, state = tx.update(params * 0.5, state)
    assert (state.mu.dtype, state.nu.dtype, u.dtype) == (mu, nu, jnp.float32)
    exact = ol.scale_by_adam()
    ue, _ = exact.update(params * 0.5, exact.init(params))
    # A constant gradient gives the sign after any number of steps, whatever the storage.
    np.testing.assert_allclose(np.asarray(u), np.sign(np.asarray(params)), rtol=2e-2)
    np.testing.assert_allclose(np.asarray(ue), np.sign(np.asarray(params)), rtol=1e-5)


def test_mu_dtype_rounds_only_the_stored_moment(rng):
    """With ``mu_dtype=bfloat16`` a step uses the unrounded moment and only the stored copy is
    rounded (NumPy float64 reference with the same bf16 rounding of the state). optax rounds
    ``b1 * m`` to bf16 before adding the gradient term as well, which costs it up to 1e-3
    relative error on these inputs, so optax is not the oracle here."""
    params = jnp.asarray(rng.standard_normal(6), jnp.float32)
    tx = ol.scale_by_adam(mu_dtype=jnp.bfloat16)
    state = tx.init(params)
    m, v = np.zeros(6), np.zeros(6)
    for t in range(1, 11):
        g = np.asarray(rng.standard_normal(6), np.float32)
        u, state = tx.update(jnp.asarray(g), state)
        m = 0.9 * m + 0.1 * g.astype(np.float64)
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        expected = m / (1 - 0.9**t) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        m = m.astype(jnp.bfloat16).astype(np.float64)  # what the state keeps
        # float32 arithmetic on float64-exact inputs: a few ulps of the O(1) update.
        np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(state.mu, np.float64), m)


def test_bias_correction_is_computed_in_float32_for_bfloat16():
    """With bf16 params, 1 - 0.999**t must not be rounded to bf16 (it would be 0 at t=1)."""
    tx = ol.scale_by_adam()
    g = jnp.full(3, 0.25, jnp.bfloat16)
    u, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(np.asarray(u, np.float32), 1.0, rtol=1e-2)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ol.adam(0.1, b1=1.2), r"adam: b1 must be in \[0, 1\), got b1=1.2"),
        (lambda: ol.adam(0.1, b2=-0.1), r"adam: b2 must be in \[0, 1\), got b2=-0.1"),
        (lambda: ol.adam(0.1, eps=0.0), r"adam: eps must be > 0, got eps=0.0"),
        (lambda: ol.adam(0.1, eps_root=-1.0), r"adam: eps_root must be >= 0, got eps_root=-1.0"),
        (lambda: ol.adam(float("inf")), r"adam: learning_rate must be finite"),
        (lambda: ol.adamw(0.1, weight_decay=-1.0), r"adamw: weight_decay must be >= 0"),
        (lambda: ol.nadamw(0.1, b1=1.0), r"nadamw: b1 must be in \[0, 1\)"),
        (lambda: ol.nadam(-0.1), r"nadam: learning_rate must be >= 0"),
        (lambda: ol.amsgrad(0.1, b2=1.0), r"amsgrad: b2 must be in \[0, 1\)"),
        (lambda: ol.adamax(0.1, eps=-1.0), r"adamax: eps must be > 0"),
        (
            lambda: ol.scale_by_adam(b1=lambda n: 0.9),
            r"scale_by_adam: b1 must be a number or a jax array, not a schedule",
        ),
    ],
    ids=[
        "b1",
        "b2",
        "eps",
        "eps-root",
        "inf-lr",
        "weight-decay",
        "nadamw-b1",
        "nadam-lr",
        "amsgrad-b2",
        "adamax-eps",
        "schedule-b1",
    ],
)
def test_bad_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_adamw_without_params_says_what_to_pass():
    tx = ol.adamw(0.1)
    with pytest.raises(ValueError, match=r"add_decayed_weights: .*params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def test_complex_parameters_match_optax(rng):
    shape = (3,)
    params = jnp.zeros(shape, jnp.complex64)
    ours, theirs = ol.adam(0.1), optax.adam(0.1)
    s1, s2 = ours.init(params), theirs.init(params)
    for _ in range(10):
        g = jnp.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape), jnp.complex64)
        u1, s1 = ours.update(g, s1)
        u2, s2 = theirs.update(g, s2)
        assert u1.dtype == jnp.complex64
        # float32 parts, algebraically equal formulas: see common.check_against_optax.
        np.testing.assert_allclose(np.asarray(u1), np.asarray(u2), rtol=2e-5, atol=1e-6)
