"""Several processes: ``optlab.train.distributed`` (environment detection) and a data-parallel
fit over 2 processes x 2 simulated CPU devices (Gloo collectives) against one process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from optlab.train.distributed import resolve
from tests.train import distributed_job

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_of_two_devices_equal_one_process(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JAX_PLATFORMS": "cpu",
        "OPTLAB_COORDINATOR": f"localhost:{_free_port()}",
        "OPTLAB_NUM_PROCESSES": "2",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.train.distributed_job", str(tmp_path / f"{i}.npz")],
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
    assert str(saved["refusal"]).startswith(
        "fit: ModelCheckpoint is not supported in a job of 2 processes"
    )
    assert not (tmp_path / "ckpt").exists()
    _, reference = distributed_job.run(None)
    assert len(saved.files) == len(reference) + 1 > 1
    # Tolerance: the all-reduce sums the devices' partial gradients in another order (1e-7).
    for i, ref in enumerate(reference):
        np.testing.assert_allclose(saved[f"arr_{i}"], ref, rtol=0, atol=1e-6)


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
