"""What a sweep returns: per-member records, the table, the best configuration, the Playbook's
checks, files (CSV, JSON) and plots (the metric against each hyperparameter; the top-k curves).

Plots return matplotlib ``Figure`` objects made without ``pyplot`` (no backend is switched,
nothing is left open): ``fig.savefig(path)``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from optlab.core.validation import as_path, check_int_range
from optlab.train.history import History
from optlab.tune.space import Choice, Config, IntUniform, LogUniform, Space, Uniform

FORMAT = "optlab.sweep/1"
EDGE = 0.05  # the boundary check: within 5% of a range's end, in unit coordinates


class TuningWarning(UserWarning):
    """A check of the Tuning Playbook failed (best point on the boundary, most runs diverged)."""


def _best(history: History, key: str, mode: str) -> tuple[int, float]:
    if key not in history:
        return 0, math.nan
    try:
        return history.best(key, mode)
    except ValueError:  # no finite value
        return 0, math.nan


@dataclasses.dataclass
class Member:
    """One training run of a sweep: a configuration with a seed.

    Attributes:
      config_index: the index of its configuration in ``SweepResult.configs``.
      config: the configuration.
      seed: the seed (model initialization, data order, dropout), as ``fit(seed=...)``.
      history: its :class:`~optlab.train.history.History` (the solo ``fit``'s, without timings).
      budget: the epochs it was allowed (fewer than the sweep's when successive halving cut it).
      stop_reason: why it stopped before its budget (early stopping, non-finite steps), or None.
      metric: the sweep's ranking metric.
      mode: ``"min"`` or ``"max"``.
    """

    config_index: int
    config: Config
    seed: int
    history: History
    budget: int
    stop_reason: str | None
    metric: str
    mode: str = "min"

    def best_value_of(self, key: str, mode: str) -> float:
        """The best finite value of ``key`` so far (NaN when there is none)."""
        return _best(self.history, key, mode)[1]

    @property
    def best_epoch(self) -> int:
        """The 1-based epoch of the best value of the metric (0 when none is finite)."""
        return _best(self.history, self.metric, self.mode)[0]

    @property
    def best_value(self) -> float:
        """The best value of the metric (NaN when none is finite)."""
        return _best(self.history, self.metric, self.mode)[1]

    @property
    def epochs(self) -> int:
        """The epochs it trained."""
        return len(self.history)

    @property
    def diverged(self) -> bool:
        """A non-finite loss or validation value, a skipped (non-finite) step, or a last
        training loss above the first epoch's."""
        h = self.history.history
        if not h:
            return False
        values = [v for k, vs in h.items() if k == "loss" or k.startswith("val_") for v in vs]
        if any(not math.isfinite(v) for v in values):
            return True
        if sum(h.get("skipped_steps", [0.0])) > 0:
            return True
        losses = h.get("loss", [])
        return len(losses) > 1 and losses[-1] > losses[0]

    def row(self) -> dict[str, Any]:
        """The member's row of the sweep's table."""
        losses = self.history.history.get("loss", [math.nan])
        return {
            **self.config,
            "seed": self.seed,
            f"best_{self.metric}": self.best_value,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "final_loss": losses[-1] if losses else math.nan,
            "diverged": self.diverged,
            "stop_reason": self.stop_reason or "",
        }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def space_to_dict(space: Space | None) -> dict[str, Any] | None:
    """A JSON-able description of a space (``{"lr": {"log_uniform": [1e-4, 0.1]}}``)."""
    if space is None:
        return None
    out = {}
    for name, dist in space.dimensions.items():
        if isinstance(dist, LogUniform):
            out[name] = {"log_uniform": [dist.low, dist.high]}
        elif isinstance(dist, Uniform):
            out[name] = {"uniform": [dist.low, dist.high]}
        elif isinstance(dist, IntUniform):
            out[name] = {"int_uniform": [dist.low, dist.high]}
        else:
            out[name] = {"choice": list(dist.options)}
    return out


@dataclasses.dataclass
class SweepResult:
    """The outcome of :func:`optlab.tune.sweep`.

    Attributes:
      configs: the configurations, in order.
      seeds: the seeds.
      members: one :class:`Member` per (configuration, seed), configuration-major.
      metric, mode: the ranking metric and its direction.
      space: the :class:`~optlab.tune.space.Space` searched (None for a list of configurations).
      traced: the hyperparameters traced (one program for all their values).
      static: the hyperparameters that split the configurations into groups.
      groups: the number of shape groups (compiled programs).
      compilations: epoch programs compiled (population sizes met; 0 when all were cached).
      chunk_size: members per dispatch.
      member_bytes: the estimated working memory of one member
        (:func:`~optlab.tune.population.member_bytes`), which sets ``chunk_size``.
      epochs: the epoch budget.
      member_epochs: epochs trained, summed over members (the compute spent).
      wall_time: seconds, compilation included.
      train_time: seconds spent in the epochs (the epoch program's compilation included when it
        was not cached yet; initialization excluded).
      warnings: the Playbook's checks that failed (see :meth:`check`).
    """

    configs: list[Config]
    seeds: list[int]
    members: list[Member]
    metric: str
    mode: str
    space: Space | None
    traced: list[str]
    static: list[str]
    groups: int
    compilations: int
    chunk_size: int
    member_bytes: int
    epochs: int
    member_epochs: int
    wall_time: float
    train_time: float = math.nan
    warnings: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        for m in self.members:
            m.mode = self.mode

    # --- scores and the best configuration -----------------------------------------------

    @property
    def scores(self) -> list[float]:
        """The mean over seeds of the members' best metric, one per configuration (NaN when a
        seed has no finite value)."""
        by: dict[int, list[float]] = {}
        for m in self.members:
            by.setdefault(m.config_index, []).append(m.best_value)
        return [float(np.mean(by[i])) if i in by else math.nan for i in range(len(self.configs))]

    def budgets(self) -> list[int]:
        """Per configuration: the epochs its members were allowed (halving cuts the others)."""
        out = [0] * len(self.configs)
        for m in self.members:
            out[m.config_index] = max(out[m.config_index], m.budget)
        return out

    @property
    def best_index(self) -> int | None:
        """The best configuration among those that got the largest budget (None if every
        score is NaN)."""
        scores, budgets = self.scores, self.budgets()
        top = max(budgets)
        sign = 1.0 if self.mode == "min" else -1.0
        finite = [i for i in range(len(scores)) if budgets[i] == top and math.isfinite(scores[i])]
        return min(finite, key=lambda i: (sign * scores[i], i)) if finite else None

    @property
    def best_config(self) -> Config | None:
        """The best configuration (mean over seeds of the best metric)."""
        i = self.best_index
        return None if i is None else dict(self.configs[i])

    @property
    def best_score(self) -> float:
        """Its score."""
        i = self.best_index
        return math.nan if i is None else self.scores[i]

    def top(self, k: int) -> list[Member]:
        """The ``k`` members with the best metric (finite values first)."""
        check_int_range("SweepResult.top", "k", k, 1)
        sign = 1.0 if self.mode == "min" else -1.0
        ranked = sorted(
            self.members,
            key=lambda m: (not math.isfinite(m.best_value), sign * np.nan_to_num(m.best_value)),
        )
        return ranked[:k]

    def table(self) -> list[dict[str, Any]]:
        """One row per member: hyperparameters, seed, best metric and epoch, epochs, final
        training loss, diverged, why it stopped."""
        return [m.row() for m in self.members]

    @property
    def diverged_fraction(self) -> float:
        """The fraction of members that diverged."""
        return sum(m.diverged for m in self.members) / max(1, len(self.members))

    # --- the Playbook's checks -------------------------------------------------------------

    def boundary(self) -> list[str]:
        """The hyperparameters whose best value lies on the boundary of the space searched."""
        best = self.best_config
        if best is None:
            return []
        out = []
        for name in best:
            edge = self._edge(name, best[name])
            if edge:
                out.append(edge)
        return out

    def _edge(self, name: str, value: Any) -> str | None:
        dist = self.space[name] if self.space is not None and name in self.space.names else None
        if isinstance(dist, LogUniform | Uniform):
            u = dist.to_unit(value)
            if EDGE <= u <= 1 - EDGE:
                return None
            lo, hi = dist.low, dist.high
        elif isinstance(dist, IntUniform):
            if dist.low < value < dist.high:
                return None
            lo, hi = dist.low, dist.high
        elif dist is None:
            tried = sorted({c[name] for c in self.configs if _numeric(c[name])})
            if len(tried) < 3 or not _numeric(value) or tried[0] < value < tried[-1]:
                return None
            lo, hi = tried[0], tried[-1]
        else:
            return None
        side = "lower" if abs(value - lo) <= abs(hi - value) else "upper"
        return (
            f"the best configuration has {name}={value:.3g} at the {side} edge of the range "
            f"searched [{lo:.3g}, {hi:.3g}]: the optimum may lie outside; extend the range "
            "and search again"
        )

    def check(self, warn: bool = True) -> list[str]:
        """Runs the Tuning Playbook's checks, stores them in ``warnings`` and, with ``warn``,
        emits each as a :class:`TuningWarning`."""
        found = self.boundary()
        diverged = sum(m.diverged for m in self.members)
        if diverged * 2 > len(self.members):
            found.append(
                f"{diverged} of {len(self.members)} members diverged (a non-finite or rising "
                "loss): the space is badly centred (learning rates too large?); shrink it"
            )
        self.warnings = found
        if warn:
            for message in found:
                warnings.warn(f"sweep: {message}", TuningWarning, stacklevel=3)
        return found

    # --- files ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (NaN written as null) of everything but the plots."""
        return {
            "format": FORMAT,
            "metric": self.metric,
            "mode": self.mode,
            "space": space_to_dict(self.space),
            "configs": self.configs,
            "seeds": self.seeds,
            "traced": self.traced,
            "static": self.static,
            "best_config": self.best_config,
            "best_score": _clean(self.best_score),
            "scores": [_clean(s) for s in self.scores],
            "table": [{k: _clean(v) for k, v in row.items()} for row in self.table()],
            "histories": [m.history.to_dict() for m in self.members],
            "warnings": self.warnings,
            "groups": self.groups,
            "compilations": self.compilations,
            "chunk_size": self.chunk_size,
            "member_bytes": self.member_bytes,
            "epochs": self.epochs,
            "member_epochs": self.member_epochs,
            "wall_time": self.wall_time,
            "train_time": self.train_time,
        }

    def save(self, directory: str | os.PathLike, *, plots: bool = True) -> list[Path]:
        """Writes ``sweep.csv`` (the table), ``sweep.json`` (:meth:`to_dict`) and, with
        ``plots``, ``metric.png`` and ``curves.png`` into a new or empty ``directory``.

        Raises:
          FileExistsError: ``directory`` holds files already (nothing is overwritten).
        """
        path = Path(as_path("SweepResult.save", "directory", directory))
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(
                f"SweepResult.save: {path} exists and is not an empty directory; choose a new "
                "one (nothing is overwritten)"
            )
        path.mkdir(parents=True, exist_ok=True)
        rows = self.table()
        header = list(dict.fromkeys(k for r in rows for k in r))
        written = [path / "sweep.csv", path / "sweep.json"]
        with open(written[0], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        with open(written[1], "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        if plots:
            for name, fig in (("metric.png", self.plot()), ("curves.png", self.plot_curves())):
                fig.savefig(path / name, dpi=110)
                written.append(path / name)
        return written

    def summary(self, k: int = 10) -> str:
        """A text table of the ``k`` best members, then the warnings."""
        names = list(self.configs[0])
        head = [*names, "seed", f"best {self.metric}", "epoch", "diverged"]
        lines = ["  ".join(f"{h:>12}" for h in head)]
        for m in self.top(min(k, len(self.members))):
            cells = [_fmt(m.config[n]) for n in names]
            cells += [str(m.seed), _fmt(m.best_value), str(m.best_epoch), str(m.diverged)]
            lines.append("  ".join(f"{c:>12}" for c in cells))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    # --- plots ------------------------------------------------------------------------------

    def plot(self, key: str | None = None):
        """The metric (best epoch's value per member) against each hyperparameter, on a log
        axis where the space is logarithmic; diverged members as red crosses at the top, the
        best configuration as a star. Returns a ``Figure``."""
        from optlab.tune.plots import plot_metric

        return plot_metric(self, key)

    def plot_curves(self, k: int = 5, key: str | None = None):
        """The training curves (``key``, default the metric, solid; the training loss,
        dashed) of the ``k`` best members. Returns a ``Figure``."""
        from optlab.tune.plots import plot_curves

        return plot_curves(self, k, key)

    def is_log(self, name: str) -> bool:
        """Whether ``name`` is drawn on a log axis (log-uniform, or positive values tried over
        more than two decades)."""
        if self.space is not None and name in self.space.names:
            return isinstance(self.space[name], LogUniform)
        values = [c[name] for c in self.configs]
        if not all(_numeric(v) and v > 0 for v in values):
            return False
        return max(values) / min(values) > 100

    def is_categorical(self, name: str) -> bool:
        """Whether ``name`` takes non-numeric values (drawn as categories)."""
        if self.space is not None and name in self.space.names:
            if isinstance(self.space[name], Choice):
                return not all(_numeric(o) for o in self.space[name].options)
        return not all(_numeric(c[name]) for c in self.configs)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
