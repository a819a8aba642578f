"""``fit(mesh=..., diagnostics=Monitor(...))``: the statistics of a data-parallel run on two
simulated devices equal those of the same run on one device.

The runs happen in one subprocess (``tests/diagnostics/monitor_mesh_job.py``: the device
count is fixed when JAX starts). Tolerance: the sharded step sums per-device partial sums
(gradients, moments, histogram counts) in another order, float32 rounding of ~1e-7 relative
per step over 8 steps of Adam; the counts (dead units, histogram fractions, sampled steps)
are exact.
"""

import numpy as np

from optlab.train.history import DiagnosticsRecord
from tests.helpers import run_job


def test_mesh_statistics_equal_one_device(tmp_path):
    run_job("tests.diagnostics.monitor_mesh_job", tmp_path)
    one = DiagnosticsRecord.load_npz(tmp_path / "one.npz")
    mesh = DiagnosticsRecord.load_npz(tmp_path / "mesh.npz")
    assert mesh.keys() == one.keys() and mesh.epoch == one.epoch == [1, 2]
    assert "activation_hist" in one.keys() and "update_ratio" in one.keys()
    np.testing.assert_array_equal(mesh["sampled_steps"], [2.0, 2.0])  # steps 0 and 2 of 4
    for key in one.keys():
        assert mesh.rows(key) == one.rows(key), key
        np.testing.assert_allclose(mesh[key], one[key], rtol=1e-5, atol=1e-7, err_msg=key)
