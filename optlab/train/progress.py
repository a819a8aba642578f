"""Progress reporting for :func:`optlab.fit`: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

_SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.1234  accuracy 0.9650  ...  1234 steps/s``: the values a reader watches."""
    parts = []
    for key in _SHOWN:
        if key in logs:
            v = float(logs[key])
            parts.append(f"{key} {v:.3g}" if key == "learning_rate" else f"{key} {v:.4f}")
    if "steps_per_second" in logs and math.isfinite(logs["steps_per_second"]):
        parts.append(f"{logs['steps_per_second']:.0f} steps/s")
    return "  ".join(parts)


class Progress:
    """Reports each epoch: a rich progress bar when ``stream`` is a terminal, one plain line
    per epoch otherwise, nothing with ``enabled=False``.

    Args:
      epochs: the total number of epochs.
      enabled: False for silence.
      stream: where to write (standard output by default).
    """

    def __init__(self, epochs: int, *, enabled: bool = True, stream: TextIO | None = None):
        self.epochs = epochs
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self._bar: Any = None
        self._task: Any = None

    @property
    def mode(self) -> str:
        """``"off"``, ``"rich"`` or ``"plain"``."""
        if not self.enabled:
            return "off"
        isatty = getattr(self.stream, "isatty", lambda: False)
        return "rich" if isatty() else "plain"

    def start(self, initial_epoch: int = 0) -> None:
        """Starts the bar (rich mode)."""
        if self.mode != "rich":
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[logs]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("fit", total=self.epochs, completed=initial_epoch, logs="")

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Reports one finished epoch (0-based)."""
        mode = self.mode
        if mode == "plain":
            width = len(str(self.epochs))
            print(
                f"epoch {epoch + 1:>{width}}/{self.epochs}  {format_logs(logs)}",
                file=self.stream,
                flush=True,
            )
        elif mode == "rich" and self._bar is not None:
            self._bar.update(self._task, completed=epoch + 1, logs=format_logs(logs))

    def stop(self) -> None:
        """Closes the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
