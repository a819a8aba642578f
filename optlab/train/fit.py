"""``optlab.fit``: a Keras-like training loop over the compiled epoch.

Epoch :math:`e` (1-based) derives the key :math:`k_e = \\mathrm{fold\\_in}(\\mathrm{key}(
\\text{seed}), e)` and splits it into an order key and an augmentation key; on the device, in
one compiled dispatch, :func:`optlab.data.batches` permutes the training rows with the order
key and stacks them into ``(num_batches, batch_size, ...)`` batches (the last one padded and
masked when ``drop_remainder=False``), the optional augmentation transforms each step's batch
with ``fold_in(augmentation key, step)``, and the train step is scanned over them. Then the
validation set is evaluated in batches in one more dispatch. Because the data order depends on
``(seed, epoch)`` only and everything else lives in the state, a run resumed from a checkpoint
continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import collections
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.base import GradientTransformation
from optlab.core.validation import (
    as_path,
    check_bool,
    check_callable,
    check_in_range,
    check_int_range,
    check_number,
    check_str,
)
from optlab.data.batching import Batches, batches
from optlab.train.callbacks import Callback, ModelCheckpoint
from optlab.train.checkpoint import restore_run
from optlab.train.evaluation import (
    as_arrays,
    default_metrics,
    eval_batches,
    resolve_batch_size,
)
from optlab.train.history import History
from optlab.train.progress import Progress
from optlab.train.run import Run, RunConfig
from optlab.train.sharding import check_batch_size, check_fit_options, place_fit
from optlab.train.state import TrainState
from optlab.train.step import (
    MetricFn,
    check_loss,
    evaluate_batches,
    make_eval_step,
    make_train_step,
    ordered,
    scan_epoch,
)

_STEP_CACHE_SIZE = 16
_STEP_CACHE: collections.OrderedDict[Any, tuple[Callable, Callable]] = collections.OrderedDict()


def _steps(
    loss: Callable, metrics: Sequence[str | MetricFn], skip_nonfinite: bool, monitor: Any = None
) -> tuple[Callable, Callable]:
    """The train/eval steps, built once per ``(loss, metrics, skip_nonfinite, monitor)`` so
    compiled epochs are reused; the cache keeps the 16 most recently used."""
    key = (loss, tuple(metrics), skip_nonfinite, monitor)
    try:
        hash(key)
    except TypeError:
        return (
            make_train_step(loss, metrics=metrics, skip_nonfinite=skip_nonfinite, monitor=monitor),
            make_eval_step(loss, metrics=metrics),
        )
    if key in _STEP_CACHE:
        _STEP_CACHE.move_to_end(key)
        return _STEP_CACHE[key]
    steps = (
        make_train_step(loss, metrics=metrics, skip_nonfinite=skip_nonfinite, monitor=monitor),
        make_eval_step(loss, metrics=metrics),
    )
    _STEP_CACHE[key] = steps
    while len(_STEP_CACHE) > _STEP_CACHE_SIZE:
        _STEP_CACHE.popitem(last=False)
    return steps


def epoch_keys(data_key: jax.Array, epoch: Any) -> tuple[jax.Array, jax.Array]:
    """``(order key, augmentation key)`` of an epoch: a split of ``fold_in(data_key, epoch)``."""
    keys = jax.random.split(jax.random.fold_in(data_key, epoch))
    return keys[0], keys[1]


def fit_epoch(
    step_fn, state, x, y, data_key, epoch, metric=None, *, batch_size, drop_remainder, augment
):
    """One epoch of :func:`fit`, not compiled: the function ``fit`` compiles (and
    ``optlab.tune`` vmaps over the members of a sweep, so a member runs fit's computation).

    The order and augmentation keys come from :func:`epoch_keys` of ``(data_key, epoch)``;
    :func:`optlab.data.batches` permutes and stacks the rows and the train step is scanned
    over them. Returns ``(state, logs)`` as :func:`optlab.train.step.scan_epoch`.
    """
    order_key, augment_key = epoch_keys(data_key, epoch)
    stacked = batches(x, y, batch_size, order_key, drop_remainder=drop_remainder, shuffle=True)
    return scan_epoch(step_fn, state, stacked, metric, augment, augment_key)


_fit_epoch = jax.jit(
    fit_epoch,
    static_argnames=("step_fn", "batch_size", "drop_remainder", "augment"),
    donate_argnames=("state",),
)


def nonfinite_rows(*arrays: Any) -> np.ndarray:
    """The indices of the rows where any floating array holds a NaN or an infinity."""
    n = int(np.shape(arrays[0])[0])
    bad = np.zeros(n, bool)
    for a in arrays:
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.inexact):
            bad |= ~np.isfinite(a.reshape(n, -1)).all(axis=1)
    return np.flatnonzero(bad)


def _rows_message(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return f"{len(rows)} row{'s' if len(rows) > 1 else ''} ({shown}{more})"


def _check_arguments(fn: str, **kw: Any) -> None:
    if not isinstance(kw["model"], nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(kw['model']).__name__}")
    tx = kw["tx"]
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"{fn}: tx must be a gradient transformation with init and update (optlab or optax), "
            f"got {type(tx).__name__}"
        )
    check_loss(fn, kw["loss"])
    check_int_range(fn, "epochs", kw["epochs"], 0)
    check_int_range(fn, "batch_size", kw["batch_size"], 1)
    check_number(fn, "validation_split", kw["validation_split"])
    check_in_range(fn, "validation_split", kw["validation_split"], 0.0, 1.0)
    if kw["validation_split"] and kw["validation_data"] is not None:
        raise ValueError(f"{fn}: pass validation_split or validation_data, not both")
    check_int_range(fn, "seed", kw["seed"], 0)
    check_bool(fn, "progress", kw["progress"])
    if kw["resume_from"] is not None:
        as_path(fn, "resume_from", kw["resume_from"])
    if kw["tx_metric"] is not None:
        check_str(fn, "tx_metric", kw["tx_metric"])
    check_bool(fn, "drop_remainder", kw["drop_remainder"])
    check_callable(fn, "augment", kw["augment"], none=True)
    if kw["eval_batch_size"] is not None:
        check_int_range(fn, "eval_batch_size", kw["eval_batch_size"], 1)
    check_bool(fn, "skip_nonfinite", kw["skip_nonfinite"])
    check_int_range(fn, "max_consecutive_nonfinite", kw["max_consecutive_nonfinite"], 1)
    check_fit_options(fn, kw["mesh"], kw["shard_optimizer_state"], kw["batch_size"])
    monitor = kw["diagnostics"]
    if monitor is not None and not all(
        callable(getattr(monitor, m, None))
        for m in ("forward", "measure", "init", "fold", "finish", "unpack")
    ):
        raise TypeError(
            f"{fn}: diagnostics must be None or a monitor such as "
            f"optlab.diagnostics.Monitor(every=1), got diagnostics={monitor!r}"
        )
    callbacks = kw["callbacks"]
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence):
        raise TypeError(
            f"{fn}: callbacks must be a list of optlab Callback objects, got "
            f"callbacks={callbacks!r}"
        )
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"{fn}: callbacks must be optlab Callback objects, got {cb!r}")


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
    metrics: Sequence[str | MetricFn] | str | None = "auto",
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    progress: bool = True,
    resume_from: str | os.PathLike | None = None,
    tx_metric: str | None = None,
    drop_remainder: bool = True,
    augment: Callable[[Batches, jax.Array], Batches] | None = None,
    eval_batch_size: int | None = None,
    skip_nonfinite: bool = True,
    max_consecutive_nonfinite: int = 10,
    mesh: jax.sharding.Mesh | None = None,
    shard_optimizer_state: bool = False,
    diagnostics: Any = None,
) -> tuple[History, nnx.Module]:
    """Trains ``model`` with ``tx``, Keras-style: epochs, validation, callbacks, history.

    Each epoch is one compiled dispatch (shuffle, batch, augment, scan the train step); the
    validation set is evaluated in evaluation mode, in batches, after every epoch. Epochs are
    numbered from 1 everywhere (history, callbacks, checkpoint folders).

    Args:
      model: a Flax nnx model (an ``optlab.nn`` model, or a plain nnx module that switches
        mode with ``train()``/``eval()``). Its arrays are updated in place at the end.
      tx: an optlab or optax gradient transformation.
      data: ``(x, y)`` arrays, or a dataset with ``x_train``/``y_train``
        (``optlab.data.load``).
      loss: ``loss(predictions, targets)``, per-example values (e.g.
        ``optlab.nn.softmax_cross_entropy_with_integer_labels``), weighted by the batches'
        masks.
      epochs: the number of epochs (the total, when resuming).
      batch_size: rows per step (at most the number of training rows: full batch).
      validation_split: as Keras: this fraction of the rows, taken from the end before any
        shuffling, is held out for validation (for a stratified split, use ``optlab.data`` and
        pass ``validation_data``).
      validation_data: ``(x_val, y_val)``; excludes ``validation_split``.
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)``; ``"auto"`` is
        accuracy for integer class labels and nothing otherwise (a regression reports none).
      callbacks: :mod:`optlab.train.callbacks` objects; checkpoints are written after the other
        callbacks have seen the epoch.
      seed: fixes the data order, the augmentation keys and the state's RNG key (dropout).
      progress: a progress bar on a terminal, one line per epoch otherwise; False for silence.
      resume_from: a checkpoint directory written by ``ModelCheckpoint``: the run continues
        from its newest intact checkpoint (state, data order, history, callbacks' state) up
        to ``epochs``; the checkpoint's seed is used.
      tx_metric: a validation value (``"val_loss"``...) passed to every update of the next
        epoch as the extra argument ``metric=`` (for metric-driven controllers); the first
        epoch gets the value of the untrained model.
      drop_remainder: drop the ``n mod batch_size`` rows left over by each epoch's permutation
        (a different remainder every epoch; every step averages ``batch_size`` rows), or, with
        False, pad the last batch with masked rows so every row is seen every epoch (padded
        rows weigh nothing in the loss and metrics; they do enter BatchNorm's batch
        statistics of that step, being copies of real rows).
      augment: a pure ``fn(batch, key) -> batch`` applied to each step's
        ``optlab.data.Batches(x, y, mask)`` inside the compiled epoch (never to validation).
      eval_batch_size: rows per validation batch (None: 1024, or all rows when fewer).
      skip_nonfinite: guard every step: a step whose loss or gradient is not finite leaves
        parameters, model state and optimizer state unchanged; ``history["skipped_steps"]``
        counts them. Without it, a non-finite step moves the parameters to NaN.
      max_consecutive_nonfinite: stop (with a warning and ``history.stop_reason``) at the end
        of an epoch in which this many steps in a row were skipped.
      mesh: a ``jax.sharding.Mesh`` with an axis ``data`` (``jax.make_mesh((n,), ("data",))``):
        train data-parallel (:mod:`optlab.train.sharding`): each batch's rows split over the
        ``data`` devices, parameters and model state replicated; ``batch_size`` must be a
        multiple of the axis size. None: the default device, as without it.
      shard_optimizer_state: with a mesh, split the optimizer state across the ``data``
        devices (ZeRO-1).
      diagnostics: a monitor, ``optlab.diagnostics.Monitor(every=1, histograms=True)``:
        per-layer statistics (activations, gradients, update ratios...) computed inside the
        compiled step, folded over the epoch on the device and recorded in
        ``history.diagnostics`` (a :class:`~optlab.train.history.DiagnosticsRecord`) once
        per epoch. None (the default) compiles the step without them.

    Returns:
      ``(history, model)``: the :class:`History` (``history.state`` holds the final
      :class:`TrainState`, e.g. for ``optlab.get(history.state.opt_state, "learning_rate")``;
      ``history.restored_epoch`` the epoch whose weights the model holds when a callback
      restored the best ones) and the trained model (the same object, its arrays updated).

    Raises:
      TypeError, ValueError: a bad argument (named), before anything is trained.
      ValueError: an epoch's training (or validation) loss is not finite and the data holds
        non-finite rows (the message names them): nothing is trained on.

    Examples:
      >>> import optlab as ol
      >>> import numpy as np
      >>> from flax import nnx
      >>> x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
      >>> model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> mse = lambda p, y: (p[:, 0] - y) ** 2
      >>> history, model = ol.fit(model, ol.scale_by_learning_rate(0.5), (x, 3 * x[:, 0]),
      ...                         loss=mse, epochs=20, batch_size=16, progress=False)
      >>> print(round(float(model.kernel[0, 0]), 3), history["loss"][-1] < 1e-6, history.epoch[0])
      3.0 True 1
    """
    fn = "fit"
    callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else callbacks
    _check_arguments(fn, **{k: v for k, v in locals().items() if k != "fn"})
    x, y = as_arrays(fn, data, "data")
    n_all = int(x.shape[0])
    if validation_split:
        n_val = int(n_all * validation_split)
        if n_val == 0 or n_val == n_all:
            raise ValueError(
                f"{fn}: validation_split={validation_split} leaves {n_val} validation rows of "
                f"{n_all}"
            )
        x, y, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    elif validation_data is not None:
        x_val, y_val = as_arrays(fn, validation_data, "validation_data")
    else:
        x_val = y_val = None
    if tx_metric is not None and (x_val is None or not tx_metric.startswith("val_")):
        raise ValueError(
            f"{fn}: tx_metric must name a validation value such as 'val_loss' and needs "
            f"validation data, got tx_metric={tx_metric!r}"
        )
    if isinstance(metrics, str) and metrics == "auto":
        metrics = default_metrics(y)
    batch_size = min(batch_size, int(x.shape[0]))
    if mesh is not None:
        check_batch_size(fn, "batch_size (capped at the training rows)", batch_size, mesh)
    num_batches = -(-int(x.shape[0]) // batch_size)
    if drop_remainder:
        num_batches = int(x.shape[0]) // batch_size

    step_fn, eval_fn = _steps(loss, metrics or (), skip_nonfinite, diagnostics)
    in_order = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)] + [
        cb for cb in callbacks if isinstance(cb, ModelCheckpoint)
    ]
    config = RunConfig(
        seed=seed,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        tx_metric=tx_metric,
        skip_nonfinite=skip_nonfinite,
    )
    run = Run(
        TrainState.create(model, tx, seed=seed), config=config, epochs=epochs, callbacks=in_order
    )
    if mesh is not None:  # placed first, so that a checkpoint is restored onto the mesh
        step_fn, eval_fn, run.state, (x, y) = place_fit(
            step_fn, eval_fn, run.state, (x, y), mesh, shard_optimizer_state
        )
    initial_epoch = restore_run(run, resume_from) if resume_from is not None else 0
    data_key = jax.random.key(run.seed)
    val_batches = None
    if x_val is not None:
        size = resolve_batch_size(fn, "eval_batch_size", eval_batch_size, int(x_val.shape[0]))
        val_batches = eval_batches(x_val, y_val, size)

    def validate(st: TrainState) -> dict[str, float]:
        logs = jax.device_get(evaluate_batches(eval_fn, st, val_batches))
        return {f"val_{k}": float(v) for k, v in ordered(logs).items()}

    if tx_metric is not None and run.tx_metric_value is None:
        initial = validate(run.state)
        if tx_metric not in initial:
            raise ValueError(f"{fn}: tx_metric={tx_metric!r} is not one of {', '.join(initial)}")
        run.tx_metric_value = initial[tx_metric]

    def check_data(epoch: int, logs: dict[str, float]) -> None:
        """Names the non-finite rows behind a non-finite loss (or skipped steps)."""
        if logs.get("skipped_steps", 0) > 0 or not math.isfinite(logs["loss"]):
            rows = nonfinite_rows(x, y)
            if len(rows):
                raise ValueError(
                    f"{fn}: the training loss of epoch {epoch} is {logs['loss']} "
                    f"({int(logs.get('skipped_steps', 0))} steps skipped): "
                    f"{_rows_message(rows)} of the training data hold NaN or infinite values; "
                    "remove or impute them"
                )
        if "val_loss" in logs and not math.isfinite(logs["val_loss"]):
            rows = nonfinite_rows(x_val, y_val)
            if len(rows):
                raise ValueError(
                    f"{fn}: the validation loss of epoch {epoch} is {logs['val_loss']}: "
                    f"{_rows_message(rows)} of the validation data hold NaN or infinite "
                    "values; remove or impute them"
                )

    bar = Progress(epochs, enabled=progress)
    bar.start(initial_epoch)
    try:
        for cb in in_order:
            cb.on_train_begin(run)
        for epoch in range(initial_epoch + 1, epochs + 1):
            for cb in in_order:
                cb.on_epoch_begin(run, epoch)
            metric = None if tx_metric is None else jnp.asarray(run.tx_metric_value, jnp.float32)
            start = time.perf_counter()
            run.state, train_logs = _fit_epoch(
                step_fn,
                run.state,
                x,
                y,
                data_key,
                jnp.asarray(epoch, jnp.int32),
                metric,
                batch_size=batch_size,
                drop_remainder=drop_remainder,
                augment=augment,
            )
            fetched = jax.device_get(train_logs)
            summary = fetched.pop("monitor", None)
            logs = {k: float(v) for k, v in ordered(fetched).items()}
            streak = int(logs.pop("nonfinite_streak", 0))
            if val_batches is not None:
                logs.update(validate(run.state))
            elapsed = time.perf_counter() - start
            logs["time"] = elapsed
            logs["steps_per_second"] = num_batches / elapsed if elapsed > 0 else math.inf
            if tx_metric is not None:
                run.tx_metric_value = logs[tx_metric]
            run.history.append(epoch, logs)
            if summary is not None:
                run.history.append_diagnostics(epoch, diagnostics.unpack(summary, run.state))
            bar.epoch_end(epoch - 1, logs)
            check_data(epoch, logs)
            if streak >= max_consecutive_nonfinite:
                run.stop(
                    f"{streak} steps in a row had a non-finite loss or gradient and were skipped "
                    f"(max_consecutive_nonfinite={max_consecutive_nonfinite}); the parameters "
                    "are those of the last finite step"
                )
                warnings.warn(
                    f"{fn}: stopped at epoch {epoch}: {run.stop_reason}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            for cb in in_order:
                cb.on_epoch_end(run, epoch, logs)
            if run.stop_training:
                break
    finally:
        try:
            for cb in in_order:
                cb.on_train_end(run)
        finally:
            bar.stop()
            run.state.to_model(model)
            history = run.history
            history.state = run.state
            history.restored_epoch = run.restored_epoch
            history.stop_reason = run.stop_reason
    return history, model
