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
tests (so one file's tests can be spread over several processes). Before that it deselects the
tests ``allowlist.DESELECTED`` names (each with its reason: slow and proving nothing a kept
parametrization does not), matching each entry against the test's id followed by its
parameters (``described``) or its id alone (``{a,b}`` in an entry matches either alternative),
and records how many tests each entry deselected.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import json
import os
import pkgutil
import re
import sys

ROUTED: dict[str, int] = {}
OUTCOMES: dict[str, str] = {}
DESELECTED: dict[str, int] = {}

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


def described(item) -> str:
    """The test's id followed by its absl parameters, written plainly: ``path::Class::test3
    (opt_name=adam, opt_kwargs={...}, dtype=float16)`` (dtypes and functions by name)."""
    cls = getattr(item, "cls", None)
    params = (getattr(cls, "_test_params_reprs", None) or {}).get(item.name, "")
    params = re.sub(r"<class 'jax\.numpy\.(\w+)'>", r"\1", params)
    params = re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"\1", params)
    params = re.sub(r"'(\w+)'", r"\1", params)
    return f"{item.nodeid} {params}".rstrip()


def globs(pattern: str) -> list[str]:
    """The fnmatch patterns a deselection entry stands for: ``{a,b,c}`` is one of the
    alternatives (so one entry can name several optimizers)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [g for alt in match.group(1).split(",") for g in globs(head + alt + tail)]


def pytest_collection_modifyitems(session, config, items):
    from tests.compat.allowlist import DESELECTED as rules

    expanded = {p: globs(p) for p in rules}
    matched = {
        it.nodeid: [
            p
            for p in rules
            if any(
                fnmatch.fnmatchcase(n, g) for n in (it.nodeid, described(it)) for g in expanded[p]
            )
        ]
        for it in items
    }
    for pattern in rules:
        DESELECTED[pattern] = sum(pattern in m for m in matched.values())
    dropped = [it for it in items if matched[it.nodeid]]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [it for it in items if not matched[it.nodeid]]
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
            json.dump(
                {"routed": sorted(ROUTED), "outcomes": OUTCOMES, "deselected": DESELECTED},
                f,
                indent=1,
            )
