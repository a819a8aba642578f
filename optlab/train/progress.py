"""Progress reporting for :func:`optlab.fit`: one line per finished epoch, as Keras' verbose=1.

A line reads ``epoch  3/20  loss 0.2345  accuracy 0.9312  val_loss 0.2511  val_accuracy 0.9250
lr 1.0e-03  4210 steps/s`` (Keras' names); epochs are counted from 1. When the line is wider
than the terminal, the least important values go first, so at 80 columns it keeps the epoch,
the loss, the monitored validation value, the learning rate and the speed. On a terminal the
running epoch shows a transient spinner and each finished epoch stays as one line; elsewhere
(a file, a pipe) each epoch prints one plain line.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from optlab.train.callbacks import Callback

# Shown in this order; "monitor" stands for the monitored value wherever it is.
_ORDER = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "steps_per_second")
_SHORT = {"learning_rate": "lr"}
_HIDDEN = ("time", "grad_norm")
_ONLY_WHEN_NONZERO = ("skipped_steps",)  # steps skipped for a non-finite loss or gradient


def _field(key: str, value: float) -> str:
    if key == "steps_per_second":
        return f"{value:.0f} steps/s" if math.isfinite(value) else ""
    label = _SHORT.get(key, key)
    if key == "learning_rate":
        return f"{label} {value:.1e}"
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{label} {value:.0f}"
    return f"{label} {value:.4f}"


def _priority(key: str, monitor: str) -> int:
    """Smaller is kept longer."""
    ranks = {"loss": 0, monitor: 1, "learning_rate": 2, "steps_per_second": 3}
    if key in ranks:
        return ranks[key]
    return 4 if key.startswith("val_") else 5


def format_line(
    epoch: int,
    epochs: int,
    logs: dict[str, float],
    *,
    monitor: str = "val_loss",
    width: int | None = None,
    prefix: str = "",
) -> str:
    """One epoch's line: ``{prefix}epoch  3/20  loss ...``; fits in ``width`` columns.

    Args:
      epoch: the epoch number as a person counts it (from 1).
      epochs: the total number of epochs.
      logs: the epoch's values (``loss``, ``val_loss``, ``learning_rate``...).
      monitor: the validation value kept right after the loss when space is short.
      width: the number of columns, or None for no limit. Values are kept, most important
        first (the loss, the monitored value, the learning rate, the speed, the other
        validation values, the rest), each if it still fits; the epoch and the loss always.
      prefix: text before ``epoch`` (``compare`` puts the optimizer's name there).

    Examples:
      >>> logs = {"loss": 0.25, "accuracy": 0.9375, "val_loss": 0.3,
      ...         "learning_rate": 1e-3, "steps_per_second": 421.2, "time": 0.01}
      >>> print(format_line(3, 20, logs, prefix="sgd "))
      sgd epoch  3/20  loss 0.2500  accuracy 0.9375  val_loss 0.3000  lr 1.0e-03  421 steps/s
      >>> print(format_line(3, 20, logs, width=75))
      epoch  3/20  loss 0.2500  val_loss 0.3000  lr 1.0e-03  421 steps/s
    """
    head = f"{prefix}epoch {epoch:>{len(str(epochs))}}/{epochs}"
    keys = [k for k in _ORDER if k in logs]
    keys += [k for k in logs if k not in _ORDER and k not in _HIDDEN]
    keys = [k for k in keys if not (k in _ONLY_WHEN_NONZERO and not logs[k])]
    fields = {k: _field(k, float(logs[k])) for k in keys}
    fields = {k: v for k, v in fields.items() if v}
    order = list(fields)
    by_priority = sorted(order, key=lambda k: (_priority(k, monitor), order.index(k)))

    def line(keys: list[str]) -> str:
        return "  ".join([head, *(fields[k] for k in order if k in keys)])

    if width is None:
        return line(order)
    kept = by_priority[:1]  # the loss, always
    for key in by_priority[1:]:  # the most important first, each if it still fits
        if len(line([*kept, key])) <= width:
            kept.append(key)
    return line(kept)


class Progress:
    """Reports each finished epoch: a line that stays, and a transient spinner for the
    running epoch when ``stream`` is a terminal; one plain line per epoch otherwise; nothing
    with ``enabled=False``.

    Args:
      epochs: the total number of epochs.
      enabled: False for silence.
      stream: where to write (standard output by default).
      monitor: the validation value kept when the line is shortened.
      width: columns for a line; default: the terminal's width on a terminal, no limit
        otherwise.
      prefix: text before each line (a run's name).
    """

    def __init__(
        self,
        epochs: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        monitor: str = "val_loss",
        width: int | None = None,
        prefix: str = "",
    ):
        self.epochs = epochs
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self.monitor = monitor
        self.width = width
        self.prefix = prefix
        self._bar: Any = None
        self._task: Any = None

    @property
    def mode(self) -> str:
        """``"off"``, ``"rich"`` (a terminal) or ``"plain"``."""
        if not self.enabled:
            return "off"
        isatty = getattr(self.stream, "isatty", lambda: False)
        return "rich" if isatty() else "plain"

    def start(self, initial_epoch: int = 0) -> None:
        """Starts the spinner of the first epoch to run (0-based ``initial_epoch``)."""
        if self.mode != "rich" or initial_epoch >= self.epochs:
            return
        from rich.console import Console
        from rich.progress import Progress as Bar
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Bar(
            TextColumn("{task.description}"),
            SpinnerColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self._running(initial_epoch), total=None)

    def _running(self, epoch: int) -> str:
        return f"{self.prefix}epoch {epoch + 1:>{len(str(self.epochs))}}/{self.epochs}"

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Reports epoch ``epoch`` (0-based, as callbacks count; printed from 1)."""
        mode = self.mode
        if mode == "off":
            return
        width = self.width
        if mode == "rich" and self._bar is not None:
            width = width or self._bar.console.width
            line = format_line(
                epoch + 1, self.epochs, logs, monitor=self.monitor, width=width, prefix=self.prefix
            )
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
            if epoch + 1 < self.epochs:
                self._bar.reset(self._task, description=self._running(epoch + 1))
            return
        line = format_line(
            epoch + 1, self.epochs, logs, monitor=self.monitor, width=width, prefix=self.prefix
        )
        print(line, file=self.stream, flush=True)

    def stop(self) -> None:
        """Removes the spinner (the epoch lines stay)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class ProgressCallback(Callback):
    """A :class:`Progress` as a callback: one line per epoch for runs that show a name
    (``optlab compare`` passes ``fit(..., progress=False, callbacks=[ProgressCallback(...)])``).

    Args:
      epochs: the total number of epochs.
      prefix: text before each line (the run's name, padded).
      **options: :class:`Progress`'s other options (``stream``, ``monitor``, ``width``).
    """

    def __init__(self, epochs: int, *, prefix: str = "", **options: Any):
        self.progress = Progress(epochs, prefix=prefix, **options)

    def on_train_begin(self, loop: Any) -> None:
        self.progress.start(len(getattr(loop, "history", ())))

    def on_epoch_end(self, loop: Any, epoch: int, logs: dict[str, float]) -> None:
        # The history already holds this epoch: its length is the epoch counted from 1.
        self.progress.epoch_end(len(loop.history) - 1, logs)

    def on_train_end(self, loop: Any) -> None:
        self.progress.stop()
