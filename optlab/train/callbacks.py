"""Callbacks for :func:`optlab.fit`, with the Keras vocabulary and semantics.

A callback's hooks receive the running ``loop`` (attributes: ``state`` — the
:class:`~optlab.train.state.TrainState`, which a callback may replace; ``stop_training``;
``history``; ``epochs``; ``seed``) and, at the end of an epoch, the epoch's ``logs``
(``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``...). Epochs are
0-based. Callbacks that keep state across epochs expose it through :meth:`Callback.get_state`
and :meth:`Callback.set_state`, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.validation import check_in_range, check_int_at_least, check_nonnegative
from optlab.train.checkpoint import Checkpointer, unflatten_arrays


class Callback:
    """Base class: override the hooks you need. Every hook does nothing by default."""

    def on_train_begin(self, loop: Any) -> None:
        """Before the first epoch (also when a run resumes)."""

    def on_epoch_begin(self, loop: Any, epoch: int) -> None:
        """Before epoch ``epoch``."""

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        """After epoch ``epoch`` and its validation; ``logs`` holds the epoch's values."""

    def on_train_end(self, loop: Any) -> None:
        """After the last epoch, however training ended (also after an exception)."""

    def get_state(self) -> dict[str, Any]:
        """JSON-able state saved in checkpoints (for exact resume)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores what :meth:`get_state` returned."""

    def get_arrays(self) -> Any:
        """Arrays saved in checkpoints with the state (None when there are none)."""
        return None

    def set_arrays(self, loop: Any, flat: dict[str, Any]) -> None:
        """Restores what :meth:`get_arrays` returned, from its flat checkpoint form."""


def _resolve_mode(fn: str, monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{fn}: mode must be 'auto', 'min' or 'max', got mode={mode!r}")
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"
    return mode


def _monitored(fn: str, monitor: str, logs: dict[str, float]) -> float:
    if monitor not in logs:
        raise KeyError(
            f"{fn}: monitor={monitor!r} is not among this run's values: {', '.join(logs)} "
            "(val_* values need validation data)"
        )
    return float(logs[monitor])


def _copy(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


class EarlyStopping(Callback):
    """Stops training when a monitored value has stopped improving; restores the best weights.

    An epoch improves on the reference :math:`r` when :math:`v + \\delta < r` (mode ``min``)
    or :math:`v - \\delta > r` (mode ``max``), :math:`\\delta` = ``min_delta``. Training stops
    once ``patience`` epochs in a row did not improve (counting as Keras does: an improvement
    that does not also beat ``baseline`` does not reset the count). Unlike Keras (which
    restores only when it stopped the run itself, keras #12511), with
    ``restore_best_weights=True`` the best epoch's parameters and model state are restored
    however training ends: stopped here, by another callback, after the last epoch, or by an
    exception.

    Args:
      monitor: the value to watch (``"val_loss"``, ``"val_accuracy"``, ``"loss"``...).
      min_delta: the smallest change that counts as an improvement (``>= 0``).
      patience: epochs without improvement before stopping.
      mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min otherwise).
      baseline: a value to beat; the count is reset only by epochs that beat it too.
      start_from_epoch: epochs to wait before watching (warm-up).
      restore_best_weights: restore the best epoch's weights when training ends.

    Attributes:
      best, best_epoch, wait, stopped_epoch: as in Keras (``stopped_epoch`` is 0 when the
        callback did not stop the run).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        start_from_epoch: int = 0,
        restore_best_weights: bool = True,
    ):
        check_nonnegative("EarlyStopping", "min_delta", min_delta)
        check_int_at_least("EarlyStopping", "patience", patience, 0)
        check_int_at_least("EarlyStopping", "start_from_epoch", start_from_epoch, 0)
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = patience
        self.mode = _resolve_mode("EarlyStopping", monitor, mode)
        self.baseline = None if baseline is None else float(baseline)
        self.start_from_epoch = start_from_epoch
        self.restore_best_weights = restore_best_weights
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: Any = None

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, loop: Any) -> None:
        if not getattr(loop, "resumed", False):
            self._reset()

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        current = _monitored("EarlyStopping", self.monitor, logs)
        if epoch < self.start_from_epoch or math.isnan(current):
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy((loop.state.params, loop.state.model_state))
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _copy((loop.state.params, loop.state.model_state))
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            loop.stop_training = True

    def on_train_end(self, loop: Any) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            params, model_state = _copy(self.best_weights)
            loop.state = loop.state.replace(params=params, model_state=model_state)

    def get_state(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "has_weights": self.best_weights is not None,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])

    def get_arrays(self) -> Any:
        return self.best_weights

    def set_arrays(self, loop: Any, flat: dict[str, Any]) -> None:
        if flat:
            like = (loop.state.params, loop.state.model_state)
            self.best_weights = unflatten_arrays("EarlyStopping", flat, like)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when a monitored value stops improving.

    Keras's rule, epoch by epoch: an epoch improves when :math:`v < b - \\delta` (mode
    ``min``; :math:`v > b + \\delta` for ``max``), :math:`b` the best so far. After
    ``patience`` epochs without improvement (outside a cooldown), the rate becomes
    :math:`\\max(\\eta\\,f, \\eta_{min})`, the count restarts and ``cooldown`` epochs follow
    during which the count stays at zero. The change is made through the state's
    ``lr_scale`` (every update is multiplied by it), so it works with any transformation
    without recompiling. When the optimizer records no ``learning_rate``, ``min_lr`` bounds
    the multiplier itself.

    For a controller inside the compiled step that reacts to every batch, use the
    transformation ``optlab.reduce_on_plateau`` instead.

    Args:
      monitor: the value to watch.
      factor: the multiplier, in (0, 1).
      patience: epochs without improvement before a reduction.
      mode: ``"min"``, ``"max"`` or ``"auto"``.
      min_delta: threshold for an improvement.
      cooldown: epochs to wait after a reduction before counting again.
      min_lr: lower bound of the learning rate.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        check_in_range("ReduceLROnPlateau", "factor", factor, 0.0, 1.0, low_closed=False)
        check_int_at_least("ReduceLROnPlateau", "patience", patience, 0)
        check_nonnegative("ReduceLROnPlateau", "min_delta", min_delta)
        check_int_at_least("ReduceLROnPlateau", "cooldown", cooldown, 0)
        check_nonnegative("ReduceLROnPlateau", "min_lr", min_lr)
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = patience
        self.mode = _resolve_mode("ReduceLROnPlateau", monitor, mode)
        self.min_delta = float(min_delta)
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, loop: Any) -> None:
        if not getattr(loop, "resumed", False):
            self._reset()

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        current = _monitored("ReduceLROnPlateau", self.monitor, logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                scale = float(loop.state.lr_scale)
                old_lr = float(logs.get("learning_rate", scale))
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    new_scale = scale * (new_lr / old_lr)
                    loop.state = loop.state.replace(lr_scale=jnp.asarray(new_scale, jnp.float32))
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


class TerminateOnNaN(Callback):
    """Stops training after an epoch whose training loss is NaN or infinite.

    The epoch runs as one compiled scan, so the check happens once per epoch (Keras checks
    every batch).
    """

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        if not math.isfinite(float(logs.get("loss", 0.0))):
            loop.stop_training = True


class ModelCheckpoint(Callback):
    """Writes orbax checkpoints of the whole training state, atomically.

    Each checkpoint holds the :class:`TrainState`, the history so far and every callback's
    state, so ``fit(..., resume_from=directory)`` continues exactly where the run stopped.
    Checkpoints are named by the number of completed epochs. They are written after every
    other callback has seen the epoch (whatever the order of the list).

    Args:
      directory: the checkpoint directory (created if needed).
      monitor: the value that decides what is best (with ``save_best_only``).
      mode: ``"min"``, ``"max"`` or ``"auto"``.
      save_best_only: write only when ``monitor`` improved on the best so far.
      every_n_epochs: write every ``n`` epochs (ignored with ``save_best_only``).
      max_to_keep: keep only the last ``k`` checkpoints (None keeps all).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        every_n_epochs: int = 1,
        max_to_keep: int | None = None,
    ):
        check_int_at_least("ModelCheckpoint", "every_n_epochs", every_n_epochs, 1)
        if max_to_keep is not None:
            check_int_at_least("ModelCheckpoint", "max_to_keep", max_to_keep, 1)
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = _resolve_mode("ModelCheckpoint", monitor, mode)
        self.save_best_only = save_best_only
        self.every_n_epochs = every_n_epochs
        self.max_to_keep = max_to_keep
        self.best: float | None = None
        self._checkpointer: Any = None

    def on_train_begin(self, loop: Any) -> None:
        if not getattr(loop, "resumed", False):
            self.best = None
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.directory, max_to_keep=self.max_to_keep)

    def should_save(self, epoch: int, logs: dict[str, float]) -> bool:
        """Whether this epoch is written (updates the best value)."""
        if not self.save_best_only:
            return (epoch + 1) % self.every_n_epochs == 0
        current = _monitored("ModelCheckpoint", self.monitor, logs)
        if math.isnan(current):
            return False
        better = self.best is None or (
            current < self.best if self.mode == "min" else current > self.best
        )
        if better:
            self.best = current
        return better

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.should_save(epoch, logs):
            loop.save_checkpoint(self._checkpointer, epoch + 1)

    def on_train_end(self, loop: Any) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")


class CSVLogger(Callback):
    """Writes one CSV row per epoch (``epoch`` then the logs' keys).

    Args:
      filename: the CSV file.
      separator: the field separator.
      append: append to an existing file (a resumed run) instead of overwriting it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._keys: list[str] | None = None

    def on_train_begin(self, loop: Any) -> None:
        resumed = getattr(loop, "resumed", False)
        keep = (self.append or resumed) and self.filename.exists()
        if not keep:
            self.filename.write_text("")
            self._keys = None
        elif self._keys is None:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self._keys = header[1:] if header else None

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if self._keys is None:
                self._keys = list(logs)
                writer.writerow(["epoch", *self._keys])
            writer.writerow(
                [epoch, *(repr(float(logs[k])) if k in logs else "" for k in self._keys)]
            )


class LambdaCallback(Callback):
    """A callback from plain functions, as in Keras.

    Args:
      on_epoch_begin: ``f(epoch)``.
      on_epoch_end: ``f(epoch, logs)``.
      on_train_begin: ``f()``.
      on_train_end: ``f()``.
    """

    def __init__(
        self,
        on_epoch_begin: Callable[[int], Any] | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], Any] | None = None,
        on_train_begin: Callable[[], Any] | None = None,
        on_train_end: Callable[[], Any] | None = None,
    ):
        self._begin, self._end = on_epoch_begin, on_epoch_end
        self._train_begin, self._train_end = on_train_begin, on_train_end

    def on_train_begin(self, loop: Any) -> None:
        if self._train_begin is not None:
            self._train_begin()

    def on_epoch_begin(self, loop: Any, epoch: int) -> None:
        if self._begin is not None:
            self._begin(epoch)

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        if self._end is not None:
            self._end(epoch, logs)

    def on_train_end(self, loop: Any) -> None:
        if self._train_end is not None:
            self._train_end()
