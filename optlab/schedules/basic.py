r"""Monotone decays: constant, polynomial/linear, piecewise, exponential, 1/t and 1/sqrt(t).

Every schedule maps the step count :math:`t` (the number of updates already applied, 0 for the
first) to a value. Names, arguments and defaults follow optax where optax has the schedule;
``inverse_time_decay`` and ``inverse_sqrt_schedule`` are the seeds' :math:`1/t` and
:math:`1/\sqrt t` decays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from optlab.core.base import Schedule
from optlab.core.validation import check_bool, check_finite, check_nonnegative, check_positive
from optlab.schedules._common import check_choice, check_steps, check_values


def constant_schedule(value: Any) -> Schedule:
    """A schedule that always returns ``value``: :math:`\\eta_t = \\eta_0`.

    Args:
      value: the value held throughout (finite, ``>= 0``).

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.constant_schedule(0.5)
      >>> print(sched(0), sched(1000))
      0.5 0.5
    """
    check_values("constant_schedule", value=value)
    return lambda count: value


def polynomial_schedule(
    init_value: Any,
    end_value: Any,
    power: Any,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""A polynomial transition from ``init_value`` to ``end_value``.

    .. math::

        \eta_t = (\eta_0 - \eta_\infty)
                 \left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^{p} + \eta_\infty

    with :math:`B` = ``transition_begin``, :math:`T` = ``transition_steps`` and :math:`p` =
    ``power``: the value is held at :math:`\eta_0` until step :math:`B` and at
    :math:`\eta_\infty` from step :math:`B + T` on.

    Args:
      init_value: :math:`\eta_0`.
      end_value: :math:`\eta_\infty`.
      power: :math:`p > 0`.
      transition_steps: :math:`T \ge 1`.
      transition_begin: :math:`B \ge 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
      >>> print([float(sched(t)) for t in (0, 2, 4, 10)])
      [1.0, 0.25, 0.0, 0.0]
    """
    fn = "polynomial_schedule"
    check_values(fn, init_value=init_value, end_value=end_value)
    check_positive(fn, "power", power)
    check_steps(fn, "transition_steps", transition_steps, 1)
    check_steps(fn, "transition_begin", transition_begin, 0)

    def schedule(count):
        steps = jnp.clip(count - transition_begin, 0, transition_steps)
        frac = 1 - steps / transition_steps
        return (init_value - end_value) * frac**power + end_value

    return schedule


def linear_schedule(
    init_value: Any,
    end_value: Any,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""A linear transition from ``init_value`` to ``end_value`` (the seeds' linear decay).

    .. math::

        \eta_t = \eta_0 + \frac{\min(\max(t - B, 0), T)}{T}\,(\eta_\infty - \eta_0)

    This is :func:`polynomial_schedule` with ``power=1``; with :math:`\eta_\infty = 0` and
    :math:`B = 0` it is :math:`\alpha_t = \alpha_0 (1 - t/T)`.

    Args:
      init_value: :math:`\eta_0`.
      end_value: :math:`\eta_\infty`.
      transition_steps: :math:`T \ge 1`.
      transition_begin: :math:`B \ge 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.linear_schedule(1.0, 0.0, transition_steps=4)
      >>> print([float(sched(t)) for t in (0, 1, 4, 9)])
      [1.0, 0.75, 0.0, 0.0]
    """
    fn = "linear_schedule"
    check_values(fn, init_value=init_value, end_value=end_value)
    check_steps(fn, "transition_steps", transition_steps, 1)
    check_steps(fn, "transition_begin", transition_begin, 0)
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def _sorted_boundaries(fn: str, boundaries_and_scales: Mapping[int, Any] | None):
    if boundaries_and_scales is None:
        return []
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            f"{fn}: boundaries_and_scales must be a dict {{step: scale}}, got "
            f"boundaries_and_scales={boundaries_and_scales!r}"
        )
    for boundary, scale in boundaries_and_scales.items():
        check_steps(fn, "boundaries_and_scales (a boundary)", boundary, 0)
        check_nonnegative(fn, f"boundaries_and_scales[{boundary}]", scale)
    return sorted(boundaries_and_scales.items())


def piecewise_constant_schedule(
    init_value: Any, boundaries_and_scales: Mapping[int, Any] | None = None
) -> Schedule:
    r"""Step decay: the value is multiplied by a factor at given steps.

    .. math::

        \eta_t = \eta_0 \prod_{i:\; b_i \le t} s_i

    for ``boundaries_and_scales = {b_1: s_1, b_2: s_2, ...}``. The seeds' "multiply the
    learning rate by 0.1 after epochs 30, 60 and 90" is ``{30 * n: 0.1, 60 * n: 0.1,
    90 * n: 0.1}`` with :math:`n` steps per epoch (see :func:`optlab.epochs_to_steps`).

    Args:
      init_value: :math:`\eta_0`.
      boundaries_and_scales: ``{step: scale}``; steps are integers ``>= 0`` and scales are
        ``>= 0``.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.5})
      >>> print([float(sched(t)) for t in range(6)])
      [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    fn = "piecewise_constant_schedule"
    check_values(fn, init_value=init_value)
    items = _sorted_boundaries(fn, boundaries_and_scales)

    def schedule(count):
        value = jnp.asarray(init_value)
        for boundary, scale in items:
            value = jnp.where(count >= boundary, scale * value, value)
        return value

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: Any,
    boundaries_and_scales: Mapping[int, Any] | None = None,
) -> Schedule:
    r"""Linear or cosine interpolation between values that jump by factors at given steps.

    With :math:`v_0 = \eta_0` and :math:`v_i = v_{i-1} s_i` at the sorted boundaries
    :math:`b_i` (:math:`b_0 = 0`), for :math:`b_{i-1} \le t < b_i` and
    :math:`x = (t - b_{i-1}) / (b_i - b_{i-1})`:

    .. math::

        \eta_t = v_{i-1} + (v_i - v_{i-1})\, x \quad\text{(linear)}, \qquad
        \eta_t = v_i + \tfrac12 (v_{i-1} - v_i)(1 + \cos \pi x) \quad\text{(cosine)},

    and :math:`\eta_t = v_n` after the last boundary.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: :math:`\eta_0`.
      boundaries_and_scales: ``{step: scale}``.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.piecewise_interpolate_schedule("linear", 1.0, {4: 0.5})
      >>> print([float(sched(t)) for t in (0, 2, 4, 8)])
      [1.0, 0.75, 0.5, 0.5]
    """
    fn = "piecewise_interpolate_schedule"
    check_choice(fn, "interpolate_type", interpolate_type, ("linear", "cosine"))
    check_values(fn, init_value=init_value)
    items = _sorted_boundaries(fn, boundaries_and_scales)
    boundaries = [b for b, _ in items]
    scales = [s for _, s in items]

    def interpolate(start, end, pct):
        if interpolate_type == "linear":
            return (end - start) * pct + start
        return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)

    def schedule(count):
        if not boundaries:
            return jnp.asarray(init_value)
        bounds = jnp.asarray([0, *boundaries])
        values = jnp.cumprod(jnp.stack([jnp.asarray(v) for v in (init_value, *scales)]))
        sizes = jnp.maximum(bounds[1:] - bounds[:-1], 1)
        inside = jnp.logical_and(bounds[:-1] <= count, count < bounds[1:])
        pct = (count - bounds[:-1]) / sizes
        interp = interpolate(values[:-1], values[1:], pct)
        return jnp.sum(jnp.where(inside, interp, 0.0)) + jnp.where(
            bounds[-1] <= count, values[-1], 0.0
        )

    return schedule


def exponential_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> Schedule:
    r"""Exponential decay, continuous or in stairs (the seeds' :math:`\alpha_0 e^{-kt}`).

    .. math::

        \eta_t = \eta_0\, r^{\,p_t}, \qquad p_t = \frac{\max(t - B, 0)}{T}
        \quad(\lfloor p_t \rfloor \text{ with } \texttt{staircase})

    with :math:`r` = ``decay_rate`` (:math:`\alpha_0 e^{-kt}` is :math:`r = e^{-k}`,
    :math:`T = 1`). With ``end_value`` the value stops there: a lower bound when :math:`r < 1`,
    an upper bound otherwise.

    Args:
      init_value: :math:`\eta_0`.
      transition_steps: :math:`T \ge 1`.
      decay_rate: :math:`r > 0`.
      transition_begin: :math:`B \ge 0`: the value is held at :math:`\eta_0` until then.
      staircase: decay at whole multiples of :math:`T` only.
      end_value: optional bound.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.exponential_decay(1.0, transition_steps=2, decay_rate=0.5, staircase=True)
      >>> print([float(sched(t)) for t in range(5)])
      [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    fn = "exponential_decay"
    check_values(fn, init_value=init_value)
    check_finite(fn, "end_value", end_value, none=True)
    check_steps(fn, "transition_steps", transition_steps, 1)
    check_positive(fn, "decay_rate", decay_rate)
    check_steps(fn, "transition_begin", transition_begin, 0)
    check_bool(fn, "staircase", staircase)

    def schedule(count):
        steps = count - transition_begin
        p = steps / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(steps <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            value = jnp.where(
                decay_rate < 1.0, jnp.maximum(value, end_value), jnp.minimum(value, end_value)
            )
        return value

    return schedule


def inverse_time_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: Any,
    staircase: bool = False,
) -> Schedule:
    r"""The :math:`1/t` decay :math:`\alpha_0 / (1 + k t)` (Keras' ``InverseTimeDecay``).

    .. math::

        \eta_t = \frac{\eta_0}{1 + k\, t / T}
        \quad(\lfloor t / T \rfloor \text{ with } \texttt{staircase})

    with :math:`k` = ``decay_rate`` and :math:`T` = ``transition_steps``. It is the seeds'
    "cooling" :math:`\eta / (1 + \epsilon k)` and the legacy Keras ``SGD(lr, decay=k)``
    (both with :math:`T = 1`).

    Args:
      init_value: :math:`\eta_0`.
      transition_steps: :math:`T \ge 1`.
      decay_rate: :math:`k \ge 0`.
      staircase: decay at whole multiples of :math:`T` only.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.inverse_time_decay(1.0, transition_steps=1, decay_rate=1.0)
      >>> print([float(sched(t)) for t in range(4)])
      [1.0, 0.5, 0.3333333432674408, 0.25]

    References:
      Keras, `InverseTimeDecay
      <https://keras.io/api/optimizers/learning_rate_schedules/inverse_time_decay/>`_.
    """
    fn = "inverse_time_decay"
    check_values(fn, init_value=init_value)
    check_steps(fn, "transition_steps", transition_steps, 1)
    check_nonnegative(fn, "decay_rate", decay_rate)
    check_bool(fn, "staircase", staircase)

    def schedule(count):
        p = jnp.asarray(count) / transition_steps
        if staircase:
            p = jnp.floor(p)
        return init_value / (1 + decay_rate * p)

    return schedule


def inverse_sqrt_schedule(init_value: Any, warmup_steps: int = 0) -> Schedule:
    r"""The :math:`1/\sqrt t` decay, after an optional linear warmup (the Transformer's rule).

    With :math:`s = t + 1` the number of the update being made and
    :math:`W' = \max(W, 1)`:

    .. math::

        \eta_t = \eta_0 \min\!\left(\frac{s}{W'}, \sqrt{\frac{W'}{s}}\right)

    so the value rises linearly to :math:`\eta_0` at update :math:`W`, then decays as
    :math:`\eta_0 \sqrt{W / s}`; without warmup it is :math:`\eta_0 / \sqrt{s}`. The Transformer's
    :math:`d^{-1/2} \min(s^{-1/2}, s W^{-3/2})` is :math:`\eta_0 = (d W)^{-1/2}`.

    Args:
      init_value: :math:`\eta_0`, the peak value.
      warmup_steps: :math:`W \ge 0`.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.inverse_sqrt_schedule(1.0, warmup_steps=4)
      >>> print([float(sched(t)) for t in (0, 1, 3, 15)])
      [0.25, 0.5, 1.0, 0.5]

    References:
      Vaswani et al., `Attention is all you need <https://arxiv.org/abs/1706.03762>`_, 2017.
    """
    fn = "inverse_sqrt_schedule"
    check_values(fn, init_value=init_value)
    check_steps(fn, "warmup_steps", warmup_steps, 0)

    def schedule(count):
        s = jnp.asarray(count) + 1.0
        w = jnp.maximum(warmup_steps, 1)
        return init_value * jnp.minimum(s / w, jnp.sqrt(w / s))

    return schedule
