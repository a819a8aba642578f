"""The data-parallel runs of ``test_sharding.py``, in a process of its own (8 simulated CPU
devices): ``python -m tests.train.sharding_job OUT_DIR``.

The device count is fixed when JAX starts, so the test process (one device) cannot host these
runs. Every run is the same fit (dropout and BatchNorm, SGD with momentum); the job writes
the parameters and BatchNorm statistics of each run to ``OUT_DIR/runs.npz`` and the facts the
tests assert (shardings, messages, compiled collectives) to ``OUT_DIR/facts.json``. The
tests, not this job, compare them.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optlab as ol
from optlab.train.sharding import (
    data_parallel,
    shard_batches,
    shard_population,
    shard_state,
)
from optlab.train.step import scan_epoch
from tests.train.models import Tiny, blobs, xent

EPOCHS = 4
BATCH = 16
DATA = blobs(96, seed=2)


def make_tx():
    """SGD with momentum (a state to shard). Not Adam: with BatchNorm after it, the first
    layer's bias has a zero gradient up to rounding, which Adam's normalisation would blow up
    to steps of size lr and so compare rounding noise, not data parallelism."""
    return ol.sgd(0.05, momentum=0.9)


def model_arrays(model) -> list[np.ndarray]:
    """Parameters and BatchNorm statistics (not the RNG streams), in a fixed order."""
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))]


def run(mesh=None, *, epochs=EPOCHS, zero=False, **kw):
    model = Tiny(dropout=0.25, batchnorm=True, seed=1)
    history, model = ol.fit(
        model,
        make_tx(),
        DATA,
        loss=xent,
        epochs=epochs,
        batch_size=BATCH,
        validation_split=0.25,  # 24 rows: evaluated split over 4 and 8 devices
        seed=5,
        progress=False,
        mesh=mesh,
        shard_optimizer_state=zero,
        **kw,
    )
    return history, model


def specs(tree) -> list[str]:
    return [str(leaf.sharding.spec) for leaf in jax.tree.leaves(tree)]


def main(out_dir: str) -> None:
    warnings.simplefilter("error")  # as the test suite: a donation warning would fail it
    out = Path(out_dir)
    arrays: dict[str, np.ndarray] = {}
    facts: dict = {"devices": jax.device_count()}

    def keep(name, model):
        for i, a in enumerate(model_arrays(model)):
            arrays[f"{name}/{i}"] = a

    history, model = run(None)
    keep("one", model)
    facts["loss/one"] = history["loss"]
    facts["val_loss/one"] = history["val_loss"]
    history, model = run(jax.make_mesh((4,), ("data",)))
    keep("data4", model)
    facts["loss/data4"] = history["loss"]
    facts["val_loss/data4"] = history["val_loss"]
    facts["param_specs/data4"] = specs(history.state.params)
    facts["opt_specs/data4"] = specs(history.state.opt_state)
    history, model = run(jax.make_mesh((8,), ("data",)), zero=True)  # 8 devices, ZeRO-1
    keep("zero8", model)
    facts["loss/zero8"] = history["loss"]
    facts["val_loss/zero8"] = history["val_loss"]
    facts["param_specs/zero8"] = specs(history.state.params)
    facts["opt_specs/zero8"] = specs(history.state.opt_state)
    facts["opt_shapes/zero8"] = [list(a.shape) for a in jax.tree.leaves(history.state.opt_state)]
    facts["opt_shard_shapes/zero8"] = [
        list(a.addressable_shards[0].data.shape) for a in jax.tree.leaves(history.state.opt_state)
    ]
    facts["model_devices/zero8"] = len(model.l1.kernel[...].sharding.device_set)

    # Checkpoints: 2 epochs on 4 devices, then resumed on 2 devices up to EPOCHS.
    ckpt = out / "ckpt"
    run(
        jax.make_mesh((4,), ("data",)),
        epochs=2,
        callbacks=[ol.callbacks.ModelCheckpoint(ckpt)],
    )
    history, model = run(jax.make_mesh((2,), ("data",)), resume_from=ckpt)
    keep("resumed", model)
    facts["epochs/resumed"] = history.epoch

    # Refusals (one line, naming fit and batch_size).
    for name, kwargs in {
        "indivisible": {"batch_size": 12, "mesh": jax.make_mesh((8,), ("data",))},
        "no_data_axis": {"mesh": jax.make_mesh((2,), ("batch",))},
    }.items():
        try:
            ol.fit(Tiny(), make_tx(), DATA, loss=xent, progress=False, **kwargs)
        except ValueError as err:
            facts[f"error/{name}"] = str(err)

    # The functional form: a step made data-parallel, run under train_epoch and jit.
    mesh = jax.make_mesh((4,), ("data",))
    step = ol.make_train_step(xent)
    x, y = DATA
    stacked = (jnp.asarray(x.reshape(6, 16, -1)), jnp.asarray(y.reshape(6, 16)))
    plain = ol.TrainState.create(Tiny(dropout=0.25, batchnorm=True, seed=1), make_tx(), seed=5)
    plain, _ = ol.train_epoch(step, plain, stacked)
    dp = data_parallel(step, mesh, shard_optimizer_state=True)
    state = shard_state(
        ol.TrainState.create(Tiny(dropout=0.25, batchnorm=True, seed=1), make_tx(), seed=5),
        mesh,
        shard_optimizer_state=True,
    )
    state, _ = ol.train_epoch(dp, state, shard_batches(stacked, mesh, stacked=True))
    for i, (a, b) in enumerate(
        zip(jax.tree.leaves(plain.params), jax.tree.leaves(state.params), strict=True)
    ):
        arrays[f"functional_one/{i}"] = np.asarray(a)
        arrays[f"functional_data4/{i}"] = np.asarray(b)
    one_batch = shard_batches((stacked[0][0], stacked[1][0]), mesh)
    compiled = jax.jit(dp).lower(state, one_batch).compile()
    facts["functional/all_reduce"] = "all-reduce" in compiled.as_text()
    # Per-device argument bytes of the ZeRO-1 step against the replicated one, and the
    # optimizer state's bytes, whole and per device (from the arrays themselves).
    replicated = shard_state(state, mesh)
    plain_step = jax.jit(data_parallel(step, mesh)).lower(replicated, one_batch).compile()
    facts["functional/argument_bytes"] = [
        plain_step.memory_analysis().argument_size_in_bytes,
        compiled.memory_analysis().argument_size_in_bytes,
    ]
    facts["functional/opt_bytes"] = [
        sum(a.nbytes for a in jax.tree.leaves(state.opt_state)),
        sum(a.addressable_shards[0].data.nbytes for a in jax.tree.leaves(state.opt_state)),
    ]
    facts["functional/opt_specs"] = specs(state.opt_state)

    # A population (4 members: seeds) vmapped, members over "pop" (and rows over "data").
    tx = make_tx()
    members = [
        ol.TrainState.create(Tiny(dropout=0.25, batchnorm=True, seed=s), tx, seed=s)
        for s in range(4)
    ]
    population = jax.tree.map(lambda *a: jnp.stack(a), *members)
    for i, member in enumerate(members):  # each member alone, one device, no vmap
        alone, _ = ol.train_epoch(step, member, stacked)
        for j, a in enumerate(jax.tree.leaves(alone.params)):
            arrays[f"member{i}/{j}"] = np.asarray(a)
    for name, shape in {"pop4": (4, 1), "pop2data2": (2, 2)}.items():
        mesh = jax.make_mesh(shape, ("pop", "data"))
        member_step = data_parallel(step, mesh)
        epoch = jax.jit(
            jax.vmap(
                lambda st, b, f=member_step: scan_epoch(f, st, b)[0],
                (0, None),
                0,
                spmd_axis_name="pop",
            )
        )
        placed = shard_population(population, mesh)
        trained = epoch(placed, shard_batches(stacked, mesh, stacked=True))
        facts[f"{name}/specs"] = sorted(set(specs(trained.params)))
        for i in range(4):
            for j, a in enumerate(jax.tree.leaves(trained.params)):
                arrays[f"{name}_member{i}/{j}"] = np.asarray(a[i])

    np.savez(out / "runs.npz", **arrays)
    (out / "facts.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    main(sys.argv[1])
