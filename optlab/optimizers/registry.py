"""Every first-order optimizer by name, with default hyperparameters: data, no math.

The conformance suite, ``benchmarks/convergence.py``, ``benchmarks/update_throughput.py`` and
``optlab compare`` iterate over :data:`REGISTRY`. ``defaults`` suit a small MLP; ``tuned``
overrides them for the test problems of the convergence benchmark (``"quadratic"``: an
ill-conditioned quadratic, ``"rosenbrock"``: the Rosenbrock function), where the scale of the
curvature differs a lot from an MLP's.

Examples:
  >>> from optlab.optimizers.registry import REGISTRY, make
  >>> dict(REGISTRY["adam"].defaults)
  {'learning_rate': 0.001}
  >>> tx = make("momentum", learning_rate=0.01)
  >>> sorted(REGISTRY)[:3]
  ['adadelta', 'adagrad', 'adam']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from optlab.core.base import GradientTransformation
from optlab.optimizers.adadelta import adadelta
from optlab.optimizers.adagrad import adagrad
from optlab.optimizers.adam import adam, adamax, adamw, amsgrad, nadam, nadamw
from optlab.optimizers.rmsprop import rmsprop
from optlab.optimizers.sgd import sgd


@dataclass(frozen=True)
class OptimizerSpec:
    """One registry entry.

    Attributes:
      name: the registry key (also the name shown in tables).
      factory: the optlab alias.
      defaults: keyword arguments for ``factory`` suited to a small MLP.
      tuned: per problem (``"quadratic"``, ``"rosenbrock"``), overrides of ``defaults``.
      optax_name: the optax function with the same behaviour (called with ``defaults``).
      summary: the update rule in a few words.
    """

    name: str
    factory: Callable[..., GradientTransformation]
    defaults: Mapping[str, Any]
    tuned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    optax_name: str | None = None
    summary: str = ""

    def kwargs(self, problem: str | None = None, **overrides: Any) -> dict[str, Any]:
        """``defaults``, then the ``tuned`` values of ``problem``, then ``overrides``."""
        out = dict(self.defaults)
        if problem is not None:
            out.update(self.tuned.get(problem, {}))
        out.update(overrides)
        return out


def _spec(
    name: str,
    factory: Callable[..., GradientTransformation],
    defaults: dict[str, Any],
    quadratic: float,
    rosenbrock: float,
    optax_name: str,
    summary: str,
) -> OptimizerSpec:
    return OptimizerSpec(
        name=name,
        factory=factory,
        defaults=MappingProxyType(defaults),
        tuned=MappingProxyType(
            {
                "quadratic": MappingProxyType({"learning_rate": quadratic}),
                "rosenbrock": MappingProxyType({"learning_rate": rosenbrock}),
            }
        ),
        optax_name=optax_name,
        summary=summary,
    )


_SPECS = [
    _spec("sgd", sgd, {"learning_rate": 0.1}, 0.01, 0.001, "sgd", "step against the gradient"),
    _spec(
        "momentum",
        sgd,
        {"learning_rate": 0.05, "momentum": 0.9},
        0.003,
        0.001,
        "sgd",
        "heavy ball: decaying sum of past gradients",
    ),
    _spec(
        "nesterov",
        sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        0.01,
        0.0005,
        "sgd",
        "momentum with the look-ahead gradient",
    ),
    _spec(
        "adagrad",
        adagrad,
        {"learning_rate": 0.1},
        1.0,
        1.0,
        "adagrad",
        "divide by the root of the sum of squared gradients",
    ),
    _spec(
        "rmsprop",
        rmsprop,
        {"learning_rate": 1e-3},
        0.0003,
        0.0003,
        "rmsprop",
        "divide by the root of a moving average of squared gradients",
    ),
    _spec(
        "rmsprop_centered",
        rmsprop,
        {"learning_rate": 1e-3, "centered": True, "momentum": 0.9},
        0.0001,
        5e-05,
        "rmsprop",
        "divide by a moving standard deviation, with momentum",
    ),
    _spec(
        "adadelta",
        adadelta,
        {"learning_rate": 1.0},
        0.01,
        0.03,
        "adadelta",
        "RMS of past steps over RMS of gradients",
    ),
    _spec(
        "adam",
        adam,
        {"learning_rate": 1e-3},
        0.3,
        0.03,
        "adam",
        "bias-corrected momentum over root of bias-corrected second moment",
    ),
    _spec(
        "adamw",
        adamw,
        # torch.optim.AdamW's 1e-2: optax's default 1e-4 shrinks weights by lr * 1e-4 = 1e-7 a
        # step, which leaves a 20-epoch MLP run indistinguishable from Adam.
        {"learning_rate": 1e-3, "weight_decay": 1e-2},
        0.01,
        0.01,
        "adamw",
        "Adam plus decoupled weight decay",
    ),
    _spec(
        "nadam",
        nadam,
        {"learning_rate": 1e-3},
        0.1,
        0.003,
        "nadam",
        "Adam with Nesterov's look-ahead momentum",
    ),
    _spec(
        "nadamw",
        nadamw,
        {"learning_rate": 1e-3, "weight_decay": 1e-2},  # as adamw's
        0.01,
        0.003,
        "nadamw",
        "NAdam plus decoupled weight decay",
    ),
    _spec(
        "amsgrad",
        amsgrad,
        {"learning_rate": 1e-3},
        1.0,
        1.0,
        "amsgrad",
        "Adam with a non-decreasing second moment",
    ),
    _spec(
        "adamax", adamax, {"learning_rate": 2e-3}, 1.0, 0.1, "adamax", "Adam with the infinity norm"
    ),
]

REGISTRY: Mapping[str, OptimizerSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every registered first-order optimizer, by name."""


def make(name: str, problem: str | None = None, **overrides: Any) -> GradientTransformation:
    """Builds a registered optimizer: ``REGISTRY[name].factory(**kwargs)``.

    Args:
      name: a key of :data:`REGISTRY`.
      problem: ``"quadratic"`` or ``"rosenbrock"`` to use the tuned values, else ``None``.
      **overrides: keyword arguments that replace the registered ones.

    Returns:
      The optimizer.
    """
    if name not in REGISTRY:
        raise ValueError(f"make: name must be one of {sorted(REGISTRY)}, got name={name!r}")
    spec = REGISTRY[name]
    return spec.factory(**spec.kwargs(problem, **overrides))
