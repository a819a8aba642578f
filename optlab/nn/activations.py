r"""Activation functions by name: ``jax.nn`` where it has them, PReLU, RReLU and maxout here.

Stateless activations are plain functions from ``jax.nn``; the three that are not
(PReLU learns its slope, RReLU draws a random slope while training, maxout takes the maximum of
``k`` affine pieces and so changes the width of the layer before it) are written here as pure
functions and wrapped as layers in :mod:`optlab.nn.layers`.

An activation is named by a string, optionally with options as a ``(name, kwargs)`` pair:
``"relu"``, ``("leaky_relu", {"negative_slope": 0.1})``, ``("maxout", {"num_pieces": 3})``,
or given as any callable ``x -> y``.

.. math::

   \mathrm{LeakyReLU}_\alpha(z) = \max(\alpha z, z), \qquad
   \mathrm{ELU}_\alpha(z) = \begin{cases} \alpha(e^z - 1) & z < 0 \\ z & z \ge 0 \end{cases},
   \qquad \mathrm{maxout}(x) = \max_{j \le k} (w_j^\top x + b_j).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.validation import (
    check_array,
    check_bool,
    check_choice,
    check_finite,
    check_integer,
    check_key,
    check_nonnegative,
    check_number,
    is_real_number,
)

Array = jax.Array


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    try:
        return jnp.broadcast_shapes(shape, to) == tuple(to)
    except ValueError:
        return False


def prelu(x: Array, alpha: Array) -> Array:
    r"""Parametric ReLU: :math:`f(x) = \max(0, x) + \alpha \min(0, x)` with a learned ``alpha``.

    Args:
      x: inputs.
      alpha: slope of the negative part, broadcast against ``x`` (a scalar or one per unit).

    Returns:
      ``where(x >= 0, x, alpha * x)``.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.prelu(jnp.array([-2.0, 3.0]), 0.25))
      [-0.5  3. ]

    References:
      He et al., Delving Deep into Rectifiers, 2015. https://arxiv.org/abs/1502.01852
    """
    x = check_array("prelu", "x", x)
    check_number("prelu", "alpha", alpha, allow_array=True)
    if not hasattr(alpha, "shape") or alpha.shape == ():  # one slope per unit is an array
        check_finite("prelu", "alpha", alpha)
    elif not _broadcasts(alpha.shape, x.shape):
        raise ValueError(
            f"prelu: alpha (one slope per unit) must broadcast against x, got alpha.shape="
            f"{alpha.shape} for x.shape={x.shape}"
        )
    return jnp.where(x >= 0, x, alpha * x)


def rrelu(
    x: Array,
    key: Array | None = None,
    *,
    lower: float = 1.0 / 8.0,
    upper: float = 1.0 / 3.0,
    train: bool = False,
) -> Array:
    r"""Randomized leaky ReLU: a random negative slope while training, its mean at evaluation.

    .. math::

       f(x) = \begin{cases} x & x \ge 0 \\ a x & x < 0 \end{cases}, \quad
       a \sim U(\mathrm{lower}, \mathrm{upper}) \text{ (training)}, \quad
       a = \tfrac{\mathrm{lower} + \mathrm{upper}}{2} \text{ (evaluation)}.

    One slope is drawn per element. The defaults are those of the paper and of ``torch.nn.RReLU``.

    Args:
      x: inputs.
      key: a ``jax.random`` key, needed when ``train=True``.
      lower: lower bound of the slope.
      upper: upper bound of the slope.
      train: draw random slopes (``True``) or use their mean (``False``).

    Returns:
      The activations, shaped like ``x``.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.rrelu(jnp.array([-2.4, 1.0]), lower=0.1, upper=0.3))
      [-0.48  1.  ]

    References:
      Xu et al., Empirical Evaluation of Rectified Activations in Convolutional Network, 2015.
      https://arxiv.org/abs/1505.00853
    """
    x = check_array("rrelu", "x", x)
    check_rrelu_bounds("rrelu", lower, upper, allow_array=True)
    check_bool("rrelu", "train", train)
    if train:
        if key is None:
            raise ValueError("rrelu: train=True draws random slopes and needs key=a jax.random key")
        check_key("rrelu", "key", key)
        dtype = jnp.result_type(x) if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        a = jax.random.uniform(key, jnp.shape(x), dtype, lower, upper)
    else:
        a = (lower + upper) / 2.0
    return jnp.where(x >= 0, x, a * x)


def maxout(x: Array, num_pieces: int = 2) -> Array:
    r"""Maxout: the maximum over groups of ``num_pieces`` consecutive features.

    The layer before it must produce ``num_pieces`` times as many features as the maxout output
    (so maxout doubles the parameters of a layer for ``num_pieces=2``); feature ``i`` of the
    output is :math:`\max_{j < k} z_{i k + j}`.

    Args:
      x: pre-activations whose last axis is a multiple of ``num_pieces``.
      num_pieces: the number ``k`` of affine pieces per unit.

    Returns:
      An array whose last axis is ``x.shape[-1] // num_pieces``.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.maxout(jnp.array([1.0, -1.0, 0.5, 2.0]), num_pieces=2))
      [1. 2.]

    References:
      Goodfellow et al., Maxout Networks, 2013. https://arxiv.org/abs/1302.4389
    """
    check_integer("maxout", "num_pieces", num_pieces, 1)
    x = check_array("maxout", "x", x, min_ndim=1)
    n = x.shape[-1]
    if n % num_pieces:
        raise ValueError(
            f"maxout: the last axis ({n}) must be a multiple of num_pieces={num_pieces}"
        )
    return jnp.max(x.reshape(*x.shape[:-1], n // num_pieces, num_pieces), axis=-1)


def check_rrelu_bounds(fn: str, lower: Any, upper: Any, *, allow_array: bool = False) -> None:
    """RReLU's slope bounds: finite numbers with ``0 <= lower <= upper`` (checked when concrete)."""
    check_number(fn, "lower", lower, allow_array=allow_array)
    check_number(fn, "upper", upper, allow_array=allow_array)
    check_nonnegative(fn, "lower", lower)
    check_finite(fn, "upper", upper)
    if is_real_number(lower) and is_real_number(upper) and upper < lower:
        raise ValueError(f"{fn}: rrelu needs lower <= upper, got lower={lower}, upper={upper}")


def _identity(x: Array) -> Array:
    return x


# Stateless activations. Each entry: (function, default keyword arguments).
STATELESS: dict[str, tuple[Callable[..., Array], dict[str, Any]]] = {
    "identity": (_identity, {}),
    "linear": (_identity, {}),
    "sigmoid": (jax.nn.sigmoid, {}),
    "tanh": (jnp.tanh, {}),
    "relu": (jax.nn.relu, {}),
    "relu6": (jax.nn.relu6, {}),
    "leaky_relu": (jax.nn.leaky_relu, {"negative_slope": 0.01}),
    "elu": (jax.nn.elu, {"alpha": 1.0}),
    "selu": (jax.nn.selu, {}),
    "celu": (jax.nn.celu, {"alpha": 1.0}),
    "gelu": (jax.nn.gelu, {"approximate": False}),
    "swish": (jax.nn.swish, {}),
    "silu": (jax.nn.silu, {}),
    "softplus": (jax.nn.softplus, {}),
    "hard_tanh": (jax.nn.hard_tanh, {}),
}

# Activations that are layers (learned or random parameters, or a change of width).
LAYERS: dict[str, dict[str, Any]] = {
    "prelu": {"init": 0.25, "per_unit": False},
    "rrelu": {"lower": 1.0 / 8.0, "upper": 1.0 / 3.0},
    "maxout": {"num_pieces": 2},
}

ActivationSpec = str | tuple[str, Mapping[str, Any]] | Callable[[Array], Array]


def activation_names() -> list[str]:
    """Every activation name accepted by :func:`get_activation` and ``MLP(activation=...)``."""
    return sorted([*STATELESS, *LAYERS])


def parse_activation(
    spec: ActivationSpec, fn: str = "get_activation", argument: str = "activation"
) -> tuple[str, dict]:
    """Splits a spec into ``(name, options)``, filling defaults and checking the name/options
    (``argument`` names the argument in the messages)."""
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], Mapping):
            raise TypeError(
                f"{fn}: an activation given as a tuple must be (name, dict_of_options), "
                f"got {spec!r}"
            )
        name, opts = spec[0], dict(spec[1])
    elif isinstance(spec, str):
        name, opts = spec, {}
    else:
        raise TypeError(
            f"{fn}: {argument} must be an activation name, (name, options) or a callable, "
            f"got {argument}={spec!r} ({type(spec).__name__})"
        )
    name = name.lower()
    check_choice(fn, argument, name, activation_names())
    defaults = STATELESS[name][1] if name in STATELESS else LAYERS[name]
    unknown = sorted(set(opts) - set(defaults))
    if unknown:
        raise ValueError(
            f"{fn}: activation {name!r} has no option(s) {unknown}; its options are "
            f"{sorted(defaults)}"
        )
    merged = {**defaults, **opts}
    for option, value in merged.items():
        if isinstance(defaults[option], bool):
            check_bool(f"{fn}({name!r})", option, value)
        elif option == "num_pieces":
            check_integer(f"{fn}({name!r})", option, value, 1)
        elif name != "rrelu":
            check_number(f"{fn}({name!r})", option, value)
            check_finite(f"{fn}({name!r})", option, value)
    if name == "rrelu":
        check_rrelu_bounds(f"{fn}({name!r})", merged["lower"], merged["upper"])
    return name, merged


def get_activation(spec: ActivationSpec, **options: Any) -> Callable[[Array], Array]:
    """The stateless activation function named ``spec`` (a callable is returned unchanged).

    Args:
      spec: a name from :func:`activation_names` (not ``prelu``/``rrelu``/``maxout``, which are
        layers: use :class:`optlab.nn.PReLU`, :class:`optlab.nn.RReLU` or
        ``MLP(activation=...)``), a ``(name, options)`` pair, or a callable.
      **options: options of the activation, e.g. ``negative_slope`` for ``leaky_relu``.

    Returns:
      A function ``x -> activation(x)``.

    Examples:
      >>> import optlab
      >>> f = optlab.nn.get_activation("leaky_relu", negative_slope=0.1)
      >>> print(f(jnp.array([-1.0, 2.0])))
      [-0.1  2. ]
    """
    if callable(spec) and not isinstance(spec, str | tuple):
        return spec
    if isinstance(spec, str) and options:
        spec = (spec, options)
    name, opts = parse_activation(spec, argument="spec")
    if name in LAYERS:
        if name == "maxout":
            return functools.partial(maxout, **opts)
        raise ValueError(
            f"get_activation: {name!r} has learned or random parameters; use "
            f"optlab.nn.{'PReLU' if name == 'prelu' else 'RReLU'} or MLP(activation={name!r})"
        )
    fn = STATELESS[name][0]
    return functools.partial(fn, **opts) if opts else fn
