r"""Penalties on the parameters added to the updates: L2 (weight decay), L1 and elastic net.

Each transformation adds the gradient of a penalty :math:`\lambda R(\theta)` to the incoming
updates. *Where* it sits in a chain decides what it means:

- before the optimizer's scaling (``chain(add_decayed_weights(wd), scale_by_adam(), ...)``)
  it is the classic coupled L2 penalty :math:`\tilde J(\theta) = J(\theta) +
  \tfrac{\lambda}{2}\lVert\theta\rVert_2^2`, whose gradient :math:`\lambda\theta` Adam then
  rescales like any other gradient;
- after the scaling and before the learning rate
  (``chain(scale_by_adam(), add_decayed_weights(wd), scale_by_learning_rate(lr))``) it is
  decoupled weight decay (AdamW): every weight shrinks by :math:`\eta\lambda\theta`,
  independently of the gradient's history.

Under plain SGD (no scaling between the two places) both give the same trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.base import GradientTransformation, Params, PyTree, ScalarOrSchedule
from optlab.core.numerics import is_concrete_number, resolve, safe_increment, zero_count
from optlab.core.paths import resolve_mask
from optlab.core.validation import (
    check_finite,
    check_mask_spec,
    check_nonnegative,
    describe_structure_difference,
    require_params,
)

MaskSpec = PyTree | Callable[[Params], PyTree] | list[str] | str | None


class RegularizationState(NamedTuple):
    """State of the penalty transformations.

    Attributes:
      count: number of updates applied (the step at which a scheduled coefficient is read).
    """

    count: jax.Array


def _ndim(x: Any) -> int:
    return len(getattr(x, "shape", np.shape(x)))


def decay_mask(params: Params) -> PyTree:
    """The usual weight-decay mask: ``True`` for weight matrices, ``False`` for every leaf with
    ``ndim <= 1`` (biases, normalization scales and offsets, scalars).

    Works on any pytree of arrays (plain dicts, ``flax.nnx.State``) and on
    ``jax.ShapeDtypeStruct`` leaves. Pass it (the function itself) as the ``mask`` of any
    decay transformation.

    Args:
      params: the parameters.

    Returns:
      A pytree of Python booleans with the structure of ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2), "scale": jnp.ones(2)}
      >>> print(ol.decay_mask(params))
      {'bias': False, 'kernel': True, 'scale': False}
    """
    return jax.tree.map(lambda x: _ndim(x) > 1, params)


def mask_flags(fn: str, mask: MaskSpec, params: Params) -> PyTree:
    """The mask resolved to a tree of booleans with the structure of ``params`` (all ``True``
    when ``mask`` is ``None``). Mismatched trees raise a ``ValueError`` naming ``fn`` and showing
    the difference."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    return resolve_mask(fn, mask, params)


def map_masked(
    fn: str,
    f: Callable[[jax.Array, jax.Array], jax.Array],
    mask: MaskSpec,
    updates: PyTree,
    params: Params,
) -> PyTree:
    """``f(u, p)`` on the leaves where ``mask`` is true, ``u`` elsewhere; results keep ``u``'s
    dtype. Python-boolean flags are resolved at trace time; array flags use ``jnp.where``."""
    flags = mask_flags(fn, mask, params)

    def one(u, p, flag):
        if u is None:
            return None
        if isinstance(flag, bool | np.bool_):
            return f(u, p).astype(u.dtype) if flag else u
        return jnp.where(flag, f(u, p), u).astype(u.dtype)

    try:
        return jax.tree.map(one, updates, params, flags, is_leaf=lambda x: x is None)
    except ValueError as err:
        raise ValueError(
            f"{fn}: the updates and the params have different tree structures "
            f"({describe_structure_difference(params, updates)}); pass the params the "
            f"gradients were taken with"
        ) from err


def _is_zero(x: Any) -> bool:
    return is_concrete_number(x) and float(x) == 0.0


def _penalty(
    fn: str,
    coefficients: dict[str, ScalarOrSchedule],
    grad_of_penalty: Callable[..., Callable[[jax.Array, jax.Array], jax.Array]],
    mask: MaskSpec,
    *,
    signed: bool = False,
) -> GradientTransformation:
    """Shared body of the penalty transformations: validate, resolve schedules, add.

    ``signed``: the coefficients may be negative (``add_decayed_weights``, which optax
    composes with negative coefficients in its own optimizers)."""
    for name, value in coefficients.items():
        if signed:
            check_finite(fn, name, value, schedule=True)
        else:
            check_nonnegative(fn, name, value, schedule=True)
    check_mask_spec(fn, "mask", mask)
    all_zero = all(_is_zero(v) for v in coefficients.values())

    def init_fn(params):
        del params
        return RegularizationState(count=zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        require_params(fn, params)
        new_state = RegularizationState(count=safe_increment(state.count))
        if all_zero:
            mask_flags(fn, mask, params)  # still report a mismatched mask
            return updates, new_state
        values = {k: resolve(v, state.count) for k, v in coefficients.items()}
        return map_masked(fn, grad_of_penalty(**values), mask, updates, params), new_state

    return GradientTransformation(init_fn, update_fn)


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: MaskSpec = None
) -> GradientTransformation:
    r"""Adds the parameters scaled by the weight decay: the gradient of an L2 penalty.

    .. math::

        u_t = g_t + \lambda_t\, \theta_t
        \qquad\big(\nabla_\theta\, \tfrac{\lambda}{2}\lVert\theta\rVert_2^2\big)

    Placed before an adaptive scaling (``scale_by_adam``) this is coupled L2 regularization,
    which the scaling adapts; placed after it and before the learning rate it is decoupled
    weight decay (AdamW). See the module docstring.

    Args:
      weight_decay: :math:`\lambda`, finite; a number, a jax array or a schedule ``count ->
        value``. It is usually positive; a negative value is accepted as in optax, which
        composes ``add_decayed_weights(m - 1)`` into its own optimizers.
      mask: where to apply it: a pytree of booleans with the structure of the parameters (or a
        prefix of it), a function ``params -> mask`` such as :func:`decay_mask`, or glob
        patterns on parameter paths (``"*kernel"``). ``None`` applies it everywhere.

    Returns:
      A transformation that needs ``params``; its state is ``RegularizationState(count)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([3.0])}
      >>> grads = {"kernel": jnp.zeros((1, 2)), "bias": jnp.zeros(1)}
      >>> tx = ol.add_decayed_weights(0.1, mask=ol.decay_mask)
      >>> u, _ = tx.update(grads, tx.init(params), params)
      >>> print(u["kernel"], u["bias"])
      [[ 0.1 -0.2]] [0.]

    References:
      Loshchilov and Hutter, Decoupled Weight Decay Regularization, 2019.
      https://arxiv.org/abs/1711.05101
    """

    def grad_of_penalty(weight_decay):
        return lambda g, p: g + weight_decay * p

    return _penalty(
        "add_decayed_weights", {"weight_decay": weight_decay}, grad_of_penalty, mask, signed=True
    )


def add_l1(l1: ScalarOrSchedule = 0.0, mask: MaskSpec = None) -> GradientTransformation:
    r"""Adds the subgradient of an L1 penalty :math:`\lambda \sum_i |\theta_i|`.

    .. math::

        u_t = g_t + \lambda_t\, \operatorname{sign}(\theta_t)

    (with :math:`\operatorname{sign}(0) = 0`). Place it before the optimizer's scaling, like
    a penalty added to the loss.

    Args:
      l1: :math:`\lambda`, finite and ``>= 0``; a number, a jax array or a schedule.
      mask: where to apply it (see :func:`add_decayed_weights`).

    Returns:
      A transformation that needs ``params``; its state is ``RegularizationState(count)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = jnp.array([2.0, -0.5, 0.0])
      >>> tx = ol.add_l1(0.01)
      >>> u, _ = tx.update(jnp.ones(3), tx.init(params), params)
      >>> print(u)
      [1.01 0.99 1.  ]

    References:
      Tibshirani, Regression Shrinkage and Selection via the Lasso, 1996.
      https://doi.org/10.1111/j.2517-6161.1996.tb02080.x
    """

    def grad_of_penalty(l1):
        return lambda g, p: g + l1 * jnp.sign(p)

    return _penalty("add_l1", {"l1": l1}, grad_of_penalty, mask)


def add_elastic_net(
    l1: ScalarOrSchedule = 0.0, l2: ScalarOrSchedule = 0.0, mask: MaskSpec = None
) -> GradientTransformation:
    r"""Adds the (sub)gradient of the elastic-net penalty
    :math:`\lambda_1 \sum_i |\theta_i| + \tfrac{\lambda_2}{2}\lVert\theta\rVert_2^2`.

    .. math::

        u_t = g_t + \lambda_1\, \operatorname{sign}(\theta_t) + \lambda_2\, \theta_t

    The seeds' :math:`\lambda R(W)` with :math:`R(W) = \sum \beta W^2 + |W|` is ``l1=λ`` and
    ``l2=2λβ``.

    Args:
      l1: :math:`\lambda_1`, finite and ``>= 0`` (or an array, or a schedule).
      l2: :math:`\lambda_2`, finite and ``>= 0`` (or an array, or a schedule).
      mask: where to apply it (see :func:`add_decayed_weights`).

    Returns:
      A transformation that needs ``params``; its state is ``RegularizationState(count)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = jnp.array([2.0, -1.0])
      >>> tx = ol.add_elastic_net(l1=0.5, l2=0.25)
      >>> u, _ = tx.update(jnp.zeros(2), tx.init(params), params)
      >>> print(u)
      [ 1.   -0.75]

    References:
      Zou and Hastie, Regularization and Variable Selection via the Elastic Net, 2005.
      https://doi.org/10.1111/j.1467-9868.2005.00503.x
    """

    def grad_of_penalty(l1, l2):
        return lambda g, p: g + l1 * jnp.sign(p) + l2 * p

    return _penalty("add_elastic_net", {"l1": l1, "l2": l2}, grad_of_penalty, mask)
