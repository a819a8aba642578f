r"""Cosine decay, warmup + cosine decay, warm restarts (SGDR) and the one-cycle policies."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp

from optlab.core.base import Schedule
from optlab.core.numerics import is_concrete_number
from optlab.core.validation import check_in_range, check_positive
from optlab.schedules._common import check_steps, check_values
from optlab.schedules.basic import piecewise_interpolate_schedule
from optlab.schedules.join import join_schedules


def _cosine_factor(count: Any, steps: Any, exponent: Any) -> Any:
    """:math:`[\\tfrac12 (1 + \\cos(\\pi \\min(t, T) / T))]^p`."""
    dtype = jnp.result_type(float)
    steps = jnp.asarray(steps, dtype)  # a Python int past int32 (1e10 steps) stays exact enough
    t = jnp.minimum(jnp.asarray(count, dtype), steps)
    return (0.5 * (1 + jnp.cos(jnp.pi * t / steps))) ** exponent


def cosine_decay_schedule(
    init_value: Any,
    decay_steps: int,
    alpha: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value`` (the seeds' cosine rule).

    .. math::

        \eta_t = \eta_0 \left[(1 - \alpha)
                 \left(\tfrac12\left(1 + \cos\frac{\pi \min(t, T)}{T}\right)\right)^{p}
                 + \alpha\right]

    With :math:`\alpha = 0, p = 1` it is :math:`\alpha_t = \tfrac12 \alpha_0 (1 + \cos(t\pi/T))`.

    Args:
      init_value: :math:`\eta_0`.
      decay_steps: :math:`T \ge 1`.
      alpha: :math:`\alpha \in [0, 1]`, the final value as a fraction of :math:`\eta_0`.
      exponent: :math:`p > 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.cosine_decay_schedule(1.0, decay_steps=4)
      >>> print([round(float(sched(t)), 4) for t in (0, 2, 4, 8)])
      [1.0, 0.5, 0.0, 0.0]

    References:
      Loshchilov and Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
      <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    fn = "cosine_decay_schedule"
    check_values(fn, init_value=init_value)
    check_steps(fn, "decay_steps", decay_steps, 1)
    # alpha > 1 would make the "decay" grow, alpha < 0 end below zero: refused.
    check_in_range(fn, "alpha", alpha, 0.0, 1.0, high_closed=True)
    check_positive(fn, "exponent", exponent)

    def schedule(count):
        return init_value * ((1 - alpha) * _cosine_factor(count, decay_steps, exponent) + alpha)

    return schedule


def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    With :math:`W` = ``warmup_steps`` and :math:`T` = ``decay_steps`` (the total length,
    warmup included):

    .. math::

        \eta_t = \begin{cases}
          \eta_0 + (\eta_{\max} - \eta_0)\, t / W & t < W \\
          \eta_\infty + (\eta_{\max} - \eta_\infty)
            \left(\tfrac12\left(1 + \cos\frac{\pi \min(t - W, T - W)}{T - W}\right)\right)^{p}
            & t \ge W
        \end{cases}

    Args:
      init_value: :math:`\eta_0`.
      peak_value: :math:`\eta_{\max}`.
      warmup_steps: :math:`W \ge 0`.
      decay_steps: :math:`T > W`, the total length of the schedule.
      end_value: :math:`\eta_\infty`.
      exponent: :math:`p > 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=6)
      >>> print([round(float(sched(t)), 4) for t in range(7)])
      [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0]

    References:
      Goyal et al., `Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour
      <https://arxiv.org/abs/1706.02677>`_, 2017 (warmup); Loshchilov and Hutter, `SGDR
      <https://arxiv.org/abs/1608.03983>`_, 2017 (cosine).
    """
    fn = "warmup_cosine_decay_schedule"
    check_values(fn, init_value=init_value, peak_value=peak_value, end_value=end_value)
    check_steps(fn, "warmup_steps", warmup_steps, 0)
    check_steps(fn, "decay_steps", decay_steps, 1)
    check_positive(fn, "exponent", exponent)
    if (
        is_concrete_number(warmup_steps)
        and is_concrete_number(decay_steps)
        and (warmup_steps >= decay_steps)
    ):
        raise ValueError(
            f"{fn}: warmup_steps must be < decay_steps (the total length, warmup included), "
            f"got warmup_steps={warmup_steps}, decay_steps={decay_steps}"
        )

    def schedule(count):
        t = jnp.asarray(count, jnp.result_type(float))
        warm = init_value + (peak_value - init_value) * t / jnp.maximum(warmup_steps, 1)
        cos = _cosine_factor(t - warmup_steps, decay_steps - warmup_steps, exponent)
        return jnp.where(t < warmup_steps, warm, end_value + (peak_value - end_value) * cos)

    return schedule


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    r"""Stochastic gradient descent with warm restarts: cosine cycles joined end to end.

    Cycle :math:`i` is :func:`warmup_cosine_decay_schedule` with ``cosine_kwargs[i]`` and lasts
    its ``decay_steps``; the next one restarts from its own step 0. With ``warmup_steps=0``,
    ``peak_value`` :math:`\eta_{\max}`, ``end_value`` :math:`\eta_{\min}` and cycle lengths
    :math:`T_i`, this is torch's ``CosineAnnealingWarmRestarts``:

    .. math::

        \eta_t = \eta_{\min} + \tfrac12 (\eta_{\max} - \eta_{\min})
                 \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    where :math:`T_{cur}` counts the steps since the last restart.

    Args:
      cosine_kwargs: one dict of :func:`warmup_cosine_decay_schedule` arguments per cycle.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> cycle = dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=2)
      >>> sched = ol.sgdr_schedule([cycle, cycle])
      >>> print([round(float(sched(t)), 4) for t in range(5)])
      [1.0, 0.5, 1.0, 0.5, 0.0]

    References:
      Loshchilov and Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
      <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    fn = "sgdr_schedule"
    if isinstance(cosine_kwargs, Mapping | str) or not isinstance(cosine_kwargs, Iterable):
        raise TypeError(
            f"{fn}: cosine_kwargs must be a list of dicts of warmup_cosine_decay_schedule "
            f"arguments, one per cycle, got cosine_kwargs={cosine_kwargs!r:.60}"
        )
    cycles = list(cosine_kwargs)
    for i, kwargs in enumerate(cycles):
        if not isinstance(kwargs, Mapping):
            raise TypeError(
                f"{fn}: cosine_kwargs[{i}] must be a dict of warmup_cosine_decay_schedule "
                f"arguments, got {kwargs!r:.60}"
            )
    if not cycles:
        raise ValueError(f"{fn}: cosine_kwargs must hold at least one cycle, got []")
    schedules, boundaries, step = [], [], 0
    for i, kwargs in enumerate(cycles):
        if "decay_steps" not in kwargs:
            raise ValueError(f"{fn}: cosine_kwargs[{i}] must give decay_steps, got {kwargs!r}")
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    return join_schedules(schedules, boundaries[:-1])


def _onecycle_boundaries(fn: str, transition_steps: int, *fractions: float) -> list[int]:
    check_steps(fn, "transition_steps", transition_steps, 1)
    bounds = [int(f * transition_steps) for f in fractions] + [int(transition_steps)]
    if any(a >= b for a, b in itertools.pairwise(bounds)) or bounds[0] < 1:
        raise ValueError(
            f"{fn}: transition_steps={transition_steps} is too small for the phase fractions "
            f"{fractions}: the phases would start at steps {bounds}, which must be strictly "
            f"increasing and >= 1"
        )
    return bounds


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""The one-cycle policy with three linear phases.

    With :math:`\eta_0 = \eta_{\max} / d`: up linearly from :math:`\eta_0` to
    :math:`\eta_{\max}` until step ``pct_start * T``, back down to :math:`\eta_0` until
    ``pct_final * T``, then down to :math:`\eta_0 / d_f` at step :math:`T`, where it stays.

    Args:
      transition_steps: :math:`T`, the length of the cycle.
      peak_value: :math:`\eta_{\max}`.
      pct_start: fraction of :math:`T` spent rising, in (0, 1).
      pct_final: fraction of :math:`T` at which the value is back at :math:`\eta_0`, in
        (``pct_start``, 1).
      div_factor: :math:`d > 0`.
      final_div_factor: :math:`d_f > 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.linear_onecycle_schedule(10, 1.0, pct_start=0.2, pct_final=0.6,
      ...                                     div_factor=2.0, final_div_factor=5.0)
      >>> print([round(float(sched(t)), 4) for t in (0, 1, 2, 4, 6, 8, 10)])
      [0.5, 0.75, 1.0, 0.75, 0.5, 0.3, 0.1]

    References:
      Smith and Topin, `Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    fn = "linear_onecycle_schedule"
    check_values(fn, peak_value=peak_value)
    check_in_range(fn, "pct_start", pct_start, 0.0, 1.0, low_closed=False)
    check_in_range(fn, "pct_final", pct_final, pct_start, 1.0, low_closed=False)
    check_positive(fn, "div_factor", div_factor)
    check_positive(fn, "final_div_factor", final_div_factor)
    b1, b2, b3 = _onecycle_boundaries(fn, transition_steps, pct_start, pct_final)
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {b1: div_factor, b2: 1.0 / div_factor, b3: 1.0 / final_div_factor},
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""The one-cycle policy with cosine phases.

    With :math:`\eta_0 = \eta_{\max} / d`: a cosine rise from :math:`\eta_0` to
    :math:`\eta_{\max}` until step ``pct_start * T``, then a cosine fall to
    :math:`\eta_0 / d_f` at step :math:`T`, where it stays.

    Args:
      transition_steps: :math:`T`, the length of the cycle.
      peak_value: :math:`\eta_{\max}`.
      pct_start: fraction of :math:`T` spent rising, in (0, 1).
      div_factor: :math:`d > 0`.
      final_div_factor: :math:`d_f > 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.cosine_onecycle_schedule(4, 1.0, pct_start=0.5, div_factor=2.0,
      ...                                     final_div_factor=5.0)
      >>> print([round(float(sched(t)), 4) for t in range(6)])
      [0.5, 0.75, 1.0, 0.55, 0.1, 0.1]

    References:
      Smith and Topin, `Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    fn = "cosine_onecycle_schedule"
    check_values(fn, peak_value=peak_value)
    check_in_range(fn, "pct_start", pct_start, 0.0, 1.0, low_closed=False)
    check_positive(fn, "div_factor", div_factor)
    check_positive(fn, "final_div_factor", final_div_factor)
    b1, b2 = _onecycle_boundaries(fn, transition_steps, pct_start)
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {b1: div_factor, b2: 1.0 / (div_factor * final_div_factor)},
    )
