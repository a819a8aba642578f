"""A run's data: the task its targets ask for (loss, metrics, outputs), the rows it trains
and validates on, and the input files of predictions.

:func:`optlab.train.recipes.load_data` builds a :class:`RunData` from a configuration;
``optlab evaluate`` and ``optlab predict`` use :func:`task_for` and :func:`read_inputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np


def squared_error_loss(predictions: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
    """Per-example mean squared error; 1-D targets are one output column."""
    targets = targets.reshape(predictions.shape).astype(predictions.dtype)
    return jnp.mean((predictions - targets) ** 2, axis=-1)


class Task(NamedTuple):
    """What the targets ask for: the loss, the metrics and the number of outputs.

    Attributes:
      kind: ``"classification"`` (integer class labels) or ``"regression"`` (real targets).
      num_outputs: the model's output width (classes, or target columns).
      loss: per-example loss ``loss(predictions, targets)``.
      metrics: metric names for :func:`optlab.fit` (``("accuracy",)`` for classes only).
    """

    kind: str
    num_outputs: int
    loss: Callable[[Any, Any], Any]
    metrics: tuple[str, ...]


def task_for(y: Any, num_classes: int | None = None) -> Task:
    """The task of targets ``y``: integer labels are classes (softmax cross-entropy and
    accuracy), real values are regression (mean squared error, no accuracy).

    Examples:
      >>> import numpy as np
      >>> task_for(np.array([0, 2, 1])).metrics, task_for(np.array([0.5, 1.5])).metrics
      (('accuracy',), ())
    """
    from optlab.nn.losses import softmax_cross_entropy_with_integer_labels

    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        if y.size and y.min() < 0:
            raise ValueError(f"task_for: class labels must be >= 0, got the label {y.min()}")
        classes = max(int(num_classes or 0), int(y.max()) + 1 if y.size else 1)
        return Task(
            "classification", classes, softmax_cross_entropy_with_integer_labels, ("accuracy",)
        )
    if np.issubdtype(y.dtype, np.floating) and y.ndim in (1, 2):
        width = 1 if y.ndim == 1 else int(y.shape[1])
        return Task("regression", width, squared_error_loss, ())
    raise ValueError(
        f"task_for: targets must be integer class labels (n,) or real values (n,) / (n, k), "
        f"got dtype {y.dtype} and shape {y.shape}"
    )


class RunData(NamedTuple):
    """A run's data, flattened for an MLP.

    Attributes:
      dataset: the :class:`optlab.data.Dataset` loaded.
      train: ``(x, y)`` the model trains on.
      validation: ``(x, y)`` it is validated on, or ``None``.
      validation_name: ``"test split"`` or ``"validation split (20%)"``.
      task: the :class:`Task` of the targets.
    """

    dataset: Any
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None
    validation_name: str
    task: Task


def is_data_file(name: str) -> bool:
    """Whether ``--dataset`` names a file (``.npz``/``.csv``, or a path) rather than a name."""
    lowered = str(name).lower()
    return lowered.endswith((".npz", ".csv")) or "/" in lowered or "\\" in lowered


def read_inputs(path: Any) -> np.ndarray:
    """The rows of a ``.npy`` array or a ``.csv`` file of numbers (an optional header line),
    flattened to ``(n, features)`` float32 for an MLP.

    Raises:
      ValueError: one line naming the file and what is wrong (not numbers, NaN or infinite
        values, no rows).
    """
    from pathlib import Path

    path = Path(path)
    where = f"read_inputs: {str(path)!r}"
    try:
        if path.suffix.lower() == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            x = _read_csv_numbers(path, where)
    except (OSError, EOFError) as err:
        raise ValueError(f"{where}: unreadable ({' '.join(str(err).split())})") from None
    except ValueError as err:
        if str(err).startswith(where):
            raise
        raise ValueError(
            f"{where}: not a NumPy array file ({' '.join(str(err).split())})"
        ) from None
    if x.dtype.kind not in "biuf" or x.ndim < 1:
        raise ValueError(
            f"{where}: expected an array of numbers, got dtype {x.dtype} and shape {x.shape}"
        )
    if x.ndim == 1:
        x = x[:, None]
    if len(x) == 0 or x[0].size == 0:
        raise ValueError(f"{where}: no rows (shape {x.shape})")
    x = x.reshape(len(x), -1).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        rows = ", ".join(str(int(i) + 1) for i in bad[:5])
        raise ValueError(
            f"{where}: rows {rows}{' ...' if bad.size > 5 else ''} hold NaN or infinite values"
        )
    return x


def _read_csv_numbers(path: Any, where: str) -> np.ndarray:
    import csv

    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{where}: no rows")

    def numbers(row: list[str]) -> list[float] | None:
        try:
            return [float(c) for c in row]
        except ValueError:
            return None

    start = 0 if numbers(rows[0]) is not None else 1  # a header line
    out = []
    for i, row in enumerate(rows[start:], start + 1):
        values = numbers(row)
        if values is None:
            bad = next(c for c in row if numbers([c]) is None)
            raise ValueError(f"{where}: line {i} holds {bad!r}, not a number")
        if out and len(values) != len(out[0]):
            raise ValueError(
                f"{where}: line {i} has {len(values)} columns, line {start + 1} has {len(out[0])}"
            )
        out.append(values)
    if not out:
        raise ValueError(f"{where}: a header but no rows")
    return np.asarray(out, np.float64)
