"""One process of the two-process test: ``python -m tests.train.distributed_job OUT CKPT``.

The environment names the job (``OPTLAB_COORDINATOR``, ``OPTLAB_NUM_PROCESSES``,
``OPTLAB_PROCESS_ID``); each process simulates 2 CPU devices, so the mesh spans 4 devices on
2 processes. Both train the same fit data-parallel (with validation), the optimizer state
split over the 4 devices (ZeRO-1), and write checkpoints into ``CKPT`` (every process its
shards); process 0 writes the validation losses, the trained arrays and the optimizer
state's shardings to ``OUT`` (an ``.npz``) for the test to compare with one process, which
also resumes the checkpoint on one device.
"""

from __future__ import annotations

import os
import sys
import warnings

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
).strip()

import jax
import numpy as np

import optlab as ol
from optlab.train import distributed
from tests.train.models import Tiny, blobs, xent

DATA = blobs(64, seed=4)
TX = ol.sgd(0.05, momentum=0.9)  # one object: a process's fits share one compiled epoch


def state_arrays(state) -> list[np.ndarray]:
    """The parameters and model state (BatchNorm statistics) of a train state, as host copies
    (PRNG keys left out)."""
    leaves = jax.tree.leaves((state.params, state.model_state))
    keys = jax.dtypes.prng_key
    return [np.asarray(a) for a in leaves if not jax.dtypes.issubdtype(a.dtype, keys)]


def run(mesh=None, *, epochs=2, **kw):
    """The fit both processes (and the single-process reference and resume) run."""
    history, _ = ol.fit(
        Tiny(dropout=0.25, batchnorm=True, seed=1),
        TX,
        DATA,
        loss=xent,
        epochs=epochs,
        batch_size=16,
        seed=3,
        validation_split=0.25,
        progress=False,
        mesh=mesh,
        **kw,
    )
    return history


def main(out: str, ckpt: str) -> None:
    warnings.simplefilter("error")
    config = distributed.initialize(initialization_timeout=120)
    assert config.sources["process_id"] == "OPTLAB_PROCESS_ID", config
    assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
    history = run(
        jax.make_mesh((4,), ("data",)),
        shard_optimizer_state=True,
        callbacks=[ol.callbacks.ModelCheckpoint(ckpt)],
    )
    opt = jax.tree.leaves(history.state.opt_state)
    if jax.process_index() == 0:
        np.savez(
            out,
            *state_arrays(history.state),
            val_loss=np.asarray(history["val_loss"]),
            opt_specs=np.array([str(a.sharding.spec) for a in opt]),
            opt_local_devices=np.array([len(a.addressable_shards) for a in opt]),
        )
    distributed.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
