"""Joining schedules one after another, and converting epoch boundaries to step boundaries."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from optlab.core.base import Schedule
from optlab.core.numerics import is_concrete_number
from optlab.core.validation import check_sequence
from optlab.schedules._common import check_steps


def check_increasing(fn: str, name: str, boundaries: Sequence[Any]) -> None:
    """Boundaries must be integers ``>= 0`` in strictly increasing order (concrete ones)."""
    for b in boundaries:
        check_steps(fn, f"{name} (each boundary)", b, 0)
    concrete = [b for b in boundaries if is_concrete_number(b)]
    if len(concrete) == len(boundaries) and any(a >= b for a, b in itertools.pairwise(concrete)):
        raise ValueError(
            f"{fn}: {name} must be strictly increasing, got {name}={list(boundaries)!r}"
        )


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Runs schedules one after another, each restarting its own count at its boundary.

    With boundaries :math:`b_1 < \dots < b_{n-1}` (and :math:`b_0 = 0`), for
    :math:`b_{i} \le t < b_{i+1}`:

    .. math::

        \eta_t = \eta^{(i)}_{t - b_i}

    Args:
      schedules: ``n`` schedules.
      boundaries: ``n - 1`` strictly increasing steps ``>= 0`` at which to switch.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> warm = ol.linear_schedule(0.0, 1.0, transition_steps=2)
      >>> decay = ol.exponential_decay(1.0, transition_steps=1, decay_rate=0.5)
      >>> sched = ol.join_schedules([warm, decay], [2])
      >>> print([float(sched(t)) for t in range(5)])
      [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    fn = "join_schedules"
    schedules = check_sequence(fn, "schedules", schedules)
    boundaries = check_sequence(fn, "boundaries", boundaries)
    if not schedules:
        raise ValueError(f"{fn}: schedules must not be empty, got schedules={schedules!r}")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"{fn}: boundaries must have one entry fewer than schedules ({len(schedules)}), "
            f"got {len(boundaries)}: boundaries={boundaries!r}"
        )
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"{fn}: schedules[{i}] must be a callable count -> value, got {s!r}")
    check_increasing(fn, "boundaries", boundaries)

    def schedule(count):
        value = schedules[0](count)
        for boundary, sched in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(count < boundary, value, sched(count - boundary))
        return value

    return schedule


def epochs_to_steps(epochs: Any, steps_per_epoch: int) -> Any:
    """Converts epoch boundaries to step boundaries: epoch ``e`` starts at step ``e * n``.

    Accepts one epoch, a sequence of epochs (strictly increasing) or a dict ``{epoch: value}``
    (as taken by :func:`optlab.piecewise_constant_schedule`) and returns the same form.

    Args:
      epochs: an integer, a sequence of integers or a dict keyed by integers, all ``>= 0``.
      steps_per_epoch: :math:`n \\ge 1`, the number of updates per epoch.

    Returns:
      The step boundaries, in the form given.

    Examples:
      >>> import optlab as ol
      >>> ol.epochs_to_steps({30: 0.1, 60: 0.1, 90: 0.1}, steps_per_epoch=100)
      {3000: 0.1, 6000: 0.1, 9000: 0.1}
      >>> ol.epochs_to_steps([2, 5], steps_per_epoch=10)
      [20, 50]
    """
    fn = "epochs_to_steps"
    check_steps(fn, "steps_per_epoch", steps_per_epoch, 1)
    if not is_concrete_number(steps_per_epoch):
        raise ValueError(
            f"{fn}: steps_per_epoch must be a Python integer, got "
            f"steps_per_epoch={steps_per_epoch!r}"
        )
    n = int(steps_per_epoch)
    if isinstance(epochs, Mapping):
        check_increasing(fn, "epochs", sorted(epochs))
        return {int(e) * n: v for e, v in epochs.items()}
    if isinstance(epochs, Sequence) and not isinstance(epochs, str):
        check_increasing(fn, "epochs", list(epochs))
        return [int(e) * n for e in epochs]
    check_steps(fn, "epochs", epochs, 0)
    return int(epochs) * n
