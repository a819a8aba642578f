r"""Robustness wrappers: skip non-finite steps, accumulate gradients, zero NaNs.

- :func:`apply_if_finite` skips a step whose gradients hold a NaN or an Inf.
- :class:`MultiSteps` averages ``k`` micro-batch gradients and steps once (gradient
  accumulation: a large batch in the memory of a small one).
- :func:`zero_nans` replaces NaNs by zeros, :func:`zero_nonfinite` NaNs and infinities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, Params, PyTree, Updates, gated_update
from optlab.core.combine import with_extra_args_support
from optlab.core.numerics import (
    canonicalize_dtype,
    compute_dtype,
    safe_increment,
    tree_sum_of_squares,
    tree_zeros_like,
    zero_count,
)
from optlab.core.validation import (
    check_bool,
    check_callable,
    check_dtype,
    check_in_range,
    check_int_at_least,
    check_numeric_tree,
    check_shapes_match,
    check_transformation,
)

# ---------------------------------------------------------------------------------------------
# apply_if_finite


def _all_finite(tree: PyTree) -> jax.Array:
    r"""Whether every element of every leaf is finite, as one float reduction per leaf.

    :math:`\sum_i (g_i - g_i)` is 0 when every :math:`g_i` is finite and NaN otherwise. XLA
    compiles it to one streaming reduction, where ``all(isfinite(g))`` writes a boolean
    array first (and a ``max(|g|)`` reduction does not reliably propagate NaN on CPU).
    """
    total = jnp.zeros([], jnp.float32)
    for x in map(jnp.asarray, jax.tree.leaves(tree)):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            d = (
                jnp.sum(x - x)
                if jnp.iscomplexobj(x)
                else jnp.sum((x - x).astype(compute_dtype(x.dtype)))
            )
            total = total + (jnp.real(d) + jnp.imag(d)).astype(jnp.float32)
    return jnp.isfinite(total)


class ApplyIfFiniteState(NamedTuple):
    """State of :func:`apply_if_finite` (optax's fields).

    Attributes:
      notfinite_count: consecutive steps with a NaN or Inf gradient (reset by a finite one).
        Read it with ``optlab.get(state, "notfinite_count")``.
      last_finite: whether the last step's gradients were all finite.
      total_notfinite: every non-finite step since ``init`` (never reset), skipped or not.
      inner_state: the wrapped transformation's state.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


def apply_if_finite(
    inner: GradientTransformation, max_consecutive_errors: int
) -> GradientTransformation:
    r"""Skips the steps whose gradients contain a NaN or an Inf.

    .. math::

        (u_t, s_{t+1}) = \begin{cases}
          \mathrm{inner}(g_t, s_t) & g_t \text{ finite, or } n_t > N \\
          (0, s_t) & \text{otherwise}
        \end{cases}

    where :math:`n_t` counts the consecutive non-finite steps up to and including this one
    and :math:`N` is ``max_consecutive_errors``. A skipped step returns zero updates (the
    parameters do not move) and leaves the inner state untouched. Policy (optax's): after
    ``max_consecutive_errors`` skipped steps in a row, the next non-finite step goes through to
    the inner transformation, so a run that keeps producing NaNs fails visibly instead of
    silently standing still. The counts are readable with ``optlab.get(state,
    "notfinite_count")`` and ``optlab.get(state, "total_notfinite")``.

    Args:
      inner: the transformation to guard.
      max_consecutive_errors: :math:`N`, an integer ``>= 0``.

    Returns:
      A transformation whose state is :class:`ApplyIfFiniteState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.apply_if_finite(ol.scale_by_learning_rate(0.1), max_consecutive_errors=3)
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([1.0, jnp.nan]), state)
      >>> print(u, ol.get(state, "total_notfinite"))
      [0. 0.] 1
      >>> u, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> print(u, ol.get(state, "notfinite_count"))
      [-0.1 -0.2] 0
    """
    check_transformation("apply_if_finite", "inner", inner)
    check_int_at_least("apply_if_finite", "max_consecutive_errors", max_consecutive_errors, 0)
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.asarray(True),
            total_notfinite=zero_count(),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        finite = _all_finite(updates)
        notfinite_count = jnp.where(finite, zero_count(), safe_increment(state.notfinite_count))
        accept = finite | (notfinite_count > max_consecutive_errors)
        gated = gated_update(inner, state.inner_state)
        if gated is not None:
            # The fused guard: the inner transformation selects its old state where accept is
            # false inside its own elementwise loops, and the zeroed updates fuse into
            # apply_updates. For Adam: 44 bytes per parameter (40, plus the reduction's read
            # of the gradients), no lax.cond, no copy of the donated moments.
            new_updates, inner_state = gated(
                updates, state.inner_state, params, accept, **extra_args
            )
            new_updates = jax.tree.map(
                lambda u: None if u is None else jnp.where(accept, u, jnp.zeros_like(u)),
                new_updates,
                is_leaf=lambda x: x is None,
            )
        else:
            # A transformation with per-parameter state that cannot be gated (an optax one):
            # run it only on accepted steps.
            def do_update(operands):
                u, s = operands
                return inner.update(u, s, params, **extra_args)

            def reject(operands):
                _, s = operands
                shape = jax.eval_shape(do_update, operands)[0]
                return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shape), s

            new_updates, inner_state = jax.lax.cond(
                accept, do_update, reject, (updates, state.inner_state)
            )
        return new_updates, ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=finite,
            total_notfinite=jnp.where(
                finite, state.total_notfinite, safe_increment(state.total_notfinite)
            ),
            inner_state=inner_state,
        )

    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# MultiSteps


class MultiStepsState(NamedTuple):
    """State of :class:`MultiSteps` (optax's fields).

    Attributes:
      mini_step: micro-steps accumulated since the last real step (``0 .. k-1``).
      gradient_step: real steps taken by the inner transformation.
      inner_opt_state: the inner transformation's state.
      acc_grads: the running mean (or sum) of the micro-step gradients: the one extra
        params-sized buffer.
      skip_state: what ``should_skip_update_fn`` reports (``()`` without one).
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


ShouldSkipUpdateFunction = Callable[[Updates, jax.Array, Params], tuple[jax.Array, PyTree]]


def skip_not_finite(
    updates: Updates, gradient_step: jax.Array, params: Params
) -> tuple[jax.Array, PyTree]:
    """A ``should_skip_update_fn`` for :class:`MultiSteps`: skip micro-steps with a NaN/Inf.

    Returns ``(should_skip, {"should_skip": ..., "num_not_finite": ...})``.
    """
    del gradient_step, params
    check_numeric_tree("skip_not_finite", "updates", updates)
    counts = [jnp.sum(~jnp.isfinite(x)) for x in jax.tree.leaves(updates)]
    num_not_finite = sum(counts[1:], counts[0]) if counts else jnp.zeros([], jnp.int32)
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates, gradient_step: jax.Array, params: Params, max_squared_norm: float
) -> tuple[jax.Array, PyTree]:
    """A ``should_skip_update_fn`` for :class:`MultiSteps` (bind ``max_squared_norm`` with
    ``functools.partial``): skip micro-steps whose squared norm is not below the bound (NaN
    included). Returns ``(should_skip, {"should_skip": ..., "norm_squared": ...})``.

    ``max_squared_norm`` must be ``> 0`` (``inf`` skips only NaN norms): a bound ``<= 0`` or NaN
    would skip every micro-step, silently (a departure from optax, which takes any float).
    """
    del gradient_step, params
    fn = "skip_large_updates"
    check_numeric_tree(fn, "updates", updates)
    check_in_range(
        fn, "max_squared_norm", max_squared_norm, 0.0, math.inf, low_closed=False, high_closed=True
    )
    norm_sq = tree_sum_of_squares(updates)
    should_skip = ~(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


class MultiSteps:
    r"""Gradient accumulation: averages ``k`` micro-step gradients, then steps once.

    .. math::

        \bar g_{j} = \bar g_{j-1} + \frac{g_j - \bar g_{j-1}}{j}, \quad j = 1..k, \qquad
        u = \begin{cases} \mathrm{inner}(\bar g_k) & \text{after the } k\text{-th micro-step}\\
        0 & \text{otherwise} \end{cases}

    The running mean (Welford's update) equals the gradient of the mean loss over the ``k``
    micro-batches, i.e. of one batch ``k`` times larger. The inner transformation runs only
    on the last micro-step (a ``lax.cond``); ``params`` and extra arguments are forwarded to
    it. Memory: one params-sized accumulator (``acc_grads``) besides the inner state.
    optax-compatible: same constructor arguments, ``init``/``update``, ``has_updated``,
    ``inner_opt`` and ``gradient_transformation()``; an instance works wherever a
    transformation does (``chain``, ``flax.nnx.Optimizer``).

    Args:
      opt: the transformation to apply to the accumulated gradient.
      every_k_schedule: :math:`k`, an integer ``>= 1``, or a function of the real step count
        (``gradient_step``) returning it (to grow the batch during training).
      use_grad_mean: average the micro-step gradients (default) rather than sum them.
      should_skip_update_fn: optional ``f(updates, gradient_step, params) -> (skip,
        skip_state)``; a skipped micro-step changes nothing but ``skip_state`` (see
        :func:`skip_not_finite`, :func:`skip_large_updates`).
      accumulator_dtype: dtype of ``acc_grads`` (float32 by default; e.g. float32 for bf16
        gradients); ``None`` keeps each parameter's dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> ms = ol.MultiSteps(ol.scale_by_learning_rate(1.0), every_k_schedule=2)
      >>> state = ms.init(jnp.zeros(1))
      >>> u, state = ms.update(jnp.array([1.0]), state)
      >>> print(u, ms.has_updated(state))
      [0.] False
      >>> u, state = ms.update(jnp.array([3.0]), state)
      >>> print(u, ms.has_updated(state))
      [-2.] True

    References:
      optax.MultiSteps (the interface followed here). https://github.com/google-deepmind/optax
    """

    def __init__(
        self,
        opt: GradientTransformation,
        every_k_schedule: int | Callable[[jax.Array], Any],
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype: Any = jnp.float32,
    ):
        check_transformation("MultiSteps", "opt", opt)
        if not callable(every_k_schedule):
            check_int_at_least("MultiSteps", "every_k_schedule", every_k_schedule, 1)
            k = every_k_schedule
            every_k_schedule = lambda step: k
        check_bool("MultiSteps", "use_grad_mean", use_grad_mean)
        check_callable(
            "MultiSteps",
            "should_skip_update_fn",
            should_skip_update_fn,
            none=True,
            what="a function (updates, gradient_step, params) -> (skip, skip_state)",
        )
        check_dtype("MultiSteps", "accumulator_dtype", accumulator_dtype, kind="inexact")
        self._opt = opt
        self._opt_update = with_extra_args_support(opt).update
        self._every_k_schedule = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._should_skip_update_fn = should_skip_update_fn
        self._accumulator_dtype = canonicalize_dtype(accumulator_dtype)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped transformation."""
        return self._opt

    def init(self, params: Params) -> MultiStepsState:
        """The initial state: zero counters, the inner state, a zero accumulator."""
        gradient_step = zero_count()
        skip_state = ()
        if self._should_skip_update_fn is not None:
            _, skip_state = self._should_skip_update_fn(
                tree_zeros_like(params), gradient_step, params
            )
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=tree_zeros_like(params, self._accumulator_dtype),
            skip_state=skip_state,
        )

    def _accumulate(self, updates: Updates, state: MultiStepsState) -> PyTree:
        n = state.mini_step

        def one(g, acc):
            if self._use_grad_mean:
                return (acc + (g.astype(acc.dtype) - acc) / (n + 1).astype(acc.dtype)).astype(
                    acc.dtype
                )
            return (acc + g.astype(acc.dtype)).astype(acc.dtype)

        return jax.tree.map(one, updates, state.acc_grads)

    def update(
        self,
        updates: Updates,
        state: MultiStepsState,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[Updates, MultiStepsState]:
        """Accumulates ``updates``; every ``k``-th call returns the inner transformation's
        update of the accumulated gradient (zeros otherwise)."""
        check_shapes_match("MultiSteps", updates, state.acc_grads)
        k_steps = self._every_k_schedule(state.gradient_step)
        acc = self._accumulate(updates, state)
        emit = state.mini_step >= k_steps - 1

        def inner_step(operands):
            a, s = operands
            g = jax.tree.map(lambda x, u: x.astype(u.dtype), a, updates)
            return self._opt_update(g, s, params, **extra_args)

        def hold(operands):
            _, s = operands
            shape = jax.eval_shape(inner_step, operands)[0]
            return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shape), s

        new_updates, inner_state = jax.lax.cond(
            emit, inner_step, hold, (acc, state.inner_opt_state)
        )
        new_state = MultiStepsState(
            mini_step=jnp.where(emit, zero_count(), safe_increment(state.mini_step)),
            gradient_step=jnp.where(emit, safe_increment(state.gradient_step), state.gradient_step),
            inner_opt_state=inner_state,
            acc_grads=jax.tree.map(lambda a: jnp.where(emit, jnp.zeros_like(a), a), acc),
            skip_state=state.skip_state,
        )
        if self._should_skip_update_fn is None:
            return new_updates, new_state

        skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
        if jnp.shape(skip) != () or jnp.asarray(skip).dtype != jnp.bool_:
            raise ValueError(
                f"MultiSteps: should_skip_update_fn must return a boolean scalar, got dtype "
                f"{jnp.asarray(skip).dtype} and shape {jnp.shape(skip)}"
            )
        kept = jax.tree.map(
            lambda old, new: jnp.where(skip, old, new),
            state._replace(skip_state=()),
            new_state._replace(skip_state=()),
        )
        new_updates = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), new_updates)
        return new_updates, kept._replace(skip_state=skip_state)

    def has_updated(self, state: MultiStepsState | Any) -> jax.Array:
        """Whether the last call to ``update`` made a real step (the inner one ran)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This wrapper as a plain ``GradientTransformation(init, update)``."""
        return GradientTransformation(init=self.init, update=self.update)


# ---------------------------------------------------------------------------------------------
# zero_nans


class ZeroNansState(NamedTuple):
    """State of :func:`zero_nans` and :func:`zero_nonfinite`.

    Attributes:
      found_nan: a tree like the parameters, each leaf ``True`` iff that update held a NaN (for
        :func:`zero_nonfinite`: a NaN or an infinity) at the last call.
    """

    found_nan: Any


def _zeroing(bad: Callable[[jax.Array], jax.Array]) -> GradientTransformation:
    def init_fn(params):
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.asarray(False), params))

    def update_fn(updates, state, params=None, **extra_args):
        del state, params, extra_args
        found = jax.tree.map(lambda u: jnp.any(bad(u)), updates)
        cleaned = jax.tree.map(lambda u: jnp.where(bad(u), jnp.zeros_like(u), u), updates)
        return cleaned, ZeroNansState(found_nan=found)

    return GradientTransformation(init_fn, update_fn)


def zero_nans() -> GradientTransformation:
    r"""Replaces every NaN in the updates by zero: :math:`u = g` where :math:`g` is not NaN,
    :math:`0` where it is (infinities are kept, as in optax; :func:`zero_nonfinite` replaces
    them too).

    Returns:
      A transformation whose state is :class:`ZeroNansState` (which leaves held a NaN).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.zero_nans()
      >>> u, state = tx.update({"a": jnp.array([1.0, jnp.nan])}, tx.init({"a": jnp.zeros(2)}))
      >>> print(u["a"], state.found_nan["a"])
      [1. 0.] True
    """
    return _zeroing(jnp.isnan)


def zero_nonfinite() -> GradientTransformation:
    r"""Replaces every NaN and every infinity in the updates by zero: :math:`u = g` where
    :math:`g` is finite, :math:`0` elsewhere.

    An element-wise guard (the other elements of the step go through); to skip a whole step
    whose gradients hold a NaN or an Inf, use :func:`apply_if_finite`.

    Returns:
      A transformation whose state is :class:`ZeroNansState` (``found_nan``: which leaves held
      a NaN or an infinity).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.zero_nonfinite()
      >>> g = {"a": jnp.array([1.0, jnp.nan, -jnp.inf])}
      >>> u, state = tx.update(g, tx.init({"a": jnp.zeros(3)}))
      >>> print(u["a"], state.found_nan["a"])
      [1. 0. 0.] True
    """
    return _zeroing(lambda u: ~jnp.isfinite(u))
