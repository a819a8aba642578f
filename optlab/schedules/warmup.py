r"""Linear warmup followed by a constant, an exponential decay, or a stable phase and a decay.

Warmup (the seeds: "linearly increasing the learning rate from 0 over the first ~5000
iterations can prevent the loss from exploding") is a linear rise over :math:`W` steps:

.. math::

    \eta_t = \eta_0 + (\eta_{\max} - \eta_0) \min(t / W, 1)

``warmup_steps=0`` starts directly at :math:`\eta_{\max}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from optlab.core.base import Schedule
from optlab.schedules._common import check_choice, check_steps, check_values
from optlab.schedules.basic import exponential_decay
from optlab.schedules.join import join_schedules


def _linear_warmup(init_value: Any, peak_value: Any, warmup_steps: Any) -> Schedule:
    def schedule(count):
        frac = jnp.clip(jnp.asarray(count) / jnp.maximum(warmup_steps, 1), 0, 1)
        return jnp.where(
            jnp.asarray(count) >= warmup_steps,
            peak_value,
            init_value + (peak_value - init_value) * frac,
        )

    return schedule


def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: int) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value``, then constant.

    .. math::

        \eta_t = \eta_0 + (\eta_{\max} - \eta_0) \min(t / W, 1)

    Unlike optax (which then holds ``init_value`` forever), ``warmup_steps=0`` gives
    ``peak_value`` from the first step.

    Args:
      init_value: :math:`\eta_0`.
      peak_value: :math:`\eta_{\max}`.
      warmup_steps: :math:`W \ge 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.warmup_constant_schedule(0.0, 1.0, warmup_steps=4)
      >>> print([float(sched(t)) for t in (0, 1, 4, 100)])
      [0.0, 0.25, 1.0, 1.0]
    """
    fn = "warmup_constant_schedule"
    check_values(fn, init_value=init_value, peak_value=peak_value)
    check_steps(fn, "warmup_steps", warmup_steps, 0)
    return _linear_warmup(init_value, peak_value, warmup_steps)


def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then :func:`optlab.exponential_decay` from there.

    .. math::

        \eta_t = \begin{cases}
          \eta_0 + (\eta_{\max} - \eta_0)\, t / W & t < W \\
          \eta_{\max}\, r^{\,\max(t - W - B, 0) / T} & t \ge W
        \end{cases}

    (bounded by ``end_value``, with :math:`\lfloor\cdot\rfloor` on the exponent with
    ``staircase``).

    Args:
      init_value: :math:`\eta_0`.
      peak_value: :math:`\eta_{\max}`.
      warmup_steps: :math:`W \ge 0`.
      transition_steps: :math:`T \ge 1`.
      decay_rate: :math:`r > 0`.
      transition_begin: :math:`B \ge 0`, steps after the warmup before the decay starts.
      staircase: decay at whole multiples of :math:`T` only.
      end_value: optional bound (lower when :math:`r < 1`).

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.warmup_exponential_decay_schedule(0.0, 1.0, warmup_steps=2,
      ...                                              transition_steps=1, decay_rate=0.5)
      >>> print([float(sched(t)) for t in range(5)])
      [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    fn = "warmup_exponential_decay_schedule"
    check_values(fn, init_value=init_value, peak_value=peak_value)
    check_steps(fn, "warmup_steps", warmup_steps, 0)
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return join_schedules(
        [_linear_warmup(init_value, peak_value, warmup_steps), decay], [warmup_steps]
    )


_SHAPES: dict[str, Callable[[Any], Any]] = {
    "linear": lambda x: 1 - x,
    "cosine": lambda x: 0.5 * (1 + jnp.cos(jnp.pi * x)),
    "sqrt": lambda x: 1 - jnp.sqrt(x),
}


def warmup_stable_decay_schedule(
    peak_value: Any,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    init_value: Any = 0.0,
    end_value: Any = 0.0,
    decay_type: str | Callable[[Any], Any] = "linear",
) -> Schedule:
    r"""Warmup-stable-decay: a linear warmup, a constant phase, then a decay of your choice.

    With :math:`W, S, D` the lengths of the three phases and
    :math:`x = \min(\max(t - W - S, 0) / D, 1)` the progress of the decay:

    .. math::

        \eta_t = \begin{cases}
          \eta_0 + (\eta_{\max} - \eta_0)\, t / W & t < W \\
          \eta_\infty + (\eta_{\max} - \eta_\infty)\, f(x) & t \ge W
        \end{cases}

    where the shape :math:`f` (with :math:`f(0) = 1, f(1) = 0`) is ``"linear"``
    :math:`1 - x`, ``"cosine"`` :math:`\tfrac12 (1 + \cos \pi x)`, ``"sqrt"``
    :math:`1 - \sqrt{x}`, or any function of :math:`x` you pass.

    Args:
      peak_value: :math:`\eta_{\max}`, the value of the stable phase.
      warmup_steps: :math:`W \ge 0`.
      stable_steps: :math:`S \ge 0`.
      decay_steps: :math:`D \ge 1`.
      init_value: :math:`\eta_0`, the value at step 0.
      end_value: :math:`\eta_\infty`, the value from step :math:`W + S + D` on.
      decay_type: ``"linear"``, ``"cosine"``, ``"sqrt"`` or a jnp function ``x -> f(x)``.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.warmup_stable_decay_schedule(1.0, warmup_steps=2, stable_steps=2,
      ...                                         decay_steps=4)
      >>> print([float(sched(t)) for t in range(10)])
      [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

    References:
      Hägele et al., `Scaling Laws and Compute-Optimal Training Beyond Fixed Training
      Durations <https://arxiv.org/abs/2405.18392>`_, 2024; Hu et al., `MiniCPM
      <https://arxiv.org/abs/2404.06395>`_, 2024.
    """
    fn = "warmup_stable_decay_schedule"
    check_values(fn, init_value=init_value, peak_value=peak_value, end_value=end_value)
    check_steps(fn, "warmup_steps", warmup_steps, 0)
    check_steps(fn, "stable_steps", stable_steps, 0)
    check_steps(fn, "decay_steps", decay_steps, 1)
    if callable(decay_type):
        shape = decay_type
    else:
        check_choice(fn, "decay_type", decay_type, tuple(_SHAPES))
        shape = _SHAPES[decay_type]
    warmup = _linear_warmup(init_value, peak_value, warmup_steps)

    def schedule(count):
        t = jnp.asarray(count)
        x = jnp.clip((t - warmup_steps - stable_steps) / decay_steps, 0.0, 1.0)
        decayed = end_value + (peak_value - end_value) * shape(x)
        return jnp.where(t < warmup_steps, warmup(count), decayed)

    return schedule
