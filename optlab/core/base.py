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

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

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


class GradientTransformation(NamedTuple):
    """A pair ``(init, update)`` of pure functions.

    Field-compatible with ``optax.GradientTransformation``: optlab and optax transformations
    mix in one ``chain`` (either library's), and ``flax.nnx.Optimizer`` and optax-based training
    loops accept optlab transformations. Every optlab ``update`` takes
    ``update(updates, state, params=None, **extra_args)`` and ignores extra keyword arguments it
    does not use (``value``, ``grad``, ``value_fn``, ``metric``...).

    Attributes:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.
    """

    init: TransformInitFn
    update: TransformUpdateFn


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


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

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> print(ol.apply_updates(jnp.array([1.0, 2.0]), jnp.array([0.5, -0.5])))
      [1.5 1.5]
    """
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
