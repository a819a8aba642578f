r"""Line searches as transformations: backtracking (Armijo) and zoom (strong Wolfe).

A line search receives a descent direction :math:`u` as its updates (for example
:math:`u = -P\,\nabla f(\theta)` from L-BFGS) and the extra arguments ``value``
(:math:`f(\theta)`), ``grad`` (:math:`\nabla f(\theta)`) and ``value_fn`` (:math:`f` itself).
It returns :math:`\eta\,u` for a step size :math:`\eta` chosen along the ray
:math:`\phi(\eta) = f(\theta + \eta u)`, and keeps in its state the step size, the value and
gradient at the new point (so the next iteration need not evaluate them again, see
:func:`value_and_grad_from_state`), the number of evaluations of ``value_fn`` and whether the
search failed. A search that cannot find an acceptable step never returns NaN parameters: it
returns the best step it saw that decreases :math:`f` sufficiently, or a zero step.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.access import find
from optlab.core.base import GradientTransformation, Params
from optlab.core.numerics import (
    global_norm,
    tree_add_scaled,
    tree_scale,
    tree_vdot,
    tree_zeros_like,
)
from optlab.core.validation import (
    check_bool,
    check_in_range,
    check_int_at_least,
    check_nonnegative,
    check_positive,
)

# ---------------------------------------------------------------------------------------------
# Shared helpers


def _scalar_dtype(params: Params) -> jnp.dtype:
    """The dtype of step sizes and values: the widest floating leaf dtype, at least float32."""
    dtype = jnp.float32
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(
            jnp.asarray(leaf).dtype if not hasattr(leaf, "dtype") else leaf.dtype, jnp.floating
        ):
            dtype = jnp.promote_types(dtype, leaf.dtype)
    return dtype


def _usage() -> str:
    return (
        "Call it as: value, grad = jax.value_and_grad(f)(params); "
        "updates, state = tx.update(direction, state, params, value=value, grad=grad, "
        "value_fn=f) (optlab.minimize(f, params) does this plumbing for you)"
    )


def value_fn_kwargs(value_fn: Callable[..., Any], extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments of ``update`` that ``value_fn`` takes by name (its data, as optax's
    line searches pass them: ``update(..., value_fn=f, x=x, y=y)`` evaluates ``f(p, x=x,
    y=y)``); the others are ignored, as every optlab transformation ignores what it does not
    use."""
    try:
        names = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in extra_args.items() if k in names}


def check_linesearch_args(
    fn: str, params: Any, value: Any, grad: Any, value_fn: Any, fn_kwargs: Any = None
) -> None:
    """Raises one clear ``ValueError`` naming the missing argument of a line search's update.

    Also checks, at trace time, that ``value_fn`` returns a scalar.
    """
    missing = [
        name
        for name, x in (
            ("params", params),
            ("value", value),
            ("grad", grad),
            ("value_fn", value_fn),
        )
        if x is None
    ]
    if missing:
        raise ValueError(
            f"{fn}: update() needs {', '.join(missing)} (the current parameters, the objective's "
            f"value and gradient there, and the objective as a function of the parameters). "
            + _usage()
        )
    if not callable(value_fn):
        raise ValueError(f"{fn}: value_fn must be callable, got {type(value_fn).__name__}")
    out = jax.eval_shape(functools.partial(value_fn, **(fn_kwargs or {})), params)
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"{fn}: value_fn must return a scalar, got {shape}; return the loss only (reduce it "
            f"with jnp.sum or jnp.mean, and drop auxiliary outputs)"
        )
    if jnp.shape(value) != ():
        raise ValueError(f"{fn}: value must be a scalar, got shape {jnp.shape(value)}")


def _cubic_minimizer(a, fa, da, b, fb, db):
    """Minimizer of the cubic interpolating :math:`\\phi, \\phi'` at ``a`` and ``b``.

    Nocedal & Wright (3.59); NaN when the cubic has no minimizer.
    """
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    d2 = jnp.sign(b - a) * jnp.sqrt(d1 * d1 - da * db)
    return b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2)


def _quadratic_minimizer(a, fa, da, b, fb):
    """Minimizer of the quadratic interpolating :math:`\\phi(a), \\phi'(a), \\phi(b)`."""
    d = b - a
    curvature = (fb - fa - da * d) / (d * d)
    return a - da / (2.0 * curvature)


def _safeguarded_trial(lo, f_lo, d_lo, hi, f_hi, d_hi):
    """A trial step inside the bracket: cubic, else quadratic, else bisection."""
    width = hi - lo
    left = jnp.minimum(lo, hi)
    right = jnp.maximum(lo, hi)

    def inside(x, margin):
        m = margin * jnp.abs(width)
        return jnp.isfinite(x) & (x >= left + m) & (x <= right - m)

    cubic = _cubic_minimizer(lo, f_lo, d_lo, hi, f_hi, d_hi)
    quad = _quadratic_minimizer(lo, f_lo, d_lo, hi, f_hi)
    bisect = lo + 0.5 * width
    return jnp.where(inside(cubic, 0.1), cubic, jnp.where(inside(quad, 0.1), quad, bisect))


# ---------------------------------------------------------------------------------------------
# Zoom line search (strong Wolfe)


class ZoomLinesearchInfo(NamedTuple):
    """Diagnostics of the last zoom line search.

    Attributes:
      num_linesearch_steps: evaluations of ``value_fn`` (with its gradient) in the last search.
      decrease_error: :math:`\\max(0, \\phi(\\eta) - \\phi(0) - c_1 \\eta \\phi'(0))`; zero
        when the sufficient-decrease (Armijo) condition holds.
      curvature_error: :math:`\\max(0, |\\phi'(\\eta)| - c_2 |\\phi'(0)|)`; zero when the strong
        curvature condition holds.
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """State of :func:`scale_by_zoom_linesearch`.

    Attributes:
      learning_rate: the step size :math:`\\eta` of the last search.
      value: :math:`f` at the new parameters (``inf`` before the first search).
      grad: :math:`\\nabla f` at the new parameters.
      info: :class:`ZoomLinesearchInfo` of the last search.
      num_fun_evals: evaluations of ``value_fn`` over all searches so far.
      failed: the last search found no step satisfying the strong Wolfe conditions (it then
        returned the best sufficient-decrease step seen, or a zero step).
      prev_value: :math:`f` where the last search started (for the ``"quadratic"`` guess).
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Params
    info: ZoomLinesearchInfo
    num_fun_evals: jax.Array
    failed: jax.Array
    prev_value: jax.Array


# Why a search failed, in optax's words (its tests and users' log filters look for them).
FLAG_INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. "
    "Consider increasing maximal possible stepsize of the linesearch."
)
FLAG_INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied."
)
FLAG_NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
FLAG_NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. "
)


def _report_zoom_failure(fn, failed, evals, slope, stepped, capped, tiny) -> None:
    """Prints (``verbose=True``) why a zoom search failed, one reason per line."""
    if not failed:
        return
    lines = [f"{fn}: no strong-Wolfe step found in {evals} evaluations (initial slope {slope})."]
    if slope >= 0:
        lines.append(FLAG_NOT_A_DESCENT_DIRECTION)
    if capped:
        lines.append(FLAG_INTERVAL_NOT_FOUND)
    if tiny:
        lines.append(FLAG_INTERVAL_TOO_SMALL)
    lines.append(FLAG_CURVATURE_COND_NOT_SATISFIED if stepped else FLAG_NO_STEPSIZE_FOUND)
    print("\n".join(lines))


class _ZoomCarry(NamedTuple):
    evals: jax.Array
    trial: jax.Array  # the next step size to evaluate
    zooming: jax.Array  # False: bracketing phase (N&W Alg. 3.5); True: zoom (Alg. 3.6)
    done: jax.Array
    success: jax.Array
    prev: jax.Array  # previous trial of the bracketing phase, its value and slope
    f_prev: jax.Array
    d_prev: jax.Array
    lo: jax.Array  # the bracket: lo has the lowest value and satisfies Armijo
    f_lo: jax.Array
    d_lo: jax.Array
    hi: jax.Array
    f_hi: jax.Array
    d_hi: jax.Array
    best: jax.Array  # the returned step: accepted, or the safe (Armijo, lowest value) one
    f_best: jax.Array
    d_best: jax.Array
    g_best: Params
    capped: jax.Array  # the bracketing phase reached max_learning_rate without a bracket
    tiny: jax.Array  # the bracket shrank below stepsize_precision


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformation:
    r"""Line search for a step satisfying the strong Wolfe conditions (zoom algorithm).

    Along :math:`\phi(\eta) = f(\theta + \eta u)` it looks for :math:`\eta` with

    .. math::

        \phi(\eta) \le \phi(0) + c_1 \eta\, \phi'(0) + \epsilon, \qquad
        |\phi'(\eta)| \le c_2 |\phi'(0)| + \epsilon,

    (sufficient decrease, strong curvature; :math:`c_1` = ``slope_rtol``, :math:`c_2` =
    ``curv_rtol``, :math:`\epsilon` = ``tol``). A bracketing phase grows :math:`\eta` by
    ``increase_factor`` until an interval containing such a step is found; the zoom phase then
    shrinks it with safeguarded cubic (then quadratic, then bisection) interpolation
    (Nocedal & Wright, Algorithms 3.5 and 3.6). Each trial evaluates ``value_fn`` and its
    gradient once; the value and gradient at the accepted point are kept in the state.

    With ``approx_dec_rtol`` set, a step is also accepted under the approximate Wolfe
    conditions of Hager & Zhang, :math:`\phi(\eta) \le \phi(0) + \delta|\phi(0)|` and
    :math:`\phi'(\eta) \le (2c_1 - 1)\phi'(0)`, which stay meaningful when values differ by
    less than rounding near a minimum. If no acceptable step is found in
    ``max_linesearch_steps`` evaluations (or the bracket shrinks below ``stepsize_precision``,
    relative), the state's ``failed`` flag is set and the best sufficient-decrease step seen
    is returned (a zero step if there was none), never NaN parameters.

    Args:
      max_linesearch_steps: the most evaluations of ``value_fn`` per search (``>= 1``).
      max_learning_rate: an upper bound on :math:`\eta` (``None``: unbounded).
      tol: :math:`\epsilon`, the absolute slack in both conditions (``>= 0``).
      increase_factor: growth of :math:`\eta` in the bracketing phase (``> 1``).
      slope_rtol: :math:`c_1`, in ``(0, 1)``.
      curv_rtol: :math:`c_2`, in ``(c_1, 1)``.
      approx_dec_rtol: :math:`\delta` of the approximate Wolfe conditions (``None``: off).
      stepsize_precision: the search fails when the bracket is narrower than this times its
        right end.
      initial_guess_strategy: ``"one"`` (first trial :math:`\eta = 1`, the natural step of
        quasi-Newton directions), ``"keep"`` (the previous search's step; 1 after a failed
        search) or
        ``"quadratic"``: :math:`\min(1, 1.01 \cdot 2 (f_k - f_{k-1}) / \phi'(0))`, the
        minimizer of the quadratic through the last decrease (Nocedal & Wright, eq. 3.60;
        on the first search :math:`f_{k-1} = f_k + \lVert\nabla f\rVert / 2` as in SciPy's
        BFGS; 1 when the formula does not give a positive step).
      verbose: print (``jax.debug.print``) a line when a search fails.

    Returns:
      A :class:`~optlab.GradientTransformation` whose ``update(updates, state, params,
      value=..., grad=..., value_fn=...)`` returns :math:`\eta u`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> tx = ol.scale_by_zoom_linesearch(max_linesearch_steps=10)
      >>> x = jnp.zeros(2)
      >>> state = tx.init(x)
      >>> value, grad = jax.value_and_grad(f)(x)
      >>> u, state = tx.update(-grad, state, x, value=value, grad=grad, value_fn=f)
      >>> print(x + u, ol.get(state, "value"), ol.get(state, "num_fun_evals"))
      [1. 1.] 0.0 2

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithms 3.5-3.6,
      https://doi.org/10.1007/978-0-387-40065-5

      Hager & Zhang, *A new conjugate gradient method with guaranteed descent and an
      efficient line search*, 2005, https://doi.org/10.1137/030601880
    """
    fn = "scale_by_zoom_linesearch"
    check_int_at_least(fn, "max_linesearch_steps", max_linesearch_steps, 1)
    check_bool(fn, "verbose", verbose)
    if max_learning_rate is not None:
        check_positive(fn, "max_learning_rate", max_learning_rate)
    check_nonnegative(fn, "tol", tol)
    check_in_range(fn, "increase_factor", increase_factor, 1.0, math.inf, low_closed=False)
    check_in_range(fn, "slope_rtol", slope_rtol, 0.0, 1.0, low_closed=False)
    check_in_range(fn, "curv_rtol", curv_rtol, 0.0, 1.0, low_closed=False)
    if (
        isinstance(slope_rtol, float | int)
        and isinstance(curv_rtol, float | int)
        and not (slope_rtol < curv_rtol)
    ):
        raise ValueError(
            f"{fn}: slope_rtol must be < curv_rtol, got slope_rtol={slope_rtol!r}, "
            f"curv_rtol={curv_rtol!r}"
        )
    if approx_dec_rtol is not None:
        check_nonnegative(fn, "approx_dec_rtol", approx_dec_rtol)
    check_positive(fn, "stepsize_precision", stepsize_precision)
    if initial_guess_strategy not in ("one", "keep", "quadratic"):
        raise ValueError(
            f"{fn}: initial_guess_strategy must be 'one', 'keep' or 'quadratic', got "
            f"initial_guess_strategy={initial_guess_strategy!r}"
        )
    max_lr = math.inf if max_learning_rate is None else max_learning_rate

    def init_fn(params):
        dt = _scalar_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dt),
            value=jnp.asarray(jnp.inf, dt),
            grad=tree_zeros_like(params),
            info=ZoomLinesearchInfo(
                num_linesearch_steps=jnp.zeros([], jnp.int32),
                decrease_error=jnp.zeros([], dt),
                curvature_error=jnp.zeros([], dt),
            ),
            num_fun_evals=jnp.zeros([], jnp.int32),
            failed=jnp.asarray(False),
            prev_value=jnp.asarray(jnp.inf, dt),
        )

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args
    ):
        fn_kwargs = value_fn_kwargs(value_fn, extra_args) if callable(value_fn) else {}
        check_linesearch_args(fn, params, value, grad, value_fn, fn_kwargs)
        # Every scalar of the search in the state's dtype (float32 for float32 parameters, also
        # under jax_enable_x64 and with float64 hyperparameters): the while_loop carry keeps
        # its type.
        dt = state.value.dtype
        value_and_grad = jax.value_and_grad(functools.partial(value_fn, **fn_kwargs))
        f0 = jnp.asarray(value, dt)
        d0 = jnp.asarray(tree_vdot(grad, updates), dt)
        descent = d0 < 0
        c1 = jnp.asarray(slope_rtol, dt)
        c2 = jnp.asarray(curv_rtol, dt)
        eps = jnp.asarray(tol, dt)
        grow = jnp.asarray(increase_factor, dt)
        precision = jnp.asarray(stepsize_precision, dt)
        dec_rtol = None if approx_dec_rtol is None else jnp.asarray(approx_dec_rtol, dt)

        def armijo(a, fa):
            return fa <= f0 + c1 * a * d0 + eps

        def curvature(da):
            return jnp.abs(da) <= c2 * jnp.abs(d0) + eps

        def approx_wolfe(fa, da):
            if dec_rtol is None:
                return jnp.asarray(False)
            return (fa <= f0 + dec_rtol * jnp.abs(f0)) & (da <= (2 * c1 - 1) * d0)

        if initial_guess_strategy == "one":
            first = jnp.asarray(1.0, dt)
        elif initial_guess_strategy == "quadratic":
            # First search: as if the last decrease had been |grad| / 2 (a first step of
            # length about 1 along -grad, as scipy's BFGS does).
            prev = jnp.where(
                jnp.isfinite(state.prev_value),
                state.prev_value,
                f0 + 0.5 * jnp.asarray(global_norm(grad), dt),
            )
            guess = (1.01 * 2.0 * (f0 - prev) / d0).astype(dt)
            first = jnp.where(jnp.isfinite(guess) & (guess > 0), jnp.minimum(guess, 1.0), 1.0)
            first = first.astype(dt)
        else:  # "keep"; after a failed search (zero step) start again from 1
            first = jnp.where(state.learning_rate > 0, state.learning_rate, 1.0).astype(dt)
        first = jnp.minimum(first, jnp.asarray(max_lr, dt)).astype(dt)
        zero = jnp.zeros([], dt)
        init = _ZoomCarry(
            evals=jnp.zeros([], jnp.int32),
            trial=first,
            zooming=jnp.asarray(False),
            done=~descent,
            success=jnp.asarray(False),
            prev=zero,
            f_prev=f0,
            d_prev=d0,
            lo=zero,
            f_lo=f0,
            d_lo=d0,
            hi=zero,
            f_hi=f0,
            d_hi=d0,
            best=zero,
            f_best=f0,
            d_best=d0,
            g_best=jax.tree.map(lambda g, p: jnp.asarray(g).astype(p.dtype), grad, params),
            capped=jnp.asarray(False),
            tiny=jnp.asarray(False),
        )

        def cond(c):
            return ~c.done & (c.evals < max_linesearch_steps)

        def body(c):
            a = c.trial
            fa, ga = value_and_grad(tree_add_scaled(params, a, updates))
            fa = jnp.asarray(fa, dt)
            # A NaN or infinite value (outside the domain, a singularity) counts as "too far".
            fa = jnp.where(jnp.isfinite(fa), fa, jnp.inf)
            da = jnp.asarray(tree_vdot(ga, updates), dt)
            ok_decrease = armijo(a, fa)
            accept = (ok_decrease & curvature(da)) | (curvature(da) & approx_wolfe(fa, da))
            accept = accept & jnp.isfinite(da)
            # The safe point: the lowest value seen among the steps satisfying Armijo.
            safer = ok_decrease & (fa < c.f_best) & jnp.isfinite(da)
            take = accept | safer
            best = jnp.where(take, a, c.best)
            f_best = jnp.where(take, fa, c.f_best)
            d_best = jnp.where(take, da, c.d_best)
            g_best = jax.tree.map(lambda x, y: jnp.where(take, x, y).astype(y.dtype), ga, c.g_best)

            # Bracketing phase (N&W Alg. 3.5).
            too_far = ~ok_decrease | ((fa >= c.f_prev) & (c.evals > 0))
            uphill = da >= 0
            b_lo = jnp.where(too_far, c.prev, a)
            b_flo = jnp.where(too_far, c.f_prev, fa)
            b_dlo = jnp.where(too_far, c.d_prev, da)
            b_hi = jnp.where(too_far, a, c.prev)
            b_fhi = jnp.where(too_far, fa, c.f_prev)
            b_dhi = jnp.where(too_far, da, c.d_prev)
            bracketed = too_far | uphill
            at_cap = a >= max_lr
            b_next = jnp.minimum(a * grow, jnp.asarray(max_lr, dt))

            # Zoom phase (N&W Alg. 3.6): replace one end of the bracket by the trial.
            z_too_far = ~ok_decrease | (fa >= c.f_lo)
            flip = da * (c.hi - c.lo) >= 0
            z_lo = jnp.where(z_too_far, c.lo, a)
            z_flo = jnp.where(z_too_far, c.f_lo, fa)
            z_dlo = jnp.where(z_too_far, c.d_lo, da)
            z_hi = jnp.where(z_too_far, a, jnp.where(flip, c.lo, c.hi))
            z_fhi = jnp.where(z_too_far, fa, jnp.where(flip, c.f_lo, c.f_hi))
            z_dhi = jnp.where(z_too_far, da, jnp.where(flip, c.d_lo, c.d_hi))

            lo = jnp.where(c.zooming, z_lo, b_lo)
            f_lo = jnp.where(c.zooming, z_flo, b_flo)
            d_lo = jnp.where(c.zooming, z_dlo, b_dlo)
            hi = jnp.where(c.zooming, z_hi, b_hi)
            f_hi = jnp.where(c.zooming, z_fhi, b_fhi)
            d_hi = jnp.where(c.zooming, z_dhi, b_dhi)
            zooming = c.zooming | bracketed
            trial = jnp.where(zooming, _safeguarded_trial(lo, f_lo, d_lo, hi, f_hi, d_hi), b_next)
            tiny = zooming & (jnp.abs(hi - lo) <= precision * jnp.maximum(jnp.abs(hi), jnp.abs(lo)))
            capped = ~zooming & at_cap
            stuck = capped | tiny
            return _ZoomCarry(
                evals=c.evals + 1,
                trial=trial,
                zooming=zooming,
                done=accept | stuck,
                success=accept,
                prev=a,
                f_prev=fa,
                d_prev=da,
                lo=lo,
                f_lo=f_lo,
                d_lo=d_lo,
                hi=hi,
                f_hi=f_hi,
                d_hi=d_hi,
                best=best,
                f_best=f_best,
                d_best=d_best,
                g_best=g_best,
                capped=capped & ~accept,
                tiny=tiny & ~accept,
            )

        c = jax.lax.while_loop(cond, body, init)
        failed = ~c.success
        if verbose:
            jax.debug.callback(
                functools.partial(_report_zoom_failure, fn),
                failed,
                c.evals,
                d0,
                c.best > 0,
                c.capped,
                c.tiny,
            )
        decrease_error = jnp.maximum(c.f_best - f0 - c1 * c.best * d0 - eps, 0.0)
        curvature_error = jnp.maximum(jnp.abs(c.d_best) - c2 * jnp.abs(d0) - eps, 0.0)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=c.best,
            value=c.f_best,
            grad=jax.tree.map(lambda g, p: g.astype(p.dtype), c.g_best, state.grad),
            info=ZoomLinesearchInfo(
                num_linesearch_steps=c.evals,
                decrease_error=decrease_error,
                curvature_error=curvature_error,
            ),
            num_fun_evals=state.num_fun_evals + c.evals,
            failed=failed,
            prev_value=f0,
        )
        return tree_scale(c.best, updates), new_state

    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# Backtracking line search (Armijo)


class BacktrackingLinesearchInfo(NamedTuple):
    """Diagnostics of the last backtracking line search.

    Attributes:
      num_linesearch_steps: evaluations of ``value_fn`` in the last search.
      decrease_error: how much the returned step misses the sufficient-decrease condition
        (zero when it holds).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of :func:`scale_by_backtracking_linesearch`.

    Attributes:
      learning_rate: the step size :math:`\\eta` of the last search (the next search starts
        from ``min(increase_factor * learning_rate, max_learning_rate)``; a failed search
        keeps the last one tried).
      value: :math:`f` at the new parameters (``inf`` before the first search).
      grad: :math:`\\nabla f` at the new parameters when ``store_grad=True``, else ``None``.
      info: :class:`BacktrackingLinesearchInfo` of the last search.
      num_fun_evals: evaluations of ``value_fn`` over all searches so far.
      failed: the last search found no step with sufficient decrease (it returned a zero
        step).
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Params | None
    info: BacktrackingLinesearchInfo
    num_fun_evals: jax.Array
    failed: jax.Array


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    atol: float = 0.0,
    rtol: float = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformation:
    r"""Backtracking line search ensuring sufficient decrease (Armijo condition).

    Starting from :math:`\eta = \min(\eta_{\text{prev}} \cdot` ``increase_factor``,
    ``max_learning_rate``:math:`)`, the step shrinks by ``decrease_factor`` until

    .. math::

        f(\theta + \eta u) \le (1 + \delta) f(\theta) + c\,\eta\,\langle u, \nabla f(\theta)
        \rangle + \epsilon

    (:math:`c` = ``slope_rtol``, :math:`\delta` = ``rtol``, :math:`\epsilon` = ``atol``).
    If ``max_backtracking_steps`` evaluations find no such step, the state's ``failed`` flag
    is set and a zero step is returned (never NaN parameters).

    Args:
      max_backtracking_steps: the most evaluations of ``value_fn`` per search (``>= 1``).
      slope_rtol: :math:`c`, in ``[0, 1)`` (0: any decrease is enough).
      decrease_factor: shrink factor, in ``(0, 1)``.
      increase_factor: growth of the first guess from one search to the next (``>= 1``;
        ``math.inf`` starts every search at ``max_learning_rate``).
      max_learning_rate: the largest step tried (``> 0``).
      atol: :math:`\epsilon` (``>= 0``).
      rtol: :math:`\delta` (``>= 0``).
      store_grad: also evaluate the gradient at each trial and keep it in the state, so the
        next iteration can reuse it (:func:`value_and_grad_from_state`).
      verbose: print (``jax.debug.print``) a line when a search fails.

    Returns:
      A :class:`~optlab.GradientTransformation` whose ``update(updates, state, params,
      value=..., grad=..., value_fn=...)`` returns :math:`\eta u`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x ** 2)
      >>> tx = ol.scale_by_backtracking_linesearch(max_backtracking_steps=20)
      >>> x = jnp.array([1.0, 2.0])
      >>> state = tx.init(x)
      >>> value, grad = jax.value_and_grad(f)(x)
      >>> u, state = tx.update(-grad, state, x, value=value, grad=grad, value_fn=f)
      >>> print(ol.get(state, "learning_rate"), ol.get(state, "num_fun_evals"))
      0.8 2

    References:
      Armijo, *Minimization of functions having Lipschitz continuous first partial
      derivatives*, 1966, https://doi.org/10.2140/pjm.1966.16.1

      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithm 3.1,
      https://doi.org/10.1007/978-0-387-40065-5
    """
    fn = "scale_by_backtracking_linesearch"
    check_int_at_least(fn, "max_backtracking_steps", max_backtracking_steps, 1)
    check_bool(fn, "store_grad", store_grad)
    check_bool(fn, "verbose", verbose)
    # slope_rtol = 0 (plain decrease, as optax accepts) is allowed; 1 would ask for the full
    # linear decrease, which no step of a convex function reaches.
    check_in_range(fn, "slope_rtol", slope_rtol, 0.0, 1.0)
    check_in_range(fn, "decrease_factor", decrease_factor, 0.0, 1.0, low_closed=False)
    if not (isinstance(increase_factor, float | int) and increase_factor == math.inf):
        check_in_range(fn, "increase_factor", increase_factor, 1.0, math.inf)
    check_positive(fn, "max_learning_rate", max_learning_rate)
    check_nonnegative(fn, "atol", atol)
    check_nonnegative(fn, "rtol", rtol)
    restart = isinstance(increase_factor, float | int) and increase_factor == math.inf

    def init_fn(params):
        dt = _scalar_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.asarray(max_learning_rate, dt),
            value=jnp.asarray(jnp.inf, dt),
            grad=tree_zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=jnp.zeros([], jnp.int32), decrease_error=jnp.zeros([], dt)
            ),
            num_fun_evals=jnp.zeros([], jnp.int32),
            failed=jnp.asarray(False),
        )

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args
    ):
        fn_kwargs = value_fn_kwargs(value_fn, extra_args) if callable(value_fn) else {}
        check_linesearch_args(fn, params, value, grad, value_fn, fn_kwargs)
        objective = functools.partial(value_fn, **fn_kwargs)
        # Every scalar in the state's dtype, so the while_loop carry keeps its type (float32
        # parameters under jax_enable_x64, float64 hyperparameters).
        dt = state.value.dtype
        c, shrink, grow = (
            jnp.asarray(x, dt) for x in (slope_rtol, decrease_factor, increase_factor)
        )
        lr_max, a_tol, r_tol = (jnp.asarray(x, dt) for x in (max_learning_rate, atol, rtol))
        f0 = jnp.asarray(value, dt)
        slope = jnp.asarray(tree_vdot(grad, updates), dt)
        if restart:
            first = lr_max
        else:
            first = jnp.minimum(state.learning_rate.astype(dt) * grow, lr_max).astype(dt)

        def evaluate(a):
            x = tree_add_scaled(params, a, updates)
            if store_grad:
                fa, ga = jax.value_and_grad(objective)(x)
                ga = jax.tree.map(lambda g, p: jnp.asarray(g).astype(p.dtype), ga, params)
            else:
                fa, ga = objective(x), None
            return jnp.asarray(fa, dt), ga

        def error(a, fa):
            err = fa - ((1 + r_tol) * f0 + c * a * slope + a_tol)
            # NaN, or -inf (a singularity), is no acceptable decrease.
            return jnp.where(jnp.isfinite(err), err, jnp.inf).astype(dt)

        def cond(carry):
            evals, _, _, _, err = carry
            return (err > 0) & (evals < max_backtracking_steps)

        def body(carry):
            evals, a, _, _, _err = carry
            a = jnp.where(evals > 0, a * shrink, a).astype(dt)
            fa, ga = evaluate(a)
            return evals + 1, a, fa, ga, error(a, fa)

        g_init = tree_zeros_like(params) if store_grad else None
        init = (jnp.zeros([], jnp.int32), first, f0, g_init, jnp.asarray(jnp.inf, dt))
        evals, a, fa, ga, err = jax.lax.while_loop(cond, body, init)
        ok = err <= 0
        step = jnp.where(ok, a, jnp.zeros([], dt))
        new_grad = None
        if store_grad:
            new_grad = jax.tree.map(
                lambda x, y, p: jnp.where(ok, x, y).astype(p.dtype), ga, grad, state.grad
            )
        if verbose:
            jax.debug.callback(
                lambda good, n: (
                    None
                    if good
                    else print(
                        f"{fn}: no sufficient decrease in {n} evaluations; returning a zero step"
                    )
                ),
                ok,
                evals,
            )
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=a,
            value=jnp.where(ok, fa, f0),
            grad=new_grad,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=evals, decrease_error=jnp.maximum(err, 0.0)
            ),
            num_fun_evals=state.num_fun_evals + evals,
            failed=~ok,
        )
        return tree_scale(step, updates), new_state

    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# Reusing what the line search computed


def value_and_grad_from_state(
    value_fn: Callable[..., Any],
) -> Callable[..., tuple[jax.Array, Params]]:
    """Like ``jax.value_and_grad(value_fn)``, reusing the value and gradient a line search
    stored in the optimizer state when they are there (finite), else computing them.

    Args:
      value_fn: the objective, a function of the parameters returning a scalar.

    Returns:
      ``value_and_grad(params, *, state) -> (value, grad)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x ** 2)
      >>> solver = ol.chain(
      ...     ol.scale(-1.0),
      ...     ol.scale_by_backtracking_linesearch(max_backtracking_steps=15, store_grad=True),
      ... )
      >>> x = jnp.array([1.0, 2.0, 3.0])
      >>> state = solver.init(x)
      >>> value_and_grad = ol.value_and_grad_from_state(f)
      >>> for _ in range(3):
      ...     value, grad = value_and_grad(x, state=state)
      ...     u, state = solver.update(grad, state, x, value=value, grad=grad, value_fn=f)
      ...     x = ol.apply_updates(x, u)
      ...     print(f"{f(x):.3f}")
      5.040
      1.814
      0.653
    """

    def value_and_grad(params, *args, state, **kwargs):
        values, grads = find(state, "value"), find(state, "grad")
        if len(values) > 1 or len(grads) > 1:
            raise KeyError(
                f"value_and_grad_from_state: the state holds {len(values)} values and "
                f"{len(grads)} gradients ({', '.join(p for p, _ in values + grads)}); keep one "
                f"line search per chain"
            )
        if not values or not grads or grads[0][1] is None:
            raise ValueError(
                "value_and_grad_from_state: the state holds no value and gradient of a line "
                "search; use scale_by_zoom_linesearch, or scale_by_backtracking_linesearch with "
                "store_grad=True (lbfgs() has one)"
            )
        value, grad = values[0][1], grads[0][1]

        def compute(p, a, k):
            v, g = jax.value_and_grad(value_fn)(p, *a, **k)
            return jnp.asarray(v, value.dtype), jax.tree.map(
                lambda x, y: x.astype(y.dtype), g, grad
            )

        return jax.lax.cond(
            jnp.isfinite(value), lambda p, a, k: (value, grad), compute, params, args, kwargs
        )

    return value_and_grad
