"""The README's models snippets run as written (nnx-native loop, then the functional form)."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _models_section_code():
    text = README.read_text()
    section = text.split("### Models, losses and data", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_models_snippets_run():
    blocks = _models_section_code()  # the nnx-native snippet, the functional one, then data's
    assert len(blocks) >= 2
    assert "model.eval()" in blocks[0] and "ol.nn.functional(model)" in blocks[1]
    namespace = {}
    exec(compile(blocks[0], "README-models-nnx", "exec"), namespace)
    model, ds = namespace["model"], namespace["ds"]
    assert namespace["logits"].shape == (len(ds.x_test), 10)
    assert model.deterministic  # the snippet ends in eval mode
    exec(compile(blocks[1], "README-models-functional", "exec"), namespace)
    # The functional eval call and the nnx eval call are the same function of the same arrays.
    np.testing.assert_allclose(
        np.asarray(namespace["logits"]), np.asarray(model(ds.x_test)), rtol=1e-5, atol=1e-5
    )
