r"""BFGS (dense inverse Hessian) and Newton's method (exact Hessian or Newton-CG).

The seeds' Newton update, from the second-order Taylor expansion of :math:`J` at
:math:`\theta_0`, is :math:`\theta^* = \theta_0 - H^{-1}\nabla_\theta J(\theta_0)`. The
Hessian has :math:`O(N^2)` entries and inverting it costs :math:`O(N^3)`: these methods are for
small problems (a few thousand parameters at most); use :func:`optlab.lbfgs` beyond.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from optlab.core.base import GradientTransformation, Params, ScalarOrSchedule, identity
from optlab.core.combine import chain
from optlab.core.numerics import (
    global_norm,
    safe_increment,
    tree_add_scaled,
    tree_all_finite,
    tree_vdot,
    tree_zeros_like,
    zero_count,
)
from optlab.core.validation import (
    check_bool,
    check_int_at_least,
    check_learning_rate,
    check_nonnegative,
    check_positive,
    check_transformation,
    check_updates,
)
from optlab.optimizers.linesearch import (
    _scalar_dtype,
    scale_by_backtracking_linesearch,
    scale_by_zoom_linesearch,
)
from optlab.transforms.scale import scale, scale_by_learning_rate


def _num_params(params: Params) -> int:
    return sum(math.prod(jnp.shape(x)) for x in jax.tree.leaves(params))


def _require_params(fn: str, params: Params) -> None:
    if params is None:
        raise ValueError(
            f"{fn}: update() needs the current parameters; call tx.update(grad, state, params, "
            f"value=value, grad=grad, value_fn=f) (optlab.minimize does this for you)"
        )


# ---------------------------------------------------------------------------------------------
# BFGS


class ScaleByBFGSState(NamedTuple):
    """State of :func:`scale_by_bfgs`.

    Attributes:
      count: number of updates so far.
      prev_params: the parameters at the previous update.
      prev_updates: the gradients at the previous update.
      inv_hessian: the dense :math:`n \\times n` inverse-Hessian approximation :math:`H_k`
        over the flattened parameters.
      num_pairs: the number of curvature pairs accepted so far.
    """

    count: jax.Array
    prev_params: Params
    prev_updates: Params
    inv_hessian: jax.Array
    num_pairs: jax.Array


def scale_by_bfgs(scale_init_precond: bool = True) -> GradientTransformation:
    r"""Multiplies the gradient by the BFGS inverse-Hessian approximation: :math:`u = H_k g_k`.

    With :math:`s = \theta_{k} - \theta_{k-1}`, :math:`y = g_k - g_{k-1}`,
    :math:`\rho = 1/(s^\top y)`:

    .. math::

        H_k = (I - \rho\, s y^\top)\, H_{k-1}\, (I - \rho\, y s^\top) + \rho\, s s^\top,

    skipping pairs with :math:`s^\top y \le \varepsilon\, y^\top y` (so :math:`H_k` stays
    positive definite). Before the first pair, :math:`H = \min(1, 1/\lVert g\rVert) I`; with
    ``scale_init_precond``, the first update starts from :math:`H = (s^\top y / y^\top y) I`
    (Nocedal & Wright, eq. 6.20). :math:`H` is a dense matrix over the flattened parameters:
    :math:`O(n^2)` memory and work per step.

    Args:
      scale_init_precond: rescale the initial matrix before the first update (above).

    Returns:
      A :class:`~optlab.GradientTransformation` (``update`` needs ``params``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_bfgs()
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([3.0, 4.0]), state, jnp.zeros(2))
      >>> print(u)
      [0.6 0.8]

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithm 6.1,
      https://doi.org/10.1007/978-0-387-40065-5
    """
    check_bool("scale_by_bfgs", "scale_init_precond", scale_init_precond)

    def init_fn(params):
        dt = _scalar_dtype(params)
        n = _num_params(params)
        return ScaleByBFGSState(
            count=zero_count(),
            prev_params=tree_zeros_like(params),
            prev_updates=tree_zeros_like(params),
            inv_hessian=jnp.eye(n, dtype=dt),
            num_pairs=zero_count(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _require_params("scale_by_bfgs", params)
        check_updates("scale_by_bfgs", updates, state.prev_updates, params)
        h = state.inv_hessian
        dt = h.dtype
        g, unravel = ravel_pytree(updates)
        g = g.astype(dt)
        s = ravel_pytree(params)[0].astype(dt) - ravel_pytree(state.prev_params)[0].astype(dt)
        y = g - ravel_pytree(state.prev_updates)[0].astype(dt)
        sy = s @ y
        yy = y @ y
        accept = (state.count > 0) & (sy > jnp.finfo(dt).eps * yy) & jnp.isfinite(sy)
        eye = jnp.eye(h.shape[0], dtype=dt)
        safe_sy = jnp.where(accept, sy, 1.0)
        if scale_init_precond:
            h = jnp.where(state.num_pairs == 0, (safe_sy / jnp.where(accept, yy, 1.0)) * eye, h)
        rho = 1.0 / safe_sy
        hy = h @ y
        updated = (
            h
            - rho * (jnp.outer(s, hy) + jnp.outer(hy, s))
            + (rho * rho * (y @ hy) + rho) * jnp.outer(s, s)
        )
        h = jnp.where(accept, updated, state.inv_hessian)
        num_pairs = state.num_pairs + accept.astype(jnp.int32)
        first_scale = jnp.minimum(1.0, 1.0 / jnp.linalg.norm(g)) if scale_init_precond else 1.0
        direction = jnp.where(num_pairs == 0, first_scale * g, h @ g)
        direction = unravel(direction)
        direction = jax.tree.map(lambda d, u: d.astype(u.dtype), direction, updates)
        return direction, ScaleByBFGSState(
            count=safe_increment(state.count),
            prev_params=jax.tree.map(lambda p, q: p.astype(q.dtype), params, state.prev_params),
            prev_updates=jax.tree.map(lambda a, b: a.astype(b.dtype), updates, state.prev_updates),
            inv_hessian=h,
            num_pairs=num_pairs,
        )

    return GradientTransformation(init_fn, update_fn)


def bfgs(
    learning_rate: ScalarOrSchedule | None = None,
    scale_init_precond: bool = False,
    linesearch: GradientTransformation | None = scale_by_zoom_linesearch(  # noqa: B008
        max_linesearch_steps=20, initial_guess_strategy="quadratic"
    ),
) -> GradientTransformation:
    r"""BFGS with a strong-Wolfe line search: :math:`\theta_{k+1} = \theta_k - \eta_k H_k g_k`.

    The chain ``scale_by_bfgs -> scale(-1)`` (or ``scale_by_learning_rate``) ``->
    linesearch``, with the arguments of :func:`optlab.lbfgs` (no memory size: :math:`H_k` is
    dense, for problems of at most a few thousand parameters). The defaults follow SciPy's
    BFGS: :math:`H_0 = I` unscaled, and a first trial step interpolated from the last
    decrease (``initial_guess_strategy="quadratic"``). On an ill-conditioned quadratic this
    took about 3x fewer evaluations than the scaled :math:`H_0` of L-BFGS, whose too-small
    initial curvature estimate BFGS corrects only slowly.

    Args:
      learning_rate: a fixed step size or schedule; ``None`` leaves it to the line search.
      scale_init_precond: see :func:`scale_by_bfgs`.
      linesearch: a line search transformation (default: zoom, at most 20 evaluations,
        quadratic initial guess), or ``None``.

    Returns:
      A :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 100.0]))
      >>> print(ol.minimize(f, jnp.zeros(2), method=ol.bfgs()).params)
      [1. 1.]

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, chapter 6,
      https://doi.org/10.1007/978-0-387-40065-5
    """
    check_bool("bfgs", "scale_init_precond", scale_init_precond)
    if linesearch is not None:
        check_transformation("bfgs", "linesearch", linesearch)
    if learning_rate is None:
        base_scaling = scale(-1.0)
    else:
        check_learning_rate("bfgs", learning_rate)
        base_scaling = scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_bfgs(scale_init_precond=scale_init_precond),
        base_scaling,
        identity() if linesearch is None else linesearch,
    )


# ---------------------------------------------------------------------------------------------
# Newton


class ScaleByNewtonState(NamedTuple):
    """State of :func:`scale_by_newton`.

    Attributes:
      count: number of updates so far.
      num_cg_steps: conjugate-gradient iterations (Hessian-vector products) of the last
        update (0 for the dense solver).
      used_gradient: the last update fell back to the gradient direction (the damped Hessian
        was not positive definite along the solution, or the solve was not finite).
    """

    count: jax.Array
    num_cg_steps: jax.Array
    used_gradient: jax.Array


def _newton_cg(hvp, g, damping, max_steps, rtol):
    """Solves :math:`(H + \\lambda I) d = g` by CG, stopping at negative curvature
    (Nocedal & Wright, Algorithm 7.1). Returns ``(d, steps, used_gradient)``."""
    g_norm = global_norm(g)
    if rtol is None:
        tol = jnp.minimum(0.5, jnp.sqrt(g_norm)) * g_norm
    else:
        tol = rtol * g_norm

    def matvec(v):
        return tree_add_scaled(hvp(v), damping, v)

    # carry: (j, z, r, p, rr, done, negative_first)
    def cond(c):
        j, _, _, _, _, done, _ = c
        return (j < max_steps) & ~done

    def body(c):
        j, z, r, p, rr, _, _ = c
        bp = matvec(p)
        curv = tree_vdot(p, bp)
        negative = ~(curv > 0)
        alpha = rr / jnp.where(negative, 1.0, curv)
        z_new = tree_add_scaled(z, alpha, p)
        r_new = tree_add_scaled(r, -alpha, bp)
        rr_new = tree_vdot(r_new, r_new)
        p_new = tree_add_scaled(r_new, rr_new / rr, p)
        converged = jnp.sqrt(rr_new) <= tol
        keep = jax.tree.map(lambda new, old: jnp.where(negative, old, new), z_new, z)
        return (j + 1, keep, r_new, p_new, rr_new, negative | converged, negative & (j == 0))

    rr0 = tree_vdot(g, g)
    init = (jnp.zeros([], jnp.int32), tree_zeros_like(g), g, g, rr0, rr0 <= 0, jnp.asarray(False))
    steps, z, _, _, _, _, negative_first = jax.lax.while_loop(cond, body, init)
    return z, steps, negative_first


def scale_by_newton(
    damping: float = 0.0,
    solver: str = "dense",
    cg_max_steps: int | None = None,
    cg_tol: float | None = None,
) -> GradientTransformation:
    r"""Multiplies the gradient by the inverse (damped) Hessian: :math:`u = (H + \lambda I)^{-1} g`.

    :math:`H = \nabla^2 f(\theta)` is the exact Hessian of the ``value_fn`` passed to
    ``update``. With ``solver="dense"`` it is formed by ``jax.hessian`` over the flattened
    parameters and the system solved directly (:math:`O(n^2)` memory, :math:`O(n^3)` work);
    with ``solver="cg"`` only Hessian-vector products are used (forward-over-reverse) in a
    conjugate-gradient solve that stops at negative curvature (Newton-CG, Nocedal & Wright
    Algorithm 7.1), with the forcing tolerance
    :math:`\lVert r \rVert \le \min(0.5, \sqrt{\lVert g\rVert})\lVert g\rVert` unless
    ``cg_tol`` gives a relative one. If the result is not a descent direction
    (:math:`u^\top g \le 0`: an indefinite :math:`H + \lambda I`) or not finite, the gradient
    itself is returned and ``used_gradient`` is set in the state. Damping :math:`\lambda > 0`
    (Levenberg) shortens steps where the curvature is small.

    Args:
      damping: :math:`\lambda \ge 0`.
      solver: ``"dense"`` or ``"cg"``.
      cg_max_steps: the most CG iterations (default: 20 times the number of parameters, as
        SciPy's Newton-CG: in floating point CG may need more than :math:`n` iterations).
      cg_tol: relative residual tolerance of CG (``None``: the forcing sequence above).

    Returns:
      A :class:`~optlab.GradientTransformation` (``update`` needs ``params`` and
      ``value_fn``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: 0.5 * x @ jnp.array([[2.0, 0.0], [0.0, 8.0]]) @ x
      >>> tx = ol.scale_by_newton()
      >>> x = jnp.array([1.0, 1.0])
      >>> u, _ = tx.update(jax.grad(f)(x), tx.init(x), x, value_fn=f)
      >>> print(u)
      [1. 1.]

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, sections 3.3 and 7.1,
      https://doi.org/10.1007/978-0-387-40065-5
    """
    fn = "scale_by_newton"
    check_nonnegative(fn, "damping", damping)
    if not isinstance(solver, str) or solver not in ("dense", "cg"):
        raise ValueError(f"{fn}: solver must be 'dense' or 'cg', got solver={solver!r}")
    if cg_max_steps is not None:
        check_int_at_least(fn, "cg_max_steps", cg_max_steps, 1)
    if cg_tol is not None:
        check_positive(fn, "cg_tol", cg_tol)

    def init_fn(params):
        del params
        return ScaleByNewtonState(
            count=zero_count(), num_cg_steps=zero_count(), used_gradient=jnp.asarray(False)
        )

    def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
        del extra_args
        _require_params(fn, params)
        if value_fn is None:
            raise ValueError(
                f"{fn}: update() needs value_fn=..., the objective as a function of the "
                f"parameters (its Hessian is used); call tx.update(grad, state, params, "
                f"value_fn=f), or optlab.minimize(f, params, method='newton')"
            )
        out = jax.eval_shape(value_fn, params)
        if getattr(out, "shape", None) != ():
            raise ValueError(
                f"{fn}: value_fn must return a scalar, got {getattr(out, 'shape', out)}"
            )
        if solver == "dense":
            flat, unravel = ravel_pytree(params)
            dt = jnp.promote_types(flat.dtype, jnp.float32)
            hess = jax.hessian(lambda v: value_fn(unravel(v)))(flat).astype(dt)
            g = ravel_pytree(updates)[0].astype(dt)
            hess = hess + damping * jnp.eye(hess.shape[0], dtype=dt)
            d = jnp.linalg.solve(hess, g)
            bad = ~(jnp.all(jnp.isfinite(d)) & (d @ g > 0))
            d = jnp.where(bad, g, d)
            direction = jax.tree.map(lambda a, u: a.astype(u.dtype), unravel(d), updates)
            steps = zero_count()
        else:
            grad_fn = jax.grad(value_fn)

            def hvp(v):
                tangent = jax.tree.map(lambda x, p: x.astype(p.dtype), v, params)
                out = jax.jvp(grad_fn, (params,), (tangent,))[1]
                return jax.tree.map(lambda o, x: o.astype(x.dtype), out, v)

            g = jax.tree.map(lambda u: u.astype(jnp.promote_types(u.dtype, jnp.float32)), updates)
            max_steps = cg_max_steps if cg_max_steps is not None else 20 * _num_params(params)
            d, steps, negative_first = _newton_cg(hvp, g, damping, max_steps, cg_tol)
            bad = negative_first | ~tree_all_finite(d) | ~(tree_vdot(d, g) > 0)
            d = jax.tree.map(lambda a, b: jnp.where(bad, b, a), d, g)
            direction = jax.tree.map(lambda a, u: a.astype(u.dtype), d, updates)
        return direction, ScaleByNewtonState(
            count=safe_increment(state.count), num_cg_steps=steps, used_gradient=bad
        )

    return GradientTransformation(init_fn, update_fn)


def newton(
    learning_rate: ScalarOrSchedule | None = None,
    damping: float = 0.0,
    solver: str = "dense",
    cg_max_steps: int | None = None,
    cg_tol: float | None = None,
    linesearch: GradientTransformation | None = scale_by_backtracking_linesearch(  # noqa: B008
        max_backtracking_steps=30,
        decrease_factor=0.5,
        increase_factor=math.inf,
        store_grad=True,
    ),
) -> GradientTransformation:
    r"""Newton's method: :math:`\theta_{k+1} = \theta_k - \eta_k (H_k + \lambda I)^{-1} g_k`.

    The chain ``scale_by_newton -> scale(-1)`` (or ``scale_by_learning_rate``) ``->
    linesearch``; the default line search tries the full Newton step :math:`\eta = 1` first
    and halves it until the Armijo condition holds, so a quadratic is solved in one step.

    Args:
      learning_rate: a fixed step size or schedule; ``None`` leaves it to the line search.
      damping: :math:`\lambda \ge 0`.
      solver: ``"dense"`` (``jax.hessian``) or ``"cg"`` (Hessian-vector products).
      cg_max_steps: see :func:`scale_by_newton`.
      cg_tol: see :func:`scale_by_newton`.
      linesearch: a line search transformation, or ``None``.

    Returns:
      A :class:`~optlab.GradientTransformation` (``update`` needs ``params`` and the extra
      arguments ``value``, ``grad``, ``value_fn``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 100.0]))
      >>> result = ol.minimize(f, jnp.zeros(2), method=ol.newton())
      >>> print(result.params, result.num_steps)
      [1. 1.] 1

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, chapters 3 and 7,
      https://doi.org/10.1007/978-0-387-40065-5
    """
    if linesearch is not None:
        check_transformation("newton", "linesearch", linesearch)
    if learning_rate is None:
        base_scaling = scale(-1.0)
    else:
        check_learning_rate("newton", learning_rate)
        base_scaling = scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_newton(damping=damping, solver=solver, cg_max_steps=cg_max_steps, cg_tol=cg_tol),
        base_scaling,
        identity() if linesearch is None else linesearch,
    )
