r"""AdaDelta: RMSProp whose step size is a moving RMS of past steps, so units match."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, Numeric, ScalarOrSchedule, gated_transformation
from optlab.core.combine import chain
from optlab.core.numerics import gate, tree_zeros_like, update_moment
from optlab.core.validation import (
    check_in_range,
    check_mask_spec,
    check_nonnegative,
    check_not_schedule,
    check_positive,
    check_updates,
)
from optlab.transforms.regularization import add_decayed_weights
from optlab.transforms.scale import scale_by_learning_rate


def _check_adadelta_args(fn: str, rho: Any, eps: Any) -> None:
    check_not_schedule(fn, "rho", rho)
    check_in_range(fn, "rho", rho, 0.0, 1.0)
    check_not_schedule(fn, "eps", eps)
    check_positive(fn, "eps", eps)


class ScaleByAdaDeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`.

    Attributes:
      e_g: the moving average :math:`E[g^2]_t` of squared gradients.
      e_x: the moving average :math:`E[\\Delta x^2]_t` of squared steps.
    """

    e_g: Any
    e_x: Any


def scale_by_adadelta(rho: Numeric = 0.9, eps: Numeric = 1e-6) -> GradientTransformation:
    r"""Rescales by the ratio of the RMS of past steps to the RMS of past gradients.

    .. math::

        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho)\, g_t^2, \qquad
        \Delta x_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}
                     \, g_t, \qquad
        E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1-\rho)\, \Delta x_t^2

    with both averages starting at 0. The output points along the gradient (a learning rate,
    1 in the paper, turns it into a descent step).

    Args:
      rho: :math:`\rho` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.

    Returns:
      A transformation with state ``ScaleByAdaDeltaState(e_g, e_x)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_adadelta(rho=0.0, eps=1e-2)
      >>> u, state = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
      >>> print(u, state.e_x)  # sqrt(0.01) / sqrt(1.01) and its square
      [0.0995037] [0.00990099]

    References:
      Zeiler, `ADADELTA: An Adaptive Learning Rate Method <https://arxiv.org/abs/1212.5701>`_,
      2012.
    """
    fn = "scale_by_adadelta"
    _check_adadelta_args(fn, rho, eps)

    def init_fn(params):
        return ScaleByAdaDeltaState(e_g=tree_zeros_like(params), e_x=tree_zeros_like(params))

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.e_g, params)
        e_g = gate(keep, update_moment(updates, state.e_g, rho, 2), state.e_g)
        # One square root of the ratio (not a sqrt and an rsqrt): XLA does not duplicate
        # transcendentals into each consumer, so two of them would be materialized as arrays.
        new_updates = jax.tree.map(
            lambda g, eg, ex: (g * jnp.sqrt((ex + eps) / (eg + eps))).astype(g.dtype),
            updates,
            e_g,
            state.e_x,
        )
        e_x = gate(keep, update_moment(new_updates, state.e_x, rho, 2), state.e_x)
        return new_updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return gated_transformation(init_fn, step)


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: Numeric = 0.9,
    eps: Numeric = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = None,
) -> GradientTransformation:
    r"""The AdaDelta optimizer, with optional coupled weight decay.

    .. math::

        w_{t+1} = w_t - \eta_t\, \Delta x_t, \qquad
        \Delta x_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}
        \, (g_t + \lambda w_t)

    ``chain(add_decayed_weights(weight_decay, weight_decay_mask), scale_by_adadelta(rho, eps),
    scale_by_learning_rate(learning_rate))``, as in optax. ``learning_rate=None`` means the
    paper's :math:`\eta = 1` (a descent step; optax's ``None`` skips the scaling and so the
    sign flip, which moves *up* the gradient).

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array, a schedule, or
        ``None`` for 1.
      rho: :math:`\rho` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      weight_decay: :math:`\lambda \ge 0`, an L2 penalty added to the gradient before scaling.
      weight_decay_mask: where to apply the weight decay (see ``add_decayed_weights``).

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = ol.adadelta(learning_rate=10.0)
      >>> x = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(x)
      >>> for _ in range(5):
      ...     u, state = tx.update(jax.grad(f)(x), state, x)
      ...     x = ol.apply_updates(x, u)
      >>> print(f"{f(x):.2f}")
      12.14

    References:
      Zeiler, `ADADELTA: An Adaptive Learning Rate Method <https://arxiv.org/abs/1212.5701>`_,
      2012.
    """
    fn = "adadelta"
    check_nonnegative(fn, "learning_rate", learning_rate, schedule=True, none=True)
    _check_adadelta_args(fn, rho, eps)
    check_nonnegative(fn, "weight_decay", weight_decay, schedule=True)
    check_mask_spec(fn, "weight_decay_mask", weight_decay_mask)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_adadelta(rho=rho, eps=eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )
