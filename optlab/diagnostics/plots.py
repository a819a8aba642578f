"""The diagnostics figure of a monitored run: :func:`plot_diagnostics` (``diagnostics.png``).

Top row: each activation layer's histogram over training as a heat map (epoch against the
fixed bins, the colour the log fraction of values: fastai's "colorful dimension"); below, per
kernel, the gradient norm and the update-to-parameter ratio against the epoch on log axes
(the healthy band :math:`[10^{-4}, 10^{-2}]` shaded, :math:`10^{-3}` dashed), the dead and
saturated fractions, and :func:`~optlab.diagnostics.diagnose`'s verdicts as text.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from optlab.diagnostics.verdicts import UPDATE_BAND, Finding, diagnose
from optlab.train.history import History

MAX_HEATMAPS = 6


def _kernel_rows(record: Any, key: str) -> list[tuple[str, np.ndarray]]:
    if key not in record:
        return []
    values = np.asarray(record[key], np.float64)
    return [(r, values[i]) for i, r in enumerate(record.rows(key)) if r.endswith("kernel")]


def _epoch_axis(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _log_lines(ax: Any, epochs: list[int], rows: list[tuple[str, np.ndarray]], title: str):
    for name, values in rows:
        shown = np.where(values > 0, values, np.nan)
        ax.plot(epochs, shown, "-o", ms=3, label=name.removesuffix("/kernel"))
    ax.set_yscale("log")
    _epoch_axis(ax)
    ax.set_title(title)
    if rows:
        ax.legend(fontsize=6, loc="best")


def plot_diagnostics(history: History, findings: list[Finding] | None = None) -> Any:
    """Draws a monitored run's per-layer statistics and verdicts (see the module docstring).

    Args:
      history: a history recorded with ``fit(..., diagnostics=optlab.diagnostics.Monitor())``
        (a history without statistics draws the loss curves and the verdicts only).
      findings: the verdicts to print; None computes them with :func:`~optlab.diagnostics.diagnose`.

    Returns:
      The matplotlib ``Figure`` (not registered with ``pyplot``; ``fig.savefig(path)``).

    Examples:
      >>> from optlab.train.history import History
      >>> h = History()
      >>> for epoch, loss in enumerate([2.0, 1.0, 0.5], 1):
      ...     h.append(epoch, {"loss": loss})
      >>> fig = plot_diagnostics(h)
      >>> print([ax.get_title() for ax in fig.axes])
      ['loss', 'verdicts']
    """
    if not isinstance(history, History):
        raise TypeError(
            f"plot_diagnostics: history must be an optlab History (fit's first result), "
            f"got {type(history).__name__}"
        )
    from matplotlib.figure import Figure

    findings = diagnose(history) if findings is None else list(findings)
    record = history.diagnostics
    # Fixed margins, not layout="constrained": the constrained solver took half of the
    # figure's drawing time for its 11 axes.
    fig = Figure(figsize=(13.0, 9.0))
    heat = record is not None and "activation_hist" in record and record.rows("activation_hist")
    grid = fig.add_gridspec(
        3 if heat else 2, 3, left=0.06, right=0.98, bottom=0.06, top=0.95, hspace=0.35, wspace=0.22
    )
    row = 0
    if heat:
        rows = record.rows("activation_hist")
        # at most MAX_HEATMAPS layers, evenly spaced, the first and the last included
        shown = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), MAX_HEATMAPS)).round())
        names = [rows[int(i)] for i in shown]
        sub = grid[0, :].subgridspec(1, len(names), wspace=0.3)
        hist = np.asarray(record["activation_hist"], np.float64)
        edges = np.asarray(record["activation_edges"], np.float64)
        epochs = np.asarray(record.epoch, np.float64)
        for i, (name, j) in enumerate(zip(names, shown.astype(int), strict=True)):
            ax = fig.add_subplot(sub[0, i])
            fractions = hist[j].T  # (bins, epochs)
            floor = 1e-4
            ax.pcolormesh(
                np.r_[epochs - 0.5, epochs[-1] + 0.5],
                edges[j, 0],
                np.log10(np.maximum(fractions, floor)),
                cmap="magma",
                vmin=np.log10(floor),
                vmax=0.0,
                shading="flat",
            )
            ax.set_title(name, fontsize=8)
            _epoch_axis(ax)
            if i == 0:
                ax.set_ylabel("activation value")
        row = 1
    epochs_h = list(history.epoch)
    if record is not None and len(record):
        epochs = list(record.epoch)
        _log_lines(
            fig.add_subplot(grid[row, 0]),
            epochs,
            _kernel_rows(record, "grad_norm"),
            "gradient norm",
        )
        ax = fig.add_subplot(grid[row, 1])
        low, high = UPDATE_BAND
        ax.axhspan(low, high, color="green", alpha=0.08)
        ax.axhline(1e-3, color="green", ls="--", lw=1)
        _log_lines(ax, epochs, _kernel_rows(record, "update_ratio"), "update / parameter ratio")
        ax = fig.add_subplot(grid[row, 2])
        for key, style in (("activation_dead", "-o"), ("activation_saturated", "-s")):
            if key not in record:
                continue
            values = np.asarray(record[key], np.float64)
            for name, v in zip(record.rows(key), values, strict=True):
                if np.any(np.isfinite(v)):
                    ax.plot(epochs, v, style, ms=3, label=f"{name} {key.split('_')[1]}")
        ax.set_ylim(-0.02, 1.02)
        _epoch_axis(ax)
        ax.set_title("dead / saturated fraction")
        if ax.lines:
            ax.legend(fontsize=6, loc="best")
        row += 1
    ax = fig.add_subplot(grid[row, 0])
    for key in ("loss", "val_loss"):
        if key in history.history:
            ax.plot(epochs_h, history.history[key], "-o", ms=3, label=key)
    _epoch_axis(ax)
    ax.set_title("loss")
    if ax.lines:
        ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[row, 1:])
    ax.axis("off")
    ax.set_title("verdicts")
    text = (
        "\n".join(textwrap.fill(str(f), 110, subsequent_indent="    ") for f in findings[:8])
        or "no finding: the statistics look healthy"
    )
    colour = "firebrick" if any(f.severity != "info" for f in findings) else "darkgreen"
    ax.text(0.0, 1.0, text, va="top", ha="left", fontsize=7.5, family="monospace", color=colour)
    return fig
