"""Eager argument checks and structural errors: each names function, argument, rule, value."""

import jax
import jax.numpy as jnp
import numpy as np
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
        (lambda x: v.check_int_at_least("f", "k", x, 1), 2.5, r"must be an integer"),
    ],
    ids=[
        "negative",
        "nonpositive",
        "nan",
        "beta",
        "open-closed",
        "int-low",
        "int-type",
        "int-frac",
    ],
)
def test_bad_values_raise_named_errors(check, value, message):
    with pytest.raises(ValueError, match=message):
        check(value)


@pytest.mark.parametrize("value", [jnp.asarray(-1.0), lambda n: -1.0], ids=["array", "schedule"])
def test_traced_values_and_schedules_are_not_checked(value):
    v.check_nonnegative("f", "lr", value, schedule=True)
    v.check_in_range("f", "b1", value, 0, 1, schedule=True)


def test_arrays_are_unchecked_under_jit_too():
    @jax.jit
    def f(lr):
        v.check_positive("f", "lr", lr)
        return lr

    assert float(f(-1.0)) == -1.0


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (
            lambda x: v.check_learning_rate("adam", x),
            "abc",
            r"adam: learning_rate must be a real number, a jax array or a schedule \(a function of "
            r"the step count\), got learning_rate='abc' \(str\)",
        ),
        (lambda x: v.check_learning_rate("adam", x), None, r"got learning_rate=None \(NoneType\)"),
        (lambda x: v.check_positive("f", "eps", x), True, r"eps must be a real number .*\(bool\)"),
        (lambda x: v.check_positive("f", "eps", x), [1.0], r"eps must be a real number .*\(list\)"),
        (
            lambda x: v.check_positive("f", "eps", x),
            lambda n: 1.0,
            r"eps must be a real number or a",
        ),
        (lambda x: v.check_positive("f", "eps", x), 1 + 2j, r"\(complex\)"),
        (
            lambda x: v.check_positive("f", "e", x),
            jnp.array(True),
            r"e must be a real number or a jax array",
        ),
        (
            lambda x: v.check_integer("f", "n", x),
            2.0,
            r"f: n must be an integer, got n=2.0 \(float\)",
        ),
        (lambda x: v.check_integer("f", "n", x), True, r"\(bool\)"),
        (lambda x: v.check_int_at_least("f", "n", x, 1), "3", r"n must be an integer >= 1"),
        (lambda x: v.check_bool("f", "nesterov", x), "yes", r"nesterov must be True or False"),
        (lambda x: v.check_dtype("f", "mu_dtype", x), "flot", r"mu_dtype must be a floating"),
        (lambda x: v.check_dtype("f", "mu_dtype", x), jnp.int32, r"mu_dtype must be a floating"),
        (lambda x: v.check_callable("f", "fn", x), 3, r"f: fn must be a function, got fn=3"),
        (lambda x: v.check_str("f", "mode", x), 1, r"f: mode must be a string"),
        (lambda x: v.check_transformation("f", "inner", x), 1.0, r"inner must be a gradient"),
        (lambda x: v.check_transformation("f", "inner", x), lambda: 0, r"a factory: call it"),
    ],
    ids=[
        "str-lr",
        "none-lr",
        "bool",
        "list",
        "schedule-not-allowed",
        "complex",
        "bool-array",
        "float-int",
        "bool-int",
        "str-int-at-least",
        "bool",
        "dtype-name",
        "int-dtype",
        "callable",
        "str",
        "transformation",
        "factory",
    ],
)
def test_wrong_types_raise_type_errors_naming_what_is_accepted(check, value, message):
    with pytest.raises(TypeError, match=message):
        check(value)


@pytest.mark.parametrize(
    "value", [1, 0.5, np.float32(0.5), np.int64(3), np.array(0.5), jnp.array(0.5), jnp.ones(3)]
)
def test_numbers_and_numeric_arrays_are_numbers(value):
    v.check_number("f", "x", value, allow_array=True)


def test_none_where_allowed():
    v.check_number("f", "x", None, none=True)
    with pytest.raises(TypeError, match="x must be a real number, got x="):
        v.check_number("f", "x", jnp.ones(2))
    v.check_integer("f", "n", None, none=True)
    v.check_dtype("f", "dtype", None)
    with pytest.raises(TypeError, match="x must be a real number, got x=None"):
        v.check_number("f", "x", None)


def test_structure_mismatch_names_the_missing_leaf():
    with pytest.raises(ValueError, match=r"f: .*missing from the updates: \['b'\]"):
        v.check_same_structure("f", {"a": jnp.ones(1)}, {"a": jnp.ones(1), "b": jnp.ones(1)})


def test_shape_mismatch_names_the_leaf():
    with pytest.raises(ValueError, match=r"\['a'\] has shape \(2,\).*shape \(3,\)"):
        v.check_shapes_match("f", {"a": jnp.ones(2)}, {"a": jnp.ones(3)})


def test_require_params_says_how_to_call():
    with pytest.raises(ValueError, match=r"tx.update\(grads, state, params\)"):
        v.require_params("max_norm", None)


def test_updates_must_be_floating_and_shaped_like_the_state_and_params():
    like = {"w": jnp.zeros((3, 2))}
    with pytest.raises(ValueError, match=r"f: the update at \['w'\] has shape \(1, 2\)"):
        v.check_updates("f", {"w": jnp.ones((1, 2))}, like)
    with pytest.raises(TypeError, match=r"f: the update at \['w'\] must be a floating .* int32"):
        v.check_updates("f", {"w": jnp.ones((3, 2), jnp.int32)}, like)
    with pytest.raises(
        ValueError,
        match=r"the updates at \['w'\] has shape \(3, 2\) but the "
        r"parameters there has shape \(2,\)",
    ):
        v.check_updates("f", {"w": jnp.ones((3, 2))}, like, {"w": jnp.ones(2)})
    v.check_updates("f", {"w": jnp.ones((3, 2), jnp.bfloat16)}, like, {"w": jnp.ones((3, 2))})
