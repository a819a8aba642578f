r"""The Adam family: Adam, AdamW, NAdam, NAdamW, AMSGrad and Adamax.

Adam keeps moving averages of the gradients (momentum) and of their squares (RMSProp), both
started at 0 and therefore bias-corrected. The bias corrections are scalars, computed in
float32 or wider and folded into one elementwise expression per parameter, so a jitted step
makes one pass over each moment.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, Numeric, ScalarOrSchedule, gated_transformation
from optlab.core.combine import chain
from optlab.core.numerics import (
    bias_correction_factor,
    canonicalize_dtype,
    gate,
    safe_increment,
    tree_cast_like,
    tree_zeros_like,
    update_moment,
    update_moment_per_elem_norm,
    zero_count,
)
from optlab.core.validation import (
    check_bool,
    check_dtype,
    check_in_range,
    check_learning_rate,
    check_mask_spec,
    check_nonnegative,
    check_not_schedule,
    check_positive,
    check_updates,
)
from optlab.transforms.regularization import add_decayed_weights
from optlab.transforms.scale import scale_by_learning_rate


def _check_adam_args(
    fn: str, b1: Any, b2: Any, eps: Any, eps_root: Any = 0.0, **options: Any
) -> None:
    """The shared rules; ``options`` are dtypes (``*_dtype``, a floating dtype or ``None``)
    and flags (``nesterov``, ``bias_correction_*``: True or False)."""
    for name, value in options.items():
        if name.endswith("_dtype"):
            check_dtype(fn, name, value, kind="inexact")
        else:
            check_bool(fn, name, value)
    for name, value in (("b1", b1), ("b2", b2), ("eps", eps), ("eps_root", eps_root)):
        check_not_schedule(fn, name, value)
    check_in_range(fn, "b1", b1, 0.0, 1.0)
    check_in_range(fn, "b2", b2, 0.0, 1.0)
    check_positive(fn, "eps", eps)
    check_nonnegative(fn, "eps_root", eps_root)


def _widen(moments: Any, updates: Any) -> Any:
    """Each moment in the wider of its storage dtype and the gradient's: a step uses the
    unrounded moment and only the stored copy is rounded to ``mu_dtype``/``nu_dtype``."""
    return jax.tree.map(
        lambda m, g: m.astype(jnp.promote_types(m.dtype, g.dtype)), moments, updates
    )


def _adam_direction(m: Any, v: Any, c1: Any, c2: Any, eps: Any, eps_root: Any) -> jax.Array:
    r""":math:`c_1 m / (\sqrt{c_2 v + \bar\epsilon} + \epsilon)`, with the scalar
    :math:`\sqrt{c_2}` folded out of the square root:
    :math:`c_1 r\, m / (\sqrt{v + \bar\epsilon / c_2} + \epsilon r)`, :math:`r = c_2^{-1/2}`.

    One formula for every ``eps_root``: a concrete zero only skips the exact ``+ 0``, so a
    float ``eps_root`` and an injected array give bit-identical steps."""
    r = jax.lax.rsqrt(c2)
    if not (isinstance(eps_root, int | float) and eps_root == 0):
        v = v + eps_root / c2
    return m * (c1 * r) / (jnp.sqrt(v) + eps * r)


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam` and :func:`scale_by_adamax`.

    Attributes:
      count: number of updates applied (:math:`t` of the bias corrections).
      mu: first moment :math:`m_t`.
      nu: second moment :math:`v_t` (Adamax: the decaying maximum :math:`u_t`).
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Rescales updates with Adam's bias-corrected first and second moments.

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t \odot g_t, \\
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
        u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \bar\epsilon} + \epsilon}

    With ``nesterov=True`` (NAdam) the first moment looks one step ahead:
    :math:`\hat m_t = \beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1)\, g_t / (1-\beta_1^t)`.

    Args:
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`, outside the square root (as in the paper).
      eps_root: :math:`\bar\epsilon \ge 0`, inside the square root (helps meta-gradients).
      mu_dtype: dtype of the stored first moment; ``None`` keeps the parameters' dtype.
      nesterov: use Nesterov's look-ahead first moment (Dozat's NAdam).
      nu_dtype: dtype of the stored second moment (optax has no such option); ``None`` keeps
        the parameters' dtype.

    Returns:
      A transformation with state ``ScaleByAdamState(count, mu, nu)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_adam()
      >>> u, state = tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(u)  # the first step is the sign of the gradient
      [ 1. -1.]

    References:
      Kingma and Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014.

      Dozat, `Incorporating Nesterov Momentum into Adam
      <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
    """
    fn = "scale_by_adam"
    _check_adam_args(
        fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
    )
    mu_dtype = canonicalize_dtype(mu_dtype)
    nu_dtype = canonicalize_dtype(nu_dtype)

    def init_fn(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=tree_zeros_like(params, mu_dtype),
            nu=tree_zeros_like(params, nu_dtype),
        )

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.nu, params)
        mu_old, nu_old = _widen(state.mu, updates), _widen(state.nu, updates)
        # gate (a no-op unless apply_if_finite passes keep) keeps the old moments on a
        # skipped step inside this same elementwise loop.
        mu = gate(keep, update_moment(updates, mu_old, b1, 1), mu_old)
        nu = gate(keep, update_moment_per_elem_norm(updates, nu_old, b2, 2), nu_old)
        count = gate(keep, safe_increment(state.count), state.count)
        c2 = 1.0 / bias_correction_factor(b2, count)
        if nesterov:
            cm = b1 / bias_correction_factor(b1, safe_increment(count))
            cg = (1.0 - b1) / bias_correction_factor(b1, count)

            def direction(g, m, v):
                return _adam_direction(m * cm + g * cg, v, 1.0, c2, eps, eps_root)

        else:
            c1 = 1.0 / bias_correction_factor(b1, count)

            def direction(g, m, v):
                return _adam_direction(m, v, c1, c2, eps, eps_root)

        new_updates = jax.tree.map(
            lambda g, m, v: direction(g, m, v).astype(g.dtype), updates, mu, nu
        )
        stored = ScaleByAdamState(
            count=count, mu=tree_cast_like(mu, state.mu), nu=tree_cast_like(nu, state.nu)
        )
        return new_updates, stored

    return gated_transformation(init_fn, step)


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_amsgrad`.

    Attributes:
      count: number of updates applied.
      mu: first moment :math:`m_t`.
      nu: second moment :math:`v_t`.
      nu_max: the running maximum :math:`\\max_{s \\le t} \\hat v_s`.
    """

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    r"""Adam with a non-decreasing second moment (AMSGrad).

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t \odot g_t, \\
        \bar v_t = \max(\bar v_{t-1}, \hat v_t), \qquad
        u_t = \frac{\hat m_t}{\sqrt{\bar v_t + \bar\epsilon} + \epsilon}

    where the hats are Adam's bias corrections (each can be turned off to match the paper).

    Args:
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      eps_root: :math:`\bar\epsilon \ge 0`.
      mu_dtype: dtype of the stored first moment; ``None`` keeps the parameters' dtype.
      bias_correction_mu: bias-correct :math:`m_t`.
      bias_correction_nu: bias-correct :math:`v_t` before the maximum.

    Returns:
      A transformation with state ``ScaleByAmsgradState(count, mu, nu, nu_max)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_amsgrad(b1=0.0, b2=0.5, eps=1e-12)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([4.0]), state)
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> print(u)  # v-hat fell to (8 + 0.5) / 1.5 but the maximum 16 is kept: 1 / 4
      [0.25]

    References:
      Reddi et al., `On the Convergence of Adam and Beyond
      <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018.
    """
    fn = "scale_by_amsgrad"
    _check_adam_args(
        fn,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype=mu_dtype,
        bias_correction_mu=bias_correction_mu,
        bias_correction_nu=bias_correction_nu,
    )
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=tree_zeros_like(params, mu_dtype),
            nu=tree_zeros_like(params),
            nu_max=tree_zeros_like(params),
        )

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.nu, params)
        mu_old = _widen(state.mu, updates)
        mu = gate(keep, update_moment(updates, mu_old, b1, 1), mu_old)
        nu = gate(keep, update_moment_per_elem_norm(updates, state.nu, b2, 2), state.nu)
        count = gate(keep, safe_increment(state.count), state.count)
        c1 = 1.0 / bias_correction_factor(b1, count) if bias_correction_mu else 1.0
        c2 = 1.0 / bias_correction_factor(b2, count) if bias_correction_nu else 1.0
        nu_max = gate(
            keep,
            jax.tree.map(lambda vm, v: jnp.maximum(vm, v * c2).astype(vm.dtype), state.nu_max, nu),
            state.nu_max,
        )
        new_updates = jax.tree.map(
            lambda g, m, vm: _adam_direction(m, vm, c1, 1.0, eps, eps_root).astype(g.dtype),
            updates,
            mu,
            nu_max,
        )
        return new_updates, ScaleByAmsgradState(
            count=count, mu=tree_cast_like(mu, state.mu), nu=nu, nu_max=nu_max
        )

    return gated_transformation(init_fn, step)


def scale_by_adamax(
    b1: Numeric = 0.9, b2: Numeric = 0.999, eps: Numeric = 1e-8
) -> GradientTransformation:
    r"""Adam with the infinity norm in place of the second moment (Adamax).

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        u^\infty_t = \max(\beta_2\, u^\infty_{t-1},\; |g_t| + \epsilon), \qquad
        u_t = \frac{m_t}{(1-\beta_1^t)\, u^\infty_t}

    Args:
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.

    Returns:
      A transformation with state ``ScaleByAdamState(count, mu, nu)`` (``nu`` holds
      :math:`u^\infty_t`).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_adamax(b1=0.5, b2=0.5, eps=1e-12)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([4.0]), state)
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> print(u)  # m = 1.5, 1 - 0.5**2 = 0.75, max(0.5 * 4, 1) = 2: 1.5 / 0.75 / 2
      [1.]

    References:
      Kingma and Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014 (section 7.1).
    """
    fn = "scale_by_adamax"
    _check_adam_args(fn, b1, b2, eps)

    def init_fn(params):
        return ScaleByAdamState(
            count=zero_count(), mu=tree_zeros_like(params), nu=tree_zeros_like(params)
        )

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.nu, params)
        mu = gate(keep, update_moment(updates, state.mu, b1, 1), state.mu)
        nu = jax.tree.map(
            lambda g, n: jnp.maximum(b2 * n, jnp.abs(g).astype(n.dtype) + eps).astype(n.dtype),
            updates,
            state.nu,
        )
        nu = gate(keep, nu, state.nu)
        count = gate(keep, safe_increment(state.count), state.count)
        c1 = 1.0 / bias_correction_factor(b1, count)
        new_updates = jax.tree.map(lambda g, m, n: (m * c1 / n).astype(g.dtype), updates, mu, nu)
        return new_updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return gated_transformation(init_fn, step)


# ---------------------------------------------------------------------------------------------
# Aliases: compositions only.


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""The Adam optimizer.

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t \odot g_t, \\
        w_{t+1} = w_t - \eta_t\, \frac{m_t / (1-\beta_1^t)}
                                     {\sqrt{v_t / (1-\beta_2^t) + \bar\epsilon} + \epsilon}

    ``chain(scale_by_adam(...), scale_by_learning_rate(learning_rate))``, as in optax.

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      eps_root: :math:`\bar\epsilon \ge 0`.
      mu_dtype: dtype of the first moment (``None``: the parameters' dtype).
      nesterov: NAdam's look-ahead first moment (see :func:`nadam`).
      nu_dtype: dtype of the second moment (``None``: the parameters' dtype).

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = ol.adam(0.1)
      >>> x = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(x)
      >>> for _ in range(5):
      ...     u, state = tx.update(jax.grad(f)(x), state, x)
      ...     x = ol.apply_updates(x, u)
      >>> print(x)  # the first step is -0.1 * sign(g), later ones a little shorter
      [0.5079642 1.5029563 2.50178  ]

    References:
      Kingma and Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014.
    """
    fn = "adam"
    check_learning_rate(fn, learning_rate)
    _check_adam_args(
        fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
    )
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam with decoupled weight decay (AdamW).

    .. math::

        w_{t+1} = w_t - \eta_t \left( \frac{\hat m_t}{\sqrt{\hat v_t + \bar\epsilon} + \epsilon}
                                      + \lambda\, w_t \right)

    The decay :math:`\lambda w_t` is added after Adam's scaling, so it is not rescaled by
    :math:`\hat v_t` (unlike an L2 penalty in the loss), and it is multiplied by the learning
    rate, as in optax and PyTorch. ``chain(scale_by_adam(...), add_decayed_weights(weight_decay,
    mask), scale_by_learning_rate(learning_rate))``.

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      eps_root: :math:`\bar\epsilon \ge 0`.
      mu_dtype: dtype of the first moment (``None``: the parameters' dtype).
      weight_decay: :math:`\lambda \ge 0`: a number, a jax array or a schedule.
      mask: which parameters decay: a pytree of booleans, a function of the parameters (such
        as ``optlab.decay_mask``) or glob patterns on parameter paths; ``None``: all.
      nesterov: NAdam's look-ahead first moment (see :func:`nadamw`).
      nu_dtype: dtype of the second moment (``None``: the parameters' dtype).

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`; its ``update`` needs
      ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
      >>> tx = ol.adamw(0.1, weight_decay=0.5, mask={"w": True, "b": False})
      >>> grads = {"w": jnp.array([0.0]), "b": jnp.array([0.0])}
      >>> u, _ = tx.update(grads, tx.init(params), params)
      >>> print(u["w"], u["b"])  # only w decays: -0.1 * 0.5 * 2
      [-0.1] [0.]

    References:
      Loshchilov and Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    fn = "nadamw" if nesterov is True else "adamw"
    check_learning_rate(fn, learning_rate)
    _check_adam_args(
        fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
    )
    check_nonnegative(fn, "weight_decay", weight_decay, schedule=True)
    check_mask_spec(fn, "mask", mask)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam with Nesterov momentum (NAdam): ``adam(..., nesterov=True)``.

    .. math::

        \hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)\, g_t}{1-\beta_1^t},
        \qquad w_{t+1} = w_t - \eta_t\, \frac{\hat m_t}{\sqrt{\hat v_t + \bar\epsilon}
        + \epsilon}

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      eps_root: :math:`\bar\epsilon \ge 0`.
      mu_dtype: dtype of the first moment (``None``: the parameters' dtype).
      nu_dtype: dtype of the second moment (``None``: the parameters' dtype).

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.nadam(0.1)
      >>> u, _ = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))
      >>> print(u)  # -0.1 * (0.9 / (1 - 0.9**2) * 0.3 + 3) / 3
      [-0.14736842]

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam
      <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
    """
    check_learning_rate("nadam", learning_rate)
    _check_adam_args("nadam", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True, nu_dtype=nu_dtype)


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NAdam with decoupled weight decay: ``adamw(..., nesterov=True)``.

    .. math::

        w_{t+1} = w_t - \eta_t \left( \frac{\hat m_t}{\sqrt{\hat v_t + \bar\epsilon} + \epsilon}
                                      + \lambda\, w_t \right)

    with NAdam's :math:`\hat m_t` (see :func:`nadam`).

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      eps_root: :math:`\bar\epsilon \ge 0`.
      mu_dtype: dtype of the first moment (``None``: the parameters' dtype).
      weight_decay: :math:`\lambda \ge 0`.
      mask: which parameters decay (see :func:`adamw`).
      nu_dtype: dtype of the second moment (``None``: the parameters' dtype).

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`; its ``update`` needs
      ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.nadamw(0.1, weight_decay=1.0)
      >>> u, _ = tx.update(jnp.array([3.0]), tx.init(jnp.ones(1)), jnp.ones(1))
      >>> print(u)  # nadam's -0.14736842 plus -0.1 * 1.0 * 1.0
      [-0.24736841]

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam
      <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.

      Loshchilov and Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    return adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        weight_decay,
        mask,
        nesterov=True,
        nu_dtype=nu_dtype,
    )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
    eps_root: Numeric = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    r"""The AMSGrad optimizer: Adam whose second moment never decreases.

    .. math::

        \bar v_t = \max(\bar v_{t-1}, \hat v_t), \qquad
        w_{t+1} = w_t - \eta_t\, \frac{\hat m_t}{\sqrt{\bar v_t + \bar\epsilon} + \epsilon}

    ``chain(scale_by_amsgrad(...), scale_by_learning_rate(learning_rate))``, as in optax.

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.
      eps_root: :math:`\bar\epsilon \ge 0`.
      mu_dtype: dtype of the first moment (``None``: the parameters' dtype).
      bias_correction_mu: bias-correct the first moment.
      bias_correction_nu: bias-correct the second moment before the maximum.

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.amsgrad(0.1)
      >>> u, _ = tx.update(jnp.array([-5.0]), tx.init(jnp.zeros(1)))
      >>> print(u)
      [0.1]

    References:
      Reddi et al., `On the Convergence of Adam and Beyond
      <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018.
    """
    fn = "amsgrad"
    check_learning_rate(fn, learning_rate)
    _check_adam_args(fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype)
    return chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu),
        scale_by_learning_rate(learning_rate),
    )


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: Numeric = 0.9,
    b2: Numeric = 0.999,
    eps: Numeric = 1e-8,
) -> GradientTransformation:
    r"""The Adamax optimizer: Adam with the infinity norm.

    .. math::

        u^\infty_t = \max(\beta_2\, u^\infty_{t-1},\; |g_t| + \epsilon), \qquad
        w_{t+1} = w_t - \eta_t\, \frac{m_t}{(1-\beta_1^t)\, u^\infty_t}

    ``chain(scale_by_adamax(...), scale_by_learning_rate(learning_rate))``, as in optax.

    Args:
      learning_rate: :math:`\eta`, finite and ``>= 0``: a number, a jax array or a schedule.
      b1: :math:`\beta_1` in ``[0, 1)``.
      b2: :math:`\beta_2` in ``[0, 1)``.
      eps: :math:`\epsilon > 0`.

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.adamax(0.1)
      >>> u, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
      >>> print(u)
      [-0.1]

    References:
      Kingma and Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014 (section 7.1).
    """
    fn = "adamax"
    check_learning_rate(fn, learning_rate)
    _check_adam_args(fn, b1, b2, eps)
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))
