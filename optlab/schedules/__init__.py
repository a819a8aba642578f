"""Schedules: pure functions ``count -> value`` of the integer step, written in ``jax.numpy``.

A schedule depends on the step count and on nothing else, so a run resumed from step ``k``
continues exactly where an uninterrupted run would. Schedules are accepted wherever a
hyperparameter is (``ol.sgd(ol.cosine_decay_schedule(0.1, 1000))``); their numeric arguments
may be jax arrays (traced: a sweep over them does not recompile). :func:`inject_hyperparams`
moves an optimizer's hyperparameters into its state, where they can be read and overwritten.

Modules: ``basic`` (constant, polynomial/linear, piecewise, exponential, inverse-time and
inverse-square-root decays), ``cosine`` (cosine decay, warm restarts, one-cycle), ``warmup``
(warmup followed by a constant, exponential or warmup-stable-decay phase), ``cyclic`` (cyclical
learning rates), ``join`` (joining schedules, epoch to step conversion), ``inject``.
"""
