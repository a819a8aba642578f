r"""Sweeps: N configurations x S seeds trained in one compiled program per shape group.

``sweep(model_fn, tx_fn, space, data, ...)`` trains member :math:`(i, s)` (configuration
:math:`c_i`, seed :math:`s`) exactly as

.. code-block:: python

    ol.fit(model_fn(c_i, nnx.Rngs(s)), tx_fn(c_i), data, seed=s, ...)

would, all members at once: the models are initialized per seed under ``vmap``, the
hyperparameters that only the transformation reads are traced (``inject_hyperparams``: every
configuration shares one compiled program), and each epoch is the engine's
:func:`~optlab.train.fit.fit_epoch` under ``vmap`` (:mod:`optlab.tune.population`). So member
:math:`(i, s)`'s history equals that of the solo ``fit``, to float32 rounding.

**Groups.** A hyperparameter is *static* (it selects a different program) when ``model_fn``
reads it (a width, an activation, a dropout rate), when one of its values is not a float (an
int, a string, ``None``, a bool), or when ``static=`` names it; the others are *traced*.
Configurations that agree on every static value form one group: one compiled program each.

**Stopping and halving.** With ``early_stopping=EarlyStopping(...)`` each member follows that
callback's rule on its own history and, once stopped, keeps its state while the others train
(its updates are masked); the run ends when every member has stopped. With
``halving=HalvingConfig(eta, min_epochs)`` (successive halving) the configurations are ranked
at the rungs :math:`r_k = \text{min\_epochs}\cdot\eta^k` by the mean over seeds of their best
metric so far, and only the best :math:`\lceil n/\eta\rceil` continue: the population is
compacted, so the others cost nothing. Halving stops once at most :math:`\eta` configurations
remain, so a group goes through at most :math:`\max(1, \lceil\log_\eta N\rceil)` population
sizes, one compilation each.

**The Playbook's checks.** The result warns (:class:`TuningWarning`) when the best
configuration lies on the boundary of the space (within 5% of a range's end, in unit
coordinates; for a list of configurations, at the smallest or largest value tried): the
optimum may lie outside, extend the range; and when more than half the members diverged: the
space is badly centred.

References:
  Jamieson and Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter
  Optimization", AISTATS 2016 (successive halving).
  Godbole et al., "Deep Learning Tuning Playbook", 2023.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import (
    check_bool,
    check_callable,
    check_choice,
    check_in_range,
    check_int_range,
    check_number,
    check_str,
    describe_value,
)
from optlab.nn.apply import functional
from optlab.schedules.inject import inject_hyperparams
from optlab.train.callbacks import EarlyStopping
from optlab.train.evaluation import as_arrays, default_metrics, eval_batches, resolve_batch_size
from optlab.train.fit import nonfinite_rows
from optlab.train.history import default_mode
from optlab.train.sharding import POP_AXIS, check_mesh
from optlab.train.state import TrainState
from optlab.train.step import check_loss
from optlab.tune.population import (
    Population,
    chunk_size_for,
    engine_steps,
    member_bytes,
    population_epoch,
    rung_epochs,
    take,
)
from optlab.tune.results import Member, SweepResult
from optlab.tune.space import Config, Space, grid, quasi_random, random


@dataclasses.dataclass(frozen=True)
class HalvingConfig:
    """Successive halving: rank at epochs ``min_epochs * eta**k``, keep the top ``1/eta``.

    Attributes:
      eta: the reduction factor (>= 2).
      min_epochs: the first rung (>= 1).
    """

    eta: int = 3
    min_epochs: int = 1

    def __post_init__(self):
        check_int_range("HalvingConfig", "eta", self.eta, 2)
        check_int_range("HalvingConfig", "min_epochs", self.min_epochs, 1)


class _Recorder(dict):
    """A configuration that records which keys are read (to find ``model_fn``'s keys)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reads: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.reads.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.reads.add(str(key))
        return super().__contains__(key)

    def _all(self) -> None:
        self.reads.update(self.keys())

    def items(self):
        self._all()
        return super().items()

    def values(self):
        self._all()
        return super().values()

    def __iter__(self):
        self._all()
        return super().__iter__()

    def copy(self) -> dict:
        self._all()
        return dict(super().items())


def _is_float(value: Any) -> bool:
    return isinstance(value, float | np.floating) and not isinstance(value, bool)


def injectable(tx_fn: Callable[[Config], Any], static: Mapping[str, Any], traced: Sequence[str]):
    """``inject_hyperparams`` of ``lambda **hp: tx_fn({**static, **hp})`` (keyword ``traced``)."""

    def factory(**hp: Any) -> Any:
        return tx_fn({**static, **hp})

    factory.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in traced]
    )
    factory.__name__ = getattr(tx_fn, "__name__", "tx_fn")
    return inject_hyperparams(factory)


def _configs(fn: str, space: Any, trials: Any, sampler: str, search_seed: int) -> list[Config]:
    if isinstance(space, Space):
        if sampler == "grid":
            return grid(space, 3 if trials is None else trials)
        check_int_range(fn, "trials", trials, 1)
        sample = quasi_random if sampler == "quasi_random" else random
        return sample(space, trials, search_seed)
    if isinstance(space, Sequence) and not isinstance(space, str) and space:
        configs = []
        for c in space:
            if not isinstance(c, Mapping):
                raise TypeError(
                    f"{fn}: every configuration must be a dict, got {describe_value(c)}"
                )
            configs.append(dict(c))
        return configs
    raise TypeError(
        f"{fn}: space must be an optlab.tune.Space or a non-empty list of configuration dicts, "
        f"got {describe_value(space)}"
    )


def _seeds(fn: str, seeds: Any) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        check_int_range(fn, "seeds", seeds, 1)
        return list(range(seeds))
    if isinstance(seeds, Sequence) and seeds:
        for s in seeds:
            check_int_range(fn, "seeds[...]", s, 0, 2**31 - 1)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{fn}: seeds must be distinct, got seeds={list(seeds)!r}")
        return [int(s) for s in seeds]
    raise TypeError(
        f"{fn}: seeds must be a number of seeds >= 1 or a list of seeds, got "
        f"{describe_value(seeds)}"
    )


def split_validation(fn: str, data: Any, validation_data: Any, validation_split: float):
    """``(x, y, x_val, y_val)`` as :func:`optlab.fit` makes them (the last rows for a split)."""
    x, y = as_arrays(fn, data, "data")
    if validation_split:
        n_all = int(x.shape[0])
        n_val = int(n_all * validation_split)
        if n_val == 0 or n_val == n_all:
            raise ValueError(
                f"{fn}: validation_split={validation_split} leaves {n_val} validation rows of "
                f"{n_all}"
            )
        return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    if validation_data is not None:
        x_val, y_val = as_arrays(fn, validation_data, "validation_data")
        return x, y, x_val, y_val
    return x, y, None, None


def check_finite_rows(fn: str, *pairs: Any) -> None:
    """Raises ``ValueError`` naming the rows of the data that hold NaN or infinite values."""
    for what, (a, b) in zip(("training", "validation"), pairs, strict=False):
        if a is None:
            continue
        rows = nonfinite_rows(a, b)
        if len(rows):
            shown = ", ".join(str(int(r)) for r in rows[:10])
            raise ValueError(
                f"{fn}: {len(rows)} rows ({shown}) of the {what} data hold NaN or infinite "
                "values; remove or impute them"
            )


def _group(configs: list[Config], static_names: set[str]) -> dict[tuple, list[int]]:
    """Configuration indices by their static values (one compiled program per group)."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        key = tuple((k, repr(c[k])) for k in sorted(static_names) if k in c)
        groups.setdefault(key, []).append(i)
    return groups


_PROGRAMS: collections.OrderedDict[Any, tuple] = collections.OrderedDict()
_PROGRAMS_SIZE = 16


def _group_program(model_fn, tx_fn, rep: Config, traced: list[str], fn: str) -> tuple:
    """``(tx, init, seen)`` of a group: the transformation shared by its members (static in the
    compiled programs; built once per ``(model_fn, tx_fn, static values)``, so a second sweep
    with new traced values compiles nothing) and the jitted, vmapped initialization."""
    static_cfg = {k: v for k, v in rep.items() if k not in traced}
    key = (model_fn, tx_fn, tuple((k, repr(v)) for k, v in static_cfg.items()), tuple(traced))
    try:
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    factory = injectable(tx_fn, static_cfg, traced)
    tx = factory(**{n: rep[n] for n in traced})
    seen: dict[str, Any] = {}

    def init(seed, hp_m):
        config = _Recorder(rep)
        model = model_fn(config, nnx.Rngs(jax.random.key(seed)))
        if not isinstance(model, nnx.Module):
            raise TypeError(
                f"{fn}: model_fn must return a flax.nnx.Module, got {type(model).__name__}"
            )
        apply, params, model_state = functional(model)
        seen["reads"] = set(config.reads)
        return TrainState(
            params=params,
            model_state=model_state,
            opt_state=factory(**hp_m).init(params),
            step=jnp.zeros((), jnp.int32),
            rng=jax.random.key(seed),
            lr_scale=jnp.ones((), jnp.float32),
            nonfinite_streak=jnp.zeros((), jnp.int32),
            apply=apply,
            tx=tx,
        )

    program = (tx, jax.jit(jax.vmap(init)), seen)
    if key is not None:
        _PROGRAMS[key] = program
        while len(_PROGRAMS) > _PROGRAMS_SIZE:
            _PROGRAMS.popitem(last=False)
    return program


def _init_group(model_fn, tx_fn, configs, seeds, traced, static_names, fn):
    """The stacked TrainStates of a group's members (configuration-major), built under vmap:
    the models from each seed's ``nnx.Rngs``, the optimizer states from each configuration's
    traced hyperparameters."""
    _, init, seen = _group_program(model_fn, tx_fn, configs[0], traced, fn)
    hp = {n: jnp.asarray([c[n] for c in configs for _ in seeds], jnp.float32) for n in traced}
    member_seeds = jnp.asarray([s for _ in configs for s in seeds], jnp.int32)
    states = init(member_seeds, hp)
    loose = sorted(seen["reads"] - static_names)
    if loose:
        raise ValueError(
            f"{fn}: model_fn reads {', '.join(map(repr, loose))}, which the first configuration's "
            f"model did not; name it in static= so configurations are grouped by it"
        )
    return states, jax.vmap(jax.random.key)(member_seeds)


def _model_keys(model_fn: Callable, config: Config) -> set[str]:
    recorder = _Recorder(config)
    nnx.eval_shape(lambda: model_fn(recorder, nnx.Rngs(0)))
    return set(recorder.reads)


def _config_scores(members: list[Member], key: str, mode: str) -> dict[int, float]:
    """The mean over seeds of each configuration's best value of ``key`` so far (NaN when a
    seed has none)."""
    by_config: dict[int, list[float]] = {}
    for m in members:
        by_config.setdefault(m.config_index, []).append(m.best_value_of(key, mode))
    return {i: float(np.mean(v)) for i, v in by_config.items()}


def sweep(
    model_fn: Callable[[Config, nnx.Rngs], nnx.Module],
    tx_fn: Callable[[Config], Any],
    space: Space | Sequence[Mapping[str, Any]],
    data: Any,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    epochs: int,
    batch_size: int = 32,
    seeds: int | Sequence[int] = 1,
    trials: int | None = None,
    sampler: str = "quasi_random",
    search_seed: int = 0,
    metric: str = "val_loss",
    mode: str = "auto",
    validation_data: Any = None,
    validation_split: float = 0.0,
    metrics: Sequence[Any] | str | None = "auto",
    early_stopping: EarlyStopping | None = None,
    halving: HalvingConfig | None = None,
    static: Sequence[str] = (),
    memory_budget: int | None = None,
    drop_remainder: bool = True,
    augment: Callable | None = None,
    eval_batch_size: int | None = None,
    skip_nonfinite: bool = True,
    max_consecutive_nonfinite: int = 10,
    warn: bool = True,
    mesh: Any = None,
) -> SweepResult:
    """Trains every configuration with every seed, one compiled program per shape group.

    Args:
      model_fn: ``model_fn(config, rngs) -> nnx model``; called with ``nnx.Rngs`` of each seed.
      tx_fn: ``tx_fn(config) -> gradient transformation`` (``lambda c: ol.sgd(c["lr"],
        momentum=c["momentum"])``); float hyperparameters it reads are traced.
      space: a :class:`~optlab.tune.space.Space` (``trials`` configurations are sampled) or a
        list of configuration dicts.
      data: ``(x, y)`` or a dataset (its training split), as for :func:`optlab.fit`.
      loss: per-example loss, as for :func:`optlab.fit`.
      epochs: the epoch budget of every member.
      batch_size: rows per step.
      seeds: the number of seeds (0, 1, ...) or a list of seeds.
      trials: configurations to sample from a ``Space`` (for ``sampler="grid"``: values per
        hyperparameter).
      sampler: ``"quasi_random"`` (default), ``"random"`` or ``"grid"``.
      search_seed: seeds the sampler.
      metric: the value that ranks members (a key of the history: ``"val_loss"``,
        ``"val_accuracy"``, ``"loss"``...); each member's score is its best epoch's value.
      mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies).
      validation_data, validation_split: as :func:`optlab.fit` (needed for ``val_*`` metrics).
      metrics: as :func:`optlab.fit`.
      early_stopping: an :class:`~optlab.train.callbacks.EarlyStopping`: each member stops by
        its rule (its weights are not restored: a sweep reports histories).
      halving: a :class:`HalvingConfig` for successive halving, or None.
      static: hyperparameter names to treat as static (group by them) although they are
        floats that ``model_fn`` does not read (e.g. ones ``tx_fn`` branches on in Python).
      memory_budget: bytes of working memory per dispatch (None: half the device memory, or
        1 GiB on a CPU); members beyond it run in chunks, with the same results.
      drop_remainder, augment, eval_batch_size, skip_nonfinite, max_consecutive_nonfinite: as
        :func:`optlab.fit`.
      warn: emit the Playbook's checks as :class:`TuningWarning` (they are always in
        ``result.warnings``).
      mesh: a ``jax.sharding.Mesh`` with an axis ``pop`` (``jax.make_mesh((n,), ("pop",))``):
        each dispatch's members are split over its devices (no communication between them;
        a dispatch whose member count is not a multiple of ``n`` runs replicated), with the
        same per-member results. None: the default device.

    Returns:
      A :class:`~optlab.tune.results.SweepResult`: ``members`` (history, best epoch and value,
      diverged), ``table()``, ``best_config``, ``scores``, ``warnings``, ``save(directory)``,
      ``plot()`` and ``plot_curves(k)``.

    Examples:
      >>> ds = ol.data.load("digits")
      >>> result = ol.tune.sweep(
      ...     lambda c, rngs: ol.nn.MLP(64, (32,), 10, rngs=rngs),
      ...     lambda c: ol.sgd(c["learning_rate"], momentum=0.9),
      ...     [{"learning_rate": lr} for lr in (1e-3, 1e-2, 1e-1)],
      ...     ds, loss=ol.nn.softmax_cross_entropy_with_integer_labels, epochs=2,
      ...     validation_data=(ds.x_test, ds.y_test), warn=False)
      >>> print(len(result.members), result.best_config, result.compilations)
      3 {'learning_rate': 0.1} 1
    """
    fn = "sweep"
    start = time.perf_counter()
    if mesh is not None:
        check_mesh(fn, mesh, POP_AXIS)
    check_callable(fn, "model_fn", model_fn)
    check_callable(fn, "tx_fn", tx_fn)
    check_int_range(fn, "epochs", epochs, 1)
    check_int_range(fn, "batch_size", batch_size, 1)
    check_choice(fn, "sampler", sampler, ("quasi_random", "random", "grid"))
    check_int_range(fn, "search_seed", search_seed, 0)
    check_str(fn, "metric", metric)
    check_choice(fn, "mode", mode, ("auto", "min", "max"))
    check_number(fn, "validation_split", validation_split)
    check_in_range(fn, "validation_split", validation_split, 0.0, 1.0)
    if validation_split and validation_data is not None:
        raise ValueError(f"{fn}: pass validation_split or validation_data, not both")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            f"{fn}: early_stopping must be an optlab.callbacks.EarlyStopping or None, got "
            f"{describe_value(early_stopping)}"
        )
    if halving is not None and not isinstance(halving, HalvingConfig):
        raise TypeError(
            f"{fn}: halving must be an optlab.tune.HalvingConfig or None, got "
            f"{describe_value(halving)}"
        )
    if isinstance(static, str) or not all(isinstance(s, str) for s in static):
        raise TypeError(f"{fn}: static must be a list of names, got {describe_value(static)}")
    if memory_budget is not None:
        check_int_range(fn, "memory_budget", memory_budget, 1)
    check_bool(fn, "drop_remainder", drop_remainder)
    check_callable(fn, "augment", augment, none=True)
    check_bool(fn, "skip_nonfinite", skip_nonfinite)
    check_int_range(fn, "max_consecutive_nonfinite", max_consecutive_nonfinite, 1)
    check_bool(fn, "warn", warn)
    configs = _configs(fn, space, trials, sampler, search_seed)
    seed_list = _seeds(fn, seeds)
    names = list(dict.fromkeys(k for c in configs for k in c))
    for c in configs:
        if list(c) != names and set(c) != set(names):
            raise ValueError(
                f"{fn}: every configuration must have the same keys, got {sorted(c)} and "
                f"{sorted(names)}"
            )
    x, y, x_val, y_val = split_validation(fn, data, validation_data, validation_split)
    check_finite_rows(fn, (x, y), (x_val, y_val))
    if metric.startswith("val_") and x_val is None:
        raise ValueError(
            f"{fn}: metric={metric!r} needs validation data: pass validation_data=(x_val, "
            "y_val) or validation_split (or rank by metric='loss')"
        )
    mode = default_mode(metric) if mode == "auto" else mode
    if isinstance(metrics, str) and metrics == "auto":
        metrics = default_metrics(y)
    check_loss(fn, loss)
    step_fn, eval_fn = engine_steps(loss, metrics or (), skip_nonfinite)
    batch_size = min(batch_size, int(x.shape[0]))
    val = None
    if x_val is not None:
        size = resolve_batch_size(fn, "eval_batch_size", eval_batch_size, int(x_val.shape[0]))
        val = eval_batches(x_val, y_val, size)

    model_keys = _model_keys(model_fn, configs[0])
    static_names = set(static) | model_keys
    static_names |= {k for k in names if not all(_is_float(c[k]) for c in configs)}
    traced = [k for k in names if k not in static_names]
    groups = _group(configs, static_names)

    cache_before = population_epoch._cache_size()
    populations: list[tuple[Population, list[tuple[int, int]]]] = []
    chunk, per_member = None, 0
    for indices in groups.values():
        group_configs = [configs[i] for i in indices]
        states, keys = _init_group(
            model_fn, tx_fn, group_configs, seed_list, traced, static_names, fn
        )
        members = [(i, s) for i in indices for s in seed_list]
        group_bytes = member_bytes(step_fn, take(states, 0), x, y, batch_size)
        per_member = max(per_member, group_bytes)
        chunk = chunk_size_for(memory_budget, group_bytes, len(members))
        pop = Population(
            states,
            keys,
            step_fn=step_fn,
            eval_fn=eval_fn,
            x=x,
            y=y,
            val=val,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            augment=augment,
            chunk_size=chunk,
            early_stopping=early_stopping,
            max_consecutive_nonfinite=max_consecutive_nonfinite,
            mesh=mesh,
        )
        populations.append((pop, members))

    train_start = time.perf_counter()
    budgets = {(i, s): epochs for i in range(len(configs)) for s in seed_list}
    alive = set(range(len(configs)))
    running = list(populations)
    rungs = rung_epochs(halving.min_epochs, halving.eta, epochs) if halving else []
    for until in [*rungs, epochs]:
        for pop, _ in running:
            pop.run(until)
        if until == epochs or halving is None or len(alive) <= halving.eta:
            continue
        scores = _config_scores(_collect(populations, configs, budgets, metric), metric, mode)
        keep = set(_ranked(alive, scores, mode)[: math.ceil(len(alive) / halving.eta)])
        for i in alive - keep:
            for s in seed_list:
                budgets[(i, s)] = until
        alive = keep
        for pop, members in running:
            pop.compact([pid for pid in pop.ids if members[pid][0] in keep])
        running = [(pop, members) for pop, members in running if pop.size]

    train_time = time.perf_counter() - train_start
    all_members = _collect(populations, configs, budgets, metric)
    result = SweepResult(
        configs=configs,
        seeds=seed_list,
        members=all_members,
        metric=metric,
        mode=mode,
        space=space if isinstance(space, Space) else None,
        traced=traced,
        static=sorted(static_names & set(names)),
        groups=len(groups),
        compilations=population_epoch._cache_size() - cache_before,
        chunk_size=chunk or 1,
        member_bytes=per_member,
        epochs=epochs,
        member_epochs=sum(len(m.history) for m in all_members),
        wall_time=time.perf_counter() - start,
        train_time=train_time,
    )
    result.check(warn=warn)
    return result


def _ranked(candidates: set[int], scores: list[float], mode: str) -> list[int]:
    """Configurations best first; NaN scores (diverged) last; ties by index."""
    sign = 1.0 if mode == "min" else -1.0

    def key(i: int) -> tuple:
        finite = math.isfinite(scores[i])
        return (not finite, sign * scores[i] if finite else 0.0, i)

    return sorted(candidates, key=key)


def _collect(populations, configs, budgets, metric) -> list[Member]:
    """One :class:`Member` per (configuration, seed), configuration-major, from every
    population (members compacted away keep their histories)."""
    found: dict[tuple[int, int], Member] = {}
    for pop, members in populations:
        for pid, (i, s) in enumerate(members):
            found[(i, s)] = Member(
                config_index=i,
                config=configs[i],
                seed=s,
                history=pop.histories[pid],
                budget=budgets[(i, s)],
                stop_reason=pop.stop_reasons.get(pid),
                metric=metric,
            )
    return [found[k] for k in sorted(found)]
