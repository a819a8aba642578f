r"""RMSProp: AdaGrad with a moving average instead of a sum; plain or centered, with momentum.

The seeds note there is no standard for the accumulator's initial value: PyTorch starts it
at 0, TensorFlow 1 at 1 (``initial_scale``); and that :math:`\epsilon` sits inside the square
root in some texts and outside in others (``eps_in_sqrt``). optlab's defaults are optax's
(``initial_scale=0``, ``eps_in_sqrt=True``); ``eps_in_sqrt=False`` matches PyTorch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import (
    GradientTransformation,
    Numeric,
    ScalarOrSchedule,
    gated_transformation,
    identity,
)
from optlab.core.combine import chain
from optlab.core.numerics import (
    bias_correction_factor,
    gate,
    safe_increment,
    tree_full_like,
    tree_zeros_like,
    update_moment,
    update_moment_per_elem_norm,
    zero_count,
)
from optlab.core.validation import (
    check_bool,
    check_in_range,
    check_learning_rate,
    check_nonnegative,
    check_not_schedule,
    check_positive,
    check_updates,
)
from optlab.optimizers.sgd import trace
from optlab.transforms.scale import scale_by_learning_rate


def _abs_sq(x: jax.Array) -> jax.Array:
    return jnp.real(x * jnp.conj(x)) if jnp.iscomplexobj(x) else x * x


def _check_rms_args(
    fn: str, decay: Any, eps: Any, initial_scale: Any, *, centered: bool = False, **flags: Any
) -> None:
    for name, value in flags.items():
        check_bool(fn, name, value)
    for name, value in (("decay", decay), ("eps", eps), ("initial_scale", initial_scale)):
        check_not_schedule(fn, name, value)
    if centered:
        # decay = 0 makes the centered variance g^2 - g^2 = 0, so every step is g / sqrt(eps):
        # a loss of 10 reached 1e28 in five steps. Refused.
        check_in_range(fn, "decay", decay, 0.0, 1.0, low_closed=False)
    else:
        check_in_range(fn, "decay", decay, 0.0, 1.0)
    check_positive(fn, "eps", eps)
    check_nonnegative(fn, "initial_scale", initial_scale)


def _inverse_bias(decay: Any, count: jax.Array, enabled: bool) -> Any:
    """The scalar :math:`1/(1-\\beta^t)` (float32 or wider), or 1 without bias correction."""
    return 1.0 / bias_correction_factor(decay, count) if enabled else 1.0


def _scaled(g: jax.Array, second: jax.Array, eps: Any, eps_in_sqrt: bool) -> jax.Array:
    """:math:`g/\\sqrt{s+\\epsilon}` or :math:`g/(\\sqrt{s}+\\epsilon)`, in the gradient's dtype."""
    if eps_in_sqrt:
        out = g * jax.lax.rsqrt(second + eps)
    else:
        out = g / (jnp.sqrt(second) + eps)
    return out.astype(g.dtype)


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms`.

    Attributes:
      count: number of updates applied (used by the bias correction).
      nu: the moving average :math:`s_t` of squared gradients.
    """

    count: jax.Array
    nu: Any


def scale_by_rms(
    decay: Numeric = 0.9,
    eps: Numeric = 1e-8,
    initial_scale: Numeric = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Divides by the root of a moving average of squared gradients (RMSProp's scaling).

    .. math::

        s_t = \beta s_{t-1} + (1-\beta)\, g_t \odot g_t, \qquad
        \hat s_t = \begin{cases} s_t / (1-\beta^t) & \text{bias correction} \\
                                 s_t & \text{otherwise} \end{cases}, \qquad
        u_t = \frac{g_t}{\sqrt{\hat s_t + \epsilon}}
        \;\text{ or }\; \frac{g_t}{\sqrt{\hat s_t} + \epsilon}

    with :math:`s_0` = ``initial_scale``. ``scale_by_rms(b2, eps_in_sqrt=False,
    bias_correction=True)`` equals ``scale_by_adam(b1=0, b2=b2)`` without its first moment.

    Args:
      decay: :math:`\beta` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      initial_scale: :math:`s_0 \ge 0`: 0 (PyTorch, optax) or 1 (TensorFlow 1).
      eps_in_sqrt: add :math:`\epsilon` inside the square root (else outside, as PyTorch).
      bias_correction: divide :math:`s_t` by :math:`1-\beta^t` (meaningful with
        ``initial_scale=0``).

    Returns:
      A transformation with state ``ScaleByRmsState(count, nu)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_rms(decay=0.75, eps=1e-12)
      >>> u, _ = tx.update(jnp.array([2.0, -4.0]), tx.init(jnp.zeros(2)))
      >>> print(u)  # g / sqrt(0.25 g^2)
      [ 2. -2.]

    References:
      Hinton, `Neural Networks for Machine Learning, lecture 6e
      <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012.
    """
    fn = "scale_by_rms"
    _check_rms_args(
        fn, decay, eps, initial_scale, eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction
    )

    def init_fn(params):
        return ScaleByRmsState(count=zero_count(), nu=tree_full_like(params, initial_scale))

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.nu, params)
        nu = gate(keep, update_moment_per_elem_norm(updates, state.nu, decay, 2), state.nu)
        count = gate(keep, safe_increment(state.count), state.count)
        c = _inverse_bias(decay, count, bias_correction)
        new_updates = jax.tree.map(lambda g, n: _scaled(g, n * c, eps, eps_in_sqrt), updates, nu)
        return new_updates, ScaleByRmsState(count=count, nu=nu)

    return gated_transformation(init_fn, step)


class ScaleByRStdDevState(NamedTuple):
    """State of :func:`scale_by_stddev`.

    Attributes:
      count: number of updates applied (used by the bias correction).
      mu: the moving average :math:`m_t` of gradients.
      nu: the moving average :math:`s_t` of squared gradients.
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_stddev(
    decay: Numeric = 0.9,
    eps: Numeric = 1e-8,
    initial_scale: Numeric = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Divides by a moving estimate of the gradients' standard deviation (centered RMSProp).

    .. math::

        m_t = \beta m_{t-1} + (1-\beta)\, g_t, \qquad
        s_t = \beta s_{t-1} + (1-\beta)\, g_t \odot g_t, \qquad
        u_t = \frac{g_t}{\sqrt{\hat s_t - \hat m_t^2 + \epsilon}}

    (or :math:`\epsilon` outside the root), with the hats dividing by :math:`1-\beta^t` when
    ``bias_correction`` is on, :math:`m_0 = 0` and :math:`s_0` = ``initial_scale``. The
    variance estimate :math:`\hat s_t - \hat m_t^2` is clamped at 0: it is 0 at the first
    bias-corrected step, and rounding can make it negative, which would give NaN (optax does
    not clamp).

    Args:
      decay: :math:`\beta` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      initial_scale: :math:`s_0 \ge 0`.
      eps_in_sqrt: add :math:`\epsilon` inside the square root (else outside).
      bias_correction: divide both moments by :math:`1-\beta^t`.

    Returns:
      A transformation with state ``ScaleByRStdDevState(count, mu, nu)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_stddev(decay=0.5, eps=1e-12)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([2.0]), state)
      >>> print(u)  # m = 1, s = 2: 2 / sqrt(2 - 1)
      [2.]

    References:
      Graves, `Generating Sequences With Recurrent Neural Networks
      <https://arxiv.org/abs/1308.0850>`_, 2013.
    """
    fn = "scale_by_stddev"
    _check_rms_args(
        fn,
        decay,
        eps,
        initial_scale,
        centered=True,
        eps_in_sqrt=eps_in_sqrt,
        bias_correction=bias_correction,
    )

    def init_fn(params):
        return ScaleByRStdDevState(
            count=zero_count(),
            mu=tree_zeros_like(params),
            nu=tree_full_like(params, initial_scale),
        )

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.nu, params)
        mu = gate(keep, update_moment(updates, state.mu, decay, 1), state.mu)
        nu = gate(keep, update_moment_per_elem_norm(updates, state.nu, decay, 2), state.nu)
        count = gate(keep, safe_increment(state.count), state.count)
        c = _inverse_bias(decay, count, bias_correction)
        new_updates = jax.tree.map(
            lambda g, m, n: _scaled(g, jnp.maximum(n * c - _abs_sq(m * c), 0.0), eps, eps_in_sqrt),
            updates,
            mu,
            nu,
        )
        return new_updates, ScaleByRStdDevState(count=count, mu=mu, nu=nu)

    return gated_transformation(init_fn, step)


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Numeric = 0.9,
    eps: Numeric = 1e-8,
    initial_scale: Numeric = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Numeric | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""The RMSProp optimizer: plain or centered, with optional (Nesterov) momentum.

    .. math::

        s_t = \beta s_{t-1} + (1-\beta)\, g_t \odot g_t, \qquad
        w_{t+1} = w_t - \frac{\eta_t}{\sqrt{s_t + \epsilon}} \odot g_t

    The seeds' rule. ``centered=True`` subtracts the squared moving mean of the gradients from
    :math:`s_t` (:func:`scale_by_stddev`); ``momentum`` then accumulates the scaled steps in a
    :func:`trace` (``nesterov`` for its Nesterov form), as in PyTorch and optax::

        chain(scale_by_rms(...) or scale_by_stddev(...), scale_by_learning_rate(lr),
              trace(momentum, nesterov) or identity())

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      decay: :math:`\beta` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      initial_scale: :math:`s_0 \ge 0` (PyTorch uses 0, TensorFlow 1 uses 1).
      eps_in_sqrt: :math:`\epsilon` inside the square root (else outside, as PyTorch).
      centered: divide by the standard deviation instead of the root mean square.
      momentum: momentum of the steps in ``[0, 1)``, or ``None``.
      nesterov: Nesterov form of the momentum (needs ``momentum``).
      bias_correction: divide the moving averages by :math:`1-\beta^t`.

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = ol.rmsprop(0.003)
      >>> x = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(x)
      >>> for _ in range(5):
      ...     u, state = tx.update(jax.grad(f)(x), state, x)
      ...     x = ol.apply_updates(x, u)
      >>> print(f"{f(x):.1f}")
      13.6

    References:
      Hinton, `Neural Networks for Machine Learning, lecture 6e
      <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012.

      Graves, `Generating Sequences With Recurrent Neural Networks
      <https://arxiv.org/abs/1308.0850>`_, 2013.
    """
    fn = "rmsprop"
    check_learning_rate(fn, learning_rate)
    check_bool(fn, "centered", centered)
    _check_rms_args(
        fn,
        decay,
        eps,
        initial_scale,
        centered=centered,
        eps_in_sqrt=eps_in_sqrt,
        nesterov=nesterov,
        bias_correction=bias_correction,
    )
    if momentum is not None:
        check_not_schedule(fn, "momentum", momentum)
        check_in_range(fn, "momentum", momentum, 0.0, 1.0)
    elif nesterov:
        raise ValueError(f"{fn}: nesterov=True needs a momentum, got momentum=None")
    scaling = scale_by_stddev if centered else scale_by_rms
    return chain(
        scaling(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov=nesterov) if momentum is not None else identity(),
    )
