"""Scaling by a constant, a learning rate or a schedule: the last link of most chains."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import EmptyState, GradientTransformation, Numeric, ScalarOrSchedule
from optlab.core.numerics import resolve, safe_increment, tree_scale, zero_count
from optlab.core.validation import check_bool, check_finite, check_learning_rate


def scale(step_size: Numeric) -> GradientTransformation:
    """Multiplies every update by a constant: :math:`u_t = c\\, g_t`.

    Args:
      step_size: the factor :math:`c` (a number or a jax array; it may be negative).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale(-0.5)
      >>> u, _ = tx.update(jnp.array([2.0, 4.0]), tx.init(None))
      >>> print(u)
      [-1. -2.]
    """
    check_finite("scale", "step_size", step_size)

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return tree_scale(step_size, updates), state

    return GradientTransformation(init_fn, update_fn)


class ScaleByScheduleState(NamedTuple):
    """Step counter of :func:`scale_by_schedule`."""

    count: jax.Array


def scale_by_schedule(step_size_fn: ScalarOrSchedule) -> GradientTransformation:
    """Multiplies the updates by a schedule of the step: :math:`u_t = c(t)\\, g_t`.

    ``t`` counts the updates already applied (0 for the first).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_schedule(lambda t: 1.0 / (1.0 + t))
      >>> state = tx.init(None)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> print(u)
      [0.5]
    """
    check_finite("scale_by_schedule", "step_size_fn", step_size_fn, schedule=True)

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        step_size = resolve(step_size_fn, state.count)
        return tree_scale(step_size, updates), ScaleByScheduleState(safe_increment(state.count))

    return GradientTransformation(init_fn, update_fn)


class ScaleByLearningRateState(NamedTuple):
    """State of :func:`scale_by_learning_rate`.

    Attributes:
      count: number of updates applied.
      learning_rate: the learning rate the last update used (before any update: the value at
        step 0). Read it with ``optlab.get(state, "learning_rate")``.
    """

    count: jax.Array
    learning_rate: jax.Array


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> GradientTransformation:
    """Scales by the learning rate, descending by default: :math:`u_t = -\\eta_t\\, g_t`.

    The learning rate may be a number, a jax array (traced: changing it does not recompile,
    and it can be vmapped) or a schedule ``count -> value``. The value applied is recorded in
    the state.

    Args:
      learning_rate: :math:`\\eta`, finite and ``>= 0``, or a schedule.
      flip_sign: multiply by :math:`-\\eta` (gradient descent) rather than :math:`\\eta`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_learning_rate(lambda t: 0.1 / (1 + t))
      >>> state = tx.init(None)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> print(u, ol.get(state, "learning_rate"))
      [-0.05] 0.05
    """
    check_learning_rate("scale_by_learning_rate", learning_rate)
    check_bool("scale_by_learning_rate", "flip_sign", flip_sign)
    sign = -1.0 if flip_sign else 1.0

    def lr_at(count):
        return jnp.asarray(resolve(learning_rate, count), jnp.float32)

    def init_fn(params):
        del params
        count = zero_count()
        return ScaleByLearningRateState(count=count, learning_rate=lr_at(count))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        lr = resolve(learning_rate, state.count)
        new_updates = tree_scale(sign * lr, updates)
        return new_updates, ScaleByLearningRateState(
            count=safe_increment(state.count), learning_rate=jnp.asarray(lr, jnp.float32)
        )

    return GradientTransformation(init_fn, update_fn)
