"""Using a trained model: ``evaluate`` (loss and metrics) and ``predict`` (outputs), in batches.

Both run the model in evaluation mode (running BatchNorm statistics, no dropout) through its
pure functional form, over batches of ``batch_size`` rows stacked and scanned in one compiled
call; the last batch is padded and its padded rows are masked out, so every row counts once:

.. math::

    \\bar\\ell = \\frac{1}{n}\\sum_{i=1}^{n} \\ell(f_\\theta(x_i), y_i).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import check_array, check_int_range
from optlab.data.batching import Batches, batches
from optlab.nn.apply import functional
from optlab.train.state import TrainState
from optlab.train.step import MetricFn, evaluate_batches, make_eval_step, ordered

EVAL_BATCH_SIZE = 1024  # rows per evaluation batch when none is given


def as_arrays(fn: str, data: Any, what: str, *, split: str = "train") -> tuple[Any, Any]:
    """``(x, y)`` as arrays from a pair or a dataset (its ``x_<split>``/``y_<split>``).

    Floating inputs become float32. Raises a ``ValueError`` naming ``fn`` and ``what`` for
    anything else, or for ``x`` and ``y`` with different numbers of rows.
    """
    if hasattr(data, f"x_{split}") and hasattr(data, f"y_{split}"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        what = f"{what} (the dataset's {split} split)"
    elif isinstance(data, tuple | list) and len(data) == 2:
        x, y = data
    else:
        raise ValueError(
            f"{fn}: {what} must be a pair (x, y) of arrays or a dataset with x_{split} and "
            f"y_{split} (optlab.data.load), got {type(data).__name__}"
        )
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"{fn}: {what} must have as many rows in x as in y, at least one; got "
            f"x.shape={x.shape}, y.shape={y.shape}"
        )
    if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
        x = x.astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def default_metrics(y: Any) -> tuple[str, ...]:
    """The metrics that fit the task: ``("accuracy",)`` for class targets, none otherwise (a
    regression has no accuracy).

    Class targets are integer labels (one per row) or rows of class probabilities (two or
    more columns, each row in ``[0, 1]`` summing to 1, as one-hot labels are); any other
    float target is a regression.
    """
    y = np.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer) or jnp.issubdtype(y.dtype, jnp.bool_):
        return ("accuracy",) if y.ndim == 1 else ()
    if y.ndim == 2 and y.shape[1] >= 2 and y.size and jnp.issubdtype(y.dtype, jnp.floating):
        rows = y.astype(np.float64)
        unit = bool(np.all((rows >= 0) & (rows <= 1)))
        if unit and np.allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-4):
            return ("accuracy",)
    return ()


def resolve_batch_size(fn: str, name: str, batch_size: int | None, rows: int) -> int:
    """``batch_size`` (None: :data:`EVAL_BATCH_SIZE`), at most ``rows``."""
    if batch_size is None:
        batch_size = EVAL_BATCH_SIZE
    check_int_range(fn, name, batch_size, 1)
    return min(batch_size, rows)


def eval_batches(x: Any, y: Any, batch_size: int) -> Batches:
    """Every row once, in order, as stacked batches (the last one padded and masked)."""
    return batches(x, y, batch_size, 0, drop_remainder=False, shuffle=False)


def _inference_state(fn: str, model: nnx.Module) -> TrainState:
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(model).__name__}")
    apply, params, model_state = functional(model)
    return TrainState(
        params=params,
        model_state=model_state,
        opt_state=None,
        step=jnp.zeros((), jnp.int32),
        rng=jax.random.key(0),
        lr_scale=jnp.ones((), jnp.float32),
        nonfinite_streak=jnp.zeros((), jnp.int32),
        apply=apply,
        tx=None,
    )


@functools.lru_cache(maxsize=32)
def _eval_step(loss: Callable, metrics: tuple) -> Callable:
    return make_eval_step(loss, metrics=metrics)


def evaluate(
    model: nnx.Module,
    data: Any,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    metrics: Sequence[str | MetricFn] | str | None = "auto",
    batch_size: int | None = None,
) -> dict[str, float]:
    """The loss and metrics of ``model`` on ``data``, in evaluation mode, in batches.

    Args:
      model: a Flax nnx model (an ``optlab.nn`` model or a plain nnx module); not modified.
      data: ``(x, y)`` arrays, or a dataset (``optlab.data.load``): its test split.
      loss: ``loss(predictions, targets)``, per-example values.
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)``; ``"auto"``
        is accuracy for integer class labels and nothing otherwise.
      batch_size: rows per batch (None: 1024, or all rows when fewer). The result does not
        depend on it beyond float rounding.

    Returns:
      ``{"loss": ..., <metric>: ...}`` as Python floats: means over every row.

    Examples:
      >>> import numpy as np
      >>> import optlab as ol
      >>> from flax import nnx
      >>> model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> x = np.ones((5, 1), np.float32)
      >>> y = (np.asarray(model(x))[:, 0] - np.arange(5)).astype(np.float32)
      >>> logs = ol.evaluate(model, (x, y), loss=lambda p, t: (p[:, 0] - t) ** 2, batch_size=2)
      >>> print(logs)  # the mean of 0, 1, 4, 9, 16
      {'loss': 6.0}
    """
    fn = "evaluate"
    if not callable(loss):
        raise TypeError(f"{fn}: loss must be a function loss(predictions, targets), got {loss!r}")
    x, y = as_arrays(fn, data, "data", split="test")
    if isinstance(metrics, str) and metrics == "auto":
        metrics = default_metrics(y)
    elif isinstance(metrics, str):  # one name
        metrics = (metrics,)
    size = resolve_batch_size(fn, "batch_size", batch_size, int(x.shape[0]))
    state = _inference_state(fn, model)
    try:
        eval_fn = _eval_step(loss, tuple(metrics or ()))
    except TypeError:  # unhashable loss or metrics: build the step once, without the cache
        eval_fn = make_eval_step(loss, metrics=metrics)
    logs = evaluate_batches(eval_fn, state, eval_batches(x, y, size))
    return {k: float(v) for k, v in ordered(jax.device_get(logs)).items()}


@functools.partial(jax.jit, static_argnames=("apply",))
def _predict(apply: Any, params: Any, model_state: Any, xs: Any) -> Any:
    return jax.lax.map(lambda xb: apply(params, model_state, xb, train=False)[0], xs)


def predict(model: nnx.Module, x: Any, *, batch_size: int | None = None) -> jax.Array:
    """The outputs of ``model`` for the rows of ``x``, in evaluation mode, in batches.

    Args:
      model: a Flax nnx model; not modified.
      x: inputs ``(n, ...)`` (floating inputs are computed in float32).
      batch_size: rows per batch (None: 1024, or all rows when fewer).

    Returns:
      The outputs ``(n, ...)`` (e.g. logits), a jax array; row ``i`` is the output for
      ``x[i]``.

    Examples:
      >>> import numpy as np
      >>> import optlab as ol
      >>> from flax import nnx
      >>> model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
      >>> x = np.arange(15, dtype=np.float32).reshape(5, 3)
      >>> out = ol.predict(model, x, batch_size=2)
      >>> print(out.shape, np.allclose(out, model(x)))
      (5, 2) True
    """
    fn = "predict"
    x = np.asarray(check_array(fn, "x", x))
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{fn}: x must have at least one row, got x.shape={x.shape}")
    if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
        x = x.astype(np.float32)
    n = int(x.shape[0])
    size = resolve_batch_size(fn, "batch_size", batch_size, n)
    state = _inference_state(fn, model)
    stacked = batches(jnp.asarray(x), None, size, 0, drop_remainder=False, shuffle=False)
    try:
        out = _predict(state.apply, state.params, state.model_state, stacked.x)
    except (TypeError, ValueError) as err:  # raised while tracing: rows of the wrong width
        raise ValueError(
            f"{fn}: the model cannot take x of shape {x.shape} (rows of shape {x.shape[1:]}): "
            f"{str(err).splitlines()[0]}"
        ) from None
    return jax.tree.map(lambda o: o.reshape(-1, *o.shape[2:])[:n], out)
