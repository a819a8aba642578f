"""Sharded sweeps (``optlab.tune.sweep(..., mesh=)``): members over a ``pop`` mesh axis equal
the unsharded sweep's, member by member. The runs happen in ``sharding_sweep_job`` (4
simulated CPU devices); tolerance as in ``test_sharding.py``: the same arithmetic, partitioned
(members never communicate, so only XLA's per-device fusion can differ: ~1e-7)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "runs.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.train.sharding_sweep_job", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    ("sharded", "plain", "members"),
    [("pop4", "one4", 4), ("pop2of3", "one3", 3)],
    ids=["4-members-on-4-devices", "3-members-on-2-devices"],
)
def test_sharded_sweep_members_equal_the_unsharded_sweep(runs, sharded, plain, members):
    assert len(runs[sharded]) == len(runs[plain]) == members
    for got, expected in zip(runs[sharded], runs[plain], strict=True):
        for key in ("loss", "val_loss"):
            assert len(got[key]) == len(expected[key]) == 2
            np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6)
    assert runs[plain][0]["loss"] != runs[plain][1]["loss"]  # members differ: not vacuous


def test_members_split_over_pop_and_shared_data_replicated(runs):
    assert runs["specs"] == ["P('pop',)", "P()"]
    assert runs["odd_specs"] == ["P()"]  # 3 members on 4 devices: replicated


def test_a_mesh_without_a_pop_axis_is_refused(runs):
    assert runs["refusal"] == "sweep: mesh must have an axis named 'pop', got axes ('data',)"
