"""Data-parallel training (``fit(mesh=...)``, ``optlab.train.sharding``) against one device.

The multi-device runs happen in one subprocess with 8 simulated CPU devices
(``tests/train/sharding_job.py``); this process compares what it wrote. Tolerance: the
sharded step sums the per-device partial gradients (and BatchNorm's partial moments) in
another order than one device does, float32 rounding of ~1e-7 relative per step; 4 epochs of
SGD on a tiny MLP keep the parameters within 1e-6 of each other.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import optlab as ol
from tests.train.models import Tiny, blobs, xent

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-6


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Runs ``sharding_job`` once: ``(arrays by run name, facts)``."""
    out = tmp_path_factory.mktemp("sharding")
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.train.sharding_job", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = np.load(out / "runs.npz")
    runs: dict[str, list[np.ndarray]] = {}
    for key in sorted(saved.files, key=lambda k: (k.split("/")[0], int(k.split("/")[1]))):
        runs.setdefault(key.split("/")[0], []).append(saved[key])
    return runs, json.loads((out / "facts.json").read_text())


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


def test_resume_on_another_device_count_equals_an_uninterrupted_run(job):
    runs, facts = job
    assert facts["epochs/resumed"] == [1, 2, 3, 4]
    _assert_close(runs["resumed"], runs["one"])


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


@pytest.mark.parametrize("run", ["pop4", "pop2data2"])
def test_sharded_population_equals_each_member_alone(job, run):
    """A vmapped population of 4 members (seeds) with members over ``pop`` (and rows over
    ``data``) against each member trained alone on one device."""
    runs, facts = job
    assert facts[f"{run}/specs"] == ["P('pop',)"]  # members split, nothing else
    for i in range(4):
        _assert_close(runs[f"{run}_member{i}"], runs[f"member{i}"])
    assert not np.allclose(runs["member0"][0], runs["member1"][0])  # the members differ


def _fit(**kw):
    history, _ = ol.fit(
        Tiny(dropout=0.25, batchnorm=True, seed=1),
        ol.sgd(0.05, momentum=0.9),
        blobs(48),
        loss=xent,
        epochs=2,
        batch_size=16,
        progress=False,
        **kw,
    )
    return history, jax.tree.leaves(history.state.params)


def test_one_device_mesh_equals_no_mesh():
    _, plain = _fit()
    _, meshed = _fit(mesh=jax.make_mesh((1,), ("data",)))
    for a, b in zip(plain, meshed, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=TOL)


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
