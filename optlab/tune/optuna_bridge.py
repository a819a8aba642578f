"""Optuna's samplers (TPE, CMA-ES...) with vmapped trials: ask a batch, train it, tell it.

Optuna proposes one trial at a time; :func:`optuna_ask_tell` asks ``n`` trials of a study,
trains them as one :func:`~optlab.tune.sweep.sweep` (one compiled program), and tells each its
score (the mean over seeds of its best metric; a trial whose score is NaN is told it failed).
Optuna is optional: ``pip install 'optlab[tune]'``.

References:
  Akiba, Sano, Yanase, Ohta and Koyama, "Optuna: A Next-generation Hyperparameter
  Optimization Framework", KDD 2019 (the ask-and-tell interface).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from optlab.core.validation import check_int_range, describe_value
from optlab.train.history import default_mode
from optlab.tune.results import SweepResult
from optlab.tune.space import Choice, IntUniform, LogUniform, Space, Uniform
from optlab.tune.sweep import sweep


def _optuna(fn: str) -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError(
            f"{fn} needs optuna, which is optional: pip install 'optlab[tune]'"
        ) from None
    return optuna


def optuna_distributions(space: Space) -> dict[str, Any]:
    """The Optuna distribution of each dimension of ``space`` (log-uniform as ``log=True``).

    Examples:
      >>> space = ol.tune.Space(lr=ol.tune.log_uniform(1e-4, 1e-1), width=[32, 64])
      >>> sorted(optuna_distributions(space))
      ['lr', 'width']
    """
    optuna = _optuna("optuna_distributions")
    dists = optuna.distributions
    out = {}
    for name, d in space.dimensions.items():
        if isinstance(d, LogUniform):
            out[name] = dists.FloatDistribution(d.low, d.high, log=True)
        elif isinstance(d, Uniform):
            out[name] = dists.FloatDistribution(d.low, d.high)
        elif isinstance(d, IntUniform):
            out[name] = dists.IntDistribution(d.low, d.high)
        elif isinstance(d, Choice):
            out[name] = dists.CategoricalDistribution(d.options)
    return out


def optuna_ask_tell(
    study: Any,
    n: int,
    *,
    space: Space,
    model_fn: Callable,
    tx_fn: Callable,
    data: Any,
    rounds: int = 1,
    **sweep_kwargs: Any,
) -> list[SweepResult]:
    """Runs ``rounds`` batches of ``n`` trials asked from ``study``, each batch one sweep.

    Args:
      study: an ``optuna.Study`` whose direction matches the metric (``minimize`` for
        ``val_loss``, ``maximize`` for accuracies).
      n: trials per batch (members of one compiled program, times the seeds).
      space: the :class:`~optlab.tune.space.Space` the trials are asked in.
      model_fn, tx_fn, data: as :func:`~optlab.tune.sweep.sweep`.
      rounds: the number of batches (the sampler learns from each before the next).
      **sweep_kwargs: the other arguments of :func:`~optlab.tune.sweep.sweep` (``loss``,
        ``epochs``, ``seeds``, ``metric``, ``validation_data``...).

    Returns:
      The :class:`~optlab.tune.results.SweepResult` of each batch; the study holds every
      trial with its value (``study.best_params``).
    """
    fn = "optuna_ask_tell"
    optuna = _optuna(fn)
    if not isinstance(study, optuna.Study):
        raise TypeError(f"{fn}: study must be an optuna.Study, got {describe_value(study)}")
    check_int_range(fn, "n", n, 1)
    check_int_range(fn, "rounds", rounds, 1)
    if not isinstance(space, Space):
        raise TypeError(f"{fn}: space must be an optlab.tune.Space, got {describe_value(space)}")
    for reserved in ("trials", "sampler", "search_seed"):
        if reserved in sweep_kwargs:
            raise TypeError(f"{fn}: {reserved}= is chosen by the study, not passed here")
    metric = sweep_kwargs.get("metric", "val_loss")
    mode = sweep_kwargs.get("mode", "auto")
    mode = default_mode(metric) if mode == "auto" else mode
    wanted = (
        optuna.study.StudyDirection.MINIMIZE
        if mode == "min"
        else (optuna.study.StudyDirection.MAXIMIZE)
    )
    if study.direction != wanted:
        raise ValueError(
            f"{fn}: the study's direction is {study.direction.name.lower()} but "
            f"{metric!r} is to be {'minimized' if mode == 'min' else 'maximized'}; create the "
            f"study with direction={'minimize' if mode == 'min' else 'maximize'!r}"
        )
    distributions = optuna_distributions(space)
    results = []
    for _ in range(rounds):
        trials = [study.ask(distributions) for _ in range(n)]
        configs = [{name: t.params[name] for name in space.names} for t in trials]
        result = sweep(model_fn, tx_fn, configs, data, **sweep_kwargs)
        for trial, score in zip(trials, result.scores, strict=True):
            if math.isfinite(score):
                study.tell(trial, score)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        results.append(result)
    return results
