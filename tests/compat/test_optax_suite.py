"""optax's own test suite, run against optlab (issue 17).

Each of optax's test files named in ``SHARDS`` runs in a subprocess with the
routing plugin (``optax_routing.py``): every optax function whose name optlab also exports is
replaced by optlab's, in every optax module. A failure passes only if ``allowlist.py`` lists
it with the reason optlab departs from optax on purpose; an allowlisted test that passes
fails too (the list must stay exact). Each file runs as one or more test cases (the large
files in interleaved shares, ``SHARDS``), so ``pytest -n`` spreads them over the workers; each
subprocess runs on one core and takes well under a minute and a half of it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import subprocess
import sys

import optax
import pytest

from tests.compat.allowlist import ALLOWLIST

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPTAX_DIR = pathlib.Path(optax.__file__).parent
SITE = OPTAX_DIR.parent
PINNED_OPTAX = "0.2.8"  # the version in pyproject.toml's test extra; test ids depend on it

# optax's test files, with the number of subprocesses each one's tests are spread over.
SHARDS = {
    "optax/_src/alias_test.py": 8,
    "optax/schedules/_schedule_test.py": 1,
    "optax/schedules/_inject_test.py": 1,
    "optax/transforms/_clipping_test.py": 1,
    "optax/transforms/_adding_test.py": 1,
    "optax/transforms/_accumulation_test.py": 2,
    "optax/transforms/_conditionality_test.py": 1,
    "optax/transforms/_masking_test.py": 1,
    "optax/transforms/_combining_test.py": 1,
    "optax/_src/linesearch_test.py": 2,
}
CASES = [
    pytest.param(path, i, n, id=f"{pathlib.Path(path).stem}-{i + 1}of{n}")
    for path, n in SHARDS.items()
    for i in range(n)
]


def run_routed(path: str, results: pathlib.Path, shard: str = "0/1") -> dict:
    """Runs one of optax's test files (the ``shard`` "i/n" of its tests) with optax routed to
    optlab; returns the plugin's JSON."""
    env = {**os.environ, "OPTLAB_ROUTED_RESULTS": str(results), "OPTLAB_ROUTED_SHARD": shard}
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
        str(SITE / path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if not results.exists():
        raise AssertionError(f"the routed run of {path} wrote no results:\n{proc.stdout[-3000:]}")
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


def test_allowlist_names_tests_that_exist():
    # Each entry names a test class and method of one of the routed files (the routed runs
    # below only see the shard they ran, so a renamed test is caught here).
    for pattern, reason in ALLOWLIST.items():
        path, cls, method = pattern.split("::")
        assert path in SHARDS, pattern
        source = (SITE / path).read_text(encoding="utf-8")
        assert f"class {cls}(" in source, pattern
        assert f"def {method.rstrip('*0123456789')}" in source, pattern
        assert len(reason) > 40, pattern


@pytest.mark.parametrize(("path", "shard", "shards"), CASES)
def test_routed_optax_suite(path, shard, shards, tmp_path):
    out = run_routed(path, tmp_path / "results.json", f"{shard}/{shards}")
    assert {"adam", "chain", "masked", "scale_by_backtracking_linesearch"} <= set(out["routed"])
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
    # The README's compatibility section has one table row per allowlist entry, with its reason.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Compatibility with optax", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `optax/")]
    listed = {row.split("`")[1]: row for row in rows}
    assert set(listed) == set(ALLOWLIST)
    for pattern, reason in ALLOWLIST.items():
        assert f"| {reason} |" in listed[pattern], pattern
