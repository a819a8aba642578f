"""One process of the two-process test: ``python -m tests.train.distributed_job OUT``.

The environment names the job (``OPTLAB_COORDINATOR``, ``OPTLAB_NUM_PROCESSES``,
``OPTLAB_PROCESS_ID``); each process simulates 2 CPU devices, so the mesh spans 4 devices on
2 processes. Both train the same fit data-parallel (with validation); process 0 writes the
validation losses, the parameters and BatchNorm statistics to ``OUT`` (an ``.npz``) for the
test to compare with one process.
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
from flax import nnx

import optlab as ol
from optlab.train import distributed
from tests.train.models import Tiny, blobs, xent

DATA = blobs(64, seed=4)


def run(mesh=None):
    """The fit both processes (and the single-process reference) run."""
    history, model = ol.fit(
        Tiny(dropout=0.25, batchnorm=True, seed=1),
        ol.sgd(0.05, momentum=0.9),
        DATA,
        loss=xent,
        epochs=2,
        batch_size=16,
        seed=3,
        validation_split=0.25,
        progress=False,
        mesh=mesh,
    )
    arrays = jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))
    return history, [np.asarray(history["val_loss"]), *(np.asarray(a) for a in arrays)]


def main(out: str) -> None:
    warnings.simplefilter("error")
    config = distributed.initialize(initialization_timeout=120)
    assert config.sources["process_id"] == "OPTLAB_PROCESS_ID", config
    assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("data",))
    _, leaves = run(mesh)
    try:  # refused before anything is written (every process would write the same folders)
        ol.fit(
            Tiny(),
            ol.sgd(0.1),
            DATA,
            loss=xent,
            mesh=mesh,
            progress=False,
            callbacks=[ol.callbacks.ModelCheckpoint(os.path.dirname(out) + "/ckpt")],
        )
        refusal = ""
    except ValueError as err:
        refusal = str(err)
    if jax.process_index() == 0:
        np.savez(out, *leaves, refusal=refusal)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
