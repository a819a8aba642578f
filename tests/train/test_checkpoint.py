"""Orbax checkpoints: exact round trip, partial checkpoints never loaded, exact resume across
processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab.train.checkpoint import (
    Checkpointer,
    complete_epochs,
    latest_epoch,
    restore_checkpoint,
    save_checkpoint,
)
from tests.train import resume_job
from tests.train.models import Tiny, blobs, xent

REPO = Path(__file__).resolve().parents[2]
STEP = ol.make_train_step(xent)


TX = ol.adam(lambda n: 1e-2 / (1.0 + n))


@pytest.fixture(scope="module")
def trained():
    """A state after one epoch: moved parameters, BatchNorm averages, RNG counts, Adam moments."""
    x, y = blobs(64)
    state = ol.TrainState.create(Tiny(dropout=0.2, batchnorm=True), TX, seed=3)
    batches = (jnp.asarray(x.reshape(4, 16, -1)), jnp.asarray(y.reshape(4, 16)))
    state, _ = ol.train_epoch(STEP, state, batches)
    return state.replace(lr_scale=jnp.float32(0.25))


def _assert_states_equal(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_bitwise(tmp_path, trained):
    state = trained
    save_checkpoint(tmp_path, 4, state, {"note": "four"})
    fresh = ol.TrainState.create(Tiny(dropout=0.2, batchnorm=True), TX, seed=0)
    restored, meta = restore_checkpoint(tmp_path, fresh)
    _assert_states_equal(restored, state)
    assert meta == {"note": "four"}
    assert int(restored.step) == 4 and float(restored.lr_scale) == 0.25
    assert restored.tx is fresh.tx  # static parts come from the template


def test_partial_checkpoints_are_never_loaded(tmp_path, trained):
    state = trained
    save_checkpoint(tmp_path, 2, state, {"epoch": 2})
    # A crash mid-write leaves orbax's temporary directory; a copy interrupted by hand leaves a
    # numbered directory without orbax's metadata. Neither may be listed or loaded.
    (tmp_path / "7.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)
    (tmp_path / "9" / "state").mkdir(parents=True)
    (tmp_path / "9" / "state" / "garbage").write_bytes(b"\x00" * 10)
    assert complete_epochs(tmp_path) == [2]
    assert latest_epoch(tmp_path) == 2
    _, meta = restore_checkpoint(tmp_path, state)
    assert meta == {"epoch": 2}
    with pytest.raises(FileNotFoundError, match="no complete checkpoint of epoch 9"):
        restore_checkpoint(tmp_path, state, epoch=9)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint in"):
        restore_checkpoint(tmp_path / "empty", state)


def test_restore_into_another_model_says_so(tmp_path, trained):
    save_checkpoint(tmp_path, 1, trained)
    other = ol.TrainState.create(Tiny(hidden=5), ol.sgd(0.1))
    with pytest.raises(ValueError, match="was it written for another model or optimizer"):
        restore_checkpoint(tmp_path, other)


def test_max_to_keep(tmp_path, trained):
    state = trained
    ckpt = Checkpointer(tmp_path, max_to_keep=2)
    for epoch in (1, 2, 3):
        ckpt.save(epoch, state, {"epoch": epoch})
    ckpt.close()
    assert complete_epochs(tmp_path) == [2, 3]


def test_resume_in_a_fresh_process_is_bitwise_exact(tmp_path):
    """6 epochs straight == 3 epochs, then a new Python process that resumes for 3."""
    straight_history, straight = resume_job.run(6)
    ckpt = tmp_path / "ckpt"
    first_history, _ = resume_job.run(3, checkpoint_dir=ckpt)
    assert complete_epochs(ckpt) == [2, 3]
    out = tmp_path / "resumed.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.train.resume_job", str(ckpt), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = np.load(out)
    resumed = [saved[f"arr_{i}"] for i in range(len(straight))]
    assert len(saved.files) == len(straight) + 1
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    resumed_history = json.loads(str(saved["history"]))
    expected = straight_history.to_dict()
    for key in expected:
        if key not in ("time", "steps_per_second"):
            assert resumed_history[key] == expected[key], key
    # The plateau callback did halve the rate in this run, so its state mattered: the last
    # step (count 35 of 6 epochs x 6 steps) has rate 0.2 * 0.98**35 times a power of 1/2.
    ratio = expected["learning_rate"][-1] / (0.2 * 0.98**35)
    halvings = -np.log2(ratio)
    assert halvings >= 1 and abs(halvings - round(halvings)) < 1e-4
    assert first_history["loss"] == expected["loss"][:3]
