"""Eager argument checks and structural errors: each names function, argument, rule, value."""

import jax.numpy as jnp
import pytest

from optlab.core import validation as v


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (lambda x: v.check_nonnegative("f", "lr", x), -1.0, r"f: lr must be >= 0, got lr=-1.0"),
        (lambda x: v.check_positive("f", "eps", x), 0.0, r"f: eps must be > 0, got eps=0.0"),
        (lambda x: v.check_finite("f", "lr", x), float("nan"), r"f: lr must be finite"),
        (
            lambda x: v.check_in_range("adam", "b1", x, 0, 1),
            1.2,
            r"adam: b1 must be in \[0, 1\), got b1=1.2",
        ),
        (
            lambda x: v.check_in_range("f", "p", x, 0, 1, low_closed=False, high_closed=True),
            0.0,
            r"f: p must be in \(0, 1\]",
        ),
        (
            lambda x: v.check_int_at_least("f", "memory_size", x, 1),
            0,
            r"f: memory_size must be an integer >= 1, got memory_size=0",
        ),
        (lambda x: v.check_int_at_least("f", "k", x, 1), 2.0, r"must be an integer"),
    ],
    ids=["negative", "nonpositive", "nan", "beta", "open-closed", "int-low", "int-type"],
)
def test_bad_values_raise_named_errors(check, value, message):
    with pytest.raises(ValueError, match=message):
        check(value)


@pytest.mark.parametrize("value", [jnp.asarray(-1.0), lambda n: -1.0], ids=["array", "schedule"])
def test_traced_values_and_schedules_are_not_checked(value):
    v.check_nonnegative("f", "lr", value)
    v.check_in_range("f", "b1", value, 0, 1)


def test_structure_mismatch_names_the_missing_leaf():
    with pytest.raises(ValueError, match=r"f: .*missing from the updates: \['b'\]"):
        v.check_same_structure("f", {"a": jnp.ones(1)}, {"a": jnp.ones(1), "b": jnp.ones(1)})


def test_shape_mismatch_names_the_leaf():
    with pytest.raises(ValueError, match=r"\['a'\] has shape \(2,\).*shape \(3,\)"):
        v.check_shapes_match("f", {"a": jnp.ones(2)}, {"a": jnp.ones(3)})


def test_require_params_says_how_to_call():
    with pytest.raises(ValueError, match=r"tx.update\(grads, state, params\)"):
        v.require_params("max_norm", None)
