"""Callbacks for :func:`optlab.fit`, with the Keras vocabulary and semantics.

A callback's hooks receive the :class:`~optlab.train.run.Run` (``run.state`` — the
:class:`~optlab.train.state.TrainState`, which a callback may replace; ``run.stop_training``;
``run.history``; ``run.epochs``; ``run.config``) and, at the end of an epoch, the epoch's
``logs`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``...).
Epochs are numbered from 1, as a person counts them (the first epoch is epoch 1, as in the
history and the checkpoint folders; Keras passes 0-based numbers to its hooks). Callbacks that
keep state across epochs expose it through :meth:`Callback.get_state` and
:meth:`Callback.set_state`, so a resumed run continues exactly where it stopped.

The three callbacks that watch a value (:class:`EarlyStopping`, :class:`ReduceLROnPlateau`,
:class:`ModelCheckpoint`) share one rule, :meth:`MonitorCallback.is_improvement` (Keras 3's
``MonitorCallback``): a value :math:`v` improves on the reference :math:`r` when
:math:`v + \\delta < r` (mode ``min``) or :math:`v - \\delta > r` (mode ``max``); a NaN never
improves, so a diverged run counts as not improving.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.combine import with_extra_args_support
from optlab.core.numerics import tree_all_finite
from optlab.core.validation import (
    as_path,
    check_bool,
    check_callable,
    check_choice,
    check_in_range,
    check_int_range,
    check_nonnegative,
    check_number,
    check_str,
)
from optlab.schedules.inject import set_hyperparams
from optlab.train.checkpoint import Checkpointer, save_run, unflatten_arrays
from optlab.train.history import default_mode
from optlab.train.run import Run
from optlab.train.state import TrainState
from optlab.train.step import readable_learning_rate


class Callback:
    """Base class: override the hooks you need. Every hook does nothing by default."""

    def on_train_begin(self, run: Run) -> None:
        """Before the first epoch (also when a run resumes)."""

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based)."""

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        """After epoch ``epoch`` (1-based) and its validation; ``logs`` holds its values."""

    def on_train_end(self, run: Run) -> None:
        """After the last epoch, however training ended (also after an exception)."""

    def get_state(self) -> dict[str, Any]:
        """JSON-able state saved in checkpoints (for exact resume)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores what :meth:`get_state` returned."""

    def get_arrays(self) -> Any:
        """Arrays saved in checkpoints with the state (None when there are none)."""
        return None

    def set_arrays(self, run: Run, flat: dict[str, Any]) -> None:
        """Restores what :meth:`get_arrays` returned, from its flat checkpoint form."""


def _copy(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


def _weights(state: TrainState) -> tuple[Any, Any]:
    return _copy((state.params, state.model_state))


@jax.jit
def _finite(tree: Any) -> jax.Array:
    floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return tree_all_finite(floats)


def _check_state(fn: str, state: Any) -> None:
    if not isinstance(state, TrainState):
        raise TypeError(
            f"{fn}: state must be an optlab.TrainState (run.state in a callback), got "
            f"state={state!r:.60} ({type(state).__name__})"
        )


def state_is_finite(state: TrainState) -> bool:
    """Whether every floating array of the state (parameters, model and optimizer state) is
    finite."""
    _check_state("state_is_finite", state)
    return bool(_finite((state.params, state.model_state, state.opt_state)))


class MonitorCallback(Callback):
    """A callback that watches one logged value and keeps the best one (Keras 3's rule).

    Args:
      fn: the subclass's name, for error messages.
      monitor: the value to watch (``"val_loss"``, ``"val_accuracy"``, ``"loss"``...).
      mode: ``"min"``, ``"max"`` or ``"auto"`` (:func:`~optlab.train.history.default_mode`:
        max for accuracies, min otherwise).
      min_delta: the smallest change that counts as an improvement (``>= 0``).
      baseline: a value to beat (see :class:`EarlyStopping`), or None.
      keep_best_weights: copy the parameters and model state of each improving epoch.

    Attributes:
      best: the best value so far (None before the first improvement).
      best_epoch: the epoch (1-based) of ``best``; 0 before the first improvement.
      best_weights: ``(params, model_state)`` of ``best_epoch`` (with ``keep_best_weights``).
    """

    def __init__(
        self,
        fn: str,
        monitor: str,
        mode: str,
        min_delta: float = 0.0,
        baseline: float | None = None,
        keep_best_weights: bool = False,
    ):
        check_str(fn, "monitor", monitor)
        check_choice(fn, "mode", mode, ("auto", "min", "max"))
        check_number(fn, "min_delta", min_delta)
        check_nonnegative(fn, "min_delta", min_delta)
        if baseline is not None:
            check_number(fn, "baseline", baseline)
            if math.isnan(float(baseline)):
                raise ValueError(f"{fn}: baseline must not be NaN, got baseline={baseline!r}")
        self._fn = fn
        self.monitor = monitor
        self.mode = default_mode(monitor) if mode == "auto" else mode
        self.min_delta = float(min_delta)
        self.baseline = None if baseline is None else float(baseline)
        self.keep_best_weights = keep_best_weights
        self.reset_monitor()

    def reset_monitor(self) -> None:
        """Forgets the best value (a fresh run)."""
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: Any = None

    def monitored(self, logs: dict[str, float]) -> float:
        """The watched value of an epoch's logs."""
        if self.monitor not in logs:
            raise KeyError(
                f"{self._fn}: monitor={self.monitor!r} is not among this run's values: "
                f"{', '.join(logs)} (val_* values need validation data)"
            )
        return float(logs[self.monitor])

    def is_improvement(self, value: float, reference: float | None) -> bool:
        """Whether ``value`` improves on ``reference`` (None: anything but NaN does)."""
        if math.isnan(value):
            return False
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def update_best(self, run: Run, epoch: int, value: float) -> bool:
        """Records ``value`` as the best if it improves; returns whether it did."""
        if not self.is_improvement(value, self.best):
            return False
        self.best, self.best_epoch = value, epoch
        if self.keep_best_weights:
            self.best_weights = _weights(run.state)
        return True

    def restore_best(self, run: Run, epoch: int | None = None) -> None:
        """Puts the kept weights back into ``run.state`` and records the epoch they are from."""
        params, model_state = _copy(self.best_weights)
        run.state = run.state.replace(params=params, model_state=model_state)
        run.restored_epoch = self.best_epoch if epoch is None else epoch

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = None if state.get("best") is None else float(state["best"])
        self.best_epoch = int(state.get("best_epoch", 0))


class EarlyStopping(MonitorCallback):
    """Stops training when a monitored value has stopped improving; restores the best weights.

    Training stops once ``patience`` epochs in a row did not improve (counting as Keras does:
    an improvement that does not also beat ``baseline`` does not reset the count). A NaN value
    counts as no improvement, so a run that diverges stops. Unlike Keras (which restores only
    when it stopped the run itself, keras #12511), with ``restore_best_weights=True`` the best
    epoch's parameters and model state are restored however training ends: stopped here, by
    another callback, after the last epoch, or by an exception; the epoch restored is
    ``history.restored_epoch``.

    Args:
      monitor: the value to watch (``"val_loss"``, ``"val_accuracy"``, ``"loss"``...).
      min_delta: the smallest change that counts as an improvement (``>= 0``).
      patience: epochs without improvement before stopping.
      mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min otherwise).
      baseline: a value to beat; the count is reset only by epochs that beat it too.
      start_from_epoch: epochs to wait before watching (warm-up): epochs
        ``1..start_from_epoch`` are not watched.
      restore_best_weights: restore the best epoch's weights when training ends (the first
        watched epoch's when none improved).

    Attributes:
      best, best_epoch, wait, stopped_epoch: as in Keras, with 1-based epochs
        (``stopped_epoch`` is 0 when the callback did not stop the run).
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
        fn = "EarlyStopping"
        check_int_range(fn, "patience", patience, 0)
        check_int_range(fn, "start_from_epoch", start_from_epoch, 0)
        check_bool(fn, "restore_best_weights", restore_best_weights)
        self.patience = patience
        self.start_from_epoch = start_from_epoch
        self.restore_best_weights = bool(restore_best_weights)
        super().__init__(fn, monitor, mode, min_delta, baseline, self.restore_best_weights)

    def reset_monitor(self) -> None:
        super().reset_monitor()
        self.wait = 0
        self.stopped_epoch = 0
        self.weights_epoch = 0

    def on_train_begin(self, run: Run) -> None:
        if not run.resumed:
            self.reset_monitor()

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        current = self.monitored(logs)
        if epoch <= self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None and not math.isnan(current):
            self.best_weights, self.weights_epoch = _weights(run.state), epoch
        self.wait += 1
        if self.update_best(run, epoch, current):
            self.weights_epoch = epoch
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 1:
            self.stopped_epoch = epoch
            best = "none" if self.best is None else f"{self.best:.6g} at epoch {self.best_epoch}"
            run.stop(
                f"early stopping: {self.monitor} did not improve for {self.wait} epochs "
                f"(best {best})"
            )

    def on_train_end(self, run: Run) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.restore_best(run, self.weights_epoch)

    def get_state(self) -> dict[str, Any]:
        return {
            **super().get_state(),
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "weights_epoch": self.weights_epoch,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.weights_epoch = int(state.get("weights_epoch", 0))

    def get_arrays(self) -> Any:
        return self.best_weights

    def set_arrays(self, run: Run, flat: dict[str, Any]) -> None:
        if flat:
            like = (run.state.params, run.state.model_state)
            self.best_weights = unflatten_arrays("EarlyStopping", flat, like)


def _update_fn(state: TrainState) -> Callable[..., Any]:
    return with_extra_args_support(state.tx).update


def injected_learning_rate(state: TrainState) -> bool:
    """Whether the state's learning rate is an injected number that :func:`set_hyperparams`
    can change (an injected schedule is recomputed at every update, so it cannot).

    Checked by setting a probe value and running one update with zero gradients, eagerly.
    """
    _check_state("injected_learning_rate", state)
    lr = readable_learning_rate(state.opt_state)
    if lr is None:
        return False
    probe = float(lr) * 0.6180339887 + 1.2345e-7
    try:
        opt_state = set_hyperparams(state.opt_state, learning_rate=probe)
        zeros = jax.tree.map(jnp.zeros_like, state.params)
        _, after = _update_fn(state)(
            zeros,
            opt_state,
            state.params,
            value=jnp.float32(0.0),
            grad=zeros,
            value_fn=lambda p: jnp.float32(0.0),
        )
    except Exception:  # no injected learning rate, or a transformation that needs more
        return False
    seen = readable_learning_rate(after)
    return seen is not None and bool(jnp.isclose(seen, probe, rtol=1e-6))


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` when a monitored value stops improving.

    Keras's rule, epoch by epoch: an epoch improves when :math:`v + \\delta < b` (mode
    ``min``), :math:`b` the best so far. After ``patience`` epochs without improvement
    (outside a cooldown), the rate becomes :math:`\\max(\\eta\\,f, \\eta_{min})`, the count
    restarts and ``cooldown`` epochs follow during which the count stays at zero.

    How the rate is changed: when the optimizer's learning rate is an injected number
    (``optlab.inject_hyperparams(optlab.adam)(learning_rate=1e-3)``), through
    :func:`optlab.set_hyperparams`, so ``optlab.get(state, "learning_rate")`` reads the new
    value; otherwise (a plain transformation, or an injected schedule) through the state's
    ``lr_scale``, which multiplies every update. Either way nothing recompiles. When the
    optimizer records no ``learning_rate``, ``min_lr`` bounds the multiplier itself.

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
        fn = "ReduceLROnPlateau"
        check_number(fn, "factor", factor)
        check_in_range(fn, "factor", factor, 0.0, 1.0, low_closed=False)
        check_int_range(fn, "patience", patience, 0)
        check_int_range(fn, "cooldown", cooldown, 0)
        check_number(fn, "min_lr", min_lr)
        check_nonnegative(fn, "min_lr", min_lr)
        self.factor = float(factor)
        self.patience = patience
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        super().__init__(fn, monitor, mode, min_delta)
        self._injected: bool | None = None

    def reset_monitor(self) -> None:
        super().reset_monitor()
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, run: Run) -> None:
        self._injected = None
        if not run.resumed:
            self.reset_monitor()

    def _reduce(self, run: Run, logs: dict[str, float]) -> bool:
        state = run.state
        scale = float(state.lr_scale)
        old_lr = float(logs.get("learning_rate", scale))
        if not old_lr > self.min_lr:
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        if self._injected is None:
            self._injected = injected_learning_rate(state)
        if self._injected:
            opt_state = set_hyperparams(state.opt_state, learning_rate=new_lr / scale)
            run.state = state.replace(opt_state=opt_state)
        else:
            new_scale = jnp.asarray(scale * (new_lr / old_lr), jnp.float32)
            run.state = state.replace(lr_scale=new_scale)
        return True

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        current = self.monitored(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.update_best(run, epoch, current):
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and self._reduce(run, logs):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


class TerminateOnNaN(Callback):
    """Stops training after an epoch whose training loss is NaN or infinite.

    The epoch runs as one compiled scan, so the check happens once per epoch (Keras checks
    every batch). Nothing of the non-finite epoch is written: :class:`ModelCheckpoint` skips
    epochs whose loss or state is not finite, and the model keeps the weights of the last
    epoch whose loss was finite (with ``fit(skip_nonfinite=True)``, the default, the
    parameters never leave that state; without it, this callback keeps a copy of each finite
    epoch's weights and puts it back, setting ``history.restored_epoch``).
    """

    def on_train_begin(self, run: Run) -> None:
        self._last: Any = None
        self._last_epoch = 0

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        loss = float(logs.get("loss", 0.0))
        if math.isfinite(loss):
            if not run.config.skip_nonfinite:
                self._last, self._last_epoch = _weights(run.state), epoch
            return
        if self._last is not None and not state_is_finite(run.state):
            params, model_state = self._last
            run.state = run.state.replace(params=params, model_state=model_state)
            run.restored_epoch = self._last_epoch
        run.stop(f"TerminateOnNaN: the training loss of epoch {epoch} is {loss}")


class ModelCheckpoint(MonitorCallback):
    """Writes verified orbax checkpoints of the whole run, atomically.

    Each checkpoint holds the :class:`TrainState`, the history so far and every callback's
    state, so ``fit(..., resume_from=directory)`` continues exactly where the run stopped.
    Checkpoints are named by the number of completed epochs (the 1-based epoch just
    finished). They are written after every other callback has seen the epoch (whatever the
    order of the list). An epoch whose training loss or state is not finite is never written.

    A fresh run refuses a directory that already holds checkpoints (of another run) unless
    ``overwrite=True``, which removes them first; a resumed run continues in its directory.

    Args:
      directory: the checkpoint directory (created if needed).
      monitor: the value that decides what is best (with ``save_best_only``).
      mode: ``"min"``, ``"max"`` or ``"auto"``.
      save_best_only: write only when ``monitor`` improved on the best so far; the model
        :func:`~optlab.fit` returns then holds the best epoch's weights (those of the newest
        checkpoint), unless another callback restored weights first.
      every_n_epochs: write after epochs ``n, 2n, ...`` (ignored with ``save_best_only``).
      max_to_keep: keep only the last ``k`` checkpoints (None keeps all).
      overwrite: let a fresh run remove the checkpoints already in ``directory``.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        every_n_epochs: int = 1,
        max_to_keep: int | None = None,
        overwrite: bool = False,
    ):
        fn = "ModelCheckpoint"
        as_path(fn, "directory", directory)
        check_bool(fn, "save_best_only", save_best_only)
        check_int_range(fn, "every_n_epochs", every_n_epochs, 1)
        if max_to_keep is not None:
            check_int_range(fn, "max_to_keep", max_to_keep, 1)
        check_bool(fn, "overwrite", overwrite)
        self.directory = Path(directory)
        self.save_best_only = bool(save_best_only)
        self.every_n_epochs = every_n_epochs
        self.max_to_keep = max_to_keep
        self.overwrite = bool(overwrite)
        super().__init__(fn, monitor, mode, keep_best_weights=self.save_best_only)
        self._checkpointer: Checkpointer | None = None

    def on_train_begin(self, run: Run) -> None:
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.directory, max_to_keep=self.max_to_keep)
        if not run.resumed:
            self.reset_monitor()
            existing = self._checkpointer.numbered()
            if existing and not self.overwrite:
                raise ValueError(
                    f"ModelCheckpoint: {self.directory} already holds checkpoints of epochs "
                    f"{existing}; continue that run with fit(..., resume_from="
                    f"{str(self.directory)!r}), pass overwrite=True to remove them, or choose "
                    "another directory"
                )
            self._checkpointer.clear()
        elif self.save_best_only and self.best_epoch == run.initial_epoch:
            self.best_weights = _weights(run.state)  # the checkpoint resumed is the best one

    def should_save(self, run: Run, epoch: int, logs: dict[str, float]) -> bool:
        """Whether epoch ``epoch`` (1-based) is written (updates the best value)."""
        if self.save_best_only:
            return self.update_best(run, epoch, self.monitored(logs))
        return epoch % self.every_n_epochs == 0

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        if not self.should_save(run, epoch, logs):
            return
        if not (math.isfinite(float(logs.get("loss", 0.0))) and state_is_finite(run.state)):
            warnings.warn(
                f"ModelCheckpoint: epoch {epoch}'s loss or parameters are not finite; no "
                "checkpoint written",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        assert self._checkpointer is not None
        save_run(self._checkpointer, run, epoch)

    def on_train_end(self, run: Run) -> None:
        if self.save_best_only and run.restored_epoch is None and self.best_weights is not None:
            self.restore_best(run)
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None


class CSVLogger(Callback):
    """Writes one CSV row per epoch (``epoch``, 1-based, then the logs' keys).

    Args:
      filename: the CSV file.
      separator: the field separator.
      append: append to an existing file (a resumed run) instead of overwriting it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        as_path("CSVLogger", "filename", filename)
        check_str("CSVLogger", "separator", separator)
        check_bool("CSVLogger", "append", append)
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._keys: list[str] | None = None

    def on_train_begin(self, run: Run) -> None:
        keep = (self.append or run.resumed) and self.filename.exists()
        if not keep:
            self.filename.write_text("")
            self._keys = None
        elif self._keys is None:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self._keys = header[1:] if header else None

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if self._keys is None:
                self._keys = list(logs)
                writer.writerow(["epoch", *self._keys])
            writer.writerow(
                [epoch, *(repr(float(logs[k])) if k in logs else "" for k in self._keys)]
            )


class LambdaCallback(Callback):
    """A callback from plain functions, as in Keras (epochs are 1-based).

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
        for name, value in (
            ("on_epoch_begin", on_epoch_begin),
            ("on_epoch_end", on_epoch_end),
            ("on_train_begin", on_train_begin),
            ("on_train_end", on_train_end),
        ):
            check_callable("LambdaCallback", name, value, none=True)
        self._begin, self._end = on_epoch_begin, on_epoch_end
        self._train_begin, self._train_end = on_train_begin, on_train_end

    def on_train_begin(self, run: Run) -> None:
        if self._train_begin is not None:
            self._train_begin()

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        if self._begin is not None:
            self._begin(epoch)

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, float]) -> None:
        if self._end is not None:
            self._end(epoch, logs)

    def on_train_end(self, run: Run) -> None:
        if self._train_end is not None:
            self._train_end()
