r"""AdaGrad: per-parameter step sizes from the sum of all past squared gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, Numeric, ScalarOrSchedule, gated_transformation
from optlab.core.combine import chain
from optlab.core.numerics import gate, tree_full_like
from optlab.core.validation import (
    check_learning_rate,
    check_nonnegative,
    check_not_schedule,
    check_positive,
    check_updates,
)
from optlab.transforms.scale import scale_by_learning_rate


def _check_rss_args(fn: str, initial_accumulator_value: Any, eps: Any) -> None:
    check_not_schedule(fn, "initial_accumulator_value", initial_accumulator_value)
    check_nonnegative(fn, "initial_accumulator_value", initial_accumulator_value)
    check_not_schedule(fn, "eps", eps)
    check_positive(fn, "eps", eps)


class ScaleByRssState(NamedTuple):
    """State of :func:`scale_by_rss`.

    Attributes:
      sum_of_squares: the accumulator :math:`s_t` (the seeds' *cache*), one leaf per parameter.
    """

    sum_of_squares: Any


def scale_by_rss(
    initial_accumulator_value: Numeric = 0.1, eps: Numeric = 1e-7
) -> GradientTransformation:
    r"""Divides by the root of the sum of squared gradients so far (AdaGrad's scaling).

    .. math::

        s_t = s_{t-1} + g_t \odot \bar g_t, \qquad
        u_t = \frac{g_t}{\sqrt{s_t + \epsilon}}

    with :math:`s_0` = ``initial_accumulator_value`` (:math:`\bar g` the complex conjugate, so
    :math:`s_t` stays real); where :math:`s_t = 0` the update is 0.

    Args:
      initial_accumulator_value: :math:`s_0`, ``>= 0``.
      eps: :math:`\epsilon > 0`, added inside the square root.

    Returns:
      A transformation with state ``ScaleByRssState(sum_of_squares)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_rss(initial_accumulator_value=0.0, eps=1e-12)
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([3.0, -4.0]), state)
      >>> u, state = tx.update(jnp.array([4.0, 3.0]), state)
      >>> print(u)
      [0.8 0.6]

    References:
      Duchi et al., `Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011.
    """
    fn = "scale_by_rss"
    _check_rss_args(fn, initial_accumulator_value, eps)

    def init_fn(params):
        return ScaleByRssState(sum_of_squares=tree_full_like(params, initial_accumulator_value))

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.sum_of_squares, params)
        new_s = jax.tree.map(
            lambda g, s: (s + jnp.real(g * jnp.conj(g)).astype(s.dtype)).astype(s.dtype),
            updates,
            state.sum_of_squares,
        )
        new_s = gate(keep, new_s, state.sum_of_squares)
        new_updates = jax.tree.map(
            lambda g, s: (g * jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0)).astype(g.dtype),
            updates,
            new_s,
        )
        return new_updates, ScaleByRssState(sum_of_squares=new_s)

    return gated_transformation(init_fn, step)


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: Numeric = 0.1,
    eps: Numeric = 1e-7,
) -> GradientTransformation:
    r"""The AdaGrad optimizer.

    .. math::

        s_t = s_{t-1} + g_t \odot g_t, \qquad
        w_{t+1} = w_t - \frac{\eta_t}{\sqrt{s_t + \epsilon}} \odot g_t

    Parameters with large past gradients get small steps. Because :math:`s_t` only grows, the
    steps shrink forever (RMSProp replaces the sum by a moving average).
    ``chain(scale_by_rss(...), scale_by_learning_rate(learning_rate))``, as in optax.

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      initial_accumulator_value: :math:`s_0`, ``>= 0``.
      eps: :math:`\epsilon > 0`, inside the square root.

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = ol.adagrad(1.0)
      >>> x = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(x)
      >>> for _ in range(5):
      ...     u, state = tx.update(jax.grad(f)(x), state, x)
      ...     x = ol.apply_updates(x, u)
      >>> print(f"{f(x):.3f}")
      0.385

    References:
      Duchi et al., `Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011.
    """
    check_learning_rate("adagrad", learning_rate)
    _check_rss_args("adagrad", initial_accumulator_value, eps)
    return chain(
        scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )
