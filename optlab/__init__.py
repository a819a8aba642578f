"""optlab: gradient transformations, schedules and a compiled training engine for JAX.

Users write ``import optlab as ol; tx = ol.chain(ol.clip_by_global_norm(1.0), ol.adam(1e-3))``.
Names, arguments and defaults follow optax wherever optax has the same algorithm.

The public names are imported lazily (PEP 562, as scipy and scikit-image do): ``import optlab``
imports neither jax nor flax, and each name's module is imported the first time the name is
used. The ``optlab`` command therefore answers ``--help`` and bad input at once. The explicit
list of re-exports is ``optlab/__init__.pyi`` (``from optlab.optimizers.adam import adam as
adam``, grouped by area): type checkers and IDEs read it, and this module parses it, so it is
the one place a public name is added.
"""

from __future__ import annotations

import ast as _ast
import importlib as _importlib
import pathlib as _pathlib
from typing import Any as _Any


def _read_exports() -> dict[str, tuple[str, str]]:
    """``{name: (module, attribute)}`` from the stub's ``from M import A as A`` lines."""
    stub = _pathlib.Path(__file__).with_suffix(".pyi")
    exports = {}
    for node in _ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, _ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                exports[alias.asname or alias.name] = (node.module, alias.name)
    return exports


_EXPORTS = _read_exports()
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> _Any:
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'optlab' has no attribute {name!r}") from None
    if module_name == __name__:  # a subpackage: `from optlab import nn as nn`
        value = _importlib.import_module(f"{__name__}.{attribute}")
    else:
        module = _importlib.import_module(module_name)
        try:
            value = getattr(module, attribute)
        except AttributeError:  # a submodule: `from optlab.train import callbacks as callbacks`
            value = _importlib.import_module(f"{module_name}.{attribute}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
