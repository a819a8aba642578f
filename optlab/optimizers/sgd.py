r"""Stochastic gradient descent with heavy-ball or Nesterov momentum.

:func:`sgd`'s docstring maps the lectures' ways of writing momentum and Nesterov momentum
onto it; ``tests/optimizers/test_sgd.py`` checks those trajectories.
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
from optlab.core.numerics import canonicalize_dtype, gate, tree_cast_like, tree_zeros_like
from optlab.core.validation import (
    check_bool,
    check_dtype,
    check_in_range,
    check_learning_rate,
    check_not_schedule,
    check_updates,
)
from optlab.transforms.scale import scale_by_learning_rate


class TraceState(NamedTuple):
    """State of :func:`trace`.

    Attributes:
      trace: the velocity :math:`m_t`, one leaf per parameter.
    """

    trace: Any


def trace(
    decay: Numeric, nesterov: bool = False, accumulator_dtype: Any = None
) -> GradientTransformation:
    r"""Heavy-ball momentum: a decaying sum of past updates (optionally Nesterov's form).

    .. math::

        m_t = g_t + \mu\, m_{t-1}, \qquad
        u_t = \begin{cases} m_t & \text{heavy ball} \\
                            g_t + \mu\, m_t & \text{Nesterov} \end{cases}

    with :math:`m_0 = 0`. Followed by ``scale_by_learning_rate(alpha)`` this is momentum SGD;
    :func:`sgd`'s docstring maps the seeds' other ways of writing momentum onto it.

    Args:
      decay: :math:`\mu`, in ``[0, 1]`` (1: a running sum of the updates); a number or a jax
        array.
      nesterov: use the Nesterov (look-ahead) form.
      accumulator_dtype: dtype of the stored trace; ``None`` keeps the parameters' dtype.

    Returns:
      A transformation with state ``TraceState(trace)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.trace(decay=0.5)
      >>> state = tx.init(jnp.zeros(2))
      >>> for _ in range(3):
      ...     u, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(u)
      [ 1.75 -3.5 ]

    References:
      Polyak, `Some methods of speeding up the convergence of iteration methods
      <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964.

      Sutskever et al., `On the importance of initialization and momentum in deep learning
      <http://proceedings.mlr.press/v28/sutskever13.html>`_, 2013.
    """
    fn = "trace"
    check_not_schedule(fn, "decay", decay)
    # decay = 1 (a plain running sum of the updates) is accepted, as in optax.
    check_in_range(fn, "decay", decay, 0.0, 1.0, high_closed=True)
    check_bool(fn, "nesterov", nesterov)
    check_dtype(fn, "accumulator_dtype", accumulator_dtype, kind="inexact")
    accumulator_dtype = canonicalize_dtype(accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=tree_zeros_like(params, accumulator_dtype))

    def step(updates, state, params, keep, **extra_args):
        del extra_args
        check_updates(fn, updates, state.trace, params)
        # The new trace in the wider of the trace's and the gradient's dtypes, gated (a no-op
        # unless apply_if_finite passes keep), and the output computed from it: the step uses
        # the unrounded trace and only the stored copy is rounded to accumulator_dtype.
        old = jax.tree.map(
            lambda m, g: m.astype(jnp.promote_types(m.dtype, g.dtype)), state.trace, updates
        )
        new = gate(keep, jax.tree.map(lambda g, m: g + decay * m, updates, old), old)
        new_updates = jax.tree.map(
            lambda g, m: (g + decay * m if nesterov else m).astype(g.dtype), updates, new
        )
        return new_updates, TraceState(trace=tree_cast_like(new, state.trace))

    return gated_transformation(init_fn, step)


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: Numeric | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    r"""Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

    .. math::

        m_t = g_t + \mu\, m_{t-1}, \qquad
        u_t = \begin{cases} -\alpha_t\, g_t & \text{no momentum} \\
                            -\alpha_t\, m_t & \text{momentum} \\
                            -\alpha_t\, (g_t + \mu\, m_t) & \text{Nesterov} \end{cases}

    ``chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))``, as in optax.

    **Forms of momentum.** With :math:`g = \nabla J(w)`, a constant learning rate and zero
    initial velocity, the seeds' forms are all this optimizer:

    - :math:`v \leftarrow \rho v + g,\; x \leftarrow x - \alpha v` and
      :math:`v \leftarrow \rho v - \alpha g,\; x \leftarrow x + v`:
      ``sgd(alpha, momentum=rho)``;
    - :math:`m \leftarrow \beta m + \eta g,\; w \leftarrow w - m`:
      ``sgd(eta, momentum=beta)``;
    - the moving-average form :math:`V \leftarrow \beta V + (1-\beta)\alpha g,\;
      W \leftarrow W - V`: ``sgd((1 - beta) * alpha, momentum=beta)``.

    The velocities differ by a constant factor only (:math:`m = \eta v`,
    :math:`V = (1-\beta)\alpha v`), so the parameter sequences coincide. They part ways when
    the learning rate changes over time: optlab (like optax and PyTorch) keeps the raw trace
    :math:`v` and multiplies it by the *current* :math:`\alpha_t`, while the :math:`m` form
    bakes each step's :math:`\eta_t` into the velocity.

    Nesterov's look-ahead form evaluates the gradient where the velocity is about to go,

    .. math::

        v_{t+1} = \rho v_t - \alpha \nabla J(x_t + \rho v_t), \qquad x_{t+1} = x_t + v_{t+1};

    the change of variables :math:`\tilde x_t = x_t + \rho v_t` gives the practical form,
    which needs the gradient at the current iterate only,

    .. math::

        v_{t+1} = \rho v_t - \alpha \nabla J(\tilde x_t), \qquad
        \tilde x_{t+1} = \tilde x_t + v_{t+1} + \rho (v_{t+1} - v_t),

    and that is ``sgd(alpha, momentum=rho, nesterov=True)`` (with :math:`m = -v/\alpha`, the
    step is :math:`-\alpha(g_t + \rho m_t)`): optlab's iterates are the look-ahead points
    :math:`\tilde x_t`. So is the rewritten form :math:`V \leftarrow \beta V + \alpha g,\;
    W \leftarrow W - \beta V - \alpha g`. The rule :math:`\rho_k = \alpha \nabla J(W_k) +
    \beta \nabla J(W_{k-1})`, which remembers one past gradient only, is not heavy-ball
    momentum and has no alias.

    Args:
      learning_rate: :math:`\alpha`, finite and ``>= 0``: a number, a jax array or a schedule.
      momentum: :math:`\mu` in ``[0, 1)``, or ``None`` for plain gradient descent.
      nesterov: use Nesterov momentum (needs ``momentum``).
      accumulator_dtype: dtype of the momentum trace; ``None`` keeps the parameters' dtype.

    Returns:
      The optimizer, a :class:`~optlab.GradientTransformation`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = ol.sgd(0.1, momentum=0.9)
      >>> x = jnp.array([1.0, -2.0])
      >>> state = tx.init(x)
      >>> for _ in range(3):
      ...     u, state = tx.update(jax.grad(f)(x), state, x)
      ...     x = ol.apply_updates(x, u)
      >>> print(x)
      [ 0.062 -0.124]

    References:
      Sutskever et al., `On the importance of initialization and momentum in deep learning
      <http://proceedings.mlr.press/v28/sutskever13.html>`_, 2013.
    """
    fn = "sgd"
    check_learning_rate(fn, learning_rate)
    check_bool(fn, "nesterov", nesterov)
    check_dtype(fn, "accumulator_dtype", accumulator_dtype, kind="inexact")
    if momentum is not None:
        check_not_schedule(fn, "momentum", momentum)
        check_in_range(fn, "momentum", momentum, 0.0, 1.0)
    elif nesterov:
        raise ValueError(f"{fn}: nesterov=True needs a momentum, got momentum=None")
    first = (
        trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
        if momentum is not None
        else identity()
    )
    return chain(first, scale_by_learning_rate(learning_rate))
