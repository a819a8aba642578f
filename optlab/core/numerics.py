"""Tree numerics shared by every transformation, written once.

Moment EMAs, bias correction, the saturating step counter, norms, dtype handling and the
evaluation of hyperparameters that may be numbers, arrays or schedules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # annotations only: base imports validation, which imports this module
    from optlab.core.base import Numeric, PyTree, ScalarOrSchedule

# ---------------------------------------------------------------------------------------------
# Step counter


def zero_count() -> jax.Array:
    """The initial value of every step counter: an int32 zero."""
    return jnp.zeros([], jnp.int32)


def safe_increment(count: jax.Array) -> jax.Array:
    """Adds one to an integer counter, saturating at the dtype's maximum instead of wrapping.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(safe_increment(jnp.asarray(2**31 - 1, jnp.int32)))
      2147483647
    """
    count = jnp.asarray(count)
    max_value = jnp.iinfo(count.dtype).max
    return jnp.where(count < max_value, count + 1, max_value).astype(count.dtype)


def gate(keep: Any, new: PyTree, old: PyTree) -> PyTree:
    """``new`` where the scalar boolean ``keep`` is true, else ``old`` (cast to ``new``'s
    dtypes), leaf by leaf; ``keep=None`` returns ``new``. Written inside a transformation's own
    update, the select fuses into the loop that computes ``new`` (see
    :func:`optlab.core.base.gated_transformation`)."""
    if keep is None:
        return new

    def select(n, o):
        if n is None:
            return None
        o = jnp.asarray(o)
        return jnp.where(keep, n, o if o.dtype == n.dtype else o.astype(n.dtype))

    return jax.tree.map(select, new, old, is_leaf=lambda x: x is None)


# ---------------------------------------------------------------------------------------------
# Hyperparameters


def resolve(hyperparameter: ScalarOrSchedule, count: jax.Array) -> Any:
    """The value of a hyperparameter at step ``count``: ``h(count)`` for a schedule, else ``h``."""
    return hyperparameter(count) if callable(hyperparameter) else hyperparameter


# ---------------------------------------------------------------------------------------------
# Dtypes


def canonicalize_dtype(dtype: Any) -> jnp.dtype | None:
    """``None`` stays ``None`` (meaning: the parameter's own dtype); otherwise a canonical dtype."""
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def compute_dtype(dtype: Any) -> jnp.dtype:
    """The dtype in which delicate scalars are computed: the wider of ``dtype`` and float32."""
    return jnp.promote_types(dtype, jnp.float32)


def tree_cast(tree: PyTree, dtype: Any) -> PyTree:
    """Casts every floating leaf to ``dtype``; ``dtype=None`` returns the tree unchanged."""
    if dtype is None:
        return tree
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else x, tree
    )


def tree_cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Casts each leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda x, y: jnp.asarray(x).astype(jnp.asarray(y).dtype), tree, like)


def tree_zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Zeros shaped like ``tree``, in ``dtype`` or each leaf's own dtype.

    Works on ``jax.ShapeDtypeStruct`` leaves, so ``init`` can run abstractly.
    """
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), dtype or jnp.result_type(x)), tree)


def tree_full_like(tree: PyTree, fill_value: Numeric, dtype: Any = None) -> PyTree:
    """A constant tree shaped like ``tree``, in ``dtype`` or each leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.full(jnp.shape(x), fill_value, dtype or x.dtype), tree)


# ---------------------------------------------------------------------------------------------
# Moments


def _ema(gk: jax.Array, m: jax.Array, decay: Numeric) -> jax.Array:
    """One EMA step, computed in float32 or wider, stored in ``m``'s dtype."""
    dt = compute_dtype(m.dtype)
    decay = jnp.asarray(decay)
    return (decay * m.astype(dt) + (1 - decay) * gk.astype(dt)).astype(m.dtype)


def update_moment(updates: PyTree, moments: PyTree, decay: Numeric, order: int) -> PyTree:
    """Exponential moving average of the ``order``-th power of the updates.

    .. math::

        m_t = \\beta\\, m_{t-1} + (1 - \\beta)\\, g_t^{\\,k}

    ``decay`` becomes a JAX scalar before :math:`1 - \\beta` is formed, so the two weights
    are exact complements of the same rounded :math:`\\beta` (in float32 ``1 - f32(0.999)``
    is exact) and a Python-float ``decay`` and the same value injected as an array
    (``inject_hyperparams``) give bit-identical moments. With the bias correction
    :math:`1 - \\beta^t` of that same :math:`\\beta`, Adam's first step is exactly
    :math:`-\\eta\\,\\mathrm{sign}(g)`; optax pairs a float32 :math:`\\beta` with a
    float64 :math:`1 - \\beta`, which differs by about 1e-5 relative. (The lerp form
    :math:`g + \\beta(m - g)` avoids :math:`1 - \\beta` too, but cancels catastrophically
    when :math:`\\beta \\to 1`.) The arithmetic is done in float32 or wider (a bfloat16
    ``0.999`` rounds to 1 and would freeze the average); the result keeps each moment's dtype
    (the accumulator dtype).
    """

    def ema(g, m):
        if g is None:
            return None
        g = g.astype(compute_dtype(g.dtype))
        return _ema(g if order == 1 else g**order, m, decay)

    return jax.tree.map(ema, updates, moments, is_leaf=lambda x: x is None)


def update_moment_per_elem_norm(
    updates: PyTree, moments: PyTree, decay: Numeric, order: int
) -> PyTree:
    """EMA of ``|g|^order`` (the squared magnitude for ``order=2``, also for complex ``g``),
    with the same rounding and precision as :func:`update_moment`."""

    def ema(g, m):
        if g is None:
            return None
        if jnp.iscomplexobj(g):
            gk = jnp.real(g * jnp.conj(g)) if order == 2 else jnp.abs(g) ** order
        else:
            g = g.astype(compute_dtype(g.dtype))
            gk = g * g if order == 2 else jnp.abs(g) ** order
        return _ema(gk, m, decay)

    return jax.tree.map(ema, updates, moments, is_leaf=lambda x: x is None)


def bias_correction_factor(decay: Numeric, count: jax.Array) -> jax.Array:
    """The Adam bias-correction denominator :math:`1 - \\beta^t`, in float32 or wider.

    ``count`` is the number of the step being taken (1 for the first update).
    """
    decay = jnp.asarray(decay)
    dtype = compute_dtype(decay.dtype)
    return 1.0 - jnp.asarray(decay, dtype) ** jnp.asarray(count, dtype)


def bias_correction(moments: PyTree, decay: Numeric, count: jax.Array) -> PyTree:
    """:math:`\\hat m_t = m_t / (1 - \\beta^t)`, the factor computed in float32 or wider, then
    the result cast back to each moment's dtype."""
    factor = bias_correction_factor(decay, count)
    return jax.tree.map(
        lambda m: (
            None if m is None else (m / factor.astype(compute_dtype(m.dtype))).astype(m.dtype)
        ),
        moments,
        is_leaf=lambda x: x is None,
    )


# ---------------------------------------------------------------------------------------------
# Norms and reductions


def _leaves(tree: PyTree) -> list[jax.Array]:
    return [x for x in jax.tree.leaves(tree) if x is not None]


def tree_sum_of_squares(tree: PyTree) -> jax.Array:
    """:math:`\\sum_i \\lVert x_i \\rVert_2^2` over every leaf, accumulated in float32 or wider."""
    leaves = _leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    total = None
    for x in leaves:  # one reduction per leaf, summed once: this is traced, not a hot Python loop
        x = jnp.asarray(x)
        dt = compute_dtype(jnp.real(x).dtype if jnp.iscomplexobj(x) else x.dtype)
        s = (
            jnp.sum(jnp.real(x * jnp.conj(x)).astype(dt))
            if jnp.iscomplexobj(x)
            else jnp.sum(jnp.square(x.astype(dt)))
        )
        total = s if total is None else total + s.astype(jnp.promote_types(total.dtype, s.dtype))
    return total


def global_norm(tree: PyTree) -> jax.Array:
    """The global L2 norm :math:`\\sqrt{\\sum_i \\lVert x_i \\rVert_2^2}` of a tree, in float32
    or wider.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(global_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])}))
      5.0
    """
    from optlab.core.validation import check_numeric_tree  # validation imports this module

    check_numeric_tree("global_norm", "tree", tree)
    return jnp.sqrt(tree_sum_of_squares(tree))


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    """The inner product :math:`\\sum_i \\langle a_i, b_i \\rangle` of two trees (float32+)."""
    pairs = [
        jnp.vdot(x.astype(compute_dtype(x.dtype)), y.astype(compute_dtype(y.dtype))).real
        for x, y in zip(_leaves(a), _leaves(b), strict=True)
    ]
    return sum(pairs[1:], pairs[0]) if pairs else jnp.zeros([], jnp.float32)


def tree_scale(scalar: Numeric, tree: PyTree) -> PyTree:
    """:math:`c\\,x` for every leaf, keeping each leaf's dtype."""
    return jax.tree.map(
        lambda x: None if x is None else (scalar * x).astype(x.dtype),
        tree,
        is_leaf=lambda x: x is None,
    )


def tree_add_scaled(a: PyTree, scalar: Numeric, b: PyTree) -> PyTree:
    """:math:`a + c\\,b` leaf by leaf, in the dtype of ``a``."""
    return jax.tree.map(lambda x, y: (x + scalar * y).astype(x.dtype), a, b)


def tree_all_finite(tree: PyTree) -> jax.Array:
    """A boolean scalar: every element of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in _leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def is_concrete_number(x: Any) -> bool:
    """True for Python numbers and concrete NumPy scalars/0-d arrays (never for jax tracers)."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int | float | np.integer | np.floating):
        return True
    return isinstance(x, np.ndarray) and x.ndim == 0
