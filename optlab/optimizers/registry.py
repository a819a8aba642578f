"""Every optimizer and learning-rate schedule by name, with what a command needs to know: data.

:data:`REGISTRY` holds the first-order optimizers (the conformance suite,
``benchmarks/convergence.py``, ``benchmarks/update_throughput.py`` and ``optlab compare``
iterate over it); :data:`OPTIMIZERS` adds the full-batch methods (L-BFGS), which the training
command can also run. ``defaults`` suit a small MLP; ``tuned`` overrides them for the test
problems of the convergence benchmark (``"quadratic"``: an ill-conditioned quadratic,
``"rosenbrock"``: the Rosenbrock function), where the scale of the curvature differs a lot
from an MLP's. Each entry also says how a command may configure the method: which keyword
arguments it takes and of what kind (``options``), whether it trains on the full batch with
its own line search (``full_batch``: no learning rate, no schedule), and how weight decay
reaches it (``weight_decay``). :data:`SCHEDULES` lists the learning-rate schedules a run can
use, with their parameters (``optlab.train.recipes`` builds them).

This module imports no jax: a factory is imported the first time ``spec.factory`` is read,
so a command can check names and options at once.

Examples:
  >>> from optlab.optimizers.registry import OPTIMIZERS, REGISTRY, make
  >>> dict(REGISTRY["adam"].defaults)
  {'learning_rate': 0.001}
  >>> tx = make("momentum", learning_rate=0.01)
  >>> sorted(REGISTRY)[:3]
  ['adadelta', 'adagrad', 'adam']
  >>> OPTIMIZERS["lbfgs"].full_batch, OPTIMIZERS["adamw"].weight_decay
  (True, 'decoupled')
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optlab.core.base import GradientTransformation

# ---------------------------------------------------------------------------------------------
# Values a command passes by name (``--opt b1=0.95``, ``--schedule-opt alpha=0.1``)

KINDS = ("float", "int", "bool", "epochs", "epoch_list")
"""Kinds of option values: ``epochs`` is a number of epochs (> 0), ``epoch_list`` a strictly
increasing list of epochs (``10,20`` on the command line)."""
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
# Optimizers

_PROB = Param("float", "a decay rate", low=0.0, high=1.0, high_open=True)
_EPS = Param("float", "added to the denominator", low=0.0)
_FLAG = Param("bool", "a switch of the method")
_ADAM = {"b1": _PROB, "b2": _PROB, "eps": _EPS, "eps_root": _EPS}
_MOMENTUM = Param("float", "momentum coefficient", low=0.0, high=1.0, high_open=True)
_DECAY = Param("float", "weight decay coefficient", low=0.0)

# The keyword arguments of each factory a command can set (numbers and switches): dtypes,
# masks and line searches are Python objects, set in code. learning_rate is set by the
# command's own option, weight_decay too where the factory takes it (``weight_decay``).
_OPTIONS: dict[str, dict[str, Param]] = {
    "sgd": {"momentum": _MOMENTUM, "nesterov": _FLAG},
    "adagrad": {"initial_accumulator_value": Param("float", "initial sum", low=0.0), "eps": _EPS},
    "rmsprop": {
        "decay": _PROB,
        "eps": _EPS,
        "initial_scale": Param("float", "initial second moment", low=0.0),
        "eps_in_sqrt": _FLAG,
        "centered": _FLAG,
        "momentum": _MOMENTUM,
        "nesterov": _FLAG,
        "bias_correction": _FLAG,
    },
    "adadelta": {"rho": _PROB, "eps": _EPS},
    "adam": {**_ADAM, "nesterov": _FLAG},
    "adamw": {**_ADAM, "nesterov": _FLAG},
    "nadam": dict(_ADAM),
    "nadamw": dict(_ADAM),
    "amsgrad": {**_ADAM, "bias_correction_mu": _FLAG, "bias_correction_nu": _FLAG},
    "adamax": {"b1": _PROB, "b2": _PROB, "eps": _EPS},
    "lbfgs": {
        "memory_size": Param("int", "curvature pairs kept", low=1),
        "scale_init_precond": _FLAG,
    },
}

# Where each factory lives (imported on first use of ``spec.factory``).
_MODULES = {
    "sgd": "optlab.optimizers.sgd",
    "adagrad": "optlab.optimizers.adagrad",
    "rmsprop": "optlab.optimizers.rmsprop",
    "adadelta": "optlab.optimizers.adadelta",
    "adam": "optlab.optimizers.adam",
    "adamw": "optlab.optimizers.adam",
    "nadam": "optlab.optimizers.adam",
    "nadamw": "optlab.optimizers.adam",
    "amsgrad": "optlab.optimizers.adam",
    "adamax": "optlab.optimizers.adam",
    "lbfgs": "optlab.optimizers.lbfgs",
}


@dataclass(frozen=True)
class OptimizerSpec:
    """One registry entry.

    Attributes:
      name: the registry key (also the name shown in tables).
      factory_name: the optlab alias it builds (``"sgd"`` for ``"momentum"``).
      defaults: keyword arguments for ``factory`` suited to a small MLP.
      tuned: per problem (``"quadratic"``, ``"rosenbrock"``), overrides of ``defaults``.
      optax_name: the optax function with the same behaviour (called with ``defaults``).
      summary: the update rule in a few words.
      full_batch: the method needs the exact loss and gradient of the whole training set
        (its line search compares values along a direction): it trains on the full batch,
        chooses its own step (no learning rate, no schedule) and runs one step per epoch.
      weight_decay: ``"decoupled"`` (the factory's own ``weight_decay``, as AdamW's),
        ``"l2"`` (a command adds :math:`\\lambda\\theta` to the gradient before the method,
        ``add_decayed_weights``) or ``None`` (refused: with a line search the penalty would
        be missing from the values it compares).
    """

    name: str
    factory_name: str
    defaults: Mapping[str, Any]
    tuned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    optax_name: str | None = None
    summary: str = ""
    full_batch: bool = False
    weight_decay: str | None = "l2"

    @property
    def factory(self) -> Callable[..., GradientTransformation]:
        """The optlab alias (``optlab.sgd`` for ``"momentum"``), imported on first use."""
        return getattr(importlib.import_module(_MODULES[self.factory_name]), self.factory_name)

    @property
    def options(self) -> Mapping[str, Param]:
        """The keyword arguments a command may set (``--opt NAME=VALUE``), by name."""
        return MappingProxyType(_OPTIONS[self.factory_name])

    def kwargs(self, problem: str | None = None, **overrides: Any) -> dict[str, Any]:
        """``defaults``, then the ``tuned`` values of ``problem``, then ``overrides``."""
        out = dict(self.defaults)
        if problem is not None:
            out.update(self.tuned.get(problem, {}))
        out.update(overrides)
        return out

    def check_run(
        self,
        *,
        epochs: int,
        lr: Any = None,
        momentum: Any = None,
        opt: Mapping[str, Any] | None = None,
        schedule: str = "constant",
        schedule_opt: Mapping[str, Any] | None = None,
        warmup_epochs: int = 0,
        weight_decay: Any = None,
        batch_size: Any = None,
    ) -> dict[str, Any]:
        """Refuses the options of a training run that this method does not use.

        A full-batch method takes no learning rate, batch size, schedule or warmup; weight
        decay needs ``weight_decay`` to be ``"decoupled"`` or ``"l2"``; ``momentum`` needs a
        ``momentum`` option; every ``opt`` name must be one of :attr:`options` (the learning
        rate and weight decay have their own arguments); the schedule's parameters are checked
        by :meth:`ScheduleSpec.check`. ``None`` (or 0 for ``warmup_epochs``) means not given.

        Returns:
          The method's keyword arguments from ``opt`` and ``momentum``, of their kinds.

        Raises:
          ValueError: one line naming the option (with its command-line flag).
        """
        where = self.name
        if self.full_batch:
            given = {
                "lr (--lr)": lr is not None,
                "batch_size (--batch-size)": batch_size is not None,
                f"schedule {schedule!r} (--schedule)": schedule_spec(schedule).name != "constant",
                "schedule_opt (--schedule-opt)": bool(schedule_opt),
                "warmup_epochs (--warmup-epochs)": bool(warmup_epochs),
            }
            refused = [k for k, v in given.items() if v]
            if refused:
                raise ValueError(
                    f"{where} trains on the full batch and chooses its step by line search: "
                    f"it takes no {', '.join(refused)}"
                )
        if weight_decay is not None and self.weight_decay is None:
            raise ValueError(
                f"{where} takes no weight_decay (--weight-decay): its line search compares loss "
                "values that would not include the penalty"
            )
        opts = dict(opt or {})
        for key, flag in (("learning_rate", "lr"), ("weight_decay", "weight-decay")):
            if key in opts:
                raise ValueError(f"{where}: give {key} with --{flag}, not --opt {key}=...")
        if momentum is not None:
            if "momentum" not in self.options:
                raise ValueError(f"{where} takes no momentum (--momentum)")
            if "momentum" in opts:
                raise ValueError(f"{where}: momentum given twice (--momentum and --opt momentum)")
            opts["momentum"] = momentum
        opts = check_params(where, opts, self.options)
        schedule_spec(schedule).check(
            schedule_opt or {}, epochs=epochs, warmup_epochs=warmup_epochs
        )
        return opts


def _spec(
    name: str,
    factory_name: str,
    defaults: dict[str, Any],
    quadratic: float,
    rosenbrock: float,
    optax_name: str,
    summary: str,
    weight_decay: str = "l2",
) -> OptimizerSpec:
    return OptimizerSpec(
        name=name,
        factory_name=factory_name,
        defaults=MappingProxyType(defaults),
        tuned=MappingProxyType(
            {
                "quadratic": MappingProxyType({"learning_rate": quadratic}),
                "rosenbrock": MappingProxyType({"learning_rate": rosenbrock}),
            }
        ),
        optax_name=optax_name,
        summary=summary,
        weight_decay=weight_decay,
    )


_SPECS = [
    _spec("sgd", "sgd", {"learning_rate": 0.1}, 0.01, 0.001, "sgd", "step against the gradient"),
    _spec(
        "momentum",
        "sgd",
        {"learning_rate": 0.05, "momentum": 0.9},
        0.003,
        0.001,
        "sgd",
        "heavy ball: decaying sum of past gradients",
    ),
    _spec(
        "nesterov",
        "sgd",
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        0.01,
        0.0005,
        "sgd",
        "momentum with the look-ahead gradient",
    ),
    _spec(
        "adagrad",
        "adagrad",
        {"learning_rate": 0.1},
        1.0,
        1.0,
        "adagrad",
        "divide by the root of the sum of squared gradients",
    ),
    _spec(
        "rmsprop",
        "rmsprop",
        {"learning_rate": 1e-3},
        0.0003,
        0.0003,
        "rmsprop",
        "divide by the root of a moving average of squared gradients",
    ),
    _spec(
        "rmsprop_centered",
        "rmsprop",
        {"learning_rate": 1e-3, "centered": True, "momentum": 0.9},
        0.0001,
        5e-05,
        "rmsprop",
        "divide by a moving standard deviation, with momentum",
    ),
    _spec(
        "adadelta",
        "adadelta",
        {"learning_rate": 1.0},
        0.01,
        0.03,
        "adadelta",
        "RMS of past steps over RMS of gradients",
        weight_decay="decoupled",
    ),
    _spec(
        "adam",
        "adam",
        {"learning_rate": 1e-3},
        0.3,
        0.03,
        "adam",
        "bias-corrected momentum over root of bias-corrected second moment",
    ),
    _spec(
        "adamw",
        "adamw",
        # torch.optim.AdamW's 1e-2: optax's default 1e-4 shrinks weights by lr * 1e-4 = 1e-7 a
        # step, which leaves a 20-epoch MLP run indistinguishable from Adam.
        {"learning_rate": 1e-3, "weight_decay": 1e-2},
        0.01,
        0.01,
        "adamw",
        "Adam plus decoupled weight decay",
        weight_decay="decoupled",
    ),
    _spec(
        "nadam",
        "nadam",
        {"learning_rate": 1e-3},
        0.1,
        0.003,
        "nadam",
        "Adam with Nesterov's look-ahead momentum",
    ),
    _spec(
        "nadamw",
        "nadamw",
        {"learning_rate": 1e-3, "weight_decay": 1e-2},  # as adamw's
        0.01,
        0.003,
        "nadamw",
        "NAdam plus decoupled weight decay",
        weight_decay="decoupled",
    ),
    _spec(
        "amsgrad",
        "amsgrad",
        {"learning_rate": 1e-3},
        1.0,
        1.0,
        "amsgrad",
        "Adam with a non-decreasing second moment",
    ),
    _spec(
        "adamax",
        "adamax",
        {"learning_rate": 2e-3},
        1.0,
        0.1,
        "adamax",
        "Adam with the infinity norm",
    ),
]

REGISTRY: Mapping[str, OptimizerSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every registered first-order optimizer, by name."""

OPTIMIZERS: Mapping[str, OptimizerSpec] = MappingProxyType(
    {
        **REGISTRY,
        "lbfgs": OptimizerSpec(
            name="lbfgs",
            factory_name="lbfgs",
            defaults=MappingProxyType({}),
            optax_name="lbfgs",
            summary="quasi-Newton with a strong-Wolfe (zoom) line search, full batch",
            full_batch=True,
            weight_decay=None,
        ),
    }
)
"""Every optimizer a run can use: :data:`REGISTRY` and the full-batch methods."""


def optimizer_spec(name: str) -> OptimizerSpec:
    """The :data:`OPTIMIZERS` entry called ``name`` (case and ``-``/``_`` ignored).

    Raises:
      ValueError: an unknown name, with a did-you-mean suggestion.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in OPTIMIZERS:
        close = difflib.get_close_matches(key, list(OPTIMIZERS), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown optimizer {name!r}{hint} (choices: {', '.join(sorted(OPTIMIZERS))})"
        )
    return OPTIMIZERS[key]


def make(name: str, problem: str | None = None, **overrides: Any) -> GradientTransformation:
    """Builds a registered optimizer: ``OPTIMIZERS[name].factory(**kwargs)``.

    Args:
      name: a key of :data:`OPTIMIZERS`.
      problem: ``"quadratic"`` or ``"rosenbrock"`` to use the tuned values, else ``None``.
      **overrides: keyword arguments that replace the registered ones.

    Returns:
      The optimizer.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"make: name must be one of {sorted(OPTIMIZERS)}, got name={name!r}")
    spec = OPTIMIZERS[name]
    return spec.factory(**spec.kwargs(problem, **overrides))


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


_RATE = Param("float", "decay factor", low=0.0, low_open=True)
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
