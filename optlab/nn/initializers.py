r"""Weight initializers by name, all from ``jax.nn.initializers``.

For a kernel of shape ``(fan_in, fan_out)`` the variance-scaling family draws weights with

.. math::

   \operatorname{std}(W) = \sqrt{\frac{s}{n}}, \qquad
   \begin{array}{lll}
   \text{lecun}: & s = 1, & n = \mathrm{fan\_in} \\
   \text{glorot (xavier)}: & s = 1, & n = (\mathrm{fan\_in} + \mathrm{fan\_out}) / 2 \\
   \text{he (kaiming)}: & s = 2, & n = \mathrm{fan\_in}
   \end{array}

The ``*_normal`` variants draw from a truncated normal rescaled to that standard deviation (as
Keras and ``jax.nn.initializers`` do); the ``*_uniform`` ones from :math:`U(-l, l)` with
:math:`l = \sqrt{3 s / n}`. ``zeros`` and ``constant`` exist to show the symmetry problem (every
unit of a layer computes the same function and gets the same gradient); ``normal`` with a small
``stddev`` (the seeds' 0.01 or 0.05) shows vanishing activations in deep nets.

Names: see :func:`initializer_names`; options are given as keyword arguments or a
``(name, options)`` pair: ``("normal", {"stddev": 0.05})``, ``("constant", {"value": 0.1})``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

from optlab.core.validation import check_choice

Initializer = Callable[..., jax.Array]
InitializerSpec = str | tuple[str, Mapping[str, Any]] | Initializer

_I = jax.nn.initializers

# name -> (factory, default options). Factories take the options as keyword arguments.
_REGISTRY: dict[str, tuple[Callable[..., Initializer], dict[str, Any]]] = {
    "zeros": (lambda: _I.zeros, {}),
    "ones": (lambda: _I.ones, {}),
    "constant": (lambda value: _I.constant(value), {"value": 0.0}),
    "normal": (lambda stddev: _I.normal(stddev), {"stddev": 0.01}),
    "truncated_normal": (lambda stddev: _I.truncated_normal(stddev), {"stddev": 0.01}),
    "uniform": (lambda scale: _I.uniform(scale), {"scale": 0.01}),
    "glorot_normal": (lambda: _I.glorot_normal(), {}),
    "glorot_uniform": (lambda: _I.glorot_uniform(), {}),
    "he_normal": (lambda: _I.he_normal(), {}),
    "he_uniform": (lambda: _I.he_uniform(), {}),
    "lecun_normal": (lambda: _I.lecun_normal(), {}),
    "lecun_uniform": (lambda: _I.lecun_uniform(), {}),
    "orthogonal": (lambda scale: _I.orthogonal(scale), {"scale": 1.0}),
}
_ALIASES = {
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}


def initializer_names() -> list[str]:
    """Every name accepted by :func:`get_initializer` (aliases included)."""
    return sorted([*_REGISTRY, *_ALIASES])


def get_initializer(spec: InitializerSpec, **options: Any) -> Initializer:
    """The ``jax.nn.initializers`` function named ``spec`` (a callable is returned unchanged).

    Args:
      spec: a name from :func:`initializer_names`, a ``(name, options)`` pair, or a callable
        ``(key, shape, dtype) -> array``.
      **options: options of the initializer (``stddev`` for ``normal``, ``value`` for
        ``constant``, ``scale`` for ``orthogonal`` and ``uniform``).

    Returns:
      An initializer ``(key, shape, dtype=float32) -> array``.

    Examples:
      >>> import optlab
      >>> init = optlab.nn.get_initializer("constant", value=0.5)
      >>> print(init(jax.random.key(0), (2,)))
      [0.5 0.5]
    """
    if callable(spec) and not isinstance(spec, str | tuple):
        return spec
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], Mapping):
            raise ValueError(
                f"get_initializer: an initializer given as a tuple must be (name, "
                f"dict_of_options), got {spec!r}"
            )
        name, opts = spec[0], {**spec[1], **options}
    elif isinstance(spec, str):
        name, opts = spec, options
    else:
        raise ValueError(
            f"get_initializer: initializer must be a name, (name, options) or a callable, "
            f"got {spec!r}"
        )
    name = name.lower()
    check_choice("get_initializer", "initializer", name, initializer_names())
    name = _ALIASES.get(name, name)
    factory, defaults = _REGISTRY[name]
    unknown = sorted(set(opts) - set(defaults))
    if unknown:
        raise ValueError(
            f"get_initializer: initializer {name!r} has no option(s) {unknown}; its options "
            f"are {sorted(defaults)}"
        )
    return factory(**{**defaults, **opts})
