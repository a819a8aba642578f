r"""Constraints on the parameters: max-norm, non-negativity and projections.

Each is a transformation placed *last* in a chain. It reads the current parameters
:math:`\theta_t` and the proposed update :math:`u_t` and returns the update that lands on the
projected parameters:

.. math::

    u'_t = \Pi(\theta_t + u_t) - \theta_t

so that ``apply_updates`` gives :math:`\theta_{t+1} = \Pi(\theta_t + u_t)` (projected gradient
descent). Elements the projection leaves unchanged keep their update exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.base import EmptyState, GradientTransformation, Numeric, Params, PyTree
from optlab.core.numerics import compute_dtype, global_norm
from optlab.core.validation import (
    check_broadcasts_to,
    check_callable,
    check_mask_spec,
    check_number,
    check_positive,
    check_trees_match,
    require_params,
)
from optlab.transforms.clipping import check_axis
from optlab.transforms.regularization import MaskSpec, mask_flags

Axis = int | Sequence[int] | None


def _stateless(
    fn: str, update_params: Callable[[PyTree, Params], PyTree]
) -> GradientTransformation:
    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        require_params(fn, params)
        check_trees_match(fn, updates, params, what="the updates", reference_what="the params")
        return update_params(updates, params), state

    return GradientTransformation(init_fn, update_fn)


def _towards(p: jax.Array, u: jax.Array, projected: jax.Array, q: jax.Array) -> jax.Array:
    """The update reaching ``projected`` from ``p``; exactly ``u`` where nothing moved."""
    return jnp.where(projected == q, u, (projected - p).astype(u.dtype)).astype(u.dtype)


def project_params(projection: Callable[[Params], Params]) -> GradientTransformation:
    r"""Projected steps for any projection of the parameter tree: :math:`u' = \Pi(\theta + u)
    - \theta`.

    Args:
      projection: a function from a parameter tree to a parameter tree of the same
        structure, e.g. ``optax.projections.projection_simplex``. Compose with
        ``ol.masked`` to project only some parameters.

    Returns:
      A stateless transformation that needs ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.project_params(lambda p: jnp.clip(p, 0.0, 1.0))
      >>> params = jnp.array([0.5, 0.9])
      >>> u, _ = tx.update(jnp.array([0.25, 0.5]), tx.init(params), params)
      >>> print(ol.apply_updates(params, u))
      [0.75 1.  ]
    """

    return _projected("project_params", projection)


def _projected(fn: str, projection: Callable[[Params], Params]) -> GradientTransformation:
    check_callable(fn, "projection", projection, what="a function params -> params")

    def update_params(updates, params):
        proposed = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
        projected = projection(proposed)
        check_trees_match(
            fn, projected, proposed, what="the projection's result", reference_what="its input"
        )
        return jax.tree.map(_towards, params, updates, projected, proposed)

    return _stateless(fn, update_params)


def project_l2_ball(radius: Numeric = 1.0) -> GradientTransformation:
    r"""Keeps the whole parameter tree inside the L2 ball of radius :math:`r`.

    .. math::

        \Pi(\theta) = \theta \, \min\!\big(1, r / \lVert \theta \rVert_2\big)

    (the norm over all leaves together; use ``ol.masked`` to constrain a subset).

    Args:
      radius: :math:`r`, finite and ``> 0`` (or a jax array).

    Returns:
      A stateless transformation that needs ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.project_l2_ball(1.0)
      >>> params = jnp.array([0.0, 0.0])
      >>> u, _ = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(u)
      [0.6 0.8]
    """
    check_positive("project_l2_ball", "radius", radius)

    def projection(tree):
        norm = global_norm(tree)
        factor = jnp.where(norm > radius, radius / jnp.where(norm > 0, norm, 1.0), 1.0)
        return jax.tree.map(
            lambda x: (x.astype(compute_dtype(x.dtype)) * factor).astype(x.dtype), tree
        )

    return _projected("project_l2_ball", projection)


def project_box(lower: Numeric | PyTree, upper: Numeric | PyTree) -> GradientTransformation:
    r"""Keeps every parameter inside the box :math:`[l, h]`: :math:`\Pi(\theta) =
    \min(\max(\theta, l), h)`.

    Args:
      lower: :math:`l`, a number or a tree like the parameters (``-jnp.inf`` for no bound).
      upper: :math:`h`, a number or a tree like the parameters; ``lower <= upper``.

    Returns:
      A stateless transformation that needs ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.project_box(-1.0, 1.0)
      >>> params = jnp.array([0.5, 0.5])
      >>> u, _ = tx.update(jnp.array([-2.0, 0.25]), tx.init(params), params)
      >>> print(u)
      [-1.5   0.25]
    """
    if isinstance(lower, int | float) and isinstance(upper, int | float):
        for name, v in (("lower", lower), ("upper", upper)):
            if v != v:  # NaN
                raise ValueError(f"project_box: {name} must not be NaN, got {name}={v}")
        if lower > upper:
            raise ValueError(
                f"project_box: lower must be <= upper, got lower={lower}, upper={upper}"
            )

    for name, bound in (("lower", lower), ("upper", upper)):
        for leaf in jax.tree.leaves(bound):
            check_number("project_box", f"{name} (each leaf)", leaf, allow_array=True)
        if not jax.tree.leaves(bound):
            raise TypeError(
                f"project_box: {name} must be a number or a tree of numbers like the parameters, "
                f"got {name}={bound!r:.60}"
            )

    def as_tree(name, bound, tree):
        if isinstance(bound, dict | list | tuple) or len(jax.tree.leaves(bound)) > 1:
            check_trees_match(
                "project_box", bound, tree, what=f"the {name} bounds", reference_what="the params"
            )
            return bound  # a tree like the parameters
        for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
            check_broadcasts_to(
                "project_box", name, bound, x, what=f"the parameter {jax.tree_util.keystr(path)}"
            )
        return jax.tree.map(lambda _: bound, tree)

    def projection(tree):
        return jax.tree.map(
            lambda x, a, b: jnp.clip(x, a, b).astype(x.dtype),
            tree,
            as_tree("lower", lower, tree),
            as_tree("upper", upper, tree),
        )

    return _projected("project_box", projection)


def keep_params_nonnegative() -> GradientTransformation:
    r"""Keeps the parameters non-negative (optax's rule): :math:`u' = -\theta` where
    :math:`\theta + u < 0`, else :math:`u`.

    Put it last in a chain. Parameters that start negative are moved to 0.

    Returns:
      A stateless transformation that needs ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.keep_params_nonnegative()
      >>> params = jnp.array([0.5, 1.0])
      >>> u, _ = tx.update(jnp.array([-1.0, -0.5]), tx.init(params), params)
      >>> print(u)
      [-0.5 -0.5]
    """

    def update_params(updates, params):
        return jax.tree.map(
            lambda p, u: None if p is None else jnp.where(p + u < 0, -p, u).astype(u.dtype),
            params,
            updates,
            is_leaf=lambda x: x is None,
        )

    return _stateless("keep_params_nonnegative", update_params)


def _default_axis(ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim - 1)) if ndim >= 2 else tuple(range(ndim))


def max_norm(max_norm: Numeric, axis: Axis = None, mask: MaskSpec = None) -> GradientTransformation:
    r"""Max-norm regularization: after each step, each neuron's incoming weight vector
    :math:`\mathbf w_j` is rescaled so that :math:`\lVert \mathbf w_j \rVert_2 \le r`.

    .. math::

        \mathbf w_j \leftarrow \mathbf w_j \, \frac{r}{\max(\lVert \mathbf w_j \rVert_2, r)}

    applied to :math:`\theta_t + u_t`; the returned update reaches the rescaled weights.
    Which vector is "incoming": a Dense kernel has shape ``(in, out)`` (``x @ W``), so neuron
    :math:`j`'s incoming weights are the column ``W[:, j]`` and the norm reduces ``axis=0``;
    the default ``axis=None`` reduces every axis but the last (the output axis), which is also
    right for convolution kernels (``HWIO``). The seeds' ``tf.clip_by_norm(weights, r,
    axes=1)`` reduces the rows instead (each input's outgoing weights): pass ``axis=1`` for
    that. Only leaves with ``ndim >= 2`` (weight matrices) are constrained by default; pass
    ``mask`` to choose (a masked-in vector is constrained as a whole).

    Args:
      max_norm: :math:`r`, finite and ``> 0`` (or a jax array).
      axis: the axes reduced by the norm (one vector per remaining index); ``None`` for all but
        the last.
      mask: which leaves to constrain (a pytree of booleans, a function of the params, or glob
        patterns); ``None`` for every leaf with ``ndim >= 2``.

    Returns:
      A stateless transformation that needs ``params``; put it last in the chain.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"kernel": jnp.array([[6.0, 0.1], [8.0, 0.2]]), "bias": jnp.array([9.0])}
      >>> zero = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(1)}
      >>> tx = ol.max_norm(5.0)
      >>> u, _ = tx.update(zero, tx.init(params), params)
      >>> new = ol.apply_updates(params, u)
      >>> print(new["kernel"], new["bias"])
      [[3.  0.1]
       [4.  0.2]] [9.]

    References:
      Srivastava et al., Dropout: A Simple Way to Prevent Neural Networks from Overfitting,
      2014. https://jmlr.org/papers/v15/srivastava14a.html
    """
    r = max_norm
    check_positive("max_norm", "max_norm", r)
    check_axis("max_norm", axis)
    check_mask_spec("max_norm", "mask", mask)

    def one(u, p, flag):
        static = isinstance(flag, bool | np.bool_)
        if u is None or (static and not flag) or (mask is None and jnp.ndim(p) < 2):
            return u
        ax = _default_axis(jnp.ndim(p)) if axis is None else axis
        dt = compute_dtype(p.dtype)
        pc, uc = p.astype(dt), u.astype(dt)
        norm = jnp.sqrt(jnp.sum(jnp.square(pc + uc), axis=ax, keepdims=True))
        factor = jnp.where(norm > r, r / jnp.where(norm > 0, norm, 1.0), 1.0)
        # f (p + u) - p written as f u + (f - 1) p: one elementwise pass over (p, u) that XLA
        # fuses into apply_updates, and exactly u where the vector is inside (f = 1).
        new = (factor * uc + (factor - 1.0) * pc).astype(u.dtype)
        return new if static else jnp.where(flag, new, u)

    def update_params(updates, params):
        flags = mask_flags("max_norm", mask, params)
        return jax.tree.map(one, updates, params, flags, is_leaf=lambda x: x is None)

    return _stateless("max_norm", update_params)
