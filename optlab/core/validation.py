"""Eager argument checks for factories, and structural checks for ``update``.

Two kinds of argument checks, used by every factory of the library (and by ``optlab.nn``,
``optlab.data`` and the engine):

- **types** (:func:`check_number`, :func:`check_hyperparameter`, :func:`check_integer`,
  :func:`check_bool`, :func:`check_dtype`, :func:`check_callable`, :func:`check_str`,
  :func:`check_mask_spec`, :func:`check_transformation`, :func:`check_real`,
  :func:`check_array`, :func:`check_key`, :func:`as_path`): a wrong type raises
  ``TypeError``;
- **values** (:func:`check_finite`, :func:`check_nonnegative`, :func:`check_positive`,
  :func:`check_in_range`, :func:`check_int_at_least`, :func:`check_choice`): a value outside
  the rule raises ``ValueError``. Each checks the type first.

Only concrete numbers (Python and NumPy) have their *value* checked: jax arrays (possibly
traced, e.g. under ``vmap`` over a learning rate) only have their dtype checked, and schedules
pass where a schedule is allowed, so sweeps and injection keep working. Messages name the
function, the argument, the rule and the value::

    adam: b1 must be in [0, 1), got b1=1.2
    adam: learning_rate must be a real number, a jax array or a schedule (a function of the
    step count), got learning_rate='abc' (str)

The structural checks (:func:`check_updates`, :func:`check_same_structure`,
:func:`check_trees_match`) run when ``update`` is traced: tree structures, shapes and dtypes
are static, so they cost nothing in compiled code.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.numerics import is_concrete_number

# ---------------------------------------------------------------------------------------------
# Types


def _fmt(x: Any) -> str:
    return repr(float(x)) if not isinstance(x, int) else repr(x)


def _got(name: str, value: Any) -> str:
    """``name=<value> (<type>)``, with a long repr cut short."""
    return f"{name}={describe_value(value)}"


def is_numeric_array(value: Any) -> bool:
    """True for NumPy and jax arrays (traced or not) of integer or floating dtype."""
    if not isinstance(value, np.ndarray | jax.Array):
        return False
    dtype = getattr(value, "dtype", None)
    return dtype is not None and (
        jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
    )


def _accepted(*, array: bool, schedule: bool, none: bool) -> str:
    kinds = ["a real number"]
    if array:
        kinds.append("a jax array")
    if schedule:
        kinds.append("a schedule (a function of the step count)")
    if none:
        kinds.append("None")
    return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]


def check_number(
    fn: str,
    name: str,
    value: Any,
    *,
    allow_array: bool = False,
    schedule: bool = False,
    none: bool = False,
) -> None:
    """Raises ``TypeError`` unless ``value`` is a real number (a ``bool`` is not one), or, as
    allowed, a numeric jax/NumPy array (possibly traced: a swept hyperparameter), a schedule
    (any callable) or ``None``."""
    if value is None and none:
        return
    if is_real_number(value):
        return
    if allow_array and is_numeric_array(value):
        return
    if schedule and callable(value) and not isinstance(value, type):
        return
    raise TypeError(
        f"{fn}: {name} must be {_accepted(array=allow_array, schedule=schedule, none=none)}, "
        f"got {_got(name, value)}"
    )


def check_hyperparameter(
    fn: str, name: str, value: Any, *, schedule: bool = True, none: bool = False
) -> None:
    """A hyperparameter is a number, a jax array (traced: its value unchecked) or, where
    ``schedule``, a schedule ``count -> value``; raises ``TypeError`` otherwise."""
    check_number(fn, name, value, allow_array=True, schedule=schedule, none=none)


def check_callable(fn: str, name: str, value: Any, *, none: bool = False, what: str = "") -> None:
    """Raises ``TypeError`` unless ``value`` is callable (or ``None`` where allowed)."""
    if value is None and none:
        return
    if not callable(value):
        rule = what or "a function"
        raise TypeError(
            f"{fn}: {name} must be {rule}{' or None' if none else ''}, got {_got(name, value)}"
        )


def check_dtype(
    fn: str, name: str, value: Any, *, none: bool = True, kind: str = "floating"
) -> None:
    """Raises ``TypeError`` unless ``value`` names a dtype of the given kind (``"floating"``,
    ``"inexact"``: floating or complex, or ``"any"``), or is ``None`` where allowed."""
    if value is None and none:
        return
    try:
        dtype = None if isinstance(value, bool) else jnp.dtype(value)
    except TypeError:
        dtype = None
    if dtype is not None and kind != "any":
        dtype = dtype if jnp.issubdtype(dtype, getattr(jnp, kind)) else None
    if dtype is None:
        rule = {
            "any": "a dtype",
            "floating": "a floating dtype",
            "inexact": "a floating or complex dtype",
        }[kind]
        raise TypeError(
            f"{fn}: {name} must be {rule} (jnp.float32, 'bfloat16', ...)"
            f"{' or None' if none else ''}, got {_got(name, value)}"
        )


def check_transformation(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` has callable ``init`` and ``update`` (an optlab or
    optax gradient transformation)."""
    if not (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        hint = (
            " (a factory: call it, e.g. ol.adam(1e-3))"
            if callable(value) and not hasattr(value, "init")
            else ""
        )
        raise TypeError(
            f"{fn}: {name} must be a gradient transformation with init and update (optlab's or "
            f"optax's){hint}, got {_got(name, value)}"
        )


MASK_RULE = (
    "a pytree of Python booleans with the structure of the parameters (or a prefix of it), "
    "a function params -> such a tree, or glob patterns on parameter paths ('*kernel', "
    "['encoder/*', '*bias'])"
)


def check_mask_spec(fn: str, name: str, value: Any, *, none: bool = True) -> None:
    """Raises ``TypeError`` for what can never be a mask: a number, an array, an empty string
    or a list mixing patterns with other things. Trees are checked against the parameters
    when they are known (see :func:`optlab.core.paths.resolve_mask`)."""
    if value is None and none:
        return
    if value is None or is_real_number(value) or isinstance(value, np.ndarray | jax.Array):
        raise TypeError(f"{fn}: {name} must be {MASK_RULE}; got {_got(name, value)}")
    if isinstance(value, str) and not value:
        raise TypeError(f"{fn}: {name} must be {MASK_RULE}; got an empty pattern {name}=''")
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and any(isinstance(m, str) for m in value)
        and not all(isinstance(m, str) and m for m in value)
    ):
        raise TypeError(
            f"{fn}: {name} mixes glob patterns with other values; give {MASK_RULE}, "
            f"got {_got(name, value)}"
        )
    if not callable(value) and not isinstance(value, str):
        leaves = jax.tree.leaves(value)
        odd = [leaf for leaf in leaves if not isinstance(leaf, bool | np.bool_ | str)]
        if odd:
            raise TypeError(
                f"{fn}: {name} must be {MASK_RULE}; got a leaf {describe_value(odd[0])} in {name}"
            )


# ---------------------------------------------------------------------------------------------
# Values (each checks the type first)


def check_finite(
    fn: str, name: str, value: Any, *, schedule: bool = False, none: bool = False
) -> None:
    """Raises ``TypeError`` for a non-number, ``ValueError`` if a concrete ``value`` is NaN or
    infinite. ``schedule``/``none``: also accept a schedule / ``None``."""
    check_number(fn, name, value, allow_array=True, schedule=schedule, none=none)
    check_scalar(fn, name, value)
    if is_concrete_number(value) and not math.isfinite(float(value)):
        raise ValueError(f"{fn}: {name} must be finite, got {name}={_fmt(value)}")


def check_scalar(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` for an array that is not 0-d where one number is meant (a decay
    rate, an epsilon): a ``(2, 5)`` array would broadcast the parameters to its shape. Shapes are
    static, so a traced scalar (one configuration of a ``vmap``) passes."""
    shape = getattr(value, "shape", ())
    if isinstance(value, np.ndarray | jax.Array) and shape != ():
        raise ValueError(
            f"{fn}: {name} must be one number (a 0-d array at most), got an array of shape "
            f"{tuple(shape)}"
        )


def check_nonnegative(
    fn: str, name: str, value: Any, *, schedule: bool = False, none: bool = False
) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is finite and ``>= 0``."""
    check_finite(fn, name, value, schedule=schedule, none=none)
    if is_concrete_number(value) and float(value) < 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {name}={_fmt(value)}")


def check_positive(
    fn: str, name: str, value: Any, *, schedule: bool = False, none: bool = False
) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is finite and ``> 0``."""
    check_finite(fn, name, value, schedule=schedule, none=none)
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
    schedule: bool = False,
    none: bool = False,
) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` lies in the interval given.

    The default interval is ``[low, high)``, the rule for decay rates such as Adam's betas.
    """
    check_number(fn, name, value, allow_array=True, schedule=schedule, none=none)
    check_scalar(fn, name, value)
    if not is_concrete_number(value):
        return
    v = float(value)
    ok = (low <= v if low_closed else low < v) and (v <= high if high_closed else v < high)
    if not ok or math.isnan(v):
        interval = f"{'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        raise ValueError(f"{fn}: {name} must be in {interval}, got {name}={_fmt(value)}")


def check_int_at_least(fn: str, name: str, value: Any, minimum: int) -> None:
    """Raises ``TypeError`` for a non-number and ``ValueError`` unless ``value`` is a
    Python/NumPy integer ``>= minimum`` (``2.5`` and ``2.0`` are refused: not integers)."""
    if not is_real_number(value):
        raise TypeError(f"{fn}: {name} must be an integer >= {minimum}, got {_got(name, value)}")
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")


def check_learning_rate(fn: str, value: Any, name: str = "learning_rate") -> None:
    """A learning rate must be finite and ``>= 0``, a jax array or a schedule."""
    check_nonnegative(fn, name, value, schedule=True)


def check_choice(fn: str, name: str, value: Any, choices: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``, suggesting the closest names.

    Used wherever something is chosen by name (activations, initializers, datasets)::

        get_activation: name must be one of ['elu', 'relu', ...], got name='rleu';
        did you mean 'relu'?
    """
    import difflib

    options = sorted(str(c) for c in choices)
    try:
        if isinstance(value, Hashable) and value in choices:
            return
    except (TypeError, ValueError):  # unhashable, or an array compared elementwise
        pass
    close = difflib.get_close_matches(str(value), options, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"{fn}: {name} must be one of {options}, got {name}={value!r}{hint}")


def check_not_schedule(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` if ``value`` is callable where only a number or an array is allowed
    (decay rates, epsilons: schedule them with ``inject_hyperparams`` instead)."""
    if callable(value):
        raise ValueError(
            f"{fn}: {name} must be a number or a jax array, not a schedule, got {name}={value!r}"
            f" (schedule it with optlab.inject_hyperparams)"
        )


# ---------------------------------------------------------------------------------------------
# Trees (checked when traced)


def _paths(tree: Any) -> list[str]:
    return [
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    ]


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


def check_trees_match(
    fn: str, tree: Any, reference: Any, *, what: str, reference_what: str
) -> None:
    """Raises a ``ValueError`` naming the first path where ``tree`` and ``reference`` differ in
    structure or leaf shape (``what`` and ``reference_what`` name the two in the message:
    "the updates", "the parameters"...). ``None`` leaves on either side are skipped."""
    if jax.tree.structure(tree) != jax.tree.structure(reference):
        t_paths, r_paths = set(_paths(tree)), set(_paths(reference))
        only_t = sorted(t_paths - r_paths)
        only_r = sorted(r_paths - t_paths)
        detail = "; ".join(
            part
            for part in (
                f"only in {what}: {', '.join(only_t[:5])}" if only_t else "",
                f"only in {reference_what}: {', '.join(only_r[:5])}" if only_r else "",
            )
            if part
        ) or (
            f"same leaf paths, different containers: {jax.tree.structure(tree)} vs "
            f"{jax.tree.structure(reference)}"
        )
        raise ValueError(f"{fn}: {what} and {reference_what} have different trees ({detail})")
    for (path, x), r in zip(
        jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(reference), strict=True
    ):
        xs, rs = jnp.shape(x), jnp.shape(r)
        if xs != rs:
            raise ValueError(
                f"{fn}: {what} at {jax.tree_util.keystr(path)} has shape {xs} but "
                f"{reference_what} there has shape {rs}"
            )


def check_shapes_match(fn: str, updates: Any, reference: Any, what: str = "state") -> None:
    """Like :func:`check_same_structure`, and also every leaf's shape must match."""
    check_same_structure(fn, updates, reference, what)
    for (path, u), r in zip(
        jax.tree_util.tree_flatten_with_path(updates)[0], jax.tree.leaves(reference), strict=True
    ):
        if u is not None and r is not None and jnp.shape(u) != jnp.shape(r):
            raise ValueError(
                f"{fn}: the update at {jax.tree_util.keystr(path)} has shape {jnp.shape(u)} but "
                f"the {what} was initialized with shape {jnp.shape(r)}"
            )


def check_updates(fn: str, updates: Any, like: Any = None, params: Any = None) -> None:
    """The structural check of every ``update``: one place for all transformations.

    Each gradient leaf must be a floating or complex array (integer gradients would give
    integer zeros), have the structure and shape of ``like`` (a per-parameter tree of the
    state, e.g. Adam's ``nu``) and of ``params`` when they are given. Runs at trace time only:
    structures, shapes and dtypes are static.
    """
    for path, u in jax.tree_util.tree_flatten_with_path(updates)[0]:
        dtype = getattr(u, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            got = f"dtype {dtype}" if dtype is not None else f"a {type(u).__name__}"
            raise TypeError(
                f"{fn}: the update at {jax.tree_util.keystr(path)} must be a floating or complex "
                f"array (a gradient), got {got}; cast integer parameters to a float dtype"
            )
    if like is not None:
        check_shapes_match(fn, updates, like)
    if params is not None:
        check_trees_match(fn, updates, params, what="the updates", reference_what="the parameters")


def require_params(fn: str, params: Any) -> None:
    """Raises a ``ValueError`` saying how to pass ``params`` when a transformation needs them."""
    if params is None:
        raise ValueError(
            f"{fn}: this transformation needs the current parameters; call "
            f"tx.update(grads, state, params) (with flax.nnx.Optimizer they are passed for you)"
        )


# ---------------------------------------------------------------------------------------------
# Type checks: a wrong type is a ``TypeError`` naming the function, the argument, what it accepts
# and what it got (issue 11). Added for optlab.nn; general, so any factory may call them.


def is_real_number(value: Any) -> bool:
    """True for Python/NumPy real numbers and 0-d real NumPy arrays (never for a ``bool``)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and np.issubdtype(value.dtype, np.number) and value.dtype.kind != "c"
    return isinstance(value, numbers.Real)


def check_integer(
    fn: str, name: str, value: Any, minimum: int | None = None, *, none: bool = False
) -> None:
    """Raises ``TypeError`` unless ``value`` is an integer (not a bool; or ``None`` where
    ``none``), ``ValueError`` if it is below ``minimum``."""
    if value is None and none:
        return
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        rule = "an integer" if minimum is None else f"an integer >= {minimum}"
        rule += " or None" if none else ""
        raise TypeError(f"{fn}: {name} must be {rule}, got {_got(name, value)}")
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
    if jax.dtypes.issubdtype(array.dtype, jax.dtypes.prng_key):
        kind = "key"
    elif jnp.issubdtype(array.dtype, jnp.floating):  # bfloat16's NumPy kind is 'V'
        kind = "f"
    else:
        kind = np.dtype(array.dtype).kind
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


# --- Containers and trees (issue 11's fuzz holes: wrong types reaching jax) -------------------


def check_state(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` can be an optimizer state: what ``tx.init``
    returns is a NamedTuple, a tuple (``chain``) or a dict (``named_chain``) of them; a list
    (of numbers, say) is not one."""
    if not isinstance(value, tuple | dict):
        raise TypeError(
            f"{fn}: {name} must be an optimizer state (what tx.init(params) returns: a "
            f"NamedTuple, or a tuple or dict of them), got {_got(name, value)}"
        )


def check_sequence(fn: str, name: str, value: Any) -> list[Any]:
    """Returns ``list(value)``; raises ``TypeError`` unless ``value`` is a list, a tuple (any
    non-text sequence) or a 1-D array."""
    if isinstance(value, np.ndarray | jax.Array) and value.ndim == 1:
        return list(value)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise TypeError(f"{fn}: {name} must be a list or a tuple, got {_got(name, value)}")
    return list(value)


def check_numeric_tree(fn: str, name: str, tree: Any) -> None:
    """Raises ``TypeError`` naming the path of the first leaf of ``tree`` that is not a number
    or a numeric array (jax, possibly traced, or NumPy; ``bool`` excluded). Leaf types are
    static, so under ``jit`` this runs once, at trace time."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if isinstance(leaf, np.ndarray | jax.Array | np.generic):
            ok = jnp.issubdtype(leaf.dtype, jnp.number)  # bfloat16 too; not bool, not keys
        else:
            ok = isinstance(leaf, numbers.Number) and not isinstance(leaf, bool)
        if not ok:
            where = f" at {jax.tree_util.keystr(path)}" if path else ""
            raise TypeError(
                f"{fn}: {name} must be an array or a tree of numeric arrays, got "
                f"{describe_value(leaf)}{where}"
            )


def check_broadcasts_to(fn: str, name: str, value: Any, target: Any, *, what: str) -> None:
    """Raises ``ValueError`` unless ``value`` broadcasts to ``target``'s shape without changing
    it (a bound applied to a parameter must not reshape it); ``what`` names ``target``."""
    shape, target_shape = jnp.shape(value), jnp.shape(target)
    try:
        ok = np.broadcast_shapes(shape, target_shape) == target_shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{fn}: {name} has shape {shape}, which does not broadcast to {what} of shape "
            f"{target_shape}; give one number, an array that broadcasts, or a tree like the "
            f"parameters"
        )
