r"""Normalization layers by name: BatchNorm, LayerNorm and GroupNorm from ``flax.nnx``.

BatchNorm normalizes each feature with the statistics of the batch while training and with
running averages at evaluation:

.. math::

   \hat x = \gamma \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
   \bar\mu \leftarrow m \bar\mu + (1 - m)\mu_{\mathcal B}, \quad
   \bar\sigma^2 \leftarrow m \bar\sigma^2 + (1 - m)\sigma^2_{\mathcal B},

with :math:`(\mu, \sigma^2) = (\mu_{\mathcal B}, \sigma^2_{\mathcal B})` while training and
:math:`(\bar\mu, \bar\sigma^2)` at evaluation; the momentum :math:`m` defaults to 0.99 (Keras
and Flax). The running averages are ``nnx.BatchStat`` variables: they live in the model's
``state`` (not its ``params``) in :func:`optlab.nn.functional`. LayerNorm and GroupNorm use the
statistics of each example and behave the same in both modes.

A norm is named ``"batch"``, ``"layer"`` or ``"group"``, optionally with options as a
``(name, options)`` pair: ``("batch", {"momentum": 0.9})``, ``("group", {"num_groups": 4})``,
or given as a callable ``(num_features, rngs) -> nnx.Module``.
GroupNorm's default number of groups is the largest divisor of the width that is at most 8.

References:
  Ioffe and Szegedy, Batch Normalization, 2015. https://arxiv.org/abs/1502.03167
  Ba, Kiros and Hinton, Layer Normalization, 2016. https://arxiv.org/abs/1607.06450
  Wu and He, Group Normalization, 2018. https://arxiv.org/abs/1803.08494
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import nnx

from optlab.core.validation import (
    check_choice,
    check_in_range,
    check_integer,
    check_number,
    check_positive,
)

NormSpec = None | str | tuple[str, Mapping[str, Any]]

_DEFAULTS: dict[str, dict[str, Any]] = {
    "batch": {"momentum": 0.99, "epsilon": 1e-5},
    "layer": {"epsilon": 1e-6},
    "group": {"num_groups": None, "epsilon": 1e-6},
}


def norm_names() -> list[str]:
    """The accepted norm names."""
    return sorted(_DEFAULTS)


def parse_norm(spec: NormSpec, fn: str = "make_norm") -> tuple[str | None, dict[str, Any]]:
    """``(name, options)`` for a norm spec, defaults filled in; ``(None, {})`` for no norm."""
    if spec is None:
        return None, {}
    if callable(spec) and not isinstance(spec, str | tuple):
        return "custom", {}
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], Mapping):
            raise TypeError(
                f"{fn}: a norm given as a tuple must be (name, dict_of_options), got {spec!r}"
            )
        name, opts = spec[0], dict(spec[1])
    elif isinstance(spec, str):
        name, opts = spec, {}
    else:
        raise TypeError(
            f"{fn}: norm must be None, a name, (name, options) or a callable "
            f"(num_features, rngs) -> module, got norm={spec!r} ({type(spec).__name__})"
        )
    name = name.lower()
    check_choice(fn, "norm", name, norm_names())
    unknown = sorted(set(opts) - set(_DEFAULTS[name]))
    if unknown:
        raise ValueError(
            f"{fn}: norm {name!r} has no option(s) {unknown}; its options are "
            f"{sorted(_DEFAULTS[name])}"
        )
    merged = {**_DEFAULTS[name], **opts}
    check_number(f"{fn}(norm={name!r})", "epsilon", merged["epsilon"])
    check_positive(f"{fn}(norm={name!r})", "epsilon", merged["epsilon"])
    if name == "batch":
        check_number(f"{fn}(norm={name!r})", "momentum", merged["momentum"])
        check_in_range(f"{fn}(norm={name!r})", "momentum", merged["momentum"], 0.0, 1.0)
    if name == "group" and merged["num_groups"] is not None:
        check_integer(f"{fn}(norm={name!r})", "num_groups", merged["num_groups"], 1)
    return name, merged


def _default_groups(num_features: int) -> int:
    return max(g for g in range(1, 9) if num_features % g == 0)


def make_norm(spec: NormSpec, num_features: int, *, rngs: nnx.Rngs) -> nnx.Module | None:
    """A fresh norm layer for ``num_features`` features (``None`` for ``spec=None``).

    ``spec`` may also be a callable ``(num_features, rngs) -> module``; the module is called as
    ``norm(x)`` (an ``nnx.BatchNorm`` it returns still gets ``use_running_average`` when a call
    overrides the mode). The named norms start from constants, so ``rngs`` is only passed to a
    callable.
    """
    if callable(spec) and not isinstance(spec, str | tuple):
        return spec(num_features, rngs)
    name, opts = parse_norm(spec)
    if name is None:
        return None
    if name == "batch":
        return _built(
            lambda r: nnx.BatchNorm(
                num_features, momentum=opts["momentum"], epsilon=opts["epsilon"], rngs=r
            )
        )
    if name == "layer":
        return _built(lambda r: nnx.LayerNorm(num_features, epsilon=opts["epsilon"], rngs=r))
    groups = opts["num_groups"] or _default_groups(num_features)
    if num_features % groups:
        raise ValueError(
            f"make_norm: GroupNorm needs num_groups to divide the width, got "
            f"num_groups={groups} for {num_features} features"
        )
    return _built(
        lambda r: nnx.GroupNorm(num_features, num_groups=groups, epsilon=opts["epsilon"], rngs=r)
    )


# Flax's norms start from constants: scale and variance ones, bias and mean zeros.
_ONES, _ZEROS = {"scale", "var"}, {"bias", "mean"}


def _built(make: Any) -> nnx.Module:
    """``make(rngs)`` without compiling anything: Flax builds its norms with eager ``jnp.zeros``
    and ``jnp.ones``, one compilation per new width (about 0.1 s each); the module is traced
    abstractly instead and its constant variables are filled from NumPy."""
    module = nnx.eval_shape(lambda: make(nnx.Rngs(0)))
    variables = [(p, v) for p, v in nnx.iter_graph(module) if isinstance(v, nnx.Variable)]
    if any(str(p[-1]) not in _ONES | _ZEROS for p, _ in variables):  # an unknown Flax version
        return make(nnx.Rngs(0))
    for path, var in variables:
        aval = var.get_value()
        fill = np.ones if str(path[-1]) in _ONES else np.zeros
        var.set_value(jax.device_put(fill(aval.shape, aval.dtype)))
    return module


def apply_norm(norm: nnx.Module | None, x: jax.Array, *, train: bool | None) -> jax.Array:
    """Calls a norm layer: in its own mode (``train=None``: BatchNorm's ``use_running_average``
    flag, which ``.train()`` / ``.eval()`` set) or in the mode ``train`` overrides."""
    if norm is None:
        return x
    if train is not None and isinstance(norm, nnx.BatchNorm):
        return norm(x, use_running_average=not train)
    return norm(x)
