"""Compiled train and evaluation steps, and an epoch as one ``lax.scan``.

One train step on a batch :math:`(x, y)` is

.. math::

    L(\\theta) = \\frac{1}{B}\\sum_{i=1}^{B} \\ell(f_\\theta(x_i), y_i), \\qquad
    g_t = \\nabla_\\theta L(\\theta_t), \\qquad
    (u_t, s_{t+1}) = \\mathrm{update}(g_t, s_t, \\theta_t,
        \\text{value}=L, \\text{grad}=g_t, \\text{value\\_fn}=L, \\ldots), \\qquad
    \\theta_{t+1} = \\theta_t + c\\,u_t

with :math:`c` the state's ``lr_scale``. An epoch scans the step over stacked batches of shape
``(num_batches, batch_size, ...)``, so one dispatch runs the whole epoch; the per-step values
(loss, metrics, gradient norm, learning rate) stay on the device and are averaged there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.access import get
from optlab.core.base import apply_updates
from optlab.core.combine import with_extra_args_support
from optlab.core.numerics import global_norm, tree_scale
from optlab.train.state import TrainState

Batch = Any
Logs = dict[str, jax.Array]
MetricFn = Callable[[jax.Array, jax.Array], jax.Array]


def accuracy(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Classification accuracy: the fraction of rows whose arg-max matches the label.

    Targets are integer class labels, or one-hot/probability rows (then their arg-max is the
    label). A single output column is read as a binary logit (positive means class 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0]])
      >>> print(accuracy(logits, jnp.array([0, 1, 1])))
      0.6666667
    """
    if predictions.shape[-1] == 1 and targets.ndim == predictions.ndim - 1:
        predicted = (predictions[..., 0] > 0).astype(targets.dtype)
        return jnp.mean((predicted == targets).astype(jnp.float32))
    labels = jnp.argmax(targets, -1) if targets.ndim == predictions.ndim else targets
    return jnp.mean((jnp.argmax(predictions, -1) == labels).astype(jnp.float32))


_BUILTIN_METRICS: dict[str, MetricFn] = {"accuracy": accuracy, "acc": accuracy}


def resolve_metrics(fn: str, metrics: Sequence[str | MetricFn] | None) -> dict[str, MetricFn]:
    """Maps metric names (``"accuracy"``) and callables ``f(predictions, targets)`` to functions.

    Raises:
      ValueError: an unknown metric name (the message lists the known ones).
    """
    out: dict[str, MetricFn] = {}
    for m in metrics or ():
        if isinstance(m, str):
            if m not in _BUILTIN_METRICS:
                raise ValueError(
                    f"{fn}: unknown metric {m!r}; known names: {', '.join(_BUILTIN_METRICS)} "
                    "(or pass a function f(predictions, targets))"
                )
            out["accuracy" if m == "acc" else m] = _BUILTIN_METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", f"metric_{len(out)}")] = m
        else:
            raise ValueError(f"{fn}: a metric must be a name or a function, got {m!r}")
    return out


def _check_loss(fn: str, loss: Any) -> None:
    if not callable(loss):
        raise ValueError(
            f"{fn}: loss must be a function loss(predictions, targets) returning a scalar or "
            f"per-example values, got {loss!r}"
        )


def _mean(x: jax.Array) -> jax.Array:
    return jnp.mean(jnp.asarray(x, jnp.float32))


def _split_batch(fn: str, batch: Batch) -> tuple[jax.Array, jax.Array]:
    if isinstance(batch, dict):
        return batch["x"], batch["y"]
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"{fn}: a batch must be (x, y) or {{'x': ..., 'y': ...}}, got {type(batch)}")


def readable_learning_rate(opt_state: Any) -> jax.Array | None:
    """The state's ``learning_rate`` when exactly one is recorded (``optlab.get``), else None."""
    try:
        lr = get(opt_state, "learning_rate")
    except KeyError:
        return None
    return jnp.asarray(lr, jnp.float32) if jnp.ndim(lr) == 0 else None


def make_train_step(
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    metrics: Sequence[str | MetricFn] | None = ("accuracy",),
) -> Callable[..., tuple[TrainState, Logs]]:
    """Builds the pure train step ``step(state, batch, metric=None) -> (state, logs)``.

    The step runs the model in training mode (with the key ``fold_in(state.rng, step)``
    for dropout and other random layers), differentiates the mean
    loss, calls the transformation with the extra arguments ``value`` (the batch loss),
    ``grad``, ``value_fn`` (the batch loss as a function of the parameters, for line searches)
    and, when given, ``metric`` (e.g. the last validation loss, for metric-driven controllers),
    then applies :math:`\\theta \\leftarrow \\theta + c\\,u`. optax transformations that take no
    extra arguments are called without them.

    Args:
      loss: ``loss(predictions, targets)``, a scalar or per-example values (then averaged).
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)``.

    Returns:
      A pure function, not yet compiled: pass it to :func:`train_epoch`, or ``jax.jit`` it.
      ``logs`` holds ``loss``, each metric, ``grad_norm`` (of the raw gradients) and
      ``learning_rate`` when the optimizer records one (times ``lr_scale``).

    Examples:
      >>> import optlab as ol
      >>> import jax.numpy as jnp
      >>> import jax
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> state = ol.TrainState.create(model, ol.scale_by_learning_rate(0.1))
      >>> step = ol.make_train_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> state, logs = jax.jit(step)(state, (jnp.ones((4, 2)), jnp.zeros(4)))
      >>> print(int(state.step), sorted(logs))
      1 ['grad_norm', 'learning_rate', 'loss']
    """
    _check_loss("make_train_step", loss)
    metric_fns = resolve_metrics("make_train_step", metrics)

    def step(state: TrainState, batch: Batch, metric: jax.Array | None = None):
        x, y = _split_batch("train step", batch)
        key = jax.random.fold_in(state.rng, state.step)

        def objective(params):
            preds, model_state = state.apply(params, state.model_state, x, train=True, rng=key)
            return _mean(loss(preds, y)), (preds, model_state)

        (value, (preds, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            state.params
        )
        extra = {"value": value, "grad": grads, "value_fn": lambda p: objective(p)[0]}
        if metric is not None:
            extra["metric"] = metric
        update = with_extra_args_support(state.tx).update
        updates, opt_state = update(grads, state.opt_state, state.params, **extra)
        params = apply_updates(state.params, tree_scale(state.lr_scale, updates))
        logs = {"loss": value}
        for name, fn in metric_fns.items():
            logs[name] = _mean(fn(preds, y))
        logs["grad_norm"] = jnp.asarray(global_norm(grads), jnp.float32)
        lr = readable_learning_rate(opt_state)
        if lr is not None:
            logs["learning_rate"] = lr * state.lr_scale
        new_state = state.replace(
            params=params,
            model_state=model_state,
            opt_state=opt_state,
            step=state.step + 1,
        )
        return new_state, logs

    return step


def make_eval_step(
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    metrics: Sequence[str | MetricFn] | None = ("accuracy",),
) -> Callable[[TrainState, Batch], Logs]:
    """Builds the pure evaluation step ``eval_step(state, batch) -> logs``.

    The model runs in evaluation mode (running BatchNorm statistics, no dropout); the state
    is not changed.

    Args:
      loss: ``loss(predictions, targets)``, a scalar or per-example values (then averaged).
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)``.

    Returns:
      A pure function returning ``{"loss": ..., <metric>: ...}`` (batch means).

    Examples:
      >>> import optlab as ol
      >>> import jax.numpy as jnp
      >>> import jax
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> state = ol.TrainState.create(model, ol.identity())
      >>> ev = ol.make_eval_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> logs = jax.jit(ev)(state, (jnp.zeros((3, 2)), jnp.zeros(3)))
      >>> print(sorted(logs), float(logs["loss"]) >= 0)
      ['loss'] True
    """
    _check_loss("make_eval_step", loss)
    metric_fns = resolve_metrics("make_eval_step", metrics)

    def eval_step(state: TrainState, batch: Batch) -> Logs:
        x, y = _split_batch("eval step", batch)
        preds, _ = state.apply(state.params, state.model_state, x, train=False)
        logs = {"loss": _mean(loss(preds, y))}
        for name, fn in metric_fns.items():
            logs[name] = _mean(fn(preds, y))
        return logs

    return eval_step


def scan_epoch(
    step_fn: Callable[..., tuple[TrainState, Logs]],
    state: TrainState,
    batches: Batch,
    metric: jax.Array | None = None,
) -> tuple[TrainState, Logs]:
    """Scans ``step_fn`` over stacked batches (not compiled: the body of :func:`train_epoch`).

    Returns the final state and the epoch's logs: the mean over steps of every value, except
    ``learning_rate``, which is the last step's.
    """

    def body(st, batch):
        return step_fn(st, batch, metric)

    state, stacked = jax.lax.scan(body, state, batches)
    logs = {k: (v[-1] if k == "learning_rate" else jnp.mean(v)) for k, v in stacked.items()}
    return state, logs


@functools.partial(jax.jit, static_argnames=("step_fn",), donate_argnames=("state",))
def train_epoch(
    step_fn: Callable[..., tuple[TrainState, Logs]],
    state: TrainState,
    batches: Batch,
    metric: jax.Array | None = None,
) -> tuple[TrainState, Logs]:
    """Runs one epoch, one compiled dispatch: ``lax.scan`` of ``step_fn`` over the batches.

    The state's buffers are donated: do not use ``state`` after the call, use the returned one.
    The function is compiled once per ``step_fn`` (keep the one :func:`make_train_step`
    returned) and per batch shape.

    Args:
      step_fn: a train step from :func:`make_train_step` (or any function with its signature).
      state: the training state.
      batches: ``(xs, ys)`` stacked to ``(num_batches, batch_size, ...)``.
      metric: optional scalar passed to every update as ``metric=`` (a validation metric for
        metric-driven controllers).

    Returns:
      ``(state, logs)``: epoch means of the step logs (``learning_rate``: the last value).

    Examples:
      >>> import optlab as ol
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> state = ol.TrainState.create(model, ol.scale_by_learning_rate(0.1))
      >>> step = ol.make_train_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> batches = (jnp.ones((5, 4, 2)), jnp.zeros((5, 4)))
      >>> state, logs = ol.train_epoch(step, state, batches)
      >>> print(int(state.step), float(logs["learning_rate"]))
      5 0.1
    """
    return scan_epoch(step_fn, state, batches, metric)


@functools.partial(jax.jit, static_argnames=("eval_fn",))
def evaluate(eval_fn: Callable[[TrainState, Batch], Logs], state: TrainState, batch: Batch) -> Logs:
    """Evaluates ``eval_fn`` (from :func:`make_eval_step`) on one batch, compiled."""
    return eval_fn(state, batch)
