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
# Type checks: a wrong type is a ``TypeError`` naming the function, the argument, what it accepts
# and what it got (issue 11). Added for optlab.nn; general, so any factory may call them.


def _got(name: str, value: Any) -> str:
    return f"got {name}={value!r} ({type(value).__name__})"


def is_real_number(value: Any) -> bool:
    """True for Python/NumPy real numbers and 0-d real NumPy arrays (never for a ``bool``)."""
    import numbers

    import numpy as np

    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and np.issubdtype(value.dtype, np.number) and value.dtype.kind != "c"
    return isinstance(value, numbers.Real)


def check_number(fn: str, name: str, value: Any, *, allow_array: bool = False) -> None:
    """Raises ``TypeError`` unless ``value`` is a real number (a ``bool`` is not one).

    With ``allow_array`` a jax array (possibly traced: a swept hyperparameter) is accepted too.
    """
    if is_real_number(value):
        return
    if allow_array and isinstance(value, jax.Array):
        return
    accepts = "a real number or a jax array" if allow_array else "a real number"
    raise TypeError(f"{fn}: {name} must be {accepts}, {_got(name, value)}")


def check_integer(fn: str, name: str, value: Any, minimum: int | None = None) -> None:
    """Raises ``TypeError`` unless ``value`` is an integer (not a bool), ``ValueError`` if it is
    below ``minimum``."""
    import numbers

    import numpy as np

    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        rule = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise TypeError(f"{fn}: {name} must be {rule}, {_got(name, value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")


# --- Type checks for arguments (added for optlab.data; general, usable by every layer) -------
# They raise ``TypeError`` naming the function, the argument, what it accepts and what it got.
# Like the value checks above, they let jax arrays (possibly traced) through where numbers are
# accepted, so sweeps under ``vmap`` keep working.


def describe_value(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, shortened to ``limit`` characters, then its type's name."""
    text = " ".join(repr(value).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _is_jax_array(value: Any) -> bool:
    return isinstance(value, jax.Array)


def check_bool(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` is ``True`` or ``False`` (or a NumPy bool)."""
    import numpy as np

    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be True or False, got {name}={describe_value(value)}")


def check_real(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` is a real number: a Python or NumPy int or float
    (not a bool), a 0-d NumPy array, or a 0-d jax array (possibly traced)."""
    import numpy as np

    if is_concrete_number(value):
        if np.asarray(value).dtype.kind in "iuf":
            return
    elif _is_jax_array(value) and value.ndim == 0 and value.dtype.kind in "iuf":
        return
    raise TypeError(f"{fn}: {name} must be a real number, got {name}={describe_value(value)}")


def check_int_range(
    fn: str, name: str, value: Any, minimum: int | None = None, maximum: int | None = None
) -> None:
    """Raises ``TypeError`` unless ``value`` is a Python/NumPy integer (not a bool), and
    ``ValueError`` unless it lies in ``[minimum, maximum]`` (either bound optional)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an integer, got {name}={describe_value(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f">= {minimum}"
        high = "" if maximum is None else f"<= {maximum}"
        rule = " and ".join(p for p in (low, high) if p)
        raise ValueError(f"{fn}: {name} must be an integer {rule}, got {name}={int(value)!r}")


def check_seed(fn: str, name: str, value: Any) -> None:
    """A seed for NumPy/scikit-learn: an integer in ``[0, 2**32)``."""
    check_int_range(fn, name, value, 0, 2**32 - 1)


def check_str(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` is a string."""
    if not isinstance(value, str):
        raise TypeError(f"{fn}: {name} must be a string, got {name}={describe_value(value)}")


def as_path(fn: str, name: str, value: Any) -> str:
    """Returns ``os.fspath(value)``; raises ``TypeError`` unless it is a non-empty path (a
    string or an ``os.PathLike``) and ``ValueError`` for the empty string."""
    import os

    if not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"{fn}: {name} must be a path (str or os.PathLike), got {name}={describe_value(value)}"
        )
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{fn}: {name} must be a text path, got {name}={describe_value(value)}")
    if not path:
        raise ValueError(f"{fn}: {name} must be a non-empty path, got {name}=''")
    return path


def check_array(
    fn: str,
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    kinds: str = "biuf",
) -> Any:
    """Checks that ``value`` is an array (NumPy or jax, or a nested sequence of numbers) of the
    given rank whose dtype kind is one of ``kinds`` (NumPy's letters: ``b`` bool, ``i``/``u``
    integers, ``f`` floats, ``c`` complex); returns it as an array (jax arrays unchanged).

    Raises ``TypeError`` for strings, ``None``, objects and wrong dtypes, ``ValueError`` for a
    wrong rank.
    """
    import numpy as np

    names = {"b": "bool", "i": "integer", "u": "unsigned", "f": "floating", "c": "complex"}
    accepts = "/".join(names[k] for k in kinds if k in names)
    if isinstance(value, str | bytes) or value is None:
        raise TypeError(
            f"{fn}: {name} must be an array of {accepts} numbers, got "
            f"{name}={describe_value(value)}"
        )
    if _is_jax_array(value) or isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{fn}: {name} must be an array of {accepts} numbers, got "
                f"{name}={describe_value(value)} ({err})"
            ) from None
    kind = (
        np.dtype(array.dtype).kind
        if not jax.dtypes.issubdtype(array.dtype, jax.dtypes.prng_key)
        else "key"
    )
    if kind not in kinds:
        raise TypeError(
            f"{fn}: {name} must be an array of {accepts} numbers, got dtype {array.dtype} "
            f"(shape {tuple(array.shape)})"
        )
    if ndim is not None and array.ndim != ndim:
        raise ValueError(
            f"{fn}: {name} must have {ndim} dimension(s), got shape {tuple(array.shape)}"
        )
    if min_ndim is not None and array.ndim < min_ndim:
        raise ValueError(
            f"{fn}: {name} must have at least {min_ndim} dimension(s), got shape "
            f"{tuple(array.shape)}"
        )
    return array


def check_key(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` is one ``jax.random`` key: a typed key
    (``jax.random.key``) or a raw ``uint32[2]`` key (``jax.random.PRNGKey``), possibly traced."""
    if isinstance(value, jax.Array):
        typed = jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)
        if (typed and value.ndim == 0) or (value.dtype == "uint32" and value.shape == (2,)):
            return
        got = f"an array of dtype {value.dtype} and shape {value.shape}"
    else:
        got = f"{name}={describe_value(value)}"
    raise TypeError(
        f"{fn}: {name} must be one jax.random key (jax.random.key(seed) or "
        f"jax.random.PRNGKey(seed)), got {got}"
    )
