r"""Gradient clipping: by value, by norm (per leaf, per block RMS, global) and adaptive.

Clipping bounds the size of a step when gradients explode. Put it first in a chain:
``ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(1e-3))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.base import EmptyState, GradientTransformation, Numeric
from optlab.core.numerics import compute_dtype, global_norm
from optlab.core.validation import (
    check_array,
    check_nonnegative,
    check_positive,
    check_trees_match,
    require_params,
)

Axis = int | Sequence[int] | None


def check_axis(fn: str, axis: Axis) -> None:
    """``axis`` must be ``None``, an integer or a sequence of integers."""
    ok = (
        axis is None
        or (isinstance(axis, int | np.integer) and not isinstance(axis, bool))
        or (
            isinstance(axis, Sequence)
            and not isinstance(axis, str)
            and all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in axis)
        )
    )
    if not ok:
        raise TypeError(
            f"{fn}: axis must be None, an integer or a sequence of integers, got "
            f"axis={axis!r:.60} ({type(axis).__name__})"
        )


def _stateless(update) -> GradientTransformation:
    def init_fn(params):
        del params
        return EmptyState()

    return GradientTransformation(init_fn, update)


def _map(f, updates):
    return jax.tree.map(lambda u: None if u is None else f(u), updates, is_leaf=lambda x: x is None)


def _scale_leaf(u: jax.Array, factor: jax.Array) -> jax.Array:
    """``u * factor`` computed in float32 or wider, returned in ``u``'s dtype."""
    return (u.astype(compute_dtype(u.dtype)) * factor).astype(u.dtype)


def _shrink_factor(norm: jax.Array, max_norm: Numeric) -> jax.Array:
    """:math:`c / \\max(\\lVert g\\rVert, c)`: 1 inside the ball, without a 0/0 at ``norm=0``."""
    return jnp.where(norm > max_norm, max_norm / jnp.where(norm > 0, norm, 1.0), 1.0)


def clip(max_delta: Numeric) -> GradientTransformation:
    r"""Clips every element of the updates to :math:`[-\delta, \delta]` (clipping by value).

    .. math::

        u_t = \min(\max(g_t, -\delta), \delta)

    Args:
      max_delta: :math:`\delta`, finite and ``>= 0`` (or a jax array).

    Returns:
      A stateless transformation.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.clip(1.0)
      >>> u, _ = tx.update(jnp.array([-3.0, 0.5, 2.0]), tx.init(None))
      >>> print(u)
      [-1.   0.5  1. ]

    References:
      Mikolov, Statistical Language Models Based on Neural Networks (PhD thesis), 2012.
      https://www.fit.vut.cz/study/phd-thesis-file/283/283.pdf
    """
    check_nonnegative("clip", "max_delta", max_delta)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return _map(lambda u: jnp.clip(u, -max_delta, max_delta).astype(u.dtype), updates), state

    return _stateless(update_fn)


def _norm(u: jax.Array, axis: Axis, keepdims: bool = True) -> jax.Array:
    x = u.astype(compute_dtype(u.dtype))
    return jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=keepdims))


def clip_by_norm(max_norm: Numeric, axis: Axis = None) -> GradientTransformation:
    r"""Rescales each leaf (or each slice along ``axis``) to an L2 norm of at most ``max_norm``.

    .. math::

        u_t = g_t \, \frac{c}{\max(\lVert g_t \rVert_2, c)}

    With ``axis`` the norm is taken over those axes, one factor per remaining index (the
    semantics of ``tf.clip_by_norm(t, clip_norm, axes)``).

    Args:
      max_norm: :math:`c`, finite and ``> 0`` (or a jax array).
      axis: the axes reduced by the norm; ``None`` for the whole leaf.

    Returns:
      A stateless transformation.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.clip_by_norm(1.0)
      >>> u, _ = tx.update({"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.5])}, tx.init(None))
      >>> print(u["a"], u["b"])
      [0.6 0.8] [0.5]
    """
    check_positive("clip_by_norm", "max_norm", max_norm)
    check_axis("clip_by_norm", axis)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return _map(
            lambda u: _scale_leaf(u, _shrink_factor(_norm(u, axis), max_norm)), updates
        ), state

    return _stateless(update_fn)


def clip_by_block_rms(threshold: Numeric) -> GradientTransformation:
    r"""Rescales each leaf (a "block") so that its root mean square is at most ``threshold``.

    .. math::

        u_t = \frac{g_t}{\max\big(1, \mathrm{rms}(g_t) / \tau\big)},
        \qquad \mathrm{rms}(g) = \sqrt{\tfrac{1}{n}\textstyle\sum_i g_i^2}

    Args:
      threshold: :math:`\tau`, finite and ``> 0`` (or a jax array).

    Returns:
      A stateless transformation.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.clip_by_block_rms(1.0)
      >>> u, _ = tx.update(jnp.array([4.0, -4.0]), tx.init(None))
      >>> print(u)
      [ 1. -1.]
    """
    check_positive("clip_by_block_rms", "threshold", threshold)

    def one(u):
        # u / max(1, rms / tau), a division as optax writes it (bit-identical results).
        x = u.astype(compute_dtype(u.dtype))
        sq = jnp.real(x * jnp.conj(x)) if jnp.iscomplexobj(x) else x * x
        rms = jnp.sqrt(jnp.mean(sq)) if u.size else jnp.zeros([], sq.dtype)
        return (x / jnp.maximum(1.0, rms / threshold)).astype(u.dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return _map(one, updates), state

    return _stateless(update_fn)


class ClipByGlobalNormState(NamedTuple):
    """State of :func:`clip_by_global_norm`.

    Attributes:
      grad_norm: the global norm of the updates of the last step, *before* clipping (0 before
        any step); read it with ``optlab.get(state, "grad_norm")`` to log it.
    """

    grad_norm: jax.Array


def clip_by_global_norm(max_norm: Numeric) -> GradientTransformation:
    r"""Rescales all updates together so that their global L2 norm is at most ``max_norm``.

    .. math::

        \lVert g_t \rVert = \sqrt{\textstyle\sum_i \lVert g_{t,i} \rVert_2^2}, \qquad
        u_t = g_t \, \frac{c}{\max(\lVert g_t \rVert, c)}

    This is optax's rule: a clipped update has norm exactly :math:`c`. PyTorch's
    ``torch.nn.utils.clip_grad_norm_`` multiplies by :math:`\min(1, c / (\lVert g \rVert +
    10^{-6}))` instead, a factor smaller by :math:`\lVert g \rVert / (\lVert g \rVert +
    10^{-6})` when clipping. The factor is one scalar: inside a jitted step XLA fuses the
    multiplication into whatever consumes the clipped gradient (e.g. Adam's moments), so no
    clipped copy of the gradient is written to memory. The norm before clipping is kept in the
    state.

    Args:
      max_norm: :math:`c`, finite and ``> 0`` (or a jax array).

    Returns:
      A transformation whose state is ``ClipByGlobalNormState(grad_norm)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.clip_by_global_norm(1.0)
      >>> u, state = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
      >>> print(u["a"], u["b"], ol.get(state, "grad_norm"))
      [0.6] [0.8] 5.0

    References:
      Pascanu, Mikolov and Bengio, On the Difficulty of Training Recurrent Neural Networks,
      2013. https://arxiv.org/abs/1211.5063
    """
    check_positive("clip_by_global_norm", "max_norm", max_norm)

    def init_fn(params):
        dtypes = [compute_dtype(x.dtype) for x in jax.tree.leaves(params) if hasattr(x, "dtype")]
        dtype = jnp.result_type(*dtypes) if dtypes else jnp.float32
        return ClipByGlobalNormState(grad_norm=jnp.zeros([], dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del state, params, extra_args  # the new state depends on the updates only
        norm = global_norm(updates)
        factor = _shrink_factor(norm, max_norm)
        new_updates = _map(lambda u: _scale_leaf(u, factor), updates)
        return new_updates, ClipByGlobalNormState(norm)

    return GradientTransformation(init_fn, update_fn)


def unitwise_norm(x: jax.Array, axis: Axis = None) -> jax.Array:
    """The L2 norm of each unit of ``x``, broadcast back to ``x``'s shape.

    With ``axis=None``, a unit is: the whole array for scalars and vectors; a column (axis 0
    reduced) for ``(in, out)`` and ``(heads, in, out)``-shaped kernels; all but the last axis
    for 4-D and 5-D convolution kernels (``HWIO``, ``DHWIO``). Other shapes need ``axis``.
    """
    x = check_array("unitwise_norm", "x", x, kinds="iufc")
    check_axis("unitwise_norm", axis)
    if axis is None:
        if x.ndim <= 1 or jnp.squeeze(x).ndim <= 1:
            axis = tuple(range(x.ndim))
        elif x.ndim in (2, 3):
            axis = 0
        elif x.ndim in (4, 5):
            axis = tuple(range(x.ndim - 1))
        else:
            raise ValueError(
                f"adaptive_grad_clip: cannot choose the unit of a parameter of shape {x.shape}; "
                f"pass axis=... (the axes reduced by the unit-wise norm)"
            )
    return jnp.broadcast_to(_norm(x, axis), x.shape)


def adaptive_grad_clip(
    clipping: Numeric, eps: Numeric = 1e-3, axis: Axis = None
) -> GradientTransformation:
    r"""Adaptive gradient clipping (AGC): clips each unit's gradient relative to its weights.

    .. math::

        u_i = \begin{cases}
            g_i & \lVert g_i \rVert < \lambda \max(\lVert \theta_i \rVert, \epsilon) \\
            \lambda \max(\lVert \theta_i \rVert, \epsilon)\, g_i / \lVert g_i \rVert
            & \text{otherwise}
        \end{cases}

    for every unit :math:`i` (see :func:`unitwise_norm`).

    Args:
      clipping: :math:`\lambda`, the largest allowed ratio of gradient norm to parameter norm;
        finite and ``> 0``.
      eps: :math:`\epsilon`, so zero-initialized parameters can still move; finite, ``>= 0``.
      axis: the axes of a unit's norm; ``None`` chooses from the shape as optax does.

    Returns:
      A stateless transformation that needs ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.adaptive_grad_clip(0.1)
      >>> params = jnp.array([3.0, 4.0])
      >>> u, _ = tx.update(jnp.array([6.0, 8.0]), tx.init(params), params)
      >>> print(u)
      [0.3 0.4]

    References:
      Brock, De, Smith and Simonyan, High-Performance Large-Scale Image Recognition Without
      Normalization, 2021. https://arxiv.org/abs/2102.06171
    """
    check_positive("adaptive_grad_clip", "clipping", clipping)
    check_nonnegative("adaptive_grad_clip", "eps", eps)
    check_axis("adaptive_grad_clip", axis)

    def one(g, p):
        if g is None:
            return None
        g_norm = unitwise_norm(g, axis)
        max_norm = clipping * jnp.maximum(unitwise_norm(p, axis), eps)
        clipped = g.astype(g_norm.dtype) * (max_norm / jnp.maximum(g_norm, 1e-6))
        return jnp.where(g_norm < max_norm, g, clipped).astype(g.dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        require_params("adaptive_grad_clip", params)
        check_trees_match(
            "adaptive_grad_clip", updates, params, what="the updates", reference_what="the params"
        )
        return jax.tree.map(one, updates, params, is_leaf=lambda x: x is None), state

    return _stateless(update_fn)
