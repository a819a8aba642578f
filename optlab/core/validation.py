"""Eager argument checks for factories, and structural checks for ``update``.

Only concrete Python/NumPy numbers are checked: jax arrays (possibly traced, e.g. under
``vmap`` over a learning rate) and schedules pass through, so sweeps and injection keep
working. Messages name the function, the argument, the rule and the value::

    adam: b1 must be in [0, 1), got b1=1.2
"""

from __future__ import annotations

import math
from typing import Any

import jax

from optlab.core.numerics import is_concrete_number


def _fmt(x: Any) -> str:
    return repr(float(x)) if not isinstance(x, int) else repr(x)


def check_finite(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` if a concrete ``value`` is NaN or infinite."""
    if is_concrete_number(value) and not math.isfinite(float(value)):
        raise ValueError(f"{fn}: {name} must be finite, got {name}={_fmt(value)}")


def check_nonnegative(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is finite and ``>= 0``."""
    check_finite(fn, name, value)
    if is_concrete_number(value) and float(value) < 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {name}={_fmt(value)}")


def check_positive(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is finite and ``> 0``."""
    check_finite(fn, name, value)
    if is_concrete_number(value) and float(value) <= 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {name}={_fmt(value)}")


def check_in_range(
    fn: str,
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_closed: bool = True,
    high_closed: bool = False,
) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` lies in the interval given.

    The default interval is ``[low, high)``, the rule for decay rates such as Adam's betas.
    """
    if not is_concrete_number(value):
        return
    v = float(value)
    ok = (low <= v if low_closed else low < v) and (v <= high if high_closed else v < high)
    if not ok or math.isnan(v):
        interval = f"{'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        raise ValueError(f"{fn}: {name} must be in {interval}, got {name}={_fmt(value)}")


def check_int_at_least(fn: str, name: str, value: Any, minimum: int) -> None:
    """Raises ``ValueError`` unless ``value`` is a Python/NumPy integer ``>= minimum``."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")


def check_learning_rate(fn: str, value: Any, name: str = "learning_rate") -> None:
    """A learning rate must be finite and ``>= 0`` (or a schedule, or a jax array)."""
    check_nonnegative(fn, name, value)


def describe_structure_difference(expected: Any, got: Any) -> str:
    """A short human description of where two tree structures differ."""
    e_paths = {
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(expected)[0]
    }
    g_paths = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(got)[0]}
    missing = sorted(e_paths - g_paths)
    extra = sorted(g_paths - e_paths)
    parts = []
    if missing:
        parts.append(
            f"missing from the updates: {', '.join(missing[:5])}"
            + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        )
    if extra:
        parts.append(
            f"not in the state: {', '.join(extra[:5])}"
            + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else "")
        )
    if not parts:
        parts.append(
            f"same leaf paths but different containers: expected {jax.tree.structure(expected)}, "
            f"got {jax.tree.structure(got)}"
        )
    return "; ".join(parts)


def check_same_structure(fn: str, updates: Any, reference: Any, what: str = "state") -> None:
    """Raises one clear ``ValueError`` if ``updates`` does not have ``reference``'s structure.

    Runs at trace time only (tree structures are static), so it costs nothing in compiled code.
    """
    if jax.tree.structure(updates) != jax.tree.structure(reference):
        raise ValueError(
            f"{fn}: the updates do not have the structure of the parameters the {what} was "
            f"initialized with ({describe_structure_difference(reference, updates)}). Call "
            f"init() on a tree with the same structure as the gradients."
        )


def check_shapes_match(fn: str, updates: Any, reference: Any, what: str = "state") -> None:
    """Like :func:`check_same_structure`, and also every leaf's shape must match."""
    check_same_structure(fn, updates, reference, what)
    for (path, u), r in zip(
        jax.tree_util.tree_flatten_with_path(updates)[0], jax.tree.leaves(reference), strict=True
    ):
        if u is not None and r is not None and u.shape != r.shape:
            raise ValueError(
                f"{fn}: the update at {jax.tree_util.keystr(path)} has shape {u.shape} but the "
                f"{what} was initialized with shape {r.shape}"
            )


def require_params(fn: str, params: Any) -> None:
    """Raises a ``ValueError`` saying how to pass ``params`` when a transformation needs them."""
    if params is None:
        raise ValueError(
            f"{fn}: this transformation needs the current parameters; call "
            f"tx.update(grads, state, params) (with flax.nnx.Optimizer they are passed for you)"
        )


def check_choice(fn: str, name: str, value: Any, choices: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``, suggesting the closest names.

    Used wherever something is chosen by name (activations, initializers, datasets)::

        get_activation: name must be one of ['elu', 'relu', ...], got name='rleu';
        did you mean 'relu'?
    """
    import difflib

    options = sorted(str(c) for c in choices)
    if value in choices:
        return
    close = difflib.get_close_matches(str(value), options, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"{fn}: {name} must be one of {options}, got {name}={value!r}{hint}")


def check_not_schedule(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` if ``value`` is callable where only a number or an array is allowed
    (decay rates, epsilons: schedule them with ``inject_hyperparams`` instead)."""
    if callable(value):
        raise ValueError(
            f"{fn}: {name} must be a number or a jax array, not a schedule, got {name}={value!r}"
        )


# ---------------------------------------------------------------------------------------------
# Type checks used by the training engine (fit, callbacks, Checkpointer). A value of the wrong
# type raises TypeError naming the function, the argument, what it accepts and what it got.


def check_bool(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` is a Python or NumPy bool."""
    import numpy as np

    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be True or False, got {name}={value!r}")


def check_number(fn: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raises ``TypeError`` unless ``value`` is a real Python/NumPy number (not a bool), or a
    jax array (possibly traced); ``None`` passes when ``allow_none``."""
    import numbers

    if value is None and allow_none:
        return
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) or isinstance(value, jax.Array)
    ):
        what = "a number or None" if allow_none else "a number"
        raise TypeError(f"{fn}: {name} must be {what}, got {name}={value!r}")


def check_string(fn: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raises ``TypeError`` unless ``value`` is a ``str`` (or ``None`` when ``allow_none``)."""
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        what = "a string or None" if allow_none else "a string"
        raise TypeError(f"{fn}: {name} must be {what}, got {name}={value!r}")


def check_path(fn: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raises ``TypeError`` unless ``value`` is a ``str`` or ``os.PathLike`` (or ``None``)."""
    import os

    if value is None and allow_none:
        return
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{fn}: {name} must be a path (str or os.PathLike), got {name}={value!r}")


def check_callable(fn: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raises ``TypeError`` unless ``value`` is callable (or ``None`` when ``allow_none``)."""
    if value is None and allow_none:
        return
    if not callable(value):
        raise TypeError(f"{fn}: {name} must be a function, got {name}={value!r}")
