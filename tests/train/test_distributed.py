"""Several processes: ``optlab.train.distributed`` (environment detection) and a data-parallel
fit over 2 processes x 2 simulated CPU devices (Gloo collectives), checkpointed, against one
process, and its checkpoint resumed on one process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import optlab as ol
from optlab.train.checkpoint import complete_epochs
from optlab.train.distributed import resolve
from tests.train import distributed_job

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class Record(ol.callbacks.Callback):
    """Keeps the state's arrays after epoch ``epoch`` (host copies)."""

    def __init__(self, epoch: int):
        self.epoch, self.arrays = epoch, None

    def on_epoch_end(self, run, epoch, logs):
        if epoch == self.epoch:
            self.arrays = distributed_job.state_arrays(run.state)


def _assert_close(actual, expected):
    # Tolerance: the all-reduce sums the devices' partial gradients in another order (1e-7).
    assert len(actual) == len(expected) > 0
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_two_processes_of_two_devices_equal_one_process_and_resume_on_one(tmp_path):
    """2 processes x 2 devices, ZeRO-1, checkpointing (every process writes its shards) ==
    one process; the checkpoint then resumed here, on 1 process and 1 device, for a third
    epoch == the uninterrupted 3-epoch run."""
    ckpt = tmp_path / "ckpt"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JAX_PLATFORMS": "cpu",
        "OPTLAB_COORDINATOR": f"localhost:{_free_port()}",
        "OPTLAB_NUM_PROCESSES": "2",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.train.distributed_job",
                str(tmp_path / f"{i}.npz"),
                str(ckpt),
            ],
            cwd=REPO,
            env={**env, "OPTLAB_PROCESS_ID": str(i)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errors = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=300)
            errors.append(err)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err[-3000:]
    saved = np.load(tmp_path / "0.npz")
    assert not (tmp_path / "1.npz").exists()  # only process 0 writes
    # ZeRO-1 across the processes: the momentum of every array with an axis divisible by 4
    # is split over the 4 devices, 2 of which each process holds.
    assert "P('data',)" in set(saved["opt_specs"])
    assert set(saved["opt_local_devices"]) == {2}
    # One checkpoint per epoch, each array written by the processes holding its shards.
    assert complete_epochs(ckpt) == [1, 2]
    assert sorted(p.name for p in (ckpt / "2" / "state").glob("ocdbt.process_*")) == [
        "ocdbt.process_0",
        "ocdbt.process_1",
    ]

    record = Record(2)
    straight = distributed_job.run(None, epochs=3, callbacks=[record])
    arrays = [saved[f"arr_{i}"] for i in range(len(saved.files) - 3)]
    _assert_close(arrays, record.arrays)
    _assert_close([saved["val_loss"]], [np.asarray(straight["val_loss"][:2])])

    resumed = distributed_job.run(None, epochs=3, resume_from=ckpt)
    assert resumed.epoch == [1, 2, 3]
    state_arrays = distributed_job.state_arrays
    _assert_close(state_arrays(resumed.state), state_arrays(straight.state))
    _assert_close([np.asarray(resumed["val_loss"])], [np.asarray(straight["val_loss"])])


def test_arguments_then_optlab_then_jax_variables():
    environ = {
        "OPTLAB_COORDINATOR": "a:1",
        "JAX_COORDINATOR_ADDRESS": "b:2",
        "JAX_NUM_PROCESSES": "4",
        "OPTLAB_PROCESS_ID": "3",
        "JAX_PROCESS_ID": "0",
        "OPTLAB_LOCAL_DEVICE_IDS": "0, 1",
    }
    config = resolve(environ=environ)
    assert config.coordinator_address == "a:1"
    assert (config.num_processes, config.process_id, config.local_device_ids) == (4, 3, (0, 1))
    assert dict(config.sources) == {
        "coordinator_address": "OPTLAB_COORDINATOR",
        "num_processes": "JAX_NUM_PROCESSES",
        "process_id": "OPTLAB_PROCESS_ID",
        "local_device_ids": "OPTLAB_LOCAL_DEVICE_IDS",
    }
    config = resolve("c:3", 8, 7, 2, environ=environ)
    assert (config.coordinator_address, config.num_processes, config.process_id) == ("c:3", 8, 7)
    assert config.local_device_ids == (2,)
    assert set(config.sources.values()) == {"argument"}


def test_cluster_managers_are_left_to_jax():
    slurm = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2", "SLURM_PROCID": "1"}
    config = resolve(environ=slurm)
    assert config.cluster == "slurm"
    assert config.coordinator_address is config.num_processes is config.process_id is None
    assert resolve(environ={}).cluster is None


@pytest.mark.parametrize(
    ("kw", "environ", "error", "match"),
    [
        (
            {},
            {"OPTLAB_NUM_PROCESSES": "two"},
            ValueError,
            "OPTLAB_NUM_PROCESSES must be an integer",
        ),
        ({"coordinator_address": "node0"}, {}, ValueError, "must be 'host:port'"),
        ({"coordinator_address": 1234}, {}, TypeError, "must be a 'host:port' string"),
        ({"num_processes": 2, "process_id": 2}, {}, ValueError, "process_id must be below"),
        ({"num_processes": 0}, {}, ValueError, "num_processes"),
    ],
    ids=["variable", "no-port", "not-a-string", "id-too-large", "no-processes"],
)
def test_bad_settings_refused(kw, environ, error, match):
    with pytest.raises(error, match=f"^initialize: .*{match}"):
        resolve(**kw, environ=environ)
