"""optax's own test suite, run against optlab (issue 17).

optax's test files named in ``GROUPS`` run in subprocesses with the routing plugin
(``optax_routing.py``): every optax function whose name optlab also exports is replaced by
optlab's, in every optax module. The parametrizations ``allowlist.DESELECTED`` names (slow, and
exercising no code a kept one does not, each with its reason) are left out. A failure passes
only if ``allowlist.ALLOWLIST`` lists it with the reason optlab departs from optax on purpose;
an allowlisted test that passes fails too, and so does a deselection entry that deselects
nothing (the lists must stay exact). Each group runs as one or more test cases (its tests in
interleaved shares), so ``pytest -n`` spreads them over the workers; each subprocess runs on
one core and takes about half a minute of it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import subprocess
import sys

import optax
import pytest

from tests.compat.allowlist import ALLOWLIST, DESELECTED

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPTAX_DIR = pathlib.Path(optax.__file__).parent
SITE = OPTAX_DIR.parent
PINNED_OPTAX = "0.2.8"  # the version in pyproject.toml's test extra; test ids depend on it

# optax's test files, in groups that each run in one or more subprocesses (a group's tests
# spread over its subprocesses in interleaved shares): the small files share a process, so the
# ~6 CPU-seconds of starting one (jax, optax, optlab, collection) are paid few times, and no
# subprocess takes much over 40 CPU-seconds, so `pytest -n 2` balances them.
GROUPS = {
    "alias": (("optax/_src/alias_test.py",), 3),
    "accumulation-linesearch": (
        ("optax/transforms/_accumulation_test.py", "optax/_src/linesearch_test.py"),
        1,
    ),
    "schedules-transforms": (
        (
            "optax/schedules/_schedule_test.py",
            "optax/schedules/_inject_test.py",
            "optax/transforms/_clipping_test.py",
            "optax/transforms/_adding_test.py",
            "optax/transforms/_conditionality_test.py",
            "optax/transforms/_masking_test.py",
            "optax/transforms/_combining_test.py",
        ),
        1,
    ),
}
FILES = [path for paths, _ in GROUPS.values() for path in paths]
CASES = [
    pytest.param(paths, i, n, id=f"{name}-{i + 1}of{n}")
    for name, (paths, n) in GROUPS.items()
    for i in range(n)
]


def run_routed(
    paths, results: pathlib.Path, shard: str = "0/1", cache: pathlib.Path | None = None
) -> dict:
    """Runs optax's test files ``paths`` (the ``shard`` "i/n" of their tests, after the
    deselection) with optax routed to optlab; returns the plugin's JSON. With ``cache``, the
    subprocess keeps JAX's compiled programs there and reuses those another run compiled."""
    env = {**os.environ, "OPTLAB_ROUTED_RESULTS": str(results), "OPTLAB_ROUTED_SHARD": shard}
    if cache is not None:
        # Many of optax's tests compile the same program again (a new closure over the same
        # computation, eager lax.cond/while_loop in MultiSteps and the line searches): keyed by
        # the program, the persistent cache compiles each once per worker. It only skips XLA's
        # compilation of an identical program, so every test runs the same arithmetic.
        env.update(
            JAX_COMPILATION_CACHE_DIR=str(cache),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    # optax's tests as optax runs them (one CPU device, default precision): the outcomes and
    # the allowlist do not depend on flags another part of the suite may set.
    for name in ("XLA_FLAGS", "JAX_ENABLE_X64", "JAX_NUM_CPU_DEVICES"):
        env.pop(name, None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ROOT / "tests" / "compat" / "routed.ini"),
        "--rootdir",
        str(SITE),
        "-p",
        "tests.compat.optax_routing",
        "-p",
        "no:xdist",
        "-q",
        *(str(SITE / path) for path in paths),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if not results.exists():
        raise AssertionError(f"the routed run of {paths} wrote no results:\n{proc.stdout[-3000:]}")
    return json.loads(results.read_text(encoding="utf-8"))


def allowlisted(nodeid: str) -> str | None:
    for pattern, reason in ALLOWLIST.items():
        if fnmatch.fnmatchcase(nodeid, pattern):
            return reason
    return None


def test_optax_is_the_pinned_version():
    assert optax.__version__ == PINNED_OPTAX, (
        f"the routed suite's test ids and allowlist are for optax {PINNED_OPTAX}; "
        f"{optax.__version__} is installed (pip install -e '.[test]')"
    )


@pytest.mark.parametrize("entries", [ALLOWLIST, DESELECTED], ids=["allowlist", "deselected"])
def test_allowlist_names_tests_that_exist(entries):
    # Each entry names a test class and method of one of the routed files (the routed runs
    # below only see the shard they ran, so a renamed test is caught here).
    for pattern, reason in entries.items():
        path, cls, method = pattern.split(" (", 1)[0].split("::")
        assert path in FILES, pattern
        source = (SITE / path).read_text(encoding="utf-8")
        assert f"class {cls}(" in source, pattern
        name = re.sub(r"(\[[0-9-]+\]|\*)$", "", method)
        # a parametrized test's id is its method's name followed by the case's index
        # (parameterized.product) or by "_" and the case's name (named_parameters)
        methods = {name, re.sub(r"[0-9]+$", "", name), name.rsplit("_", 1)[0]}
        assert any(f"def {m}(" in source for m in methods), pattern
        assert len(reason) > 40, pattern


def test_deselected_optimizers_are_not_routed():
    # The entries that leave out an optimizer's cases because its update rule is optax's own
    # code name only optimizers optlab does not export: each routed optimizer runs every one of
    # optax's test methods.
    import optlab

    named = [m for p in DESELECTED for m in re.findall(r"opt_name=\{([^{}]*)\}", p)]
    assert named
    for names in named:
        assert not set(names.split(",")) & set(optlab.__all__), names


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory):
    """A compilation cache shared by the routed runs of one pytest worker."""
    return tmp_path_factory.mktemp("routed-jax-cache")


@pytest.mark.parametrize(("paths", "shard", "shards"), CASES)
def test_routed_optax_suite(paths, shard, shards, tmp_path, jax_cache):
    out = run_routed(paths, tmp_path / "results.json", f"{shard}/{shards}", jax_cache)
    assert {"adam", "chain", "masked", "scale_by_backtracking_linesearch"} <= set(out["routed"])
    # Every deselection entry of these files leaves out at least one test (none is stale).
    for pattern in DESELECTED:
        if pattern.split("::", 1)[0] in paths:
            assert out["deselected"][pattern] > 0, f"deselects nothing: {pattern}"
    outcomes = out["outcomes"]
    assert sum(o == "passed" for o in outcomes.values()) > 0
    failed = sorted(n for n, o in outcomes.items() if o == "failed")
    unexpected = [n for n in failed if allowlisted(n) is None]
    # An allowlisted test of this shard that no longer fails: the list must stay exact.
    stale = sorted(
        {
            pattern
            for n, outcome in outcomes.items()
            if outcome != "failed"
            for pattern in ALLOWLIST
            if fnmatch.fnmatchcase(n, pattern)
        }
    )
    assert not unexpected, f"optax tests failing against optlab: {unexpected}"
    assert not stale, f"allowlisted but not failing (remove them from allowlist.py): {stale}"


def test_readme_lists_every_allowlisted_departure():
    # The README's compatibility section has one table row per allowlist and deselection entry,
    # with its reason.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Compatibility with optax", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `optax/")]
    listed = {row.split("`")[1]: row for row in rows}
    assert set(listed) == set(ALLOWLIST) | set(DESELECTED)
    for pattern, reason in {**ALLOWLIST, **DESELECTED}.items():
        assert f"| {reason} |" in listed[pattern], pattern
