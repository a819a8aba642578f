"""``optlab.fit``: a Keras-like training loop over the compiled epoch.

Each epoch :math:`e` draws the permutation of the training rows from the key
:math:`\\mathrm{fold\\_in}(\\mathrm{key}(\\text{seed}), e)` on the device, gathers
``(num_batches, batch_size, ...)`` batches and scans the train step over them, all in one
compiled dispatch; then the validation set is evaluated in one more. Because the data order
depends on ``(seed, epoch)`` only and everything else lives in the state, a run resumed from a
checkpoint continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.base import GradientTransformation
from optlab.core.validation import check_in_range, check_int_at_least
from optlab.train.callbacks import Callback, ModelCheckpoint
from optlab.train.checkpoint import Checkpointer
from optlab.train.history import History
from optlab.train.progress import Progress
from optlab.train.state import TrainState
from optlab.train.step import (
    MetricFn,
    evaluate,
    make_eval_step,
    make_train_step,
    scan_epoch,
)

_STEP_CACHE: dict[Any, tuple[Callable, Callable]] = {}


def _steps(loss: Callable, metrics: Sequence[str | MetricFn] | None) -> tuple[Callable, Callable]:
    """The train/eval steps for ``(loss, metrics)``, built once so compilations are reused."""
    key = (loss, tuple(metrics or ()))
    try:
        hash(key)
    except TypeError:
        return make_train_step(loss, metrics=metrics), make_eval_step(loss, metrics=metrics)
    if key not in _STEP_CACHE:
        _STEP_CACHE[key] = (
            make_train_step(loss, metrics=metrics),
            make_eval_step(loss, metrics=metrics),
        )
    return _STEP_CACHE[key]


@functools.partial(jax.jit, static_argnames=("step_fn", "batch_size"), donate_argnames=("state",))
def _shuffled_epoch(step_fn, state, x, y, data_key, epoch, metric, *, batch_size):
    n = x.shape[0]
    num_batches = n // batch_size
    perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
    idx = perm[: num_batches * batch_size].reshape(num_batches, batch_size)
    return scan_epoch(step_fn, state, (x[idx], y[idx]), metric)


def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The order in which :func:`fit` visits the training rows in ``epoch`` (a pure function
    of its arguments); epoch :math:`e` uses the first ``(n // batch_size) * batch_size``."""
    key = jax.random.fold_in(jax.random.key(seed), epoch)
    return np.asarray(jax.random.permutation(key, num_examples))


class FitLoop:
    """What callbacks see of a running :func:`fit` (the ``loop`` argument of their hooks).

    Attributes:
      state: the current :class:`TrainState` (a callback may replace it).
      stop_training: set it to True to stop after the current epoch.
      history: the :class:`History` so far.
      epochs: the epoch count asked for.
      seed: the run's seed (fixes the data order).
      resumed: whether this run started from a checkpoint.
      callbacks: the callbacks, in the order they are called.
    """

    def __init__(
        self,
        state: TrainState,
        *,
        epochs: int,
        seed: int,
        callbacks: list[Callback],
        batch_size: int,
        tx_metric: str | None,
    ):
        self.state = state
        self.epochs = epochs
        self.seed = seed
        self.callbacks = callbacks
        self.history = History()
        self.stop_training = False
        self.resumed = False
        self.batch_size = batch_size
        self.tx_metric = tx_metric
        self.tx_metric_value: float | None = None

    def _callback_keys(self) -> list[str]:
        seen: dict[str, int] = {}
        keys = []
        for cb in self.callbacks:
            name = type(cb).__name__
            keys.append(f"{name}:{seen.get(name, 0)}")
            seen[name] = seen.get(name, 0) + 1
        return keys

    def checkpoint_meta(self, completed_epochs: int) -> dict[str, Any]:
        """The JSON record saved with a checkpoint."""
        return {
            "format": "optlab.fit/1",
            "epoch": completed_epochs,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "tx_metric": self.tx_metric,
            "tx_metric_value": self.tx_metric_value,
            "history": self.history.to_dict(),
            "callbacks": {
                k: cb.get_state()
                for k, cb in zip(self._callback_keys(), self.callbacks, strict=True)
            },
        }

    def save_checkpoint(self, checkpointer: Checkpointer, completed_epochs: int) -> None:
        """Writes the whole run (state, history, callbacks' state) as one checkpoint."""
        extra = {
            k: cb.get_arrays() for k, cb in zip(self._callback_keys(), self.callbacks, strict=True)
        }
        checkpointer.save(
            completed_epochs, self.state, self.checkpoint_meta(completed_epochs), extra
        )

    def restore(self, directory: str | os.PathLike) -> int:
        """Loads the latest complete checkpoint of ``directory``; returns the completed epochs."""
        ckpt = Checkpointer(directory)
        try:
            state, meta, extra = ckpt.restore(self.state)
        finally:
            ckpt.close()
        if meta.get("format") != "optlab.fit/1":
            raise ValueError(f"fit: {directory} does not hold checkpoints written by fit")
        for key in ("batch_size", "tx_metric"):
            if meta.get(key) != getattr(self, key):
                raise ValueError(
                    f"fit: resume_from={str(directory)!r} was written with {key}="
                    f"{meta.get(key)!r}, but this call has {key}={getattr(self, key)!r}; an "
                    "exact resume needs the same value"
                )
        self.state = state
        self.seed = int(meta["seed"])
        self.history = History.from_dict(meta["history"])
        value = meta.get("tx_metric_value")
        self.tx_metric_value = None if value is None else float(value)
        saved = meta.get("callbacks", {})
        for key, cb in zip(self._callback_keys(), self.callbacks, strict=True):
            if key in saved:
                cb.set_state(saved[key])
            if key in extra:
                cb.set_arrays(self, extra[key])
        self.resumed = True
        return int(meta["epoch"])


def _as_arrays(fn: str, data: Any, what: str) -> tuple[jax.Array, jax.Array]:
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        x, y = data.x_train, data.y_train
    elif isinstance(data, tuple | list) and len(data) == 2:
        x, y = data
    else:
        raise ValueError(
            f"{fn}: {what} must be a pair (x, y) of arrays or a dataset with x_train and "
            f"y_train (optlab.data.load), got {type(data).__name__}"
        )
    x, y = np.asarray(x), np.asarray(y)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"{fn}: {what} must have as many rows in x as in y, at least one; got "
            f"x.shape={x.shape}, y.shape={y.shape}"
        )
    if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
        x = x.astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def fit(
    model: nnx.Module,
    tx: GradientTransformation,
    data: Any,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    epochs: int = 1,
    batch_size: int = 32,
    validation_split: float = 0.0,
    validation_data: Any = None,
    metrics: Sequence[str | MetricFn] | None = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    progress: bool = True,
    resume_from: str | os.PathLike | None = None,
    tx_metric: str | None = None,
) -> tuple[History, nnx.Module]:
    """Trains ``model`` with ``tx``, Keras-style: epochs, validation, callbacks, history.

    Each epoch is one compiled dispatch (shuffle, batch, scan the train step); the
    validation set is evaluated in evaluation mode after every epoch. The last
    ``(n mod batch_size)`` rows of each epoch's permutation are left out (a different
    remainder every epoch); a ``batch_size`` of at least the number of rows trains full-batch.

    Args:
      model: a Flax nnx model (an ``optlab.nn`` model, or a plain nnx module that switches
        mode with ``train()``/``eval()``). Its arrays are updated in place at the end.
      tx: an optlab or optax gradient transformation.
      data: ``(x, y)`` arrays, or a dataset with ``x_train``/``y_train``
        (``optlab.data.load``).
      loss: ``loss(predictions, targets)``, a scalar or per-example values (e.g.
        ``optlab.nn.softmax_cross_entropy_with_integer_labels``).
      epochs: the number of epochs (the total, when resuming).
      batch_size: rows per step.
      validation_split: as Keras: this fraction of the rows, taken from the end before any
        shuffling, is held out for validation (for a stratified split, use ``optlab.data`` and
        pass ``validation_data``).
      validation_data: ``(x_val, y_val)``; excludes ``validation_split``.
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)``.
      callbacks: :mod:`optlab.train.callbacks` objects; checkpoints are written after the other
        callbacks have seen the epoch.
      seed: fixes the data order (and the state's RNG key: dropout masks).
      progress: a progress bar on a terminal, one line per epoch otherwise; False for silence.
      resume_from: a checkpoint directory written by ``ModelCheckpoint``: the run continues
        from its latest complete checkpoint (state, data order, history, callbacks' state) up
        to ``epochs``; the checkpoint's seed is used.
      tx_metric: a validation value (``"val_loss"``...) passed to every update of the next
        epoch as the extra argument ``metric=`` (for metric-driven controllers); the first
        epoch gets the value of the untrained model.

    Returns:
      ``(history, model)``: the :class:`History` (``history.state`` holds the final
      :class:`TrainState`, e.g. for ``optlab.get(history.state.opt_state, "learning_rate")``)
      and the trained model (the same object, its arrays updated).

    Examples:
      >>> import optlab as ol
      >>> import numpy as np
      >>> from flax import nnx
      >>> x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
      >>> model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> mse = lambda p, y: (p[:, 0] - y) ** 2
      >>> history, model = ol.fit(model, ol.scale_by_learning_rate(0.5), (x, 3 * x[:, 0]),
      ...                         loss=mse, epochs=20, batch_size=16, metrics=(), progress=False)
      >>> print(round(float(model.kernel[0, 0]), 3), history["loss"][-1] < 1e-6)
      3.0 True
    """
    fn = "fit"
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(model).__name__}")
    check_int_at_least(fn, "epochs", epochs, 0)
    check_int_at_least(fn, "batch_size", batch_size, 1)
    check_int_at_least(fn, "seed", seed, 0)
    check_in_range(fn, "validation_split", validation_split, 0.0, 1.0)
    if validation_split and validation_data is not None:
        raise ValueError(f"{fn}: pass validation_split or validation_data, not both")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"{fn}: callbacks must be optlab Callback objects, got {cb!r}")
    x, y = _as_arrays(fn, data, "data")
    if validation_split:
        n_val = int(x.shape[0] * validation_split)
        if n_val == 0 or n_val == x.shape[0]:
            raise ValueError(
                f"{fn}: validation_split={validation_split} leaves {n_val} validation rows of "
                f"{x.shape[0]}"
            )
        x, y, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    elif validation_data is not None:
        x_val, y_val = _as_arrays(fn, validation_data, "validation_data")
    else:
        x_val = y_val = None
    if tx_metric is not None and (x_val is None or not tx_metric.startswith("val_")):
        raise ValueError(
            f"{fn}: tx_metric must name a validation value such as 'val_loss' and needs "
            f"validation data, got tx_metric={tx_metric!r}"
        )
    batch_size = min(batch_size, int(x.shape[0]))
    num_batches = int(x.shape[0]) // batch_size

    step_fn, eval_fn = _steps(loss, metrics)
    state = TrainState.create(model, tx, seed=seed)
    ordered = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)] + [
        cb for cb in callbacks if isinstance(cb, ModelCheckpoint)
    ]
    loop = FitLoop(
        state,
        epochs=epochs,
        seed=seed,
        callbacks=ordered,
        batch_size=batch_size,
        tx_metric=tx_metric,
    )
    initial_epoch = loop.restore(resume_from) if resume_from is not None else 0
    data_key = jax.random.key(loop.seed)

    def validate(st: TrainState) -> dict[str, float]:
        logs = jax.device_get(evaluate(eval_fn, st, (x_val, y_val)))
        return {f"val_{k}": float(v) for k, v in logs.items()}

    if tx_metric is not None and loop.tx_metric_value is None:
        initial = validate(loop.state)
        if tx_metric not in initial:
            raise ValueError(f"{fn}: tx_metric={tx_metric!r} is not one of {', '.join(initial)}")
        loop.tx_metric_value = initial[tx_metric]

    bar = Progress(epochs, enabled=progress)
    bar.start(initial_epoch)
    try:
        for cb in ordered:
            cb.on_train_begin(loop)
        for epoch in range(initial_epoch, epochs):
            for cb in ordered:
                cb.on_epoch_begin(loop, epoch)
            metric = None if tx_metric is None else jnp.asarray(loop.tx_metric_value, jnp.float32)
            start = time.perf_counter()
            loop.state, train_logs = _shuffled_epoch(
                step_fn,
                loop.state,
                x,
                y,
                data_key,
                jnp.asarray(epoch, jnp.int32),
                metric,
                batch_size=batch_size,
            )
            logs = {k: float(v) for k, v in jax.device_get(train_logs).items()}
            if x_val is not None:
                logs.update(validate(loop.state))
            elapsed = time.perf_counter() - start
            logs["time"] = elapsed
            logs["steps_per_second"] = num_batches / elapsed if elapsed > 0 else math.inf
            if tx_metric is not None:
                loop.tx_metric_value = logs[tx_metric]
            loop.history.append(epoch, logs)
            bar.epoch_end(epoch, logs)
            for cb in ordered:
                cb.on_epoch_end(loop, epoch, logs)
            if loop.stop_training:
                break
    finally:
        try:
            for cb in ordered:
                cb.on_train_end(loop)
        finally:
            bar.stop()
            loop.state.to_model(model)
            loop.history.state = loop.state
    return loop.history, model
