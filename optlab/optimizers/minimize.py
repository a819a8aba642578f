r"""``minimize``: full-batch optimization of a deterministic objective, compiled as one loop.

Hides the extra-argument plumbing of line searches (``value``, ``grad``, ``value_fn``) and
reuses the value and gradient the line search computed at the accepted point, so each
iteration of L-BFGS usually costs one evaluation of the objective and its gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, OptState, Params, apply_updates
from optlab.core.combine import with_extra_args_support
from optlab.core.numerics import global_norm, tree_all_finite
from optlab.core.validation import (
    check_bool,
    check_callable,
    check_int_at_least,
    check_numeric_tree,
    check_positive,
)
from optlab.optimizers.lbfgs import lbfgs
from optlab.optimizers.linesearch import (
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
)
from optlab.optimizers.newton import bfgs, newton

_LINESEARCH_STATES = (ScaleByZoomLinesearchState, ScaleByBacktrackingLinesearchState)


class MinimizeResult(NamedTuple):
    """What :func:`minimize` returns.

    Attributes:
      params: the solution (the last accepted parameters), with ``x0``'s structure.
      value: the objective there.
      grad_norm: the global L2 norm of the gradient there.
      num_steps: the number of steps taken.
      num_fun_evals: evaluations of the objective (each with its gradient, except the
        value-only trials of a backtracking search without ``store_grad``), counting the
        first one at ``x0``, those of optlab's line searches, and the one for ``aux`` when
        ``has_aux=True``. Evaluations made inside other libraries' transformations (an optax
        line search) are not seen; Hessian(-vector) products of Newton are not counted.
      converged: ``grad_norm <= tol``.
      failed: the loop stopped early: a line search found no step that decreases the
        objective, or a step led to a non-finite value (that step is then not taken).
      value_history: shape ``(max_steps + 1,)``: the objective at ``x0`` and after each step;
        entries after the last step are NaN.
      aux: the auxiliary output of ``fun`` at the solution (``None`` unless ``has_aux``).
      state: the final optimizer state (read diagnostics with ``optlab.get``).
    """

    params: Params
    value: jax.Array
    grad_norm: jax.Array
    num_steps: jax.Array
    num_fun_evals: jax.Array
    converged: jax.Array
    failed: jax.Array
    value_history: jax.Array
    aux: Any
    state: OptState


_METHODS: dict[str, Callable[[], GradientTransformation]] = {
    "lbfgs": lbfgs,
    "bfgs": bfgs,
    "newton": newton,
}


@functools.cache
def _method(name: str) -> GradientTransformation:
    # One transformation object per name, so repeated calls hit the compilation cache.
    return _METHODS[name]()


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _linesearch_states(state: Any) -> list[Any]:
    """Every optlab line-search state inside ``state`` (found at trace time)."""
    if isinstance(state, _LINESEARCH_STATES):
        return [state]
    if _is_namedtuple(state):
        children = list(state)
    elif isinstance(state, dict):
        children = list(state.values())
    elif isinstance(state, list | tuple):
        children = list(state)
    else:
        return []
    return [s for child in children for s in _linesearch_states(child)]


def _last_linesearch_state(state: Any) -> Any:
    """The line-search state if the line search is the last link of the (possibly nested)
    chain, so its stored value and gradient are those at the new parameters; else ``None``."""
    if isinstance(state, _LINESEARCH_STATES):
        return state
    if isinstance(state, dict) and state:
        return _last_linesearch_state(list(state.values())[-1])
    if isinstance(state, tuple) and not _is_namedtuple(state) and state:
        return _last_linesearch_state(state[-1])
    return None


class _Carry(NamedTuple):
    step: jax.Array
    params: Params
    state: OptState
    value: jax.Array
    grad: Params
    grad_norm: jax.Array
    own_evals: jax.Array
    failed: jax.Array
    history: jax.Array


@functools.partial(jax.jit, static_argnames=("fun", "tx", "max_steps", "has_aux"))
def _run(fun, tx, max_steps, has_aux, x0, tol, args):
    def value_fn(p):
        out = fun(p, *args)
        return out[0] if has_aux else out

    value_and_grad = jax.value_and_grad(value_fn)
    update = with_extra_args_support(tx).update
    v0, g0 = value_and_grad(x0)
    vdt = jnp.promote_types(v0.dtype, jnp.float32)
    v0 = v0.astype(vdt)
    state0 = tx.init(x0)
    history = jnp.full([max_steps + 1], jnp.nan, vdt).at[0].set(v0)
    carry = _Carry(
        step=jnp.zeros([], jnp.int32),
        params=x0,
        state=state0,
        value=v0,
        grad=g0,
        grad_norm=global_norm(g0),
        own_evals=jnp.ones([], jnp.int32),
        failed=~jnp.isfinite(v0) | ~tree_all_finite(g0),
        history=history,
    )

    def cond(c):
        return (c.step < max_steps) & (c.grad_norm > tol) & ~c.failed

    def body(c):
        updates, state = update(
            c.grad, c.state, c.params, value=c.value, grad=c.grad, value_fn=value_fn
        )
        params = apply_updates(c.params, updates)
        last = _last_linesearch_state(state)
        if last is not None and last.grad is not None:
            value = last.value.astype(vdt)
            grad = jax.tree.map(lambda g, h: g.astype(h.dtype), last.grad, c.grad)
            own = c.own_evals
        else:
            value, grad = value_and_grad(params)
            value = value.astype(vdt)
            own = c.own_evals + 1
        searches = _linesearch_states(state)
        search_failed = jnp.asarray(False)
        for s in searches:
            search_failed = search_failed | s.failed
        finite = jnp.isfinite(value) & tree_all_finite(grad)
        stalled = search_failed & ~(value < c.value)
        take = finite

        def pick(new, old):
            return jax.tree.map(lambda a, b: jnp.where(take, a, b), new, old)

        step = jnp.where(take, c.step + 1, c.step)
        return _Carry(
            step=step,
            params=pick(params, c.params),
            state=pick(state, c.state),
            value=jnp.where(take, value, c.value),
            grad=pick(grad, c.grad),
            grad_norm=jnp.where(take, global_norm(grad), c.grad_norm),
            own_evals=own,
            failed=~finite | stalled,
            history=jnp.where(take, c.history.at[c.step + 1].set(value), c.history),
        )

    c = jax.lax.while_loop(cond, body, carry)
    evals = c.own_evals
    for s in _linesearch_states(c.state):
        evals = evals + s.num_fun_evals
    aux = None
    if has_aux:
        aux = fun(c.params, *args)[1]
        evals = evals + 1
    return MinimizeResult(
        params=c.params,
        value=c.value,
        grad_norm=c.grad_norm,
        num_steps=c.step,
        num_fun_evals=evals,
        converged=c.grad_norm <= tol,
        failed=c.failed,
        value_history=c.history,
        aux=aux,
        state=c.state,
    )


def minimize(
    fun: Callable[..., Any],
    x0: Params,
    method: str | GradientTransformation = "lbfgs",
    *,
    tol: float = 1e-5,
    max_steps: int = 500,
    has_aux: bool = False,
    args: tuple[Any, ...] = (),
) -> MinimizeResult:
    r"""Minimizes a deterministic objective :math:`f(\theta)` over a pytree of parameters.

    Runs, compiled as one ``lax.while_loop``,

    .. math::

        (u_k, s_{k+1}) = \mathrm{update}(\nabla f(\theta_k), s_k, \theta_k;\ f(\theta_k),
        \nabla f(\theta_k), f), \qquad \theta_{k+1} = \theta_k + u_k,

    until :math:`\lVert \nabla f(\theta_k) \rVert_2 \le` ``tol``, ``max_steps`` steps, or a
    failure (a line search that cannot decrease :math:`f`, or a non-finite value). When the
    method ends with an optlab line search that keeps its gradient (``lbfgs``, ``bfgs``,
    ``newton``), the value and gradient at the accepted point are reused, not recomputed.

    ``x0`` may be any pytree of floating arrays, e.g. a Flax nnx model's parameters
    (``graphdef, params = nnx.split(model, nnx.Param)``, with ``fun`` merging them back).
    ``minimize`` may itself be called under ``jax.jit`` or ``jax.vmap``. Calls with the same
    ``fun``, method, ``max_steps`` and shapes reuse one compilation (``tol`` and ``args`` are
    traced).

    Args:
      fun: the objective, ``fun(params, *args)`` returning a scalar (or ``(scalar, aux)``
        with ``has_aux=True``).
      x0: the starting parameters.
      method: ``"lbfgs"``, ``"bfgs"`` (dense inverse Hessian: small problems), ``"newton"``
        (exact Hessian: small problems), or any transformation (``optlab.lbfgs(memory_size=
        20)``, ``optlab.adam(1e-2)``, an optax one...). A transformation is called with
        ``params`` and the extra arguments ``value``, ``grad`` and ``value_fn``.
      tol: the gradient-norm tolerance (``> 0``).
      max_steps: the most steps (``>= 1``); also the length of ``value_history`` minus one.
      has_aux: ``fun`` returns ``(value, aux)``; ``aux`` at the solution is returned.
      args: extra arguments of ``fun`` (data), traced rather than baked into the program.

    Returns:
      A :class:`MinimizeResult` (``params``, ``value``, ``grad_norm``, ``num_steps``,
      ``num_fun_evals``, ``converged``, ``failed``, ``value_history``, ``aux``, ``state``).

    Raises:
      ValueError: an unknown method, a non-positive ``tol``, ``max_steps < 1``, non-floating
        parameters, an objective that does not return a scalar, or (when ``x0`` is concrete)
        an objective that is not finite at ``x0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> def rosenbrock(x):
      ...     return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
      >>> result = ol.minimize(rosenbrock, jnp.zeros(2), method="bfgs", tol=1e-4)
      >>> print(result.params.round(3), result.converged, result.failed)
      [1. 1.] True False

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006,
      https://doi.org/10.1007/978-0-387-40065-5
    """
    fn = "minimize"
    check_callable(fn, "fun", fun, what="a function fun(params, *args) -> scalar")
    check_bool(fn, "has_aux", has_aux)
    if isinstance(method, str):
        if method not in _METHODS:
            raise ValueError(
                f"{fn}: method must be one of {sorted(_METHODS)} or a gradient transformation, "
                f"got method={method!r}"
            )
        tx = _method(method)
    elif hasattr(method, "init") and hasattr(method, "update"):
        tx = method
    else:
        raise TypeError(
            f"{fn}: method must be one of {sorted(_METHODS)} or a gradient transformation "
            f"(with init and update), got method={method!r:.60} ({type(method).__name__})"
        )
    check_positive(fn, "tol", tol)
    check_int_at_least(fn, "max_steps", max_steps, 1)
    if not isinstance(args, tuple):
        raise TypeError(
            f"{fn}: args must be a tuple, got args={args!r:.60} ({type(args).__name__})"
        )
    check_numeric_tree(fn, "x0", x0)
    leaves = jax.tree.leaves(x0)
    if not leaves:
        raise ValueError(f"{fn}: x0 has no array leaves")
    for path, leaf in jax.tree_util.tree_flatten_with_path(x0)[0]:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise ValueError(
                f"{fn}: every leaf of x0 must be a floating array, got dtype "
                f"{jnp.result_type(leaf)} at {jax.tree_util.keystr(path) or 'x0'}"
            )
    out = jax.eval_shape(fun, x0, *args)
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(f"{fn}: with has_aux=True, fun must return (value, aux)")
        out = out[0]
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(
            f"{fn}: fun must return a scalar, got {getattr(out, 'shape', type(out).__name__)}"
            + ("" if has_aux else "; if it returns (value, aux), pass has_aux=True")
        )
    result = _run(fun, tx, max_steps, has_aux, x0, tol, args)
    v0 = result.value_history[0]
    if not isinstance(v0, jax.core.Tracer) and not bool(jnp.isfinite(v0)):
        raise ValueError(
            f"{fn}: the objective is not finite at x0 (fun(x0)={float(v0)}); start from a "
            f"point where it is finite"
        )
    return result
