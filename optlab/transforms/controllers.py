r"""Controllers driven by the loss or a validation metric: plateau, bold driver, early stopping.

Each is a transformation whose whole logic lives in its state, so it composes in ``chain``,
runs under ``jit``, ``lax.scan`` and ``vmap``, and is checkpointed with the rest of the state.
The monitored number is passed to ``update`` as an extra keyword argument, by default
``value`` (the loss of the current parameters, as line searches take it):

    updates, state = tx.update(grads, state, params, value=loss)

Give ``monitor="metric"`` to read ``metric=`` instead (a validation metric, so that ``value``
stays the training loss for the other transformations of the chain). The current scale of a
controller is readable with ``optlab.get(state, "scale")``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation
from optlab.core.numerics import (
    compute_dtype,
    safe_increment,
    tree_scale,
    tree_zeros_like,
    zero_count,
)
from optlab.core.validation import check_bool, check_in_range, check_nonnegative
from optlab.schedules._common import check_choice, check_steps


def _state_dtype(params: Any) -> Any:
    """float32, or wider when the parameters are (f64 under x64)."""
    dtypes = [
        jnp.dtype(x.dtype)
        for x in jax.tree.leaves(params)
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
    ]
    dtype = jnp.float32
    for d in dtypes:
        dtype = jnp.promote_types(dtype, d)
    return compute_dtype(dtype)


def _monitored(fn: str, monitor: str, extra_args: dict[str, Any], dtype: Any) -> jax.Array:
    if extra_args.get(monitor) is None:
        raise ValueError(
            f"{fn}: this transformation needs the monitored number; call "
            f"tx.update(grads, state, params, {monitor}=loss) (monitor={monitor!r})"
        )
    value = jnp.asarray(extra_args[monitor])
    if value.ndim != 0:
        raise ValueError(f"{fn}: {monitor} must be a scalar, got an array of shape {value.shape}")
    return value.astype(dtype)


def _improves(value: jax.Array, best: jax.Array, rtol: Any, atol: Any, mode: str) -> jax.Array:
    r"""Whether ``value`` beats ``best`` by more than :math:`r_{tol} |best| + a_{tol}`.

    The margin uses :math:`|best|`, so it is right for negative values too; the first finite
    value always improves on the initial :math:`\pm\infty`.
    """
    margin = jnp.where(jnp.isfinite(best), rtol * jnp.abs(best) + atol, 0.0)
    if mode == "min":
        return value < best - margin
    return value > best + margin


def _check_common(fn: str, mode: str, monitor: str) -> None:
    check_choice(fn, "mode", mode, ("min", "max"))
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(
            f"{fn}: monitor must be the name of an update keyword argument, got monitor={monitor!r}"
        )


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`.

    Attributes:
      scale: the factor applied to the updates (1 at the start).
      best_value: the best (averaged) value seen.
      plateau_count: windows since the last improvement (Keras' ``wait``).
      cooldown_count: windows of cooldown left.
      accumulation_count: values accumulated in the current window.
      avg_value: their running mean.
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    accumulation_count: jax.Array
    avg_value: jax.Array


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
    *,
    mode: str = "min",
    monitor: str = "value",
) -> GradientTransformation:
    r"""Scales the updates down by ``factor`` when the monitored value stops improving.

    The values passed to ``update`` are averaged over windows of ``accumulation_size`` calls
    (1: every call is a window). At the end of each window, with :math:`v` its mean, :math:`b`
    the best mean so far, :math:`w` the windows without improvement and :math:`c` the cooldown
    left (this is Keras' ``ReduceLROnPlateau.on_epoch_end``, step for step):

    1. if :math:`c > 0`: :math:`c \leftarrow c - 1`, :math:`w \leftarrow 0`;
    2. if :math:`v < b - (r_{tol} |b| + a_{tol})` (``mode="min"``; ``"max"``: :math:`v > b +
       \ldots`): :math:`b \leftarrow v`, :math:`w \leftarrow 0`;
    3. else, if :math:`c = 0`: :math:`w \leftarrow w + 1`, and if :math:`w \ge` ``patience``
       and :math:`s >` ``min_scale``: :math:`s \leftarrow \max(s \cdot` ``factor``,
       ``min_scale``:math:`)`, :math:`c \leftarrow` ``cooldown``, :math:`w \leftarrow 0`.

    The updates are multiplied by the scale :math:`s` after this step. The margin uses
    :math:`|b|`, so negative losses are handled (optax's :math:`(1 - r_{tol}) b` never reduces
    for them); Keras' ``min_delta`` is ``atol`` with ``rtol=0``.

    Args:
      factor: multiplier of the scale at each reduction, in (0, 1).
      patience: windows without improvement before a reduction (``>= 0``).
      rtol: relative improvement threshold, in [0, 1].
      atol: absolute improvement threshold, ``>= 0``.
      cooldown: windows after a reduction during which no reduction happens (``>= 0``).
      accumulation_size: values averaged per window (``>= 1``): 1 for a validation metric
        passed once per epoch, larger for noisy mini-batch losses.
      min_scale: the scale never goes below this (``>= 0``).
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      monitor: the keyword argument of ``update`` to read (``"value"`` or ``"metric"``...).

    Returns:
      A transformation whose state is a :class:`ReduceLROnPlateauState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.reduce_on_plateau(factor=0.5, patience=1, rtol=0.0)
      >>> state = tx.init(None)
      >>> for loss in [3.0, 2.0, 2.0, 2.0]:
      ...     u, state = tx.update(jnp.ones(1), state, value=loss)
      >>> print(ol.get(state, "scale"), u)
      0.25 [0.25]

    References:
      Keras, `ReduceLROnPlateau
      <https://keras.io/api/callbacks/reduce_lr_on_plateau/>`_; optax PR #1767 (negative
      values).
    """
    fn = "reduce_on_plateau"
    check_in_range(fn, "factor", factor, 0.0, 1.0, low_closed=False)
    check_steps(fn, "patience", patience, 0)
    check_in_range(fn, "rtol", rtol, 0.0, 1.0, high_closed=True)
    check_nonnegative(fn, "atol", atol)
    check_steps(fn, "cooldown", cooldown, 0)
    check_steps(fn, "accumulation_size", accumulation_size, 1)
    check_nonnegative(fn, "min_scale", min_scale)
    _check_common(fn, mode, monitor)

    def init_fn(params):
        dtype = _state_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dtype),
            best_value=jnp.asarray(jnp.inf if mode == "min" else -jnp.inf, dtype),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            accumulation_count=zero_count(),
            avg_value=jnp.zeros([], dtype),
        )

    def end_of_window(state, current):
        in_cooldown = state.cooldown_count > 0
        cooldown_count = jnp.where(in_cooldown, state.cooldown_count - 1, state.cooldown_count)
        wait = jnp.where(in_cooldown, 0, state.plateau_count)
        improved = _improves(current, state.best_value, rtol, atol, mode)
        best = jnp.where(improved, current, state.best_value)
        still_cooling = cooldown_count > 0
        wait = jnp.where(improved, 0, jnp.where(still_cooling, wait, safe_increment(wait)))
        reduce = (
            ~improved
            & ~still_cooling
            & (wait >= patience)
            & (state.scale > jnp.asarray(min_scale, jnp.float32))
        )
        scale = jnp.where(reduce, jnp.maximum(state.scale * factor, min_scale), state.scale)
        return ReduceLROnPlateauState(
            scale=scale.astype(state.scale.dtype),
            best_value=best.astype(state.best_value.dtype),
            plateau_count=jnp.where(reduce, 0, wait).astype(jnp.int32),
            cooldown_count=jnp.where(reduce, cooldown, cooldown_count).astype(jnp.int32),
            accumulation_count=zero_count(),
            avg_value=jnp.zeros_like(state.avg_value),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params
        value = _monitored(fn, monitor, extra_args, state.avg_value.dtype)
        n = safe_increment(state.accumulation_count)
        avg = (state.accumulation_count * state.avg_value + value) / n
        accumulated = state._replace(accumulation_count=n, avg_value=avg.astype(value.dtype))
        done = n >= accumulation_size
        closed = end_of_window(accumulated, accumulated.avg_value)
        new_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), closed, accumulated)
        return tree_scale(new_state.scale, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class BoldDriverState(NamedTuple):
    """State of :func:`bold_driver`.

    Attributes:
      count: number of updates made.
      scale: the factor applied to the updates (1 at the start).
      reference_value: the monitored value at the last accepted point.
      rejected: whether the last update undid the step before it.
      last_update: the last update returned (only with ``reject=True``; else ``None``).
    """

    count: jax.Array
    scale: jax.Array
    reference_value: jax.Array
    rejected: jax.Array
    last_update: Any


def bold_driver(
    increase: float = 1.1,
    decrease: float = 0.5,
    reject: bool = False,
    min_scale: float = 0.0,
    max_scale: float = float("inf"),
    *,
    monitor: str = "value",
) -> GradientTransformation:
    r"""The bold driver: grow the step after an improvement, cut it after a worsening.

    The seeds' adaptive strategy: start with an arbitrary step size and decrease it only when
    successive iterations do not decrease the cost. With :math:`J_t` the cost at the current
    parameters (passed as ``value``), :math:`J_{ref}` the cost at the last accepted point and
    :math:`s` the scale (1 at the start; the inner optimizer's learning rate is the "arbitrary
    step size"):

    .. math::

        s \leftarrow \begin{cases}
          \min(\rho_{+}\, s,\ s_{\max}) & J_t < J_{ref} \quad\text{(improvement)} \\
          \max(\rho_{-}\, s,\ s_{\min}) & J_t \ge J_{ref} \quad\text{(no decrease)}
        \end{cases}, \qquad u_t = s\, g_t

    and :math:`J_{ref} \leftarrow J_t`. The first call only records :math:`J_{ref}`.

    With ``reject=True`` a worsening step is undone: the update returned is
    :math:`-u_{t-1}`, which puts the parameters back where they were, :math:`J_{ref}` is kept,
    and the next call (at the restored point) takes a step with the reduced scale and does not
    judge it. For the undo to be exact, put ``bold_driver`` last in the chain.

    Args:
      increase: :math:`\rho_{+} \ge 1`.
      decrease: :math:`\rho_{-} \in (0, 1)`.
      reject: undo a step that did not decrease the cost.
      min_scale: :math:`s_{\min} \ge 0`.
      max_scale: :math:`s_{\max} > 0`.
      monitor: the keyword argument of ``update`` to read.

    Returns:
      A transformation whose state is a :class:`BoldDriverState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.bold_driver(increase=2.0, decrease=0.5)
      >>> state = tx.init(None)
      >>> for loss in [3.0, 2.0, 1.0, 1.5]:
      ...     u, state = tx.update(jnp.ones(1), state, value=loss)
      >>> print(ol.get(state, "scale"))
      2.0

    References:
      Vogl et al., `Accelerating the convergence of the back-propagation method
      <https://doi.org/10.1007/BF00332914>`_, 1988; Battiti, `Accelerated backpropagation
      learning: two optimization methods`, 1989.
    """
    fn = "bold_driver"
    check_in_range(fn, "increase", increase, 1.0, float("inf"))
    check_in_range(fn, "decrease", decrease, 0.0, 1.0, low_closed=False)
    check_nonnegative(fn, "min_scale", min_scale)
    check_bool(fn, "reject", reject)
    check_in_range(
        fn, "max_scale", max_scale, 0.0, float("inf"), low_closed=False, high_closed=True
    )
    _check_common(fn, "min", monitor)

    def init_fn(params):
        if reject and params is None:
            raise ValueError(
                f"{fn}: with reject=True the state keeps the last update; call "
                f"tx.init(params) with the parameters"
            )
        dtype = _state_dtype(params)
        return BoldDriverState(
            count=zero_count(),
            scale=jnp.ones([], dtype),
            reference_value=jnp.asarray(jnp.inf, dtype),
            rejected=jnp.asarray(False),
            last_update=tree_zeros_like(params) if reject else None,
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params
        value = _monitored(fn, monitor, extra_args, state.scale.dtype)
        judge = (state.count > 0) & ~state.rejected
        improved = value < state.reference_value
        worse = judge & ~improved
        scale = jnp.where(
            judge,
            jnp.where(
                improved,
                jnp.minimum(state.scale * increase, max_scale),
                jnp.maximum(state.scale * decrease, min_scale),
            ),
            state.scale,
        ).astype(state.scale.dtype)
        step = tree_scale(scale, updates)
        if reject:
            undo = worse
            new_updates = jax.tree.map(
                lambda s, last: jnp.where(undo, -last.astype(s.dtype), s), step, state.last_update
            )
            last_update = jax.tree.map(
                lambda s, last: jnp.where(undo, jnp.zeros_like(last), s.astype(last.dtype)),
                step,
                state.last_update,
            )
            reference = jnp.where(undo, state.reference_value, value)
        else:
            undo = jnp.asarray(False)
            new_updates, last_update, reference = step, None, value
        return new_updates, BoldDriverState(
            count=safe_increment(state.count),
            scale=scale,
            reference_value=reference.astype(state.reference_value.dtype),
            rejected=undo,
            last_update=last_update,
        )

    return GradientTransformation(init_fn, update_fn)


class EarlyStoppingState(NamedTuple):
    """State of :func:`early_stopping`.

    Attributes:
      count: number of values seen.
      best_value: the best value seen.
      best_step: the ``count`` at which it was seen (the number of updates made before it).
      plateau_count: values since the last improvement.
      should_stop: set once ``plateau_count`` reaches ``patience``; stays set.
      scale: the factor applied to the updates, like the other controllers' ``scale``: 1 while
        training goes on, 0 once stopped with ``freeze=True`` (it stays 1 with
        ``freeze=False``).
    """

    count: jax.Array
    best_value: jax.Array
    best_step: jax.Array
    plateau_count: jax.Array
    should_stop: jax.Array
    scale: jax.Array


def early_stopping(
    patience: int = 0,
    min_delta: float = 0.0,
    mode: str = "min",
    *,
    freeze: bool = True,
    monitor: str = "value",
) -> GradientTransformation:
    r"""A jit-safe early-stopping state machine: best value, its step, and a stop flag.

    At each call with value :math:`v` (while not stopped): if :math:`v < b - \delta`
    (``mode="min"``; ``"max"``: :math:`v > b + \delta`) the best :math:`b \leftarrow v` and its
    step are recorded and the wait :math:`w \leftarrow 0`; otherwise :math:`w \leftarrow w + 1`,
    and ``should_stop`` is set once :math:`w \ge` ``patience`` (Keras' and flax's
    ``EarlyStopping`` rule). Read it with ``optlab.get(state, "should_stop")``; inside a
    compiled loop that cannot break (``lax.scan``), ``freeze=True`` makes every update from
    the stopping call on zero, so the parameters stay where training stopped.

    Args:
      patience: calls without improvement before stopping (``>= 0``).
      min_delta: :math:`\delta \ge 0`, the least change that counts as an improvement.
      mode: ``"min"`` or ``"max"``.
      freeze: return zero updates once stopped.
      monitor: the keyword argument of ``update`` to read.

    Returns:
      A transformation whose state is an :class:`EarlyStoppingState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.early_stopping(patience=2)
      >>> state = tx.init(None)
      >>> for loss in [3.0, 1.0, 2.0, 1.5, 0.5]:
      ...     u, state = tx.update(jnp.ones(1), state, value=loss)
      >>> print(ol.get(state, "should_stop"), ol.get(state, "best_step"), ol.get(state, "scale"), u)
      True 1 0.0 [0.]
    """
    fn = "early_stopping"
    check_steps(fn, "patience", patience, 0)
    check_nonnegative(fn, "min_delta", min_delta)
    check_bool(fn, "freeze", freeze)
    _check_common(fn, mode, monitor)

    def init_fn(params):
        dtype = _state_dtype(params)
        return EarlyStoppingState(
            count=zero_count(),
            best_value=jnp.asarray(jnp.inf if mode == "min" else -jnp.inf, dtype),
            best_step=zero_count(),
            plateau_count=zero_count(),
            should_stop=jnp.asarray(False),
            scale=jnp.ones([], dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params
        value = _monitored(fn, monitor, extra_args, state.best_value.dtype)
        active = ~state.should_stop
        improved = active & _improves(value, state.best_value, 0.0, min_delta, mode)
        wait = jnp.where(
            improved, 0, jnp.where(active, safe_increment(state.plateau_count), state.plateau_count)
        )
        stop = state.should_stop | (active & ~improved & (wait >= patience))
        new_state = EarlyStoppingState(
            count=safe_increment(state.count),
            best_value=jnp.where(improved, value, state.best_value),
            best_step=jnp.where(improved, state.count, state.best_step),
            plateau_count=wait.astype(jnp.int32),
            should_stop=stop,
            scale=jnp.where(stop & freeze, 0.0, 1.0).astype(state.scale.dtype),
        )
        if freeze:
            updates = jax.tree.map(lambda u: jnp.where(stop, jnp.zeros_like(u), u), updates)
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)
