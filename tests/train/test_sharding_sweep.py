"""Sharded sweeps (``optlab.tune.sweep(..., mesh=)``): members over a ``pop`` mesh axis equal
the unsharded sweep's, member by member. The sweeps run in ``sharding_job`` (the subprocess of
``test_sharding.py``, 8 simulated CPU devices, meshes over 4 and 2 of them), started once per
session; tolerance as in ``test_sharding.py``: the same arithmetic, partitioned (members
never communicate, so only XLA's per-device fusion can differ: ~1e-7)."""

import numpy as np
import pytest

from tests.train.test_sharding import sharding_job  # noqa: F401  (the shared fixture)


@pytest.fixture(scope="module")
def runs(sharding_job):  # noqa: F811
    return sharding_job[2]


@pytest.mark.parametrize(
    ("sharded", "members"),
    [("pop4", 4), ("pop2of3", 3)],
    ids=["4-members-on-4-devices", "3-members-on-2-devices"],
)
def test_sharded_sweep_members_equal_the_unsharded_sweep(runs, sharded, members):
    """Against the unsharded sweep of the same configurations (its first ``members``)."""
    assert len(runs[sharded]) == members and len(runs["one4"]) == 4
    for got, expected in zip(runs[sharded], runs["one4"][:members], strict=True):
        for key in ("loss", "val_loss"):
            assert len(got[key]) == len(expected[key]) == 2
            np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6)
    assert runs["one4"][0]["loss"] != runs["one4"][1]["loss"]  # members differ: not vacuous


def test_members_split_over_pop_and_shared_data_replicated(runs):
    assert runs["specs"] == ["P('pop',)", "P()"]
    assert runs["odd_specs"] == ["P()"]  # 3 members on 4 devices: replicated


def test_a_mesh_without_a_pop_axis_is_refused(runs):
    assert runs["refusal"] == "sweep: mesh must have an axis named 'pop', got axes ('data',)"
