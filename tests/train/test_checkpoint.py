"""Orbax checkpoints: exact round trip, damaged checkpoints refused (by damaging real files),
partial ones never loaded, exact resume across processes."""

import json
import re
import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab.train.checkpoint import (
    Checkpointer,
    DamagedCheckpointWarning,
    complete_epochs,
    latest_epoch,
    restore_checkpoint,
    save_checkpoint,
)
from tests.helpers import run_job
from tests.train import resume_job
from tests.train.models import Tiny, blobs, xent

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
    # A crash mid-write leaves a staging (or orbax temporary) folder: never listed. A copy
    # interrupted by hand leaves a numbered folder without its integrity record: skipped,
    # with a warning naming it.
    (tmp_path / "7.optlab-staging-1234.orbax-checkpoint-tmp-1" / "state").mkdir(parents=True)
    (tmp_path / "9" / "state").mkdir(parents=True)
    (tmp_path / "9" / "state" / "garbage").write_bytes(b"\x00" * 10)
    assert complete_epochs(tmp_path) == [2]
    assert latest_epoch(tmp_path) == 2
    with pytest.warns(DamagedCheckpointWarning, match="9 is damaged .integrity.json is missing"):
        _, meta = restore_checkpoint(tmp_path, state)
    assert meta == {"epoch": 2}
    with pytest.raises(ValueError, match=r"no intact checkpoint in .*: 9 is damaged"):
        restore_checkpoint(tmp_path, state, epoch=9)
    with pytest.raises(FileNotFoundError, match="no checkpoint of epoch 5"):
        restore_checkpoint(tmp_path, state, epoch=5)
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2", "3"]  # nothing left over
    with pytest.raises(
        TypeError, match=r"Checkpointer: max_to_keep must be an integer, got max_to_keep=2\.5"
    ):
        Checkpointer(tmp_path, max_to_keep=2.5)
    with pytest.raises(ValueError, match="Checkpointer: max_to_keep must be an integer >= 1"):
        Checkpointer(tmp_path, max_to_keep=0)
    with pytest.raises(TypeError, match="Checkpointer: directory must be a path"):
        Checkpointer(None)


def _data_files(folder):
    return sorted(p for p in (folder / "state").rglob("*") if p.is_file() and p.parent.name == "d")


def _flip_bytes(folder):
    for f in _data_files(folder):
        data = bytearray(f.read_bytes())
        for i in range(len(data) // 3, min(len(data), len(data) // 3 + 64)):
            data[i] ^= 0xFF
        f.write_bytes(bytes(data))


def _truncate(folder):
    for f in _data_files(folder):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _edit_record(folder):
    """Changes one character of the JSON record, keeping its size: only a checksum sees it."""
    f = folder / "meta" / "metadata"
    f.write_text(re.sub('"epoch": [0-9]', '"epoch": 7', f.read_text()))


def _edit_array_checksum(folder):
    """Changes the recorded checksum of one array: the files all match, orbax reads the array,
    only the array check (sharding-invariant, computed on the devices) sees it."""
    f = folder / "integrity.json"
    record = json.loads(f.read_text())
    digest = record["arrays"]["state/00000"]
    record["arrays"]["state/00000"] = digest[:-1] + ("1" if digest[-1] == "0" else "0")
    f.write_text(json.dumps(record))


DAMAGE = {
    "flipped-bytes": (_flip_bytes, "state/.*d/[0-9a-f]+ does not match its checksum"),
    "truncated": (_truncate, r"state/.* has \d+ bytes, not \d+"),
    "deleted-array-metadata": (
        lambda d: (d / "state" / "_METADATA").unlink(),
        "state/_METADATA is missing",
    ),
    "deleted-orbax-metadata": (
        lambda d: (d / "_CHECKPOINT_METADATA").unlink(),
        "_CHECKPOINT_METADATA is missing",
    ),
    "deleted-integrity-record": (
        lambda d: (d / "integrity.json").unlink(),
        "integrity.json is missing",
    ),
    "garbled-integrity-record": (
        lambda d: (d / "integrity.json").write_bytes(b'{"files": {"a": [1, '),
        r"integrity.json is unreadable \(JSONDecodeError\)",
    ),
    "garbled-array-metadata": (
        lambda d: (d / "state" / "_METADATA").write_bytes(b"\x00garbage"),
        r"state/_METADATA has 8 bytes, not \d+",
    ),
    "edited-json-record": (_edit_record, "meta/metadata does not match its checksum"),
    "edited-array-checksum": (
        _edit_array_checksum,
        "array state/00000 does not match its checksum",
    ),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_latest_checkpoint_is_skipped_with_one_warning(tmp_path, trained, kind):
    damage, reason = DAMAGE[kind]
    older = trained.replace(lr_scale=jnp.float32(0.5))
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, older, {"epoch": 1})
    ckpt.save(2, trained, {"epoch": 2})
    ckpt.close()
    damage(tmp_path / "2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored, meta = restore_checkpoint(tmp_path, trained)
    assert [w.category for w in caught] == [DamagedCheckpointWarning]
    message = str(caught[0].message)
    assert "\n" not in message and re.search(
        f"checkpoint {re.escape(str(tmp_path / '2'))} is damaged \\({reason}\\); skipped it and "
        f"restored {re.escape(str(tmp_path / '1'))}$",
        message,
    ), message
    assert meta == {"epoch": 1}
    _assert_states_equal(restored, older)
    # With every checkpoint damaged, restoring fails with one line naming each.
    damage(tmp_path / "1")
    with pytest.raises(ValueError) as err:
        restore_checkpoint(tmp_path, trained)
    assert "\n" not in str(err.value)
    assert re.match(
        f"no intact checkpoint in {re.escape(str(tmp_path))}: 2 is damaged", str(err.value)
    )
    assert "; 1 is damaged" in str(err.value)


def test_leftovers_and_half_deleted_folders_are_cleaned_by_the_next_save(tmp_path, trained):
    ckpt = Checkpointer(tmp_path)
    for epoch in (1, 2):
        ckpt.save(epoch, trained, {"epoch": epoch})
    ckpt.close()
    # A deletion interrupted half-way (older versions deleted in place), a retired folder
    # whose deletion was interrupted, and a staging folder of a write that crashed.
    shutil.rmtree(tmp_path / "1" / "state")
    shutil.copytree(tmp_path / "2", tmp_path / "0.optlab-deleting-abcd1234")
    shutil.copytree(tmp_path / "2", tmp_path / "3.optlab-staging-abcd1234")
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, trained, {"epoch": 3})
    ckpt.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2", "3"]
    _, meta = restore_checkpoint(tmp_path, trained)
    assert meta == {"epoch": 3}


def test_fit_resumes_from_the_newest_intact_checkpoint(tmp_path):
    """Epoch 2's checkpoint is damaged: fit warns, resumes from epoch 1 and ends exactly as
    the uninterrupted run (the seed fixes every epoch's data)."""
    kwargs = dict(loss=xent, batch_size=16, progress=False, validation_split=0.25, seed=4)
    data = blobs(48, seed=3)
    tx = ol.adam(1e-2)  # one object: the three fits share one compiled epoch
    straight, _ = ol.fit(Tiny(), tx, data, epochs=3, **kwargs)
    ckpt = ol.callbacks.ModelCheckpoint(tmp_path)
    ol.fit(Tiny(), tx, data, epochs=2, callbacks=[ckpt], **kwargs)
    _flip_bytes(tmp_path / "2")
    with pytest.warns(DamagedCheckpointWarning, match="2 is damaged .* restored .*1$"):
        resumed, _ = ol.fit(
            Tiny(),
            tx,
            data,
            epochs=3,
            resume_from=tmp_path,
            callbacks=[ol.callbacks.ModelCheckpoint(tmp_path)],
            **kwargs,
        )
    for key in ("loss", "val_loss", "accuracy", "grad_norm"):
        assert resumed[key] == straight[key], key
    assert resumed.epoch == [1, 2, 3] and complete_epochs(tmp_path) == [1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, meta = restore_checkpoint(tmp_path, ol.TrainState.create(Tiny(), tx))
    assert meta["epoch"] == 3  # the damaged epoch 2 was rewritten, intact


def test_resume_in_a_fresh_process_is_bitwise_exact(tmp_path):
    """6 epochs straight == 3 epochs, then a new Python process that resumes for 3."""
    tx = resume_job.make_tx()  # one object here: both runs share one compiled epoch
    straight_history, straight = resume_job.run(6, tx=tx)
    ckpt = tmp_path / "ckpt"
    first_history, _ = resume_job.run(3, checkpoint_dir=ckpt, tx=tx)
    assert complete_epochs(ckpt) == [2, 3]
    assert first_history.epoch == [1, 2, 3]
    out = tmp_path / "resumed.npz"
    run_job("tests.train.resume_job", ckpt, out, timeout=300)
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
    assert resumed_history["epoch"] == [1, 2, 3, 4, 5, 6]
    ratio = expected["learning_rate"][-1] / (0.2 * 0.98**35)
    halvings = -np.log2(ratio)
    assert halvings >= 1 and abs(halvings - round(halvings)) < 1e-4
    assert first_history["loss"] == expected["loss"][:3]
