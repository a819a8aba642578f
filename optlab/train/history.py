"""The per-epoch record of a run, Keras-style (``history.history["val_loss"]``), and the
per-layer arrays a monitor records beside it (``history.diagnostics``)."""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np


def default_mode(key: str) -> str:
    """``"max"`` for values that grow as a model improves (accuracies, AUC), else ``"min"``.

    The one rule behind ``mode="auto"`` of :meth:`History.best` and of the monitoring
    callbacks.

    Examples:
      >>> print(default_mode("val_accuracy"), default_mode("val_loss"))
      max min
    """
    return "max" if ("acc" in key or "auc" in key or key.startswith("fmeasure")) else "min"


def natural_key(name: str) -> list:
    """Sort key that orders the numbers in a name numerically (``"blocks/2"`` before
    ``"blocks/10"``).

    Examples:
      >>> sorted(["l10", "l2", "head"], key=natural_key)
      ['head', 'l2', 'l10']
    """
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def _encode(array: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(array)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a).decode()}


def _decode(record: Mapping[str, Any]) -> np.ndarray:
    data = base64.b64decode(record["data"])
    return np.frombuffer(data, np.dtype(record["dtype"])).reshape(record["shape"]).copy()


class DiagnosticsRecord:
    """Per-layer values recorded once per epoch by a monitor: ``History.diagnostics``.

    ``record[key]`` is a NumPy array with one row per layer (or parameter) and one column per
    recorded epoch, ``(rows, epochs)``, with trailing axes for vectors (a histogram:
    ``(layers, epochs, bins)``); ``record.rows(key)`` names the rows. Keys without rows
    (``loss_first``) are ``(epochs,)``. Rows are in natural order (``blocks/2`` before
    ``blocks/10``). The values are kept exactly (float32 as recorded): :meth:`to_dict` encodes
    each array's bytes, so a run saved and resumed holds bitwise the same arrays.

    Attributes:
      epoch: the epochs recorded (1-based).

    Examples:
      >>> r = DiagnosticsRecord()
      >>> r.append(1, {"grad_norm": {"w": 1.0, "b": 0.5}, "loss_first": 2.3})
      >>> r.append(2, {"grad_norm": {"w": 0.5, "b": 0.25}, "loss_first": 1.0})
      >>> print(r.rows("grad_norm"), r["grad_norm"].tolist(), r["loss_first"].shape)
      ['b', 'w'] [[0.5, 0.25], [1.0, 0.5]] (2,)
    """

    FORMAT = "optlab.diagnostics/1"

    def __init__(self) -> None:
        self.epoch: list[int] = []
        self._rows: dict[str, list[str] | None] = {}
        self._values: dict[str, list[np.ndarray]] = {}

    def append(self, epoch: int, summary: Mapping[str, Any]) -> None:
        """Records one epoch: ``summary[key]`` is ``{row: value}`` or one value (arrays or
        numbers); a key's rows are fixed by the first epoch that has it."""
        for key, value in summary.items():
            if isinstance(value, Mapping):
                rows = self._rows.setdefault(key, sorted(value, key=natural_key))
                if rows is None or set(rows) != set(value):
                    raise ValueError(
                        f"DiagnosticsRecord: the rows of {key!r} changed at epoch {epoch}: "
                        f"{sorted(value, key=natural_key)} instead of {rows}"
                    )
                array = np.stack([np.asarray(value[r]) for r in rows]) if rows else np.zeros(0)
            else:
                if self._rows.setdefault(key, None) is not None:
                    raise ValueError(f"DiagnosticsRecord: {key!r} has rows; got one value")
                array = np.asarray(value)
            self._values.setdefault(key, []).append(array)
        self.epoch.append(int(epoch))

    def rows(self, key: str) -> list[str]:
        """The names of ``key``'s rows (layers or parameters); ``[]`` for a key without rows."""
        self._check(key)
        return list(self._rows[key] or [])

    def _check(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(
                f"DiagnosticsRecord: no key {key!r}; recorded keys: {', '.join(self._values)}"
            )

    def __getitem__(self, key: str) -> np.ndarray:
        self._check(key)
        axis = 0 if self._rows[key] is None else 1
        return np.stack(self._values[key], axis=axis)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self.epoch)

    def keys(self) -> list[str]:
        """The recorded keys."""
        return list(self._values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict holding every array exactly (its bytes in base64)."""
        return {
            "format": self.FORMAT,
            "epoch": list(self.epoch),
            "rows": {k: v for k, v in self._rows.items() if v is not None},
            "arrays": {k: _encode(self[k]) for k in self._values},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DiagnosticsRecord:
        """The inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping) or d.get("format") != cls.FORMAT:
            raise ValueError(
                f"DiagnosticsRecord: not a record of format {cls.FORMAT!r} "
                f"(found {d.get('format') if isinstance(d, Mapping) else type(d).__name__!r})"
            )
        record = cls()
        record.epoch = [int(e) for e in d["epoch"]]
        for key, encoded in d["arrays"].items():
            array = _decode(encoded)
            rows = d["rows"].get(key)
            record._rows[key] = None if rows is None else list(rows)
            axis = 0 if rows is None else 1
            record._values[key] = [np.take(array, i, axis=axis) for i in range(len(record))]
        return record

    def save_npz(self, path: str | os.PathLike) -> None:
        """Writes every array (``record[key]``), ``epoch`` and each key's row names
        (``rows:<key>``) to a NumPy ``.npz`` file."""
        arrays = {"epoch": np.asarray(self.epoch, np.int64)}
        for key in self._values:
            arrays[key] = self[key]
            if self._rows[key] is not None:
                arrays[f"rows:{key}"] = np.asarray(self._rows[key], dtype=str)
        np.savez(path, **arrays)

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> DiagnosticsRecord:
        """The inverse of :meth:`save_npz`."""
        with np.load(path) as f:
            record = cls()
            record.epoch = [int(e) for e in f["epoch"]]
            for key in f.files:
                if key == "epoch" or key.startswith("rows:"):
                    continue
                rows = f"rows:{key}"
                record._rows[key] = [str(r) for r in f[rows]] if rows in f.files else None
                axis = 0 if record._rows[key] is None else 1
                record._values[key] = [np.take(f[key], i, axis=axis) for i in range(len(record))]
        return record

    def __repr__(self) -> str:
        return f"DiagnosticsRecord(epochs={len(self)}, keys={self.keys()})"


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
      diagnostics: the :class:`DiagnosticsRecord` of per-layer statistics when the run was
        monitored (``fit(..., diagnostics=optlab.diagnostics.Monitor())``), else None; saved
        by :meth:`to_dict` (so with checkpoints and ``save_json``) and restored on resume.

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
        self.diagnostics: DiagnosticsRecord | None = None

    def append_diagnostics(self, epoch: int, summary: Mapping[str, Any]) -> None:
        """Records a monitor's summary of epoch ``epoch`` in :attr:`diagnostics`."""
        if self.diagnostics is None:
            self.diagnostics = DiagnosticsRecord()
        self.diagnostics.append(epoch, summary)

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
        """``{"epoch": [...], key: [...]}``, JSON-able (NaN written as null), and
        ``"diagnostics"`` (:meth:`DiagnosticsRecord.to_dict`) when there are some."""

        def clean(v):
            return v if math.isfinite(v) else None

        out = {
            "epoch": list(self.epoch),
            **{k: [clean(v) for v in vs] for k, vs in self.history.items()},
        }
        if self.diagnostics is not None:
            out["diagnostics"] = self.diagnostics.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """The inverse of :meth:`to_dict`."""
        hist = {
            k: [math.nan if v is None else float(v) for v in vs]
            for k, vs in d.items()
            if k not in ("epoch", "diagnostics")
        }
        history = cls(hist, d.get("epoch", []))
        if d.get("diagnostics") is not None:
            history.diagnostics = DiagnosticsRecord.from_dict(d["diagnostics"])
        return history

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
