"""What every benchmark script records: the machine it ran on, and its JSON result file.

A script imports it both ways it is used::

    try:  # imported as benchmarks.NAME (tests, python -m benchmarks.NAME)
        from benchmarks.common import RESULTS, machine, write_json
    except ModuleNotFoundError:  # run as python benchmarks/NAME.py (its folder is sys.path[0])
        from common import RESULTS, machine, write_json
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine(note: str = "measured on a shared 2-core machine under load") -> dict[str, Any]:
    """Versions, device, CPU count and load average (imports jax)."""
    import flax
    import jax

    return {
        "jax": jax.__version__,
        "flax": flax.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0]),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "note": note,
    }


def write_json(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes ``record`` as indented JSON (a bare file name goes to ``benchmarks/results/``;
    the folder is created); returns the path."""
    path = Path(path)
    if path.parent == Path("."):
        path = RESULTS / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return value.tolist()
    return str(value)
