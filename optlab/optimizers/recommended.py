"""The recommended recipe of each bundled dataset: data, without jax.

``optlab train --dataset NAME`` fills every option not given from :data:`RECOMMENDED` (the
command reads it before jax is imported), and :func:`optlab.train.recipes.recommended` turns
it into a :class:`~optlab.train.recipes.Recipe`: this module is the one table both read. The
recipes were chosen on a validation split with ``benchmarks/recipes.py`` (the README's
"Recommended recipes" gives the candidates, the measured test accuracies over 3 seeds and the
commands that reproduce them; optlab's own tuning of MNIST-1D, ``benchmarks/recipes.py
--tune-mnist1d``, reached 76.1% with a wider MLP, while the default stays the paper's). It
lives beside :mod:`optlab.optimizers.registry` because it
names registry entries and needs to know which are full-batch.

Examples:
  >>> from optlab.optimizers.recommended import RECOMMENDED, recommended_fields
  >>> RECOMMENDED["mnist1d"]["optimizer"], RECOMMENDED["mnist1d"]["lr"]
  ('momentum', 0.2)
  >>> sorted(recommended_fields("mnist1d", {"optimizer": "adam", "epochs": 5}))
  ['batch_size', 'hidden', 'init', 'residual', 'schedule']
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from optlab.optimizers.registry import optimizer_spec

RECOMMENDED: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {
        # The MNIST-1D paper's MLP (40-100-100-10, the second layer residual, PyTorch's init) and
        # batch of 100, trained 150 epochs (6000 steps); SGD with momentum 0.9 and a cosine decay
        # from 0.2 replaces its constant Adam 1e-2 (65.0% -> 68.4% on the test split).
        "mnist1d": types.MappingProxyType(
            {
                "hidden": (100, 100),
                "residual": (False, True),
                "init": "torch_default",
                "optimizer": "momentum",
                "lr": 0.2,
                "schedule": "cosine",
                "epochs": 150,
                "batch_size": 100,
            }
        ),
        "digits": types.MappingProxyType(
            {
                "hidden": (256, 256),
                "dropout": 0.2,
                "optimizer": "adam",
                "lr": 3e-3,
                "schedule": "cosine",
                "epochs": 60,
                "batch_size": 32,
            }
        ),
        "fashion_mnist": types.MappingProxyType(
            {
                "hidden": (512, 256),
                "dropout": 0.2,
                "optimizer": "adam",
                "lr": 1e-3,
                "schedule": "cosine",
                "epochs": 30,
                "batch_size": 128,
            }
        ),
    }
)
"""The recommended recipe of each bundled dataset, as ``Recipe`` fields (read-only)."""

TIED: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {
        "optimizer": ("lr", "momentum", "opt", "weight_decay"),
        "schedule": ("schedule_opt",),
        "hidden": ("residual",),
    }
)
"""Given one of these fields, the recommended values of the fields it names are dropped."""

FULL_BATCH_DROPS = ("batch_size", "schedule", "schedule_opt", "warmup_epochs")
"""The recommended fields a full-batch optimizer (line search, every row) drops."""


def recommended_fields(dataset: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The recommended fields of ``dataset`` that ``given`` (explicit choices) leaves in force.

    An explicit choice replaces the recommended one, and also drops the recommended values
    tied to it (:data:`TIED`: another optimizer drops the recipe's learning rate, momentum,
    options and weight decay; another schedule its parameters; other hidden widths the
    residual flags); a full-batch optimizer also drops :data:`FULL_BATCH_DROPS`.

    Args:
      dataset: a dataset name (one without a recipe gets ``{}``).
      given: the fields chosen explicitly.

    Returns:
      The recipe's fields still in force (a new dict).

    Examples:
      >>> recommended_fields("mnist1d", {"optimizer": "adam"})["schedule"]
      'cosine'
      >>> "lr" in recommended_fields("mnist1d", {"optimizer": "adam"})
      False
      >>> recommended_fields("blobs", {})
      {}
    """
    out = dict(RECOMMENDED.get(str(dataset), {}))
    for key, tied in TIED.items():
        if key in given and given[key] != out.get(key):
            for name in tied:
                out.pop(name, None)
    if "optimizer" in given and optimizer_spec(given["optimizer"]).full_batch:
        for name in FULL_BATCH_DROPS:
            out.pop(name, None)
    for key in given:
        out.pop(key, None)
    return out
