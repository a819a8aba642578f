"""The sharded sweeps of ``test_sharding_sweep.py`` in a process with 4 simulated CPU devices:
``python -m tests.train.sharding_sweep_job OUT.json``.

The same sweep (4 configurations of an MLP with BatchNorm and dropout, SGD with momentum,
learning rate and momentum traced) on one device, with its members over a ``pop`` axis of 4
devices, and with 3 configurations on 2 devices (a member count that does not divide: run
replicated); the job writes every member's history, the tests compare them.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import jax
import jax.numpy as jnp

import optlab as ol
from optlab.tune.population import place_members
from tests.tune.common import blobs, mlp, sgd, xent

_X, _Y = blobs(112)
SPACE = ol.tune.Space(lr=ol.tune.log_uniform(1e-3, 0.3), momentum=ol.tune.uniform(0.5, 0.9))


def histories(result) -> list[dict]:
    return [{"loss": m.history["loss"], "val_loss": m.history["val_loss"]} for m in result.members]


def main(out: str) -> None:
    warnings.simplefilter("error")
    kw = dict(loss=xent, batch_size=16, validation_data=(_X[96:], _Y[96:]), warn=False)
    data = (_X[:96], _Y[:96])
    runs = {}
    for name, trials, mesh in [
        ("one4", 4, None),
        ("pop4", 4, jax.make_mesh((4,), ("pop",))),
        ("one3", 3, None),
        ("pop2of3", 3, jax.make_mesh((2,), ("pop",))),
    ]:
        result = ol.tune.sweep(mlp, sgd, SPACE, data, epochs=2, trials=trials, mesh=mesh, **kw)
        runs[name] = histories(result)
    mesh = jax.make_mesh((4,), ("pop",))
    placed = place_members(mesh, (jnp.zeros((4, 3)),), (jnp.zeros((5, 2)), None, None), False)
    odd = place_members(mesh, (jnp.zeros((3, 3)),), (jnp.zeros((5, 2)), None, None), False)
    runs["specs"] = [str(placed[0].sharding.spec), str(placed[1].sharding.spec)]
    runs["odd_specs"] = [str(odd[0].sharding.spec)]
    try:
        ol.tune.sweep(
            mlp, sgd, SPACE, data, epochs=1, trials=2, mesh=jax.make_mesh((2,), ("data",)), **kw
        )
    except ValueError as err:
        runs["refusal"] = str(err)
    with open(out, "w") as f:
        json.dump(runs, f)


if __name__ == "__main__":
    main(sys.argv[1])
