"""Hyperparameters that live in the optimizer state: readable, overwritable, vmappable.

``inject_hyperparams(ol.adam)(learning_rate=1e-3)`` builds ``adam`` afresh inside every
``update`` from hyperparameters kept in the state, so they can be read
(``ol.get(state, "b1")``), overwritten between steps (:func:`set_hyperparams`) and vmapped over
without recompiling, and schedules can be given for any numeric argument.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.base import GradientTransformation, OptState, gated_update, register_gated
from optlab.core.combine import with_extra_args_support
from optlab.core.numerics import gate, safe_increment, zero_count
from optlab.core.validation import check_callable, check_dtype, check_number, check_state


class InjectHyperparamsState(NamedTuple):
    """State of a transformation made by :func:`inject_hyperparams` (optax's fields).

    Attributes:
      count: number of updates applied.
      hyperparams: ``{name: value}``. A number or array given when the transformation was made
        is stored here and used by every following update until overwritten (see
        :func:`set_hyperparams`); a schedule's entry is the value the last update used (before
        any update, its value at step 0) and is recomputed from the schedule at each update.
      hyperparams_states: ``{name: state}`` of each stateful schedule (an object with
        ``init()``, ``update(state, **extra_args)`` and ``__call__(state, **extra_args)``, as
        optax's ``StatefulSchedule``); empty when there is none.
      inner_state: the state of the wrapped transformation.
    """

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: OptState


def is_stateful_schedule(value: Any) -> bool:
    """Whether ``value`` is a stateful schedule: callable, with ``init()`` and
    ``update(state, **extra_args)`` (optax's ``StatefulSchedule`` protocol)."""
    return (
        callable(value)
        and callable(getattr(value, "init", None))
        and callable(getattr(value, "update", None))
        and not isinstance(value, type)
    )


def _is_numeric(value: Any) -> bool:
    """Floats and float/int arrays; Python integers are static (they often set shapes)."""
    if isinstance(value, bool | np.bool_ | int | np.integer):
        return False
    if isinstance(value, float | np.floating):
        return True
    if isinstance(value, np.ndarray | jax.Array):
        return jnp.issubdtype(value.dtype, jnp.number) and not jnp.issubdtype(
            value.dtype, jnp.complexfloating
        )
    return False


def _store(value: Any, dtype: Any) -> jax.Array:
    """A hyperparameter as a state leaf.

    A Python number becomes a weakly typed scalar, which is exactly what JAX turns it into when
    it meets an array: the wrapped optimizer computes with the same dtypes and values as when
    the number is passed to it directly (params in bfloat16 stay in bfloat16, and so on).
    Arrays keep their dtype. ``dtype`` (``hyperparam_dtype``) overrides floating dtypes.
    """
    array = jnp.asarray(value)
    if dtype is not None and jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(dtype)
    return array


def inject_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    """Wraps a factory so that its numeric hyperparameters live in the state.

    ``inject_hyperparams(factory)(*args, **kwargs)`` takes the arguments of ``factory``;
    floats, numeric arrays and schedules (callables ``count -> value``) among them become
    entries of ``state.hyperparams``, and ``factory`` is called anew inside every ``update``
    with the current values. Everything else is passed through unchanged: booleans, strings,
    ``None``, Python integers (they often set shapes, e.g. ``memory_size``; pass ``10.0`` or an
    array to inject one), callables given for ``mask`` or ``*_mask`` arguments, and the
    arguments named in ``static_args`` (name any other callable that is not a schedule there).

    Wrapping does not change the dtypes of the computation: a Python float is stored as the
    weakly typed scalar JAX would make of it (optax casts it to the parameters' dtype, issue
    #1414/#1532), so the wrapped optimizer computes bit for bit what the unwrapped one does,
    provided the factory does its arithmetic on hyperparameters in ``jax.numpy`` (a Python
    ``1.0 - b1`` on a float is computed in float64, on an injected scalar in float32).

    A stateful schedule (optax's ``StatefulSchedule``: an object with ``init()``,
    ``update(state, **extra_args)`` and ``__call__(state, **extra_args)``) given for a
    hyperparameter keeps its state in ``state.hyperparams_states`` and sees the extra
    arguments of ``update`` (``value=``, ...).

    The arguments are checked eagerly, as the factory itself checks them.

    Args:
      inner_factory: a function returning a ``GradientTransformation`` (optlab's or optax's).
      static_args: names of arguments never to treat as hyperparameters.
      hyperparam_dtype: if given, floating hyperparameters are stored in this dtype.

    Returns:
      A factory with the signature of ``inner_factory``, returning a transformation whose state
      is an :class:`InjectHyperparamsState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.inject_hyperparams(ol.scale_by_learning_rate)(learning_rate=0.1)
      >>> state = tx.init(jnp.zeros(2))
      >>> state = ol.set_hyperparams(state, learning_rate=0.5)
      >>> u, state = tx.update(jnp.ones(2), state)
      >>> print(u, ol.get(state, "learning_rate"))
      [-0.5 -0.5] 0.5
    """
    check_callable(
        "inject_hyperparams",
        "inner_factory",
        inner_factory,
        what="a factory returning a transformation (ol.adam, not ol.adam(1e-3))",
    )
    if isinstance(inner_factory, tuple) and hasattr(inner_factory, "update"):
        raise TypeError(
            "inject_hyperparams: inner_factory must be a factory returning a transformation "
            "(ol.adam, not ol.adam(1e-3)), got a transformation"
        )
    if not isinstance(static_args, str) and not (
        isinstance(static_args, Iterable) and all(isinstance(a, str) for a in static_args)
    ):
        raise TypeError(
            f"inject_hyperparams: static_args must be a name or names of arguments, got "
            f"static_args={static_args!r:.60}"
        )
    check_dtype("inject_hyperparams", "hyperparam_dtype", hyperparam_dtype)
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    name = getattr(inner_factory, "__name__", repr(inner_factory))
    if not static.issubset(signature.parameters):
        raise ValueError(
            f"inject_hyperparams: static_args must name parameters of {name} "
            f"({', '.join(signature.parameters)}), got static_args={sorted(static)!r}"
        )

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformation:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"inject_hyperparams({name}): {err}") from err
        bound.apply_defaults()
        kinds = {n: p.kind for n, p in signature.parameters.items()}
        schedules, stateful, numbers = {}, {}, {}
        for arg, value in bound.arguments.items():
            if arg in static or kinds[arg] in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                continue
            if is_stateful_schedule(value):
                stateful[arg] = value
            elif callable(value) and not (arg == "mask" or arg.endswith("_mask")):
                schedules[arg] = value
            elif _is_numeric(value):
                numbers[arg] = value
        # The factory's own eager checks, with each schedule standing for its value at step 0
        # (a schedule is valid for any numeric hyperparameter once injected).
        check = inspect.BoundArguments(signature, bound.arguments.copy())
        for arg, schedule in schedules.items():
            check.arguments[arg] = schedule(zero_count())
        for arg, schedule in stateful.items():
            check.arguments[arg] = schedule(schedule.init())
        inner_factory(*check.args, **check.kwargs)

        def build(hyperparams):
            call = inspect.BoundArguments(signature, bound.arguments.copy())
            for arg, value in hyperparams.items():
                call.arguments[arg] = value
            return inner_factory(*call.args, **call.kwargs)

        def current(hyperparams, count, schedule_states, extra_args):
            values = dict(hyperparams)
            for arg, schedule in schedules.items():
                values[arg] = _store(schedule(count), hyperparam_dtype)
            for arg, schedule in stateful.items():
                values[arg] = _store(schedule(schedule_states[arg], **extra_args), hyperparam_dtype)
            return values

        def init_fn(params):
            count = zero_count()
            stored = {arg: _store(v, hyperparam_dtype) for arg, v in numbers.items()}
            schedule_states = {arg: f.init() for arg, f in stateful.items()}
            hyperparams = current(stored, count, schedule_states, {})
            return InjectHyperparamsState(
                count=count,
                hyperparams=hyperparams,
                hyperparams_states=schedule_states,
                inner_state=build(hyperparams).init(params),
            )

        def step(state, extra_args):
            """The hyperparameters of this update and the schedules' next states."""
            hyperparams = current(
                state.hyperparams, state.count, state.hyperparams_states, extra_args
            )
            schedule_states = {
                arg: f.update(state.hyperparams_states[arg], **extra_args)
                for arg, f in stateful.items()
            }
            return hyperparams, schedule_states

        def update_fn(updates, state, params=None, **extra_args):
            hyperparams, schedule_states = step(state, extra_args)
            update = with_extra_args_support(build(hyperparams)).update
            updates, inner_state = update(updates, state.inner_state, params, **extra_args)
            return updates, InjectHyperparamsState(
                count=safe_increment(state.count),
                hyperparams=hyperparams,
                hyperparams_states=schedule_states,
                inner_state=inner_state,
            )

        def gated(state):
            # Gated (apply_if_finite's fused guard) when the transformation built from the
            # current hyperparameters can be: the scalars here are selected, the inner state
            # is gated by the inner transformation itself. Stateful schedules may read extra
            # arguments, so that case runs under lax.cond instead.
            if stateful:
                return None
            hyperparams, _ = step(state, {})
            inner = with_extra_args_support(build(hyperparams))
            inner_gated = gated_update(inner, state.inner_state)
            if inner_gated is None:
                return None

            def run(updates, state, params, keep, **extra_args):
                updates, inner_state = inner_gated(
                    updates, state.inner_state, params, keep, **extra_args
                )
                return updates, InjectHyperparamsState(
                    count=gate(keep, safe_increment(state.count), state.count),
                    hyperparams=gate(keep, hyperparams, state.hyperparams),
                    hyperparams_states={},
                    inner_state=inner_state,
                )

            return run

        return register_gated(GradientTransformation(init_fn, update_fn), gated)

    return wrapped


def inject_stateful_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    """optax's deprecated name of :func:`inject_hyperparams`, which takes stateful schedules.

    A stateful schedule (optax's ``StatefulSchedule``: ``init() -> state``, ``update(state,
    **extra_args) -> state`` and ``__call__(state, **extra_args) -> value``, e.g. a value
    driven by the loss passed as ``update(..., value=loss)``) keeps its state in
    ``state.hyperparams_states``. Kept so that code written for optax runs unchanged; like
    optax's, it warns with a ``DeprecationWarning``.

    Args:
      inner_factory: a function returning a ``GradientTransformation``.
      static_args: names of arguments never to treat as hyperparameters.
      hyperparam_dtype: if given, floating hyperparameters are stored in this dtype.

    Returns:
      What :func:`inject_hyperparams` returns.
    """
    warnings.warn(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams instead "
        "(it takes stateful schedules)",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _is_injected(x: Any) -> bool:
    return (
        _is_namedtuple(x)
        and "hyperparams" in x._fields
        and "inner_state" in x._fields
        and isinstance(x.hyperparams, dict)
    )


def _rebuild(node: Any, path: tuple[str, ...], fn: Callable) -> Any:
    """Copies a state, passing every injected hyperparameter through ``fn(path, value)``."""
    if _is_injected(node):
        hyperparams = {
            k: fn((*path, "hyperparams", str(k)), v) for k, v in node.hyperparams.items()
        }
        inner = _rebuild(node.inner_state, (*path, "inner_state"), fn)
        return node._replace(hyperparams=hyperparams, inner_state=inner)
    if _is_namedtuple(node):
        return type(node)(*(_rebuild(getattr(node, f), (*path, f), fn) for f in node._fields))
    if isinstance(node, dict):
        return type(node)({k: _rebuild(v, (*path, str(k)), fn) for k, v in node.items()})
    if isinstance(node, list | tuple):
        return type(node)(_rebuild(v, (*path, str(i)), fn) for i, v in enumerate(node))
    return node


def _like(old: Any, value: Any) -> jax.Array:
    """``value`` with the dtype of ``old``, weakly typed when both are (so nothing recompiles)."""
    old = jnp.asarray(old)
    if isinstance(value, int | float) and not isinstance(value, bool):
        new = jnp.zeros_like(old) + value  # keeps old's dtype and weak type
    else:
        new = jnp.asarray(value)
    if new.dtype != old.dtype:
        new = new.astype(old.dtype)
    return new


def set_hyperparams(state: OptState, **values: Any) -> OptState:
    """Returns a copy of ``state`` with injected hyperparameters overwritten.

    Works on any state containing :func:`inject_hyperparams` states, however deeply chained,
    and inside ``jit`` and ``vmap`` (a sweep: ``jax.vmap(lambda lr: set_hyperparams(state,
    learning_rate=lr))``). A name may be a trailing path, as for :func:`optlab.get`
    (``**{"decay/learning_rate": 1e-4}``); every injected hyperparameter that matches is set.
    The new value keeps the stored dtype (and weak type, for Python numbers), so the next
    compiled update does not recompile.

    A hyperparameter given as a schedule is recomputed from it at every update: overwriting it
    affects only what :func:`optlab.get` reads until then.

    Args:
      state: an optimizer state.
      **values: new values by name.

    Returns:
      The new state (the input is not modified).

    Raises:
      TypeError: ``state`` is not a state, or a value is not a number or a numeric array.
      KeyError: a name matches no injected hyperparameter (the message lists those there).

    Examples:
      >>> import optlab as ol
      >>> tx = ol.inject_hyperparams(ol.scale_by_learning_rate)(learning_rate=0.1)
      >>> state = ol.set_hyperparams(tx.init(None), learning_rate=0.01)
      >>> print(ol.get(state, "hyperparams/learning_rate"))
      0.01
    """
    check_state("set_hyperparams", "state", state)
    for name, value in values.items():
        check_number("set_hyperparams", name, value, allow_array=True)
    wanted = {n: tuple(p for p in n.split("/") if p) for n in values}
    found = {n: 0 for n in values}
    available = []

    def replace(path, old):
        available.append("/".join(path))
        for name, parts in wanted.items():
            if parts and path[-len(parts) :] == parts:
                found[name] += 1
                return _like(old, values[name])
        return old

    new_state = _rebuild(state, (), replace)
    missing = [n for n, c in found.items() if c == 0]
    if missing:
        raise KeyError(
            f"set_hyperparams: no injected hyperparameter named {', '.join(map(repr, missing))}; "
            f"the state holds: {', '.join(available) if available else '(none: wrap the '}"
            f"{'' if available else 'optimizer with optlab.inject_hyperparams)'}"
        )
    return new_state
