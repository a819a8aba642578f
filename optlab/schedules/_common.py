"""Argument checks shared by the schedule factories (concrete values only)."""

from __future__ import annotations

import numbers
from typing import Any

from optlab.core.numerics import is_concrete_number
from optlab.core.validation import check_finite, check_number, check_scalar


def check_steps(fn: str, name: str, value: Any, minimum: int) -> None:
    """A step count must be an integer ``>= minimum`` (a float with an integer value is
    accepted, as optax does); jax arrays (possibly traced) only have their dtype checked."""
    check_number(fn, name, value, allow_array=True)
    check_scalar(fn, name, value)
    if (
        is_concrete_number(value)
        and not isinstance(value, numbers.Integral)
        and not float(value).is_integer()
    ):
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")
    if is_concrete_number(value) and value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")


def check_values(fn: str, **values: Any) -> None:
    """Schedule values must be finite numbers or jax arrays; they may be negative (schedules
    drive more than learning rates: momentum, weight decay, a loss weight...)."""
    for name, value in values.items():
        check_finite(fn, name, value)


def check_choice(fn: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{fn}: {name} must be one of {', '.join(map(repr, choices))}, got {name}={value!r}"
        )
