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
reaches it (``weight_decay``). The schedules a run can use are described the same way in
:mod:`optlab.schedules.registry`.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from optlab.schedules.registry import Param, check_params, schedule_spec

if TYPE_CHECKING:
    from optlab.core.base import GradientTransformation


# ---------------------------------------------------------------------------------------------
# Optimizers

_PROB = Param("float", "a decay rate", low=0.0, high=1.0, high_open=True)
_EPS = Param("float", "added to the denominator", low=0.0)
_FLAG = Param("bool", "a switch of the method")
_ADAM = {"b1": _PROB, "b2": _PROB, "eps": _EPS, "eps_root": _EPS}
_MOMENTUM = Param("float", "momentum coefficient", low=0.0, high=1.0, high_open=True)

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
"""Every optimizer a run can use, by name (:data:`REGISTRY` and the full-batch methods)."""


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
