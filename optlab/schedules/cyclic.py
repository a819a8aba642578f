r"""Cyclical learning rates (triangular, triangular2, exp_range), as torch's ``CyclicLR``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from optlab.core.base import Schedule
from optlab.core.numerics import is_concrete_number
from optlab.core.validation import check_in_range
from optlab.schedules._common import check_choice, check_steps, check_values


def cyclic_schedule(
    base_value: Any,
    max_value: Any,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: Any = 1.0,
) -> Schedule:
    r"""Cycles between ``base_value`` and ``max_value`` (Smith's cyclical learning rates).

    With :math:`U, D` the steps up and down, :math:`L = U + D`, :math:`c = \lfloor 1 + t/L
    \rfloor` the cycle number and :math:`x = 1 + t / L - c` the position in the cycle:

    .. math::

        h = \begin{cases} x L / U & x \le U / L \\ (x - 1)/(U/L - 1) & \text{else}\end{cases},
        \qquad \eta_t = \eta_{\min} + (\eta_{\max} - \eta_{\min})\, h\, s

    where :math:`s = 1` (``"triangular"``), :math:`s = 2^{-(c - 1)}` (``"triangular2"``: the
    amplitude halves each cycle) or :math:`s = \gamma^t` (``"exp_range"``). This is torch's
    ``CyclicLR`` (``base_lr``, ``max_lr``, ...) evaluated at ``last_epoch = t``.

    Args:
      base_value: :math:`\eta_{\min} \ge 0`, the value at the start of each cycle.
      max_value: :math:`\eta_{\max} \ge \eta_{\min}`.
      step_size_up: :math:`U \ge 1`.
      step_size_down: :math:`D \ge 1`; ``None`` means :math:`D = U`.
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: :math:`\gamma \in (0, 1]`, used by ``"exp_range"``.

    Returns:
      A schedule ``count -> value``.

    Examples:
      >>> import optlab as ol
      >>> sched = ol.cyclic_schedule(0.0, 1.0, step_size_up=2, mode="triangular2")
      >>> print([float(sched(t)) for t in range(9)])
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.25, 0.5, 0.25, 0.0]

    References:
      Smith, `Cyclical Learning Rates for Training Neural Networks
      <https://arxiv.org/abs/1506.01186>`_, 2017; PyTorch, `CyclicLR
      <https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.CyclicLR.html>`_.
    """
    fn = "cyclic_schedule"
    check_values(fn, base_value=base_value, max_value=max_value)
    if (
        is_concrete_number(base_value)
        and is_concrete_number(max_value)
        and (max_value < base_value)
    ):
        raise ValueError(
            f"{fn}: max_value must be >= base_value, got max_value={max_value}, "
            f"base_value={base_value}"
        )
    check_steps(fn, "step_size_up", step_size_up, 1)
    if step_size_down is not None:
        check_steps(fn, "step_size_down", step_size_down, 1)
    check_choice(fn, "mode", mode, ("triangular", "triangular2", "exp_range"))
    check_in_range(fn, "gamma", gamma, 0.0, 1.0, low_closed=False, high_closed=True)
    up = step_size_up
    down = step_size_up if step_size_down is None else step_size_down
    total = up + down
    ratio = up / total

    def schedule(count):
        t = jnp.asarray(count)
        cycle = jnp.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        height = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if mode == "triangular":
            amplitude = 1.0
        elif mode == "triangular2":
            amplitude = 1 / (2.0 ** (cycle - 1))
        else:
            amplitude = gamma ** jnp.asarray(t, jnp.result_type(float))
        return base_value + (max_value - base_value) * height * amplitude

    return schedule
