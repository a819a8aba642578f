"""The per-epoch record of a run, Keras-style (``history.history["val_loss"]``)."""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any


def default_mode(key: str) -> str:
    """``"max"`` for values that grow as a model improves (accuracies, AUC), else ``"min"``.

    The one rule behind ``mode="auto"`` of :meth:`History.best` and of the monitoring
    callbacks.

    Examples:
      >>> print(default_mode("val_accuracy"), default_mode("val_loss"))
      max min
    """
    return "max" if ("acc" in key or "auc" in key or key.startswith("fmeasure")) else "min"


class History:
    """Per-epoch values of a run: ``history["loss"]`` is the list of epoch-mean train losses.

    Keys: ``loss`` and each metric (train means over the real rows of the epoch's steps),
    ``val_loss`` and ``val_<metric>`` (when there is validation data), ``grad_norm`` (mean
    gradient norm), ``learning_rate`` (the last step's, when the optimizer records one),
    ``skipped_steps`` (steps skipped by the non-finite guard), ``time`` (wall seconds of the
    epoch) and ``steps_per_second``. Every value but ``time`` and ``steps_per_second`` is
    bitwise reproducible from the seed.

    Epochs are numbered from 1, as a person counts them (and as checkpoint folders are
    named): the first epoch is epoch 1.

    Attributes:
      history: ``{key: [value per epoch]}``.
      epoch: the epoch numbers recorded (1-based).
      state: the final :class:`~optlab.train.state.TrainState` of the run that filled it
        (set by :func:`optlab.fit`; read optimizer values with
        ``optlab.get(history.state.opt_state, "learning_rate")``), else None.
      restored_epoch: the epoch whose weights the returned model holds when a callback put
        the best epoch's weights back at the end (``EarlyStopping(restore_best_weights=True)``
        or ``ModelCheckpoint(save_best_only=True)``), else None (the model holds the last
        epoch's weights).
      stop_reason: why training stopped before ``epochs`` when it did (a callback, too many
        non-finite steps in a row), else None.

    Examples:
      >>> h = History()
      >>> h.append(1, {"loss": 0.5, "val_loss": 0.6})
      >>> h.append(2, {"loss": 0.25, "val_loss": 0.4})
      >>> print(h["loss"], h.best("val_loss"))
      [0.5, 0.25] (2, 0.4)
    """

    def __init__(
        self, history: dict[str, list[float]] | None = None, epoch: list[int] | None = None
    ):
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epoch: list[int] = list(epoch or [])
        self.state: Any = None
        self.restored_epoch: int | None = None
        self.stop_reason: str | None = None

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Records epoch ``epoch`` (1-based); keys absent before are padded with NaN for past
        epochs."""
        n = len(self.epoch)
        for key, value in logs.items():
            self.history.setdefault(key, [math.nan] * n).append(float(value))
        for values in self.history.values():
            if len(values) < n + 1:
                values.append(math.nan)
        self.epoch.append(int(epoch))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.history:
            raise KeyError(f"History: no key {key!r}; recorded keys: {', '.join(self.history)}")
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def keys(self) -> list[str]:
        """The recorded keys."""
        return list(self.history)

    def best(self, key: str, mode: str = "auto") -> tuple[int, float]:
        """``(epoch, value)`` of the best finite value of ``key``: the epoch is 1-based; ties
        go to the earliest epoch; ``mode="auto"`` is :func:`default_mode`."""
        values = self[key]
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"History.best: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = default_mode(key)
        finite = [i for i, v in enumerate(values) if math.isfinite(v)]
        if not finite:
            raise ValueError(f"History.best: {key!r} has no finite value")
        sign = 1.0 if mode == "min" else -1.0
        i = min(finite, key=lambda j: (sign * values[j], j))  # ties: the earliest epoch
        return self.epoch[i], values[i]

    def to_dict(self) -> dict[str, Any]:
        """``{"epoch": [...], key: [...]}``, JSON-able (NaN written as null)."""

        def clean(v):
            return v if math.isfinite(v) else None

        return {
            "epoch": list(self.epoch),
            **{k: [clean(v) for v in vs] for k, vs in self.history.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """The inverse of :meth:`to_dict`."""
        hist = {
            k: [math.nan if v is None else float(v) for v in vs]
            for k, vs in d.items()
            if k != "epoch"
        }
        return cls(hist, d.get("epoch", []))

    def save_json(self, path: str | os.PathLike) -> None:
        """Writes :meth:`to_dict` as JSON."""
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    def save_csv(self, path: str | os.PathLike) -> None:
        """Writes one row per epoch, one column per key."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *self.history])
            for i, e in enumerate(self.epoch):
                writer.writerow([e, *(repr(self.history[k][i]) for k in self.history)])

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={self.keys()})"
