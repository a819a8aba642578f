"""JSON descriptions of the choices made by name (activations, initializers, norms).

A spec given by name, ``"relu"``, stays a string; one with options, ``("leaky_relu",
{"negative_slope": 0.1})``, becomes the list ``["leaky_relu", {"negative_slope": 0.1}]`` (and
back); a callable cannot be described, which ``json_spec`` reports with the reason. Used by
the models to record their architecture (:func:`optlab.nn.model_config`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any


class NotDescribable(ValueError):
    """A model argument (a callable, an array) that a JSON configuration cannot hold."""


def json_value(name: str, value: Any) -> Any:
    """``value`` as JSON (numbers, strings, bools, ``None``, lists and string-keyed dicts)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)):
        return float(value)
    if isinstance(value, list | tuple):
        return [json_value(name, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: json_value(f"{name}[{k!r}]", v) for k, v in value.items()}
    raise NotDescribable(f"{name}={value!r} ({type(value).__name__})")


def json_spec(name: str, spec: Any) -> Any:
    """A named spec as JSON; :class:`NotDescribable` for a callable."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return [spec[0], json_value(name, dict(spec[1]))]
    raise NotDescribable(f"{name}={spec!r} is not a name (a callable cannot be described)")


def spec_from_json(value: Any) -> Any:
    """The inverse of :func:`json_spec`: ``[name, options]`` becomes ``(name, options)``."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        return (value[0], dict(value[1]))
    return value
