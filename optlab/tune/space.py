r"""Search spaces and the points a search tries: grid, random, quasi-random, coarse to fine.

A :class:`Space` names one distribution per hyperparameter. Every distribution maps a unit
coordinate :math:`u \in [0, 1)` to a value, so every sampler draws points in the unit cube
:math:`[0, 1)^d` and maps them:

.. math::

    \text{log\_uniform}(a, b):\; v = 10^{\log_{10} a + u\,(\log_{10} b - \log_{10} a)},
    \qquad \text{uniform}(a, b):\; v = a + u\,(b - a),

    \text{int\_uniform}(a, b):\; v = a + \lfloor u\,(b - a + 1) \rfloor, \qquad
    \text{choice}(c_1, \ldots, c_m):\; v = c_{\lfloor u m \rfloor + 1}.

A learning rate sampled on a log scale puts as many points in :math:`[10^{-4}, 10^{-3}]` as in
:math:`[10^{-2}, 10^{-1}]`; sampled uniformly, 90% of them would land in the last decade
(Imperial College's notes, "Tuning Hyperparameters": sample :math:`x \sim U(-7, -1)` and take
:math:`10^x`).

Samplers: :func:`grid` (every combination of ``num`` values per hyperparameter),
:func:`random` (independent uniform coordinates) and :func:`quasi_random` (a scrambled Halton
or Sobol sequence from ``scipy.stats.qmc``, the Tuning Playbook's default: it covers the
cube more evenly than random points, and like them, and unlike a grid, tries a new value of
every hyperparameter at every point). :func:`coarse_to_fine` runs rounds of a search,
shrinking the space around the best points after each round (CS231n, "Choosing
Hyperparameters", steps 4 and 5).

References:
  Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012.
  Godbole, Dahl, Gilmer, Shallue and Nado, "Deep Learning Tuning Playbook", 2023,
  https://github.com/google-research/tuning_playbook.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from optlab.core.validation import (
    check_callable,
    check_choice,
    check_in_range,
    check_int_range,
    check_real,
    check_seed,
    describe_value,
)

Config = dict[str, Any]


def _check_bounds(fn: str, low: Any, high: Any, *, positive: bool = False) -> None:
    check_real(fn, "low", low)
    check_real(fn, "high", high)
    for name, v in (("low", low), ("high", high)):
        if not math.isfinite(float(v)):
            raise ValueError(f"{fn}: {name} must be finite, got {name}={float(v)!r}")
        if positive and float(v) <= 0:
            raise ValueError(f"{fn}: {name} must be > 0 (a log scale), got {name}={float(v)!r}")
    if not float(low) < float(high):
        raise ValueError(f"{fn}: low must be < high, got low={low!r}, high={high!r}")


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """Values spread evenly in :math:`\\log_{10}` between ``low`` and ``high`` (both > 0)."""

    low: float
    high: float

    def __post_init__(self):
        _check_bounds("log_uniform", self.low, self.high, positive=True)

    log = True

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        a, b = math.log10(self.low), math.log10(self.high)
        return 10.0 ** (a + np.asarray(u, np.float64) * (b - a))

    def to_unit(self, v: Any) -> float:
        a, b = math.log10(self.low), math.log10(self.high)
        return (math.log10(float(v)) - a) / (b - a)

    def shrink(self, values: Sequence[Any], margin: float) -> LogUniform:
        lo, hi = _shrunk_unit(self, values, margin)
        return LogUniform(float(self.from_unit(lo)), float(self.from_unit(hi)))


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Values spread evenly between ``low`` and ``high``."""

    low: float
    high: float

    def __post_init__(self):
        _check_bounds("uniform", self.low, self.high)

    log = False

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return float(self.low) + np.asarray(u, np.float64) * (float(self.high) - float(self.low))

    def to_unit(self, v: Any) -> float:
        return (float(v) - float(self.low)) / (float(self.high) - float(self.low))

    def shrink(self, values: Sequence[Any], margin: float) -> Uniform:
        lo, hi = _shrunk_unit(self, values, margin)
        return Uniform(float(self.from_unit(lo)), float(self.from_unit(hi)))


@dataclasses.dataclass(frozen=True)
class IntUniform:
    """Integers ``low..high`` (both included), equally likely."""

    low: int
    high: int

    def __post_init__(self):
        check_int_range("int_uniform", "low", self.low)
        check_int_range("int_uniform", "high", self.high)
        if not self.low < self.high:
            raise ValueError(
                f"int_uniform: low must be < high, got low={self.low!r}, high={self.high!r}"
            )

    log = False

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        count = self.high - self.low + 1
        k = np.floor(np.asarray(u, np.float64) * count).astype(np.int64)
        return self.low + np.minimum(k, count - 1)

    def to_unit(self, v: Any) -> float:
        return (int(v) - self.low + 0.5) / (self.high - self.low + 1)

    def shrink(self, values: Sequence[Any], margin: float) -> IntUniform:
        lo, hi = min(int(v) for v in values), max(int(v) for v in values)
        pad = round(margin * (self.high - self.low))
        lo, hi = max(self.low, lo - pad), min(self.high, hi + pad)
        return IntUniform(lo, hi) if lo < hi else Choice((lo,))


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``options``, equally likely (strings, numbers, ``None``...)."""

    options: tuple

    def __post_init__(self):
        if isinstance(self.options, str) or not isinstance(self.options, Sequence):
            raise TypeError(
                f"choice: options must be a sequence of values, got {describe_value(self.options)}"
            )
        object.__setattr__(self, "options", tuple(self.options))
        if not self.options:
            raise ValueError("choice: options must hold at least one value, got ()")

    log = False

    def from_unit(self, u: np.ndarray) -> list:
        m = len(self.options)
        k = np.minimum(np.floor(np.asarray(u, np.float64) * m).astype(np.int64), m - 1)
        return [self.options[int(i)] for i in np.ravel(k)]

    def to_unit(self, v: Any) -> float:
        return (self.options.index(v) + 0.5) / len(self.options)

    def shrink(self, values: Sequence[Any], margin: float) -> Choice:
        kept = [o for o in self.options if any(_same(o, v) for v in values)]
        return Choice(tuple(kept))


Distribution = LogUniform | Uniform | IntUniform | Choice


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _shrunk_unit(dist: Any, values: Sequence[Any], margin: float) -> tuple[float, float]:
    """The unit interval spanned by ``values``, widened by ``margin`` on each side, in [0, 1]."""
    units = [dist.to_unit(v) for v in values]
    lo, hi = min(units) - margin, max(units) + margin
    return max(0.0, lo), min(1.0, hi)


def log_uniform(low: float, high: float) -> LogUniform:
    """A hyperparameter spread evenly on a log scale in ``[low, high)`` (learning rates, weight
    decay): :math:`10^{U(\\log_{10} a, \\log_{10} b)}`.

    Examples:
      >>> print(ol.tune.log_uniform(1e-4, 1e-1).from_unit(np.array([0.0, 0.5])))
      [0.0001     0.00316228]
    """
    return LogUniform(low, high)


def uniform(low: float, high: float) -> Uniform:
    """A hyperparameter spread evenly in ``[low, high)`` (momentum, dropout rates)."""
    return Uniform(low, high)


def int_uniform(low: int, high: int) -> IntUniform:
    """An integer hyperparameter in ``low..high``, both included (widths, depths)."""
    return IntUniform(low, high)


def choice(options: Sequence[Any]) -> Choice:
    """One of ``options`` (activations, optimizers, norms)."""
    return Choice(tuple(options) if isinstance(options, list | tuple) else options)


class Space:
    """A search space: one distribution per hyperparameter, by name.

    Args:
      **dimensions: ``name=distribution`` (:func:`log_uniform`, :func:`uniform`,
        :func:`int_uniform`, :func:`choice`); a plain list or tuple is a :func:`choice`.

    Examples:
      >>> space = ol.tune.Space(learning_rate=ol.tune.log_uniform(1e-4, 1e-1),
      ...                       momentum=ol.tune.uniform(0.8, 0.99), width=[32, 64])
      >>> print(space.names, space["learning_rate"].log)
      ('learning_rate', 'momentum', 'width') True
    """

    def __init__(self, **dimensions: Any):
        if not dimensions:
            raise ValueError("Space: give at least one hyperparameter, e.g. lr=log_uniform(...)")
        dims = {}
        for name, dist in dimensions.items():
            if isinstance(dist, list | tuple):
                dist = Choice(tuple(dist))
            if not isinstance(dist, LogUniform | Uniform | IntUniform | Choice):
                raise TypeError(
                    f"Space: {name} must be log_uniform, uniform, int_uniform, choice or a "
                    f"list of values, got {name}={describe_value(dist)}"
                )
            dims[name] = dist
        self.dimensions: dict[str, Distribution] = dims

    @property
    def names(self) -> tuple[str, ...]:
        """The hyperparameters' names, in order."""
        return tuple(self.dimensions)

    def __getitem__(self, name: str) -> Distribution:
        return self.dimensions[name]

    def __len__(self) -> int:
        return len(self.dimensions)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.dimensions == other.dimensions

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.dimensions.items())
        return f"Space({inner})"

    def from_unit(self, points: np.ndarray) -> list[Config]:
        """Configurations from points of the unit cube, shape ``(n, len(self))``."""
        points = np.asarray(points, np.float64).reshape(-1, len(self))
        columns = {
            name: list(_python(dist.from_unit(points[:, j])))
            for j, (name, dist) in enumerate(self.dimensions.items())
        }
        return [{name: columns[name][i] for name in self.names} for i in range(len(points))]

    def to_unit(self, config: Mapping[str, Any]) -> np.ndarray:
        """The unit coordinates of a configuration (its inverse map)."""
        return np.array([dist.to_unit(config[n]) for n, dist in self.dimensions.items()])

    def shrink(self, configs: Sequence[Mapping[str, Any]], margin: float = 0.1) -> Space:
        """The smallest sub-space holding ``configs``, widened by ``margin`` (a fraction of each
        range, in unit coordinates) and clipped to this space; a choice keeps the options seen.
        """
        check_in_range("Space.shrink", "margin", margin, 0.0, 1.0, high_closed=True)
        if not configs:
            raise ValueError("Space.shrink: configs must hold at least one configuration")
        return Space(
            **{
                n: dist.shrink([c[n] for c in configs], float(margin))
                for n, dist in self.dimensions.items()
            }
        )


def _python(values: Any) -> list:
    """Python numbers (JSON-able, and static/traced as Python types say) from NumPy values."""
    out = []
    for v in values:
        if isinstance(v, np.integer):
            out.append(int(v))
        elif isinstance(v, np.floating):
            out.append(float(v))
        else:
            out.append(v)
    return out


def _check_space(fn: str, space: Any) -> Space:
    if not isinstance(space, Space):
        raise TypeError(f"{fn}: space must be an optlab.tune.Space, got {describe_value(space)}")
    return space


def grid(space: Space, num: int | Mapping[str, int] = 3) -> list[Config]:
    """Every combination of ``num`` values per hyperparameter (a choice: all its options).

    The values of a continuous hyperparameter are the centres of ``num`` equal cells of its
    unit interval (for ``log_uniform(1e-4, 1e-1)`` and ``num=3``: 10^-3.5, 10^-2.5, 10^-1.5),
    so a grid and a random search of the same size cover the same range.

    Args:
      space: the :class:`Space`.
      num: values per hyperparameter (an int for all, or a dict by name).

    Returns:
      ``prod(num)`` configurations, the last hyperparameter varying fastest.

    Examples:
      >>> space = ol.tune.Space(lr=ol.tune.log_uniform(1e-4, 1e-1), act=["relu", "tanh"])
      >>> [f"{c['lr']:.0e} {c['act']}" for c in ol.tune.grid(space, 2)]
      ['6e-04 relu', '6e-04 tanh', '2e-02 relu', '2e-02 tanh']
    """
    fn = "grid"
    space = _check_space(fn, space)
    counts = {}
    for name, dist in space.dimensions.items():
        k = num.get(name, 3) if isinstance(num, Mapping) else num
        check_int_range(fn, f"num[{name!r}]" if isinstance(num, Mapping) else "num", k, 1)
        if isinstance(dist, Choice):
            k = len(dist.options)
        elif isinstance(dist, IntUniform):
            k = min(k, dist.high - dist.low + 1)
        counts[name] = k
    axes = []
    for name, dist in space.dimensions.items():
        k = counts[name]
        units = (np.arange(k) + 0.5) / k
        axes.append(list(dict.fromkeys(_python(dist.from_unit(units)))))
    return [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*axes)]


def random(space: Space, n: int, seed: int = 0) -> list[Config]:
    """``n`` configurations with independent uniform unit coordinates (NumPy's
    ``default_rng(seed)``).

    Examples:
      >>> space = ol.tune.Space(lr=ol.tune.log_uniform(1e-4, 1e-1))
      >>> len(ol.tune.random(space, 5, seed=0))
      5
    """
    fn = "random"
    space = _check_space(fn, space)
    check_int_range(fn, "n", n, 1)
    check_seed(fn, "seed", seed)
    points = np.random.default_rng(seed).random((n, len(space)))
    return space.from_unit(points)


def quasi_random(space: Space, n: int, seed: int = 0, *, method: str = "halton") -> list[Config]:
    """``n`` configurations from a scrambled low-discrepancy sequence (the Tuning Playbook's
    default search).

    The points are ``scipy.stats.qmc.Halton(d, scramble=True, seed=seed).random(n)`` (or
    ``Sobol``, whose balance holds for ``n`` a power of 2), mapped by the space's
    distributions. Unlike a grid, every point tries a new value of every hyperparameter; unlike
    random points, they leave no large holes.

    Args:
      space: the :class:`Space`.
      n: the number of configurations.
      seed: the scrambling seed.
      method: ``"halton"`` or ``"sobol"``.

    Returns:
      ``n`` configurations.

    Examples:
      >>> space = ol.tune.Space(lr=ol.tune.log_uniform(1e-4, 1e-1),
      ...                       momentum=ol.tune.uniform(0.8, 0.99))
      >>> configs = ol.tune.quasi_random(space, 8, seed=0)
      >>> print(len(configs), sorted(configs[0]))
      8 ['lr', 'momentum']
    """
    from scipy.stats import qmc

    fn = "quasi_random"
    space = _check_space(fn, space)
    check_int_range(fn, "n", n, 1)
    check_seed(fn, "seed", seed)
    check_choice(fn, "method", method, ("halton", "sobol"))
    if method == "halton":
        engine = qmc.Halton(len(space), scramble=True, seed=np.random.default_rng(seed))
        points = engine.random(n)
    else:
        engine = qmc.Sobol(len(space), scramble=True, seed=np.random.default_rng(seed))
        m = math.ceil(math.log2(n)) if n > 1 else 0
        points = engine.random_base2(m)[:n]  # balanced for 2**m points; the first n are kept
    return space.from_unit(points)


@dataclasses.dataclass
class CoarseToFine:
    """The rounds of :func:`coarse_to_fine`.

    Attributes:
      spaces: the space searched in each round (the first is the one given).
      configs: the configurations tried in each round.
      scores: their scores, per round.
      best: the best configuration over all rounds.
      best_score: its score.
    """

    spaces: list[Space]
    configs: list[list[Config]]
    scores: list[list[float]]
    best: Config
    best_score: float


def coarse_to_fine(
    objective: Callable[[list[Config]], Sequence[float]],
    space: Space,
    *,
    rounds: int = 3,
    trials: int = 16,
    keep: float = 0.25,
    margin: float = 0.1,
    sampler: str = "quasi_random",
    seed: int = 0,
    mode: str = "min",
) -> CoarseToFine:
    """Rounds of search, each in the space shrunk around the best points of the last round.

    Round :math:`r` samples ``trials`` configurations of the current space, scores them all at
    once with ``objective`` (e.g. one :func:`optlab.tune.sweep`), keeps the best
    :math:`\\lceil \\text{keep} \\cdot \\text{trials} \\rceil`, and the next space is the
    smallest box holding them (in unit coordinates, so on a log scale for ``log_uniform``),
    widened by ``margin`` on each side and clipped to the current space. A NaN score (a
    diverged run) is never kept.

    Args:
      objective: ``objective(configs) -> scores``, one score per configuration.
      space: the first round's :class:`Space`.
      rounds: the number of rounds.
      trials: configurations per round.
      keep: the fraction of each round's configurations that shapes the next space.
      margin: the widening of each shrunk range, a fraction of the range.
      sampler: ``"quasi_random"``, ``"random"`` or ``"grid"`` (then ``trials`` is the number
        of values per hyperparameter).
      seed: seeds the sampler (round ``r`` uses ``seed + r``).
      mode: ``"min"`` or ``"max"``: whether smaller scores are better.

    Returns:
      A :class:`CoarseToFine` record of every round and the best configuration.

    Examples:
      >>> space = ol.tune.Space(x=ol.tune.uniform(-4.0, 4.0))
      >>> result = ol.tune.coarse_to_fine(lambda cs: [(c["x"] - 1.0) ** 2 for c in cs], space,
      ...                                 rounds=3, trials=8)
      >>> print(round(result.best["x"], 2), result.spaces[-1]["x"].high < 4.0)
      1.0 True
    """
    fn = "coarse_to_fine"
    check_callable(fn, "objective", objective)
    space = _check_space(fn, space)
    check_int_range(fn, "rounds", rounds, 1)
    check_int_range(fn, "trials", trials, 1)
    check_in_range(fn, "keep", keep, 0.0, 1.0, low_closed=False, high_closed=True)
    check_in_range(fn, "margin", margin, 0.0, 1.0, high_closed=True)
    check_choice(fn, "sampler", sampler, ("quasi_random", "random", "grid"))
    check_seed(fn, "seed", seed)
    check_choice(fn, "mode", mode, ("min", "max"))
    sign = 1.0 if mode == "min" else -1.0
    spaces, all_configs, all_scores = [], [], []
    best, best_score = None, math.nan
    current = space
    for r in range(rounds):
        if sampler == "grid":
            configs = grid(current, trials)
        elif sampler == "random":
            configs = random(current, trials, seed + r)
        else:
            configs = quasi_random(current, trials, seed + r)
        scores = [float(s) for s in objective(configs)]
        if len(scores) != len(configs):
            raise ValueError(
                f"{fn}: objective returned {len(scores)} scores for {len(configs)} configurations"
            )
        spaces.append(current)
        all_configs.append(configs)
        all_scores.append(scores)
        ranked = sorted(
            (i for i, s in enumerate(scores) if math.isfinite(s)), key=lambda i: sign * scores[i]
        )
        if ranked and (best is None or sign * scores[ranked[0]] < sign * best_score):
            best, best_score = configs[ranked[0]], scores[ranked[0]]
        if not ranked or r == rounds - 1:
            continue
        top = [configs[i] for i in ranked[: max(1, math.ceil(keep * len(configs)))]]
        current = current.shrink(top, margin)
    if best is None:
        raise ValueError(f"{fn}: every score was NaN or infinite; nothing to keep")
    return CoarseToFine(spaces, all_configs, all_scores, best, best_score)
