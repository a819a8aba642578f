"""The gradient-transformation protocol, field-compatible with optax.

A transformation is a pair of pure functions

.. math::

    s_0 = \\mathrm{init}(\\theta_0), \\qquad
    (u_t, s_{t+1}) = \\mathrm{update}(g_t, s_t, \\theta_t, \\ldots)

where :math:`g_t` are the incoming updates (gradients, or the output of the previous
transformation of a chain), :math:`s_t` the state and :math:`\\theta_t` the parameters.
The parameters then move by :math:`\\theta_{t+1} = \\theta_t + u_t` (:func:`apply_updates`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optlab.core.validation import check_callable, check_trees_match

PyTree = Any
Params = Any
Updates = Any
OptState = Any
Numeric = Any  # A Python number, a NumPy/JAX scalar or array.
Schedule = Callable[[Any], Any]  # count -> value
ScalarOrSchedule = float | jax.Array | Schedule


class TransformInitFn(Protocol):
    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


def _import_optax() -> Any:
    try:
        import optax
    except ImportError:
        return None
    return optax


_OPTAX = _import_optax()


def optax_module() -> Any:
    """The ``optax`` module when it is installed, else ``None``: optax is optional at run time.

    When it is installed, optlab's ``GradientTransformation`` subclasses optax's
    ``GradientTransformationExtraArgs`` and optlab's ``EmptyState``, ``MaskedNode``,
    ``MaskedState`` and ``PartitionState`` are optax's classes, so states and transformations
    of the two libraries mix.
    """
    return _OPTAX


if _OPTAX is not None:

    class GradientTransformation(_OPTAX.GradientTransformationExtraArgs):
        """A pair ``(init, update)`` of pure functions.

        A subclass of ``optax.GradientTransformationExtraArgs`` when optax is installed (optax
        is optional: without it, a NamedTuple with the same two fields): optax's ``chain``,
        ``with_extra_args_support`` and ``isinstance`` checks treat optlab transformations as
        their own, so extra arguments (``value``, ``grad``, ``value_fn``) reach them inside
        optax chains too, and ``flax.nnx.Optimizer`` and optax-based training loops accept
        them. Every optlab ``update`` takes ``update(updates, state, params=None,
        **extra_args)`` and ignores extra keyword arguments it does not use (``value``,
        ``grad``, ``value_fn``, ``metric``...).

        Attributes:
          init: ``init(params) -> state``.
          update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.
        """

        __slots__ = ()

    EmptyState = _OPTAX.EmptyState

else:

    class GradientTransformation(NamedTuple):  # type: ignore[no-redef]
        """A pair ``(init, update)`` of pure functions (see the optax-installed variant)."""

        init: TransformInitFn
        update: TransformUpdateFn

    class EmptyState(NamedTuple):  # type: ignore[no-redef]
        """The state of a stateless transformation (``optax.EmptyState`` when optax is
        installed, so stateless states of both libraries are the same tree)."""


# ---------------------------------------------------------------------------------------------
# Gated updates: a step that a scalar decision can discard inside the optimizer's own pass

GatedUpdateFn = Callable[..., tuple[Updates, OptState]]
"""``gated(updates, state, params, keep, **extra_args) -> (updates, state)``: the state comes
back unchanged where the scalar boolean ``keep`` is false; the updates are then meaningless
(the caller replaces them by zeros)."""

_GATED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def gated_transformation(
    init_fn: TransformInitFn, step_fn: GatedUpdateFn
) -> GradientTransformation:
    """A transformation whose ``update`` can also run gated by a scalar ``keep``.

    ``step_fn(updates, state, params, keep, **extra_args)`` is called with ``keep=None`` by
    ``update``; with a traced boolean scalar ``keep`` (from :func:`gated_update`) it must
    return the old state where ``keep`` is false (``optlab.core.numerics.gate``) and compute
    its updates from the state it returns, so that XLA fuses the select into the
    transformation's own elementwise loop (no copy of a donated state buffer).
    """

    def update_fn(updates, state, params=None, **extra_args):
        return step_fn(updates, state, params, None, **extra_args)

    _GATED[update_fn] = lambda state: step_fn
    return GradientTransformation(init_fn, update_fn)


def register_gated(
    tx: GradientTransformation, resolver: Callable[[OptState], GatedUpdateFn | None]
) -> GradientTransformation:
    """Registers how a composite transformation (a chain, an injection) runs gated:
    ``resolver(state)`` returns a :data:`GatedUpdateFn` or ``None`` (a part cannot)."""
    _GATED[tx.update] = resolver
    return tx


def gated_update(tx: Any, state: OptState) -> GatedUpdateFn | None:
    """How to run ``tx.update`` gated by a scalar ``keep`` without a ``lax.cond``, or ``None``.

    Registered transformations (:func:`gated_transformation`, :func:`register_gated`) gate
    their state in their own loops; any other whose state holds only scalars (counters, a
    learning rate, a key) is gated by selecting its new state, which costs nothing. A
    transformation with per-parameter state that is not registered (an optax one) returns
    ``None``: the caller falls back to ``lax.cond``. Decided at trace time from the state's
    shapes.
    """
    resolver = _GATED.get(getattr(tx, "update", None))
    if resolver is not None:
        return resolver(state)
    if all(jnp.ndim(x) == 0 for x in jax.tree.leaves(state)):

        def gated(updates, state, params, keep, **extra_args):
            new_updates, new_state = tx.update(updates, state, params, **extra_args)
            if keep is None:
                return new_updates, new_state
            return new_updates, jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_state, state)

        return gated
    return None


def is_extra_args_transformation(tx: Any) -> bool:
    """Whether ``tx`` is known to accept extra keyword arguments in ``update``: an optlab
    transformation or an ``optax.GradientTransformationExtraArgs``."""
    if isinstance(tx, GradientTransformation):
        return True
    return _OPTAX is not None and isinstance(tx, _OPTAX.GradientTransformationExtraArgs)


def identity() -> GradientTransformation:
    """Passes updates through unchanged: :math:`u_t = g_t`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.identity()
      >>> u, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(None))
      >>> print(u)
      [ 1. -2.]
    """

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return GradientTransformation(init_fn, update_fn)


def set_to_zero() -> GradientTransformation:
    """Replaces every update by zeros: :math:`u_t = 0` (freezes what it is applied to).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.set_to_zero()
      >>> u, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(None))
      >>> print(u)
      [0. 0.]
    """

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init_fn, update_fn)


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformation:
    """Makes a transformation from a function ``f(updates, params) -> updates``.

    Args:
      f: a pure function of the whole updates tree and the parameters (``None`` when the caller
        passes none).

    Returns:
      A transformation with an empty state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> halve = ol.stateless(lambda u, p: jax.tree.map(lambda x: x / 2, u))
      >>> u, _ = halve.update({"w": jnp.array([2.0])}, halve.init(None))
      >>> print(u["w"])
      [1.]
    """

    check_callable("stateless", "f", f, what="a function f(updates, params) -> updates")

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return f(updates, params), state

    return GradientTransformation(init_fn, update_fn)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Moves the parameters: :math:`\\theta_{t+1} = \\theta_t + u_t`.

    The result keeps each parameter's dtype; ``None`` leaves (absent parameters) stay ``None``.
    Trees that differ raise a ``ValueError`` naming the differing path.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> print(ol.apply_updates(jnp.array([1.0, 2.0]), jnp.array([0.5, -0.5])))
      [1.5 1.5]
    """
    check_trees_match(
        "apply_updates", updates, params, what="the updates", reference_what="the parameters"
    )
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
