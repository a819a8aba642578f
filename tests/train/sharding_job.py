"""The runs of ``test_sharding.py`` and ``test_sharding_sweep.py``, in one process of their
own (8 simulated CPU devices): ``python -m tests.train.sharding_job OUT_DIR``.

The device count is fixed when JAX starts, so the test process (one device) cannot host these
runs; one process hosts them all (1, 2, 4 and 8 devices are meshes over its 8), so JAX is
started once. Every fit is the same (dropout and BatchNorm, SGD with momentum); the job
writes the parameters and BatchNorm statistics of each run to ``OUT_DIR/runs.npz``, the
facts the tests assert (shardings, messages, compiled collectives, checkpoint layout) to
``OUT_DIR/facts.json`` and the sweeps' histories to ``OUT_DIR/sweeps.json``. The tests, not
this job, compare them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

import optlab as ol
from optlab.train.checkpoint import sharded_digests
from optlab.train.sharding import (
    data_parallel,
    shard_batches,
    shard_population,
    shard_state,
)
from optlab.train.step import scan_epoch
from optlab.tune.population import place_members
from tests.train.models import Tiny, blobs, xent
from tests.tune import common

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


def shard_shapes(tree) -> list[list[int]]:
    return [list(a.addressable_shards[0].data.shape) for a in jax.tree.leaves(tree)]


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
    # 8 devices, ZeRO-1, with checkpoints of epochs 2 and 4 (sharded arrays, saved sharded).
    ckpt = out / "ckpt"
    history, model = run(
        jax.make_mesh((8,), ("data",)),
        zero=True,
        callbacks=[ol.callbacks.ModelCheckpoint(ckpt, every_n_epochs=2)],
    )
    keep("zero8", model)
    facts["loss/zero8"] = history["loss"]
    facts["val_loss/zero8"] = history["val_loss"]
    facts["param_specs/zero8"] = specs(history.state.params)
    facts["opt_specs/zero8"] = specs(history.state.opt_state)
    facts["opt_shapes/zero8"] = [list(a.shape) for a in jax.tree.leaves(history.state.opt_state)]
    facts["opt_shard_shapes/zero8"] = shard_shapes(history.state.opt_state)
    facts["model_devices/zero8"] = len(model.l1.kernel[...].sharding.device_set)
    # The checkpoint as orbax wrote it: each array's sharding and the shape of the pieces
    # written (one per shard), from orbax's own metadata.
    saved = ocp.StandardCheckpointHandler().metadata(ckpt / "2" / "state").tree["state"]
    facts["ckpt/specs"] = [
        list(m.sharding.partition_spec) if hasattr(m.sharding, "partition_spec") else None
        for m in saved.values()
    ]
    facts["ckpt/shapes"] = [list(m.shape) for m in saved.values()]
    facts["ckpt/chunks"] = [list(m.storage.chunk_shape) for m in saved.values()]
    # The digests of the sharded optimizer state equal those of the same values on the host.
    opt = dict(enumerate(jax.tree.leaves(history.state.opt_state)))
    host = {k: np.asarray(v) for k, v in opt.items()}
    facts["digests/sharded_equals_host"] = sharded_digests(opt) == sharded_digests(host)

    # Resume epoch 2's checkpoint (epoch 4's removed) on 2 devices, ZeRO-1 split 2 ways.
    shutil.rmtree(ckpt / "4")
    history, model = run(jax.make_mesh((2,), ("data",)), zero=True, resume_from=ckpt)
    keep("resumed", model)
    facts["epochs/resumed"] = history.epoch
    facts["opt_specs/resumed"] = specs(history.state.opt_state)
    facts["opt_shard_shapes/resumed"] = shard_shapes(history.state.opt_state)

    # Refusals (one line, naming fit and batch_size).
    for name, kwargs in {
        "indivisible": {"batch_size": 12, "mesh": jax.make_mesh((8,), ("data",))},
        "no_data_axis": {"mesh": jax.make_mesh((2,), ("batch",))},
    }.items():
        try:
            ol.fit(Tiny(), make_tx(), DATA, loss=xent, progress=False, **kwargs)
        except ValueError as err:
            facts[f"error/{name}"] = str(err)

    # The functional form: a step made data-parallel, run under train_epoch and jit, against
    # one device (4 members, seeds 0-3, each trained alone: member 1 is the reference here,
    # all 4 for the population below; one compiled epoch serves them all).
    mesh = jax.make_mesh((4,), ("data",))
    step = ol.make_train_step(xent)
    x, y = DATA
    stacked = (jnp.asarray(x.reshape(6, 16, -1)), jnp.asarray(y.reshape(6, 16)))
    tx = make_tx()
    members = [
        ol.TrainState.create(Tiny(dropout=0.25, batchnorm=True, seed=s), tx, seed=s)
        for s in range(4)
    ]
    population = jax.tree.map(lambda *a: jnp.stack(a), *members)  # before donating them
    alone = [ol.train_epoch(step, member, stacked)[0] for member in members]
    plain = alone[1]
    dp = data_parallel(step, mesh, shard_optimizer_state=True)
    state = shard_state(
        ol.TrainState.create(Tiny(dropout=0.25, batchnorm=True, seed=1), tx, seed=1),
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

    # The population of the 4 members vmapped, members over "pop" and rows over "data".
    for i, member in enumerate(alone):
        for j, a in enumerate(jax.tree.leaves(member.params)):
            arrays[f"member{i}/{j}"] = np.asarray(a)
    for name, shape in {"pop2data2": (2, 2)}.items():
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
    (out / "sweeps.json").write_text(json.dumps(sweeps()))


CONFIGS = [
    {"lr": lr, "momentum": m} for lr, m in [(0.1, 0.9), (0.03, 0.5), (0.2, 0.7), (0.01, 0.8)]
]


def sweeps() -> dict:
    """The same sweep (MLP with BatchNorm and dropout, SGD with traced learning rate and
    momentum) unsharded, with its 4 members over a ``pop`` axis of 4 devices, and its first 3
    members on 2 devices (a member count that does not divide: run replicated)."""
    x, y = common.blobs(112)
    kw = dict(loss=common.xent, batch_size=16, validation_data=(x[96:], y[96:]), warn=False)
    data = (x[:96], y[:96])
    runs = {}
    for name, configs, mesh in [
        ("one4", CONFIGS, None),
        ("pop4", CONFIGS, jax.make_mesh((4,), ("pop",))),
        ("pop2of3", CONFIGS[:3], jax.make_mesh((2,), ("pop",))),
    ]:
        result = ol.tune.sweep(common.mlp, common.sgd, configs, data, epochs=2, mesh=mesh, **kw)
        runs[name] = [
            {"loss": m.history["loss"], "val_loss": m.history["val_loss"]} for m in result.members
        ]
    mesh = jax.make_mesh((4,), ("pop",))
    placed = place_members(mesh, (jnp.zeros((4, 3)),), (jnp.zeros((5, 2)), None, None), False)
    odd = place_members(mesh, (jnp.zeros((3, 3)),), (jnp.zeros((5, 2)), None, None), False)
    runs["specs"] = [str(placed[0].sharding.spec), str(placed[1].sharding.spec)]
    runs["odd_specs"] = [str(odd[0].sharding.spec)]
    try:
        ol.tune.sweep(
            common.mlp,
            common.sgd,
            CONFIGS[:2],
            data,
            epochs=1,
            mesh=jax.make_mesh((2,), ("data",)),
            **kw,
        )
    except ValueError as err:
        runs["refusal"] = str(err)
    return runs


if __name__ == "__main__":
    main(sys.argv[1])
