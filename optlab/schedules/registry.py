r"""Learning-rate schedules by name, with their parameters: what a command needs to build one.

:data:`SCHEDULES` maps each name (``cosine``, ``step``, ``one-cycle``, ``sgdr``...) to a
:class:`ScheduleSpec`: a summary, its parameters (:class:`Param`: kind, default, range), whether
a warmup applies, and :meth:`ScheduleSpec.build`, which makes the schedule from a peak value
and a horizon in steps with this package's functions. A run's schedule spans its horizon and
then holds its last value,

.. math::

    \eta_t = s(\min(t, T - 1)),

so a resumed run that asks for more epochs continues at the final value instead of restarting
it. :class:`Param`, :func:`parse_value` and :func:`check_params` also describe the options of
the optimizers (:mod:`optlab.optimizers.registry`).

This module imports no jax until a schedule is built, so a command can check names and
parameters at once.

Examples:
  >>> from optlab.schedules.registry import SCHEDULES, schedule_spec
  >>> spec = schedule_spec("step")
  >>> params = spec.check({"boundaries": [2]}, epochs=4)
  >>> params
  {'boundaries': [2], 'factor': 0.1}
  >>> sched = spec.build(1.0, params, total_steps=8, warmup_steps=0, steps_per_epoch=2)
  >>> print([float(sched(t)) for t in (0, 3, 4, 7, 20)])
  [1.0, 1.0, 0.1, 0.1, 0.1]
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optlab.core.base import Schedule

# ---------------------------------------------------------------------------------------------
# Values a command passes by name (``--opt b1=0.95``, ``--schedule-opt alpha=0.1``)

KINDS = ("float", "int", "bool", "epochs", "epoch_list")
"""The kinds of option values (``epochs`` is a number of epochs > 0, ``epoch_list`` a strictly
increasing list of epochs, ``10,20`` on the command line)."""
_EPOCHS = ("epochs", "epoch_list")


@dataclass(frozen=True)
class Param:
    """One option of an optimizer or a schedule.

    Attributes:
      kind: one of :data:`KINDS`, or a tuple of the accepted strings.
      help: what it does, in a few words.
      default: the value used when it is not given (``None``: the method's or schedule's own).
      low: the smallest accepted value (numbers), or None.
      high: the largest accepted value (numbers), or None.
      low_open: whether ``low`` itself is refused.
      high_open: whether ``high`` itself is refused.
    """

    kind: str | tuple[str, ...]
    help: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def rule(self) -> str:
        """The accepted values in words (``a number in (0, 1]``)."""
        if isinstance(self.kind, tuple):
            return "one of " + ", ".join(self.kind)
        if self.kind == "bool":
            return "true or false"
        what = {
            "float": "a number",
            "int": "an integer",
            "epochs": "a number of epochs > 0",
            "epoch_list": "comma-separated increasing epochs > 0",
        }[self.kind]
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what

    def _in_range(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open else v > self.high))

    def check(self, where: str, name: str, value: Any) -> Any:
        """``value`` converted to the parameter's kind; ``ValueError`` naming ``where`` and
        ``name`` when it is of the wrong kind or out of range."""
        bad = ValueError(f"{where}: {name} must be {self.rule()}, got {name}={value!r}")
        if isinstance(self.kind, tuple):
            if value not in self.kind:
                close = difflib.get_close_matches(str(value), self.kind, n=1, cutoff=0.5)
                if close:
                    raise ValueError(f"{bad}; did you mean {close[0]!r}?")
                raise bad
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad
            return value
        if self.kind == "epoch_list":
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, list | tuple) or not value:
                raise bad
            items = [self._number(bad, v) for v in value]
            if any(b <= a for a, b in itertools.pairwise(items)):
                raise bad
            return items
        return self._number(bad, value)

    def _number(self, bad: ValueError, value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if self.kind == "int" and not float(value).is_integer():
            raise bad
        if not self._in_range(float(value)) or (self.kind in _EPOCHS and value <= 0):
            raise bad
        if self.kind == "int":
            return int(value)
        return value


def parse_value(text: str) -> bool | int | float | list[int | float] | str:
    """A command-line value: ``true``/``false``, an integer, a number, a comma-separated list
    of numbers, or else the text itself (for choices such as ``mode=triangular2``)."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in stripped:
        parts = [parse_value(p) for p in stripped.split(",")]
        if all(isinstance(p, int | float) and not isinstance(p, bool) for p in parts):
            return parts  # type: ignore[return-value]
        return stripped
    for convert in (int, float):
        try:
            return convert(stripped)
        except ValueError:
            pass
    return stripped


def check_params(
    where: str, params: Mapping[str, Any], accepted: Mapping[str, Param]
) -> dict[str, Any]:
    """Checks ``params`` against ``accepted``: every name known, every value of its kind.

    Returns:
      The values converted to their kinds.

    Raises:
      ValueError: naming ``where``, the parameter and what it accepts (with a did-you-mean for
        an unknown name).
    """
    out = {}
    for name, value in params.items():
        if name not in accepted:
            known = ", ".join(accepted) or "none"
            close = difflib.get_close_matches(name, list(accepted), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"{where} takes no option {name!r}{hint} (its options: {known})")
        out[name] = accepted[name].check(where, name, value)
    return out


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule a run can choose by name.

    The run's learning rate (``--lr``, or the optimizer's default) is the schedule's peak
    value; epochs are converted to steps with the run's steps per epoch; a linear warmup of
    ``warmup_epochs`` from 0 comes first when ``warmup`` allows it. The schedule spans the
    run's epochs (its horizon) and holds its final value afterwards, so a resumed run asking
    for more epochs never restarts it.

    Attributes:
      name: the key of :data:`SCHEDULES`.
      summary: the rule in a few words, and the library function(s) it uses.
      params: its parameters by name (``--schedule-opt NAME=VALUE``).
      warmup: whether ``warmup_epochs`` applies (one-cycle has its own rise).
      needs_warmup: whether it requires ``warmup_epochs >= 1``.
      horizon: whether the value depends on the run's length (False for constant rates and
        for reduce-on-plateau, which follows the validation loss).
    """

    name: str
    summary: str
    params: Mapping[str, Param] = field(default_factory=dict)
    warmup: bool = True
    needs_warmup: bool = False
    horizon: bool = True

    def check(
        self, params: Mapping[str, Any], *, epochs: int, warmup_epochs: int = 0
    ) -> dict[str, Any]:
        """Checks a run's parameters for this schedule (names, kinds, and epochs within the
        run); returns them converted, defaults filled in.

        Raises:
          ValueError: ``schedule <name>: ...``, naming the parameter.
        """
        where = f"schedule {self.name}"
        out = check_params(where, params, self.params)
        if warmup_epochs and not self.warmup:
            raise ValueError(
                f"{where} does not take a warmup (it rises by itself); drop --warmup-epochs "
                f"(warmup_epochs={warmup_epochs})"
            )
        if self.needs_warmup and warmup_epochs < 1:
            raise ValueError(f"{where} needs warmup_epochs >= 1 (--warmup-epochs N)")
        if warmup_epochs >= epochs and warmup_epochs:
            raise ValueError(
                f"{where}: warmup_epochs must be fewer than the run's {epochs} epochs, got "
                f"warmup_epochs={warmup_epochs}"
            )
        for name, param in self.params.items():
            if name not in out and param.default is not None:
                out[name] = param.default
        for name, value in out.items():
            if self.params[name].kind == "epoch_list" and not (
                warmup_epochs < value[0] and value[-1] < epochs
            ):
                raise ValueError(
                    f"{where}: {name} must lie after the warmup ({warmup_epochs} epochs) and "
                    f"before the end of the run ({epochs} epochs), got {name}={value!r}"
                )
        return out

    def build(
        self,
        peak: float,
        params: Mapping[str, Any],
        *,
        total_steps: int,
        warmup_steps: int,
        steps_per_epoch: int,
    ) -> Any:
        """The schedule ``count -> value`` with peak ``peak`` over ``total_steps`` (the
        horizon), after a linear warmup of ``warmup_steps``; it holds its value at step
        ``total_steps - 1`` afterwards (when :attr:`horizon`).

        Args:
          peak: the peak value (the run's learning rate).
          params: the output of :meth:`check`.
          total_steps: the horizon in steps.
          warmup_steps: steps of linear warmup from 0 (0 for none).
          steps_per_epoch: converts the parameters given in epochs.
        """
        sched = _BUILDERS[self.name](
            peak, params, total=total_steps, warmup=warmup_steps, spe=steps_per_epoch
        )
        return hold_after(sched, total_steps - 1) if self.horizon else sched


_FRACTION_OF_PEAK = Param("float", "final value as a fraction of the peak", 0.0, low=0.0)
_EXPONENT = Param("float", "power of the cosine factor", 1.0, low=0.0, low_open=True)
_STAIRCASE = Param("bool", "decay in whole steps of transition_epochs", False)

_SCHEDULE_SPECS = [
    ScheduleSpec("constant", "the peak value throughout", horizon=False),
    ScheduleSpec(
        "step",
        "multiply by factor at each boundary epoch (piecewise_constant_schedule)",
        {
            "boundaries": Param("epoch_list", "epochs at which to decay (default: 50%, 75%)"),
            "factor": Param("float", "multiplier at each boundary", 0.1, low=0.0, low_open=True),
        },
    ),
    ScheduleSpec(
        "exponential",
        "peak * decay_rate ** (t / transition) (exponential_decay)",
        {
            "decay_rate": Param("float", "factor per transition", 0.1, low=0.0, low_open=True),
            "transition_epochs": Param(
                "epochs", "epochs per decay_rate (default: the whole run after the warmup)"
            ),
            "staircase": _STAIRCASE,
        },
    ),
    ScheduleSpec(
        "inverse-time",
        "peak / (1 + decay_rate * t / transition) (inverse_time_decay)",
        {
            "decay_rate": Param("float", "k in peak / (1 + k t)", 1.0, low=0.0),
            "transition_epochs": Param("epochs", "epochs per unit of t (default: 1)"),
            "staircase": _STAIRCASE,
        },
    ),
    ScheduleSpec(
        "cosine",
        "half a cosine from the peak to alpha * peak (cosine_decay_schedule)",
        {"alpha": _FRACTION_OF_PEAK, "exponent": _EXPONENT},
    ),
    ScheduleSpec(
        "warmup-cosine",
        "linear warmup from init_value, cosine to end_value (warmup_cosine_decay_schedule)",
        {
            "init_value": Param("float", "value at step 0", 0.0, low=0.0),
            "end_value": Param("float", "final value", 0.0, low=0.0),
            "exponent": _EXPONENT,
        },
        needs_warmup=True,
    ),
    ScheduleSpec(
        "one-cycle",
        "cosine rise to the peak then fall far below (cosine_onecycle_schedule)",
        {
            "pct_start": Param(
                "float", "fraction of the run spent rising", 0.3, 0.0, 1.0, True, True
            ),
            "div_factor": Param(
                "float", "start at peak / div_factor", 25.0, low=0.0, low_open=True
            ),
            "final_div_factor": Param(
                "float", "end at start / final_div_factor", 1e4, low=0.0, low_open=True
            ),
        },
        warmup=False,
    ),
    ScheduleSpec(
        "sgdr",
        "cosine cycles restarting at the peak (sgdr_schedule, warm restarts)",
        {
            "cycle_epochs": Param("epochs", "length of the first cycle (default: 1/4 of the run)"),
            "t_mult": Param("int", "each cycle is t_mult times longer", 1, low=1),
            "alpha": _FRACTION_OF_PEAK,
        },
    ),
    ScheduleSpec(
        "cyclic",
        "triangular cycles between base and peak (cyclic_schedule, torch CyclicLR)",
        {
            "base_fraction": Param("float", "lowest value / peak", 0.1, 0.0, 1.0),
            "half_cycle_epochs": Param("epochs", "epochs from base to peak (default: 2)"),
            "mode": Param(
                ("triangular", "triangular2", "exp_range"), "amplitude policy", "triangular"
            ),
            "gamma": Param("float", "exp_range's decay per step", 1.0, 0.0, 1.0, True),
        },
    ),
    ScheduleSpec(
        "warmup-stable-decay",
        "warmup, constant peak, then decay at the end (warmup_stable_decay_schedule)",
        {
            "decay_epochs": Param("epochs", "length of the final decay (default: 20% of the run)"),
            "end_value": Param("float", "final value", 0.0, low=0.0),
            "decay_type": Param(("linear", "cosine", "sqrt"), "shape of the decay", "linear"),
        },
    ),
    ScheduleSpec(
        "reduce-on-plateau",
        "multiply by factor when the validation loss stalls (ReduceLROnPlateau callback)",
        {
            "factor": Param("float", "multiplier at each reduction", 0.1, 0.0, 1.0, True, True),
            "patience": Param("int", "epochs without improvement before reducing", 5, low=0),
            "min_delta": Param("float", "smallest change that counts", 1e-4, low=0.0),
            "cooldown": Param("int", "epochs to wait after a reduction", 0, low=0),
            "min_lr": Param("float", "lower bound of the learning rate", 0.0, low=0.0),
        },
        horizon=False,
    ),
]

SCHEDULES: Mapping[str, ScheduleSpec] = MappingProxyType({s.name: s for s in _SCHEDULE_SPECS})
"""Every learning-rate schedule a run can choose, by name."""

SCHEDULE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "piecewise": "step",
        "onecycle": "one-cycle",
        "wsd": "warmup-stable-decay",
        "plateau": ("reduce-on-plateau"),
    }
)
"""Other accepted names of :data:`SCHEDULES` entries."""


def schedule_spec(name: str) -> ScheduleSpec:
    """The :class:`ScheduleSpec` called ``name`` (or one of its aliases; ``_`` for ``-``).

    Raises:
      ValueError: an unknown name, with a did-you-mean suggestion.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = SCHEDULE_ALIASES.get(key, key)
    if key not in SCHEDULES:
        choices = sorted([*SCHEDULES, *SCHEDULE_ALIASES])
        close = difflib.get_close_matches(key, choices, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"unknown schedule {name!r}{hint} (choices: {', '.join(SCHEDULES)})")
    return SCHEDULES[key]


# ---------------------------------------------------------------------------------------------
# Building


def _warm(body: Any, peak: float, warmup: int) -> Any:
    """``body`` after a linear warmup from 0 to ``peak`` over ``warmup`` steps."""
    if not warmup:
        return body
    from optlab.schedules.basic import linear_schedule
    from optlab.schedules.join import join_schedules

    return join_schedules([linear_schedule(0.0, peak, warmup), body], [warmup])


def _steps(epochs: float, steps_per_epoch: int) -> int:
    return max(1, round(epochs * steps_per_epoch))


def _constant(peak, p, *, total, warmup, spe):
    from optlab.schedules.basic import constant_schedule

    return _warm(constant_schedule(peak), peak, warmup)


def _step(peak, p, *, total, warmup, spe):
    from optlab.schedules.basic import piecewise_constant_schedule

    w_epochs, h_epochs = warmup / spe, total / spe
    bounds = p.get("boundaries") or [
        w_epochs + 0.5 * (h_epochs - w_epochs),
        w_epochs + 0.75 * (h_epochs - w_epochs),
    ]
    scales = {max(_steps(b, spe) - warmup, 1): p["factor"] for b in bounds}
    return _warm(piecewise_constant_schedule(peak, scales), peak, warmup)


def _exponential(peak, p, *, total, warmup, spe):
    from optlab.schedules.basic import exponential_decay

    te = p.get("transition_epochs")
    steps = _steps(te, spe) if te else max(total - warmup, 1)
    body = exponential_decay(peak, steps, p["decay_rate"], staircase=p["staircase"])
    return _warm(body, peak, warmup)


def _inverse_time(peak, p, *, total, warmup, spe):
    from optlab.schedules.basic import inverse_time_decay

    steps = _steps(p.get("transition_epochs") or 1, spe)
    body = inverse_time_decay(peak, steps, p["decay_rate"], staircase=p["staircase"])
    return _warm(body, peak, warmup)


def _cosine(peak, p, *, total, warmup, spe):
    from optlab.schedules.cosine import cosine_decay_schedule

    body = cosine_decay_schedule(peak, total - warmup, p["alpha"], p["exponent"])
    return _warm(body, peak, warmup)


def _warmup_cosine(peak, p, *, total, warmup, spe):
    from optlab.schedules.cosine import warmup_cosine_decay_schedule

    return warmup_cosine_decay_schedule(
        p["init_value"], peak, warmup, total, p["end_value"], p["exponent"]
    )


def _one_cycle(peak, p, *, total, warmup, spe):
    from optlab.schedules.cosine import cosine_onecycle_schedule

    return cosine_onecycle_schedule(
        total, peak, p["pct_start"], p["div_factor"], p["final_div_factor"]
    )


_MAX_CYCLES = 100


def _sgdr(peak, p, *, total, warmup, spe):
    from optlab.schedules.cosine import sgdr_schedule

    span = total - warmup
    length = _steps(p["cycle_epochs"], spe) if p.get("cycle_epochs") else max(span // 4, 1)
    cycles, covered = [], 0
    while covered < span:
        if len(cycles) == _MAX_CYCLES:
            raise ValueError(
                f"schedule sgdr: cycle_epochs={p.get('cycle_epochs')} makes more than "
                f"{_MAX_CYCLES} cycles in the run; choose longer cycles"
            )
        cycles.append(
            dict(
                init_value=peak,
                peak_value=peak,
                warmup_steps=0,
                decay_steps=length,
                end_value=p["alpha"] * peak,
            )
        )
        covered += length
        length *= p["t_mult"]
    return _warm(sgdr_schedule(cycles), peak, warmup)


def _cyclic(peak, p, *, total, warmup, spe):
    from optlab.schedules.cyclic import cyclic_schedule

    up = _steps(p.get("half_cycle_epochs") or 2, spe)
    body = cyclic_schedule(p["base_fraction"] * peak, peak, up, mode=p["mode"], gamma=p["gamma"])
    return _warm(body, peak, warmup)


def _warmup_stable_decay(peak, p, *, total, warmup, spe):
    from optlab.schedules.warmup import warmup_stable_decay_schedule

    de = p.get("decay_epochs")
    decay = _steps(de, spe) if de else max(round(0.2 * (total - warmup)), 1)
    stable = total - warmup - decay
    if stable < 0:
        raise ValueError(
            f"schedule warmup-stable-decay: decay_epochs={de} is longer than the run after "
            f"its warmup ({(total - warmup) / spe:g} epochs)"
        )
    return warmup_stable_decay_schedule(
        peak, warmup, stable, decay, end_value=p["end_value"], decay_type=p["decay_type"]
    )


_BUILDERS: dict[str, Callable[..., Any]] = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "inverse-time": _inverse_time,
    "cosine": _cosine,
    "warmup-cosine": _warmup_cosine,
    "one-cycle": _one_cycle,
    "sgdr": _sgdr,
    "cyclic": _cyclic,
    "warmup-stable-decay": _warmup_stable_decay,
    "reduce-on-plateau": _constant,  # the rate is lowered by the ReduceLROnPlateau callback
}


def hold_after(schedule: Schedule, last_step: int) -> Schedule:
    """``schedule`` up to ``last_step``, then its value at ``last_step`` for ever."""

    import jax.numpy as jnp

    def held(count):
        return schedule(jnp.minimum(count, last_step))

    return held
