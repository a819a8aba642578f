"""Data-parallel training (``fit(mesh=...)``, ``optlab.train.sharding``) and sharded
checkpoints against one device.

The multi-device runs happen in one subprocess with 8 simulated CPU devices
(``tests/train/sharding_job.py``, shared with ``test_sharding_sweep.py``); this process
compares what it wrote. Tolerance: the sharded step sums the per-device partial gradients
(and BatchNorm's partial moments) in another order than one device does, float32 rounding of
~1e-7 relative per step; 4 epochs of SGD on a tiny MLP keep the parameters within 1e-6 of
each other.
"""

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest

import optlab as ol
from tests.helpers import run_job
from tests.train.models import Tiny, blobs, xent

TOL = 1e-6


def load_job(out: Path) -> tuple[dict[str, list[np.ndarray]], dict, dict]:
    """What ``sharding_job`` wrote into ``out``."""
    saved = np.load(out / "runs.npz")
    runs: dict[str, list[np.ndarray]] = {}
    for key in sorted(saved.files, key=lambda k: (k.split("/")[0], int(k.split("/")[1]))):
        runs.setdefault(key.split("/")[0], []).append(saved[key])
    facts = json.loads((out / "facts.json").read_text())
    return runs, facts, json.loads((out / "sweeps.json").read_text())


@pytest.fixture(scope="session")
def sharding_job(tmp_path_factory):
    """The job's results, computed once per test session (``test_sharding_sweep.py`` reads
    them too): under pytest-xdist the workers share one run through a lock file in the
    session's common temporary folder (the first to take the lock runs the job)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the session's workers
    out = root / "sharding_job"
    with open(root / "sharding_job.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (out / "sweeps.json").exists():
                out.mkdir(exist_ok=True)
                run_job("tests.train.sharding_job", out, timeout=900)
            return load_job(out)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def job(sharding_job):
    return sharding_job[:2]


def _assert_close(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=TOL)


@pytest.mark.parametrize("run", ["data4", "zero8"])
def test_data_parallel_fit_equals_one_device(job, run):
    """4 devices, and 8 devices with the optimizer state sharded (ZeRO-1), against one."""
    runs, facts = job
    assert facts["devices"] == 8
    _assert_close(runs[run], runs["one"])
    for key in ("loss", "val_loss"):  # validation rows are split over the devices too
        np.testing.assert_allclose(facts[f"{key}/{run}"], facts[f"{key}/one"], rtol=0, atol=TOL)
    assert set(facts[f"param_specs/{run}"]) == {"P()"}  # parameters replicated


def test_without_zero_the_optimizer_state_is_replicated(job):
    _, facts = job
    assert set(facts["opt_specs/data4"]) == {"P()"}


def test_zero1_splits_the_optimizer_state(job):
    _, facts = job
    shapes, shards = facts["opt_shapes/zero8"], facts["opt_shard_shapes/zero8"]
    split = 0
    for shape, shard, spec in zip(shapes, shards, facts["opt_specs/zero8"], strict=True):
        divisible = [i for i, s in enumerate(shape) if s % 8 == 0]
        expected = list(shape)
        if divisible:  # the first axis divisible by the 8 devices is split 8 ways
            expected[divisible[0]] //= 8
            split += 1
            assert "data" in spec
        else:
            assert spec == "P()"
        assert shard == expected
    assert split >= 3  # momentum of the kernels and of the first layer's bias
    assert facts["model_devices/zero8"] == 8  # the trained model's arrays live on the mesh


def test_checkpoints_hold_the_arrays_as_sharded(job):
    """orbax's metadata: the ZeRO-1 optimizer arrays were saved with their 8-way sharding,
    each shard written as a piece of its own (chunk = shard shape), as many as the optimizer
    state has split arrays; the others replicated (orbax divides their writing between the
    replicas itself)."""
    _, facts = job
    split = 0
    for spec, shape, chunk in zip(
        facts["ckpt/specs"], facts["ckpt/shapes"], facts["ckpt/chunks"], strict=True
    ):
        if spec and "data" in spec:
            expected = list(shape)
            expected[spec.index("data")] //= 8
            assert chunk == expected
            split += 1
        else:
            assert all(s is None for s in spec or [])
    assert split == sum("data" in s for s in facts["opt_specs/zero8"]) >= 3
    assert facts["digests/sharded_equals_host"]  # the checksum ignores the sharding


def test_resume_on_another_device_count_equals_an_uninterrupted_run(job):
    """Epoch 2's checkpoint of the 8-device ZeRO-1 run, resumed on 2 devices (the optimizer
    state restored split 2 ways) up to epoch 4, against the uninterrupted one-device run."""
    runs, facts = job
    assert facts["epochs/resumed"] == [1, 2, 3, 4]
    _assert_close(runs["resumed"], runs["one"])
    for spec, full, shard in zip(
        facts["opt_specs/resumed"],
        facts["opt_shapes/zero8"],
        facts["opt_shard_shapes/resumed"],
        strict=True,
    ):
        divisible = [i for i, n in enumerate(full) if n % 2 == 0]
        expected = list(full)
        if divisible:  # ZeRO-1's rule on 2 devices: the first axis divisible by 2 is halved
            expected[divisible[0]] //= 2
            assert "data" in spec
        assert shard == expected


def test_refusals_are_one_line_naming_fit_and_the_argument(job):
    _, facts = job
    message = facts["error/indivisible"]
    assert "\n" not in message
    assert message.startswith("fit: batch_size ") and "batch_size=12" in message
    assert "8 devices" in message
    assert facts["error/no_data_axis"].startswith("fit: mesh must have an axis named 'data'")


def test_functional_data_parallel_step(job):
    runs, facts = job
    _assert_close(runs["functional_data4"], runs["functional_one"])
    assert facts["functional/all_reduce"]  # XLA inserted the gradient reduction
    assert "P('data',)" in facts["functional/opt_specs"]
    # ZeRO-1 cuts a device's share of the step's inputs by the optimizer state it no longer
    # holds whole: the compiled step's own accounting against the arrays' shard sizes.
    plain, zero = facts["functional/argument_bytes"]
    whole, per_device = facts["functional/opt_bytes"]
    assert per_device < whole
    assert plain - zero == whole - per_device


@pytest.mark.parametrize("run", ["pop2data2"])
def test_sharded_population_equals_each_member_alone(job, run):
    """A vmapped population of 4 members (seeds) with members over ``pop`` and rows over
    ``data`` against each member trained alone on one device (members over ``pop`` alone:
    ``test_sharding_sweep.py``)."""
    runs, facts = job
    assert facts[f"{run}/specs"] == ["P('pop',)"]  # members split, nothing else
    for i in range(4):
        _assert_close(runs[f"{run}_member{i}"], runs[f"member{i}"])
    assert not np.allclose(runs["member0"][0], runs["member1"][0])  # the members differ


def _fit(**kw):
    return ol.fit(
        Tiny(), ol.sgd(0.05), blobs(48), loss=xent, epochs=1, batch_size=16, progress=False, **kw
    )


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"mesh": "data"}, TypeError, "fit: mesh must be a jax.sharding.Mesh"),
        ({"shard_optimizer_state": True}, ValueError, "needs a mesh, got mesh=None"),
        ({"shard_optimizer_state": 1}, TypeError, "shard_optimizer_state must be a bool"),
    ],
    ids=["mesh-type", "zero-without-mesh", "zero-type"],
)
def test_bad_options_refused(kw, error, match):
    with pytest.raises(error, match=match):
        _fit(**kw)
