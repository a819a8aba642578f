"""The run of ``test_monitor_mesh.py`` in a process of its own (2 simulated CPU devices):
``python -m tests.diagnostics.monitor_mesh_job OUT_DIR``.

The device count is fixed when JAX starts, so the test process (one device) cannot host it.
The same monitored fit (``every=2``: each epoch in chunks of a monitored step and a plain
one, so both data-parallel steps run) runs on one device and data-parallel on a mesh of two;
the job writes both records to ``OUT_DIR/one.npz`` and ``OUT_DIR/mesh.npz`` and the test
compares them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
).strip()

import jax
import numpy as np

import optlab as ol


def run(mesh):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    model = ol.nn.MLP(4, (8,), 3, kernel_init="he_normal", rngs=1)
    history, _ = ol.fit(
        model,
        ol.adam(0.01),
        (x, y),
        loss=ol.nn.softmax_cross_entropy_with_integer_labels,
        epochs=2,
        batch_size=16,
        progress=False,
        mesh=mesh,
        diagnostics=ol.diagnostics.Monitor(every=2, histograms=True),
    )
    return history


def main(out: Path) -> None:
    assert jax.device_count() == 2, jax.devices()
    run(None).diagnostics.save_npz(out / "one.npz")
    run(jax.make_mesh((2,), ("data",))).diagnostics.save_npz(out / "mesh.npz")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
