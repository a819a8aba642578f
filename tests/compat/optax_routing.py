"""A pytest plugin that routes optax's public functions to optlab's (issue 17).

Loaded with ``-p tests.compat.optax_routing`` in a separate pytest process (see
``test_optax_suite.py``; the routing never reaches the rest of the suite), it imports every
optax module and then, in each of them, replaces every function whose public name optlab
also exports by optlab's. Classes (state NamedTuples, ``GradientTransformation``,
``MultiSteps``) and the ``optax.tree`` / ``optax.tree_utils`` helpers are left alone, so
optax's own tests exercise optlab's transformations, schedules and line searches, as would
code written for optax after ``import optlab as optax``.

With ``OPTLAB_ROUTED_RESULTS=<file>`` in the environment, it writes ``{"routed": [names],
"outcomes": {nodeid: "passed" | "failed" | "skipped"}}`` there as JSON (a test counts as
failed if its setup, call, teardown or any of its subtests failed). With
``OPTLAB_ROUTED_SHARD=i/n`` it runs only the i-th of n interleaved shares of the collected
tests (so one file's tests can be spread over several processes).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import sys

ROUTED: dict[str, int] = {}
OUTCOMES: dict[str, str] = {}

_LEFT_ALONE = ("optax.tree", "optax.tree_utils", "optax._src.tree_utils")


def _import_all_optax_modules() -> None:
    import optax

    for info in pkgutil.walk_packages(optax.__path__, prefix="optax."):
        if info.name.endswith("_test") or "test_utils" in info.name:
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # optional dependencies of contrib modules: nothing to route there
            continue


def route() -> None:
    """Replaces, in every optax module, each function optlab also exports by optlab's."""
    import optlab

    _import_all_optax_modules()
    ours = {n: getattr(optlab, n) for n in optlab.__all__}
    ours = {n: v for n, v in ours.items() if inspect.isfunction(v)}
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "optax" or module_name.startswith("optax.")):
            continue
        if module_name.startswith(_LEFT_ALONE) or module_name.endswith("_test"):
            continue
        for name, value in ours.items():
            theirs = module.__dict__.get(name)
            if theirs is None or inspect.isclass(theirs) or not callable(theirs):
                continue
            setattr(module, name, value)
            ROUTED[name] = ROUTED.get(name, 0) + 1


def pytest_configure(config):
    route()


def pytest_collection_modifyitems(session, config, items):
    shard = os.environ.get("OPTLAB_ROUTED_SHARD")
    if not shard:
        return
    i, n = (int(k) for k in shard.split("/"))
    config.hook.pytest_deselected(items=[it for k, it in enumerate(items) if k % n != i])
    items[:] = [it for k, it in enumerate(items) if k % n == i]


def pytest_report_header(config):
    return f"optax routed to optlab: {len(ROUTED)} names ({', '.join(sorted(ROUTED))})"


def pytest_runtest_logreport(report):
    # Precedence: failed (any phase or subtest) > skipped > passed.
    previous = OUTCOMES.get(report.nodeid)
    if report.failed:
        OUTCOMES[report.nodeid] = "failed"
    elif report.skipped and previous != "failed":
        OUTCOMES[report.nodeid] = "skipped"
    elif previous is None:
        OUTCOMES[report.nodeid] = "passed"


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("OPTLAB_ROUTED_RESULTS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"routed": sorted(ROUTED), "outcomes": OUTCOMES}, f, indent=1)
