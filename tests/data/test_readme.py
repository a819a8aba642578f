"""The README's data snippet runs as written and does what its comments say."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_data_snippet_runs():
    text = README.read_text()
    section = text.split("### Data: datasets, your own files", 1)[1].split("\n### ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace = {}
    exec(compile(block, "README-data", "exec"), namespace)
    ds, epoch, step, mixed = (namespace[k] for k in ("ds", "epoch", "step", "mixed"))
    assert ds.x_train.shape == (1437, 8, 8, 1)
    assert epoch.mask.shape == (3, 500) and int(epoch.mask.sum()) == 1437  # 63 rows padded
    assert mixed.y.shape == (500, 10) and mixed.y.dtype == np.float32
    np.testing.assert_allclose(np.asarray(mixed.y).sum(-1), 1.0, rtol=1e-5)  # probabilities
    padded = np.asarray(step.mask) == 0
    assert padded.sum() == 63
    np.testing.assert_array_equal(np.asarray(mixed.x)[padded], np.asarray(step.x)[padded])
