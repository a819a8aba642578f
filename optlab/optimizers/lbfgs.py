r"""L-BFGS: the limited-memory quasi-Newton direction (two-loop recursion) and its alias.

The seeds' second-order update :math:`\theta^* = \theta_0 - H^{-1}\nabla_\theta J(\theta_0)`
needs the inverse Hessian; L-BFGS replaces it by an approximation :math:`P_k` built from the
last :math:`m` curvature pairs :math:`s_i = \theta_{i+1} - \theta_i`,
:math:`y_i = g_{i+1} - g_i`, never forming a matrix.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, Params, ScalarOrSchedule, identity
from optlab.core.combine import chain
from optlab.core.numerics import (
    global_norm,
    safe_increment,
    tree_add_scaled,
    tree_scale,
    tree_vdot,
    tree_zeros_like,
    zero_count,
)
from optlab.core.validation import (
    check_bool,
    check_int_at_least,
    check_learning_rate,
    check_transformation,
    check_updates,
)
from optlab.optimizers.linesearch import _scalar_dtype, scale_by_zoom_linesearch
from optlab.transforms.scale import scale, scale_by_learning_rate


class ScaleByLBFGSState(NamedTuple):
    """State of :func:`scale_by_lbfgs`.

    Attributes:
      count: number of updates so far.
      prev_params: the parameters at the previous update.
      prev_updates: the gradients at the previous update.
      diff_params_memory: the stored :math:`s_i`, each leaf stacked on a leading axis of size
        ``memory_size`` (a ring buffer).
      diff_updates_memory: the stored :math:`y_i`, likewise.
      weights_memory: :math:`\\rho_i = 1 / s_i^\\top y_i` (zero for empty slots).
      memory_idx: the slot the next accepted pair is written to.
      num_pairs: the number of pairs stored (at most ``memory_size``).
      gamma: the scale :math:`\\gamma_k` of the initial inverse Hessian used last.
    """

    count: jax.Array
    prev_params: Params
    prev_updates: Params
    diff_params_memory: Params
    diff_updates_memory: Params
    weights_memory: jax.Array
    memory_idx: jax.Array
    num_pairs: jax.Array
    gamma: jax.Array


def _two_loop(g, s_mem, y_mem, rho, gamma, memory_idx):
    """:math:`P_k g` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4)."""
    memory_size = rho.shape[0]
    order = (memory_idx + jnp.arange(memory_size)) % memory_size  # oldest ... newest

    def first(q, i):
        s_i, y_i = jax.tree.map(lambda x: x[i], (s_mem, y_mem))
        alpha = rho[i] * tree_vdot(s_i, q)
        return tree_add_scaled(q, -alpha, y_i), alpha

    q, alphas = jax.lax.scan(first, g, order, reverse=True)  # newest to oldest
    r = tree_scale(gamma, q)

    def second(r, i_alpha):
        i, alpha = i_alpha
        s_i, y_i = jax.tree.map(lambda x: x[i], (s_mem, y_mem))
        beta = rho[i] * tree_vdot(y_i, r)
        return tree_add_scaled(r, alpha - beta, s_i), None

    r, _ = jax.lax.scan(second, r, (order, alphas))  # oldest to newest
    return r


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformation:
    r"""Multiplies the gradient by the L-BFGS inverse-Hessian approximation: :math:`u = P_k g_k`.

    With the last :math:`m` pairs :math:`(s_i, y_i)`, :math:`\rho_i = 1/(s_i^\top y_i)`:

    .. math::

        P^{(k-m)} = \gamma_k I, \quad
        P^{(j+1)} = V_j^\top P^{(j)} V_j + \rho_j s_j s_j^\top \ (j = k-m, \ldots, k-1),
        \quad P_k = P^{(k)},

        V_j = I - \rho_j y_j s_j^\top, \qquad
        \gamma_k = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}},

    computed by the two-loop recursion in :math:`O(mn)` without forming :math:`P_k`. A pair
    with :math:`s^\top y \le \varepsilon\, y^\top y` (no positive curvature, :math:`\varepsilon`
    the machine epsilon) is skipped, so :math:`P_k` stays positive definite and :math:`-P_k g`
    a descent direction. Before any pair is stored, :math:`\gamma = \min(1, 1/\lVert g
    \rVert)` (the first step has length at most one). With ``scale_init_precond=False``,
    :math:`\gamma = 1`.

    The pair is formed from the ``params`` and gradients of consecutive calls, so chain a line
    search after it (:func:`lbfgs`) and pass ``params`` to ``update``.

    Args:
      memory_size: :math:`m`, the number of pairs kept (``>= 1``).
      scale_init_precond: use :math:`\gamma_k` above rather than 1.

    Returns:
      A :class:`~optlab.GradientTransformation` (``update`` needs ``params``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_lbfgs(memory_size=3)
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([3.0, 4.0]), state, jnp.zeros(2))
      >>> print(u)  # the first direction is g / max(1, |g|)
      [0.6 0.8]

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithms 7.4-7.5,
      https://doi.org/10.1007/978-0-387-40065-5

      Liu & Nocedal, *On the limited memory BFGS method for large scale optimization*, 1989,
      https://doi.org/10.1007/BF01589116
    """
    check_int_at_least("scale_by_lbfgs", "memory_size", memory_size, 1)
    check_bool("scale_by_lbfgs", "scale_init_precond", scale_init_precond)

    def init_fn(params):
        dt = _scalar_dtype(params)

        def stacked(x):
            return jnp.zeros((memory_size, *jnp.shape(x)), x.dtype)

        return ScaleByLBFGSState(
            count=zero_count(),
            prev_params=tree_zeros_like(params),
            prev_updates=tree_zeros_like(params),
            diff_params_memory=jax.tree.map(stacked, params),
            diff_updates_memory=jax.tree.map(stacked, params),
            weights_memory=jnp.zeros([memory_size], dt),
            memory_idx=zero_count(),
            num_pairs=zero_count(),
            gamma=jnp.ones([], dt),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                "scale_by_lbfgs: update() needs the current parameters to form the curvature "
                "pairs; call tx.update(grad, state, params, value=value, grad=grad, "
                "value_fn=f) (optlab.minimize does this for you)"
            )
        check_updates("scale_by_lbfgs", updates, state.prev_updates, params)
        dt = state.weights_memory.dtype
        s = jax.tree.map(lambda p, q: (p - q).astype(q.dtype), params, state.prev_params)
        y = jax.tree.map(lambda g, h: (g - h).astype(h.dtype), updates, state.prev_updates)
        sy = jnp.asarray(tree_vdot(s, y), dt)
        yy = jnp.asarray(tree_vdot(y, y), dt)
        accept = (state.count > 0) & (sy > jnp.finfo(dt).eps * yy) & jnp.isfinite(sy)
        idx = state.memory_idx

        def write(mem, new):
            return jnp.where(accept, mem.at[idx].set(new.astype(mem.dtype)), mem)

        s_mem = jax.tree.map(write, state.diff_params_memory, s)
        y_mem = jax.tree.map(write, state.diff_updates_memory, y)
        rho = write(state.weights_memory, 1.0 / jnp.where(accept, sy, 1.0))
        num_pairs = jnp.minimum(state.num_pairs + accept.astype(jnp.int32), memory_size)
        memory_idx = jnp.where(accept, (idx + 1) % memory_size, idx).astype(jnp.int32)

        if scale_init_precond:
            first_scale = jnp.minimum(1.0, 1.0 / global_norm(updates)).astype(dt)
            gamma = jnp.where(accept, sy / jnp.where(accept, yy, 1.0), state.gamma)
            gamma = jnp.where(num_pairs == 0, first_scale, gamma)
        else:
            gamma = jnp.ones([], dt)
        direction = _two_loop(updates, s_mem, y_mem, rho, gamma, memory_idx)
        direction = jax.tree.map(lambda d, g: d.astype(g.dtype), direction, updates)
        new_state = ScaleByLBFGSState(
            count=safe_increment(state.count),
            prev_params=jax.tree.map(lambda p, q: p.astype(q.dtype), params, state.prev_params),
            prev_updates=jax.tree.map(lambda g, h: g.astype(h.dtype), updates, state.prev_updates),
            diff_params_memory=s_mem,
            diff_updates_memory=y_mem,
            weights_memory=rho,
            memory_idx=memory_idx,
            num_pairs=num_pairs,
            gamma=gamma,
        )
        return direction, new_state

    return GradientTransformation(init_fn, update_fn)


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: GradientTransformation | None = scale_by_zoom_linesearch(  # noqa: B008
        max_linesearch_steps=20, initial_guess_strategy="one"
    ),
) -> GradientTransformation:
    r"""L-BFGS with a strong-Wolfe line search: :math:`\theta_{k+1} = \theta_k - \eta_k P_k g_k`.

    The chain ``scale_by_lbfgs -> scale(-1)`` (or ``scale_by_learning_rate``) ``->
    linesearch``. Same name, arguments and defaults as ``optax.lbfgs``. Each ``update`` needs
    ``params`` and the extra arguments ``value``, ``grad`` and ``value_fn``; for a full-batch
    problem :func:`optlab.minimize` does the plumbing and reuses the line search's last value
    and gradient. L-BFGS is meant for deterministic objectives (full batch): with noisy
    mini-batch gradients the curvature pairs are inconsistent and it degrades (see
    ``benchmarks/full_batch.py``).

    Args:
      learning_rate: a fixed step size or schedule; ``None`` (default) leaves the step to the
        line search.
      memory_size: the number of curvature pairs kept (``>= 1``).
      scale_init_precond: scale the initial inverse Hessian by
        :math:`\gamma_k = s^\top y / y^\top y`.
      linesearch: a line search transformation (default: zoom, at most 20 evaluations, first
        trial step 1), or ``None`` for none.

    Returns:
      A :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum((x - jnp.arange(3.0)) ** 2 * jnp.array([1.0, 10.0, 100.0]))
      >>> result = ol.minimize(f, jnp.zeros(3), method=ol.lbfgs())
      >>> print(result.params, result.converged)
      [0. 1. 2.] True

    References:
      Liu & Nocedal, *On the limited memory BFGS method for large scale optimization*, 1989,
      https://doi.org/10.1007/BF01589116
    """
    check_int_at_least("lbfgs", "memory_size", memory_size, 1)
    check_bool("lbfgs", "scale_init_precond", scale_init_precond)
    if linesearch is not None:
        check_transformation("lbfgs", "linesearch", linesearch)
    if learning_rate is None:
        base_scaling = scale(-1.0)
    else:
        check_learning_rate("lbfgs", learning_rate)
        base_scaling = scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        base_scaling,
        identity() if linesearch is None else linesearch,
    )
