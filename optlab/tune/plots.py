"""Plots of tuning results: a sweep's metric against each hyperparameter, its top-k curves, and
the learning-rate range test. Figures are made without ``pyplot`` (``fig.savefig(path)``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from optlab.tune.lr_find import LRFindResult
    from optlab.tune.results import SweepResult


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _ceiling(values: np.ndarray) -> float:
    """A y-limit that keeps the interesting part: the 90th percentile plus half the spread."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 1.0
    lo, hi = float(finite.min()), float(np.percentile(finite, 90))
    return hi + 0.5 * max(hi - lo, 1e-12)


def plot_metric(result: SweepResult, key: str | None = None):
    """The best value of ``key`` (default: the sweep's metric) per member against each
    hyperparameter (see :meth:`~optlab.tune.results.SweepResult.plot`)."""
    key = key or result.metric
    names = list(result.configs[0])
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(4.2 * cols, 3.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    values = np.array([m.best_value_of(key, result.mode) for m in result.members], float)
    top = _ceiling(values)
    finite = values[np.isfinite(values)]
    bottom = float(finite.min()) if len(finite) else 0.0
    bottom -= 0.05 * max(top - bottom, 1e-12)
    best = result.best_index
    for ax, name in zip(axes, names, strict=False):
        categorical = result.is_categorical(name)
        labels = list(dict.fromkeys(str(c[name]) for c in result.configs)) if categorical else []
        xs = np.array(
            [
                labels.index(str(m.config[name])) if categorical else float(m.config[name])
                for m in result.members
            ]
        )
        bad = np.array(
            [
                m.diverged or not math.isfinite(v)
                for m, v in zip(result.members, values, strict=True)
            ]
        )
        shown = np.clip(np.where(np.isfinite(values), values, top), bottom, top)
        ax.scatter(xs[~bad], shown[~bad], s=18, alpha=0.75, color="C0", label="member")
        if bad.any():
            ax.scatter(xs[bad], shown[bad], marker="x", s=24, color="C3", label="diverged")
        if best is not None:
            chosen = [i for i, m in enumerate(result.members) if m.config_index == best]
            ax.scatter(
                xs[chosen],
                shown[chosen],
                marker="*",
                s=140,
                color="C1",
                zorder=3,
                label="best configuration",
            )
        if categorical:
            ax.set_xticks(range(len(labels)), labels)
        elif result.is_log(name):
            ax.set_xscale("log")
        ax.set_ylim(bottom, top)
        ax.set_xlabel(name + (" (log scale)" if result.is_log(name) else ""))
        ax.set_ylabel(f"best {key}")
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{len(result.members)} members: best {key} against each hyperparameter")
    return fig


def plot_curves(result: SweepResult, k: int = 5, key: str | None = None):
    """The curves of the ``k`` best members (see
    :meth:`~optlab.tune.results.SweepResult.plot_curves`)."""
    key = key or result.metric
    fig = _figure(7.0, 4.2)
    ax = fig.subplots()
    for j, m in enumerate(result.top(min(k, len(result.members)))):
        label = ", ".join(
            f"{n}={v:.3g}" if isinstance(v, float) else f"{n}={v}" for n, v in m.config.items()
        )
        color = f"C{j % 10}"
        if key in m.history:
            ax.plot(
                m.history.epoch,
                m.history[key],
                color=color,
                marker="o",
                ms=3,
                label=f"{label} (seed {m.seed})",
            )
        if key != "loss" and "loss" in m.history:
            ax.plot(m.history.epoch, m.history["loss"], color=color, ls="--", alpha=0.7)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{key} (solid)" + ("; training loss (dashed)" if key != "loss" else ""))
    ax.set_title(f"the {min(k, len(result.members))} best members")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def plot_lr_find(result: LRFindResult, ax: Any = None):
    """The range test: raw and smoothed loss against the learning rate (log axis), with the
    suggestions and the verified learning rate marked."""
    fig = None
    if ax is None:
        fig = _figure(7.0, 4.2)
        ax = fig.subplots()
    n = result.num_counted
    lrs, raw, smooth = result.lrs, result.losses, result.smoothed
    ax.plot(lrs[:n], raw[:n], color="0.7", lw=0.8, label="loss (per step)")
    ax.plot(lrs[:n], smooth[:n], color="C0", lw=2, label="smoothed loss")
    finite = smooth[:n][np.isfinite(smooth[:n])]
    if len(finite):
        lo, start = float(finite.min()), float(finite[0])
        ax.set_ylim(lo - 0.1 * (start - lo + 1e-9), start + 0.6 * (start - lo + 1e-9))
    for j, (name, lr) in enumerate(result.suggestions.items()):
        if math.isfinite(lr):
            ax.axvline(lr, color=f"C{j + 1}", ls="--", lw=1, label=f"{name}: {lr:.2g}")
    if result.verified is not None:
        ax.axvline(result.verified, color="k", lw=2, label=f"verified: {result.verified:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(result.title or "learning-rate range test")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure
