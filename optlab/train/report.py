"""Reports of runs: text tables, curves (matplotlib figures) and JSON.

Epochs are counted from 1 everywhere here. The figures are ``matplotlib.figure.Figure``
objects built without pyplot (no global state, no display needed): inspect their axes, or
write them with :func:`save_figure`.

Panels of :func:`plot_histories`: the loss, the accuracy (when recorded) and the learning rate,
with integer epoch ticks, a legend on every panel and a star at the best epoch of the
monitored value. One run draws training (solid) and validation (dashed) in one panel; several
runs get one panel per split, each run with its own colour and line style (10 colours and 4
styles: the first 20 runs differ in both from their neighbours).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STYLES = ("-", "--", "-.", ":")


def style(i: int) -> dict[str, Any]:
    """The colour and line style of the ``i``-th run (tab10 colours, 4 line styles)."""
    from matplotlib import colormaps

    return {"color": colormaps["tab10"].colors[i % 10], "linestyle": STYLES[i % len(STYLES)]}


def _values(history: Any, key: str) -> list[float]:
    values = history[key] if key in history else []
    return [math.nan if v is None else float(v) for v in values]


def epochs_of(history: Any) -> list[int]:
    """The 1-based epoch numbers of a history (its rows are consecutive epochs)."""
    epochs = list(getattr(history, "epoch", []))
    if not epochs:
        return []
    first = int(epochs[0])
    return list(range(first + 1, first + 1 + len(epochs))) if first == 0 else epochs


def best_epoch(history: Any, monitor: str = "val_loss") -> tuple[int, float] | None:
    """``(epoch, value)`` of the best finite value of ``monitor`` (epochs from 1; the
    earliest on ties; the largest for accuracies, the smallest otherwise), or None."""
    values = _values(history, monitor)
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return None
    sign = -1.0 if "acc" in monitor else 1.0
    i = min(finite, key=lambda j: (sign * values[j], j))
    return epochs_of(history)[i], values[i]


# ---------------------------------------------------------------------------------------------
# Tables


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A text table: the first column left-aligned, the others right-aligned.

    Examples:
      >>> print(format_table(["name", "loss"], [["sgd", "0.12"], ["adam", "0.05"]]))
      name  loss
      ----  ----
      sgd   0.12
      adam  0.05
    """
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def _num(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None else str(value)
    return format(value, spec)


def compare_table(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """The table of ``optlab compare``: one row per run.

    Each run is a dict with ``learning_rate`` (the peak, or None for a line search),
    ``schedule``, ``train_loss``, ``val_loss``, ``best_epoch`` (from 1), ``seconds``,
    ``steps_per_second`` and, for classification, ``train_accuracy`` and ``val_accuracy``.
    """
    accuracy = any("val_accuracy" in r or "train_accuracy" in r for r in runs.values())
    header = ["optimizer", "lr", "schedule", "train loss"]
    header += ["train acc"] if accuracy else []
    header += ["val loss"] + (["val acc"] if accuracy else [])
    header += ["best epoch", "time s", "steps/s"]
    rows = []
    for name, r in runs.items():
        row = [name, _num(r.get("learning_rate"), ".3g"), str(r.get("schedule", "-"))]
        row.append(_num(r.get("train_loss"), ".4f"))
        row += [_num(r.get("train_accuracy"), ".4f")] if accuracy else []
        row.append(_num(r.get("val_loss"), ".4f"))
        row += [_num(r.get("val_accuracy"), ".4f")] if accuracy else []
        row += [
            _num(r.get("best_epoch"), "d"),
            _num(r.get("seconds"), ".1f"),
            _num(r.get("steps_per_second"), ".0f"),
        ]
        rows.append(row)
    return format_table(header, rows)


def metrics_line(metrics: Mapping[str, float]) -> str:
    """``loss 0.1234  accuracy 0.9650``."""
    return "  ".join(f"{k} {_num(float(v), '.4f')}" for k, v in metrics.items())


# ---------------------------------------------------------------------------------------------
# Plots


def _panels(histories: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """``[(title, [history keys drawn])]`` for :func:`plot_histories`."""

    def has(key: str) -> bool:
        return any(
            key in h and any(math.isfinite(v) for v in _values(h, key)) for h in histories.values()
        )

    panels: list[tuple[str, list[str]]] = []
    for metric in ("loss", "accuracy"):
        keys = [k for k in (metric, f"val_{metric}") if has(k)]
        if not keys:
            continue
        if len(histories) == 1 or len(keys) == 1:
            panels.append((metric, keys))
        else:
            panels += [
                (f"training {metric}", [metric]),
                (f"validation {metric}", [f"val_{metric}"]),
            ]
    panels.append(("learning rate", ["learning_rate"]))
    return panels


def plot_histories(
    histories: Mapping[str, Any], *, title: str = "", monitor: str = "val_loss"
) -> Any:
    """Curves of one or several runs, as a ``matplotlib.figure.Figure``.

    Args:
      histories: ``{label: History}`` (or anything with ``epoch`` and ``[key]``).
      title: the figure's title.
      monitor: the value whose best epoch gets a star (``val_loss``, or ``loss`` without
        validation data).

    Returns:
      The figure; ``fig.axes`` are the panels, each titled (``"loss"``, ``"validation
      loss"``, ``"accuracy"``, ``"learning rate"``...), with a legend.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    panels = _panels(histories)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.6 * ncols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    single = len(histories) == 1
    for ax, (name, keys) in zip(axes, panels, strict=False):
        for i, (label, h) in enumerate(histories.items()):
            epochs = epochs_of(h)
            for j, key in enumerate(keys):
                values = _values(h, key)
                if not values:
                    continue
                if single:
                    split = "validation" if key.startswith("val_") else "training"
                    kw, curve = style(j), split if key != "learning_rate" else label
                else:
                    kw, curve = style(i), label
                ax.plot(epochs, values, label=curve, **kw)
                best = best_epoch(h, monitor) if key == monitor else None
                if best is not None:
                    ax.plot(*best, marker="*", markersize=13, color=kw["color"], linestyle="none")
        handles, labels = ax.get_legend_handles_labels()
        if any(monitor in keys for _, keys in [(name, keys)]):
            handles.append(Line2D([], [], marker="*", markersize=11, color="0.3", linestyle="none"))
            labels.append(f"best {monitor}")
        if not handles:  # e.g. the learning rate of line-search methods
            handles = [Line2D([], [], color="none")]
            labels = ["not recorded (line search)"]
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        _scale(ax, name)
        options = _legend_options(len(labels))
        if name == "learning rate" and len(labels) > 3:  # flat lines fill the panel's width
            options.update(loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=1)
        ax.legend(handles, labels, **options)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def _legend_options(entries: int) -> dict[str, Any]:
    return {"fontsize": 7, "ncol": 2 if entries > 6 else 1, "framealpha": 0.7}


def _scale(ax: Any, name: str) -> None:
    """Log scale for positive curves spanning more than a factor 10 (losses, rates)."""
    values = [v for line in ax.get_lines() for v in line.get_ydata() if math.isfinite(v)]
    if "accuracy" in name or not values or min(values) <= 0:
        return
    if max(values) / min(values) > 10:
        ax.set_yscale("log")
    ax.margins(y=0.08)


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Writes ``fig`` (PNG or any format matplotlib knows from the suffix); returns the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


# ---------------------------------------------------------------------------------------------
# JSON


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # NumPy / jax scalars
        return _clean(obj.item())
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Writes ``obj`` as indented JSON (NaN and infinities as null), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


_FIRST = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def history_record(history: Any) -> dict[str, Any]:
    """A history as ``{"epoch": [1, 2, ...], key: [...]}`` (epochs from 1, NaN as null; the
    loss, accuracy and learning rate first)."""
    keys = list(history.keys()) if hasattr(history, "keys") else []
    keys = [k for k in _FIRST if k in keys] + [k for k in keys if k not in _FIRST]
    return {"epoch": epochs_of(history), **{k: _values(history, k) for k in keys}}


def write_history_csv(path: str | os.PathLike, history: Any) -> Path:
    """One row per epoch (from 1), one column per recorded value."""
    import csv

    record = history_record(history)
    keys = [k for k in record if k != "epoch"]
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *keys])
        for i, epoch in enumerate(record["epoch"]):
            writer.writerow([epoch, *(repr(record[k][i]) for k in keys)])
    return path


def write_predictions(path: str | os.PathLike, outputs: Any, *, task: str) -> Path:
    """Writes a model's outputs as CSV, one row per input, atomically.

    Classification (``task="classification"``): the softmax probabilities ``prob_0`` ...
    ``prob_{k-1}`` of the logits, then ``predicted`` (their arg-max). Regression: the
    predicted values ``prediction`` (or ``prediction_0`` ... for several outputs). Values are
    written with Python's shortest round-trip representation.
    """
    import csv

    import numpy as np

    out = np.asarray(outputs, np.float64)
    out = out.reshape(len(out), -1)
    if task == "classification":
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        probs = np.asarray(shifted / shifted.sum(axis=1, keepdims=True), np.float32)
        header = [f"prob_{j}" for j in range(out.shape[1])] + ["predicted"]
        rows = [
            [*map(repr, map(float, p)), str(int(np.argmax(o)))]
            for p, o in zip(probs, out, strict=True)
        ]
    else:
        names = (
            ["prediction"]
            if out.shape[1] == 1
            else [f"prediction_{j}" for j in range(out.shape[1])]
        )
        header = names
        rows = [[repr(float(v)) for v in np.asarray(o, np.float32)] for o in out]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)
    return path
