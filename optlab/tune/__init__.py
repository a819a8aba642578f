"""Tuning: learning-rate range tests, sanity checks, search spaces and vmapped sweeps.

The layer above :mod:`optlab.train` and :mod:`optlab.diagnostics`, below :mod:`optlab.cli`.
Every search trains its candidates with the engine's own epoch
(:func:`optlab.train.fit.fit_epoch`) under ``vmap``: one compiled program trains N
configurations x S seeds, and each member's history is the one :func:`optlab.fit` would give
it (:mod:`optlab.tune.population`).

- :func:`lr_find`: the learning-rate range test, its suggestions, and their verification.
- :func:`sanity_checks`: the babysitting checks before training (initial loss, overfitting a
  small sample, an input-independent baseline, per-example independence, NaN).
- :class:`Space` with :func:`log_uniform`, :func:`uniform`, :func:`int_uniform`,
  :func:`choice`; the samplers :func:`grid`, :func:`random`, :func:`quasi_random`;
  :func:`coarse_to_fine`.
- :func:`sweep`: configurations x seeds in one program per shape group, with early stopping,
  successive halving (:class:`HalvingConfig`) and memory chunks; :class:`SweepResult`.
- :func:`cross_validate`: k folds as one vmapped program.
- :func:`optuna_ask_tell`: Optuna's samplers, each batch of trials one sweep.
"""

from optlab.tune.crossval import CrossValidation as CrossValidation
from optlab.tune.crossval import cross_validate as cross_validate
from optlab.tune.lr_find import LRFindResult as LRFindResult
from optlab.tune.lr_find import lr_find as lr_find
from optlab.tune.optuna_bridge import optuna_ask_tell as optuna_ask_tell
from optlab.tune.optuna_bridge import optuna_distributions as optuna_distributions
from optlab.tune.results import Member as Member
from optlab.tune.results import SweepResult as SweepResult
from optlab.tune.results import TuningWarning as TuningWarning
from optlab.tune.sanity import Check as Check
from optlab.tune.sanity import SanityReport as SanityReport
from optlab.tune.sanity import sanity_checks as sanity_checks
from optlab.tune.space import CoarseToFine as CoarseToFine
from optlab.tune.space import Space as Space
from optlab.tune.space import choice as choice
from optlab.tune.space import coarse_to_fine as coarse_to_fine
from optlab.tune.space import grid as grid
from optlab.tune.space import int_uniform as int_uniform
from optlab.tune.space import log_uniform as log_uniform
from optlab.tune.space import quasi_random as quasi_random
from optlab.tune.space import random as random
from optlab.tune.space import uniform as uniform
from optlab.tune.sweep import HalvingConfig as HalvingConfig
from optlab.tune.sweep import sweep as sweep

__all__ = [
    "Check",
    "CoarseToFine",
    "CrossValidation",
    "HalvingConfig",
    "LRFindResult",
    "Member",
    "SanityReport",
    "Space",
    "SweepResult",
    "TuningWarning",
    "choice",
    "coarse_to_fine",
    "cross_validate",
    "grid",
    "int_uniform",
    "log_uniform",
    "lr_find",
    "optuna_ask_tell",
    "optuna_distributions",
    "quasi_random",
    "random",
    "sanity_checks",
    "sweep",
    "uniform",
]
