"""Argument checks shared by the schedule factories (concrete values only)."""

from __future__ import annotations

import numbers
from typing import Any

from optlab.core.numerics import is_concrete_number
from optlab.core.validation import check_nonnegative


def check_steps(fn: str, name: str, value: Any, minimum: int) -> None:
    """A step count must be an integer ``>= minimum``; traced jax arrays pass unchecked."""
    if isinstance(value, bool) or (
        is_concrete_number(value)
        and not isinstance(value, numbers.Integral)
        and not float(value).is_integer()
    ):
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")
    if is_concrete_number(value) and value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}")


def check_values(fn: str, **values: Any) -> None:
    """Schedule values (learning rates...) must be finite and ``>= 0``."""
    for name, value in values.items():
        if value is not None:
            check_nonnegative(fn, name, value)


def check_choice(fn: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"{fn}: {name} must be one of {', '.join(map(repr, choices))}, got {name}={value!r}"
        )
