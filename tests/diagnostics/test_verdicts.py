"""diagnose(): each planted fault of the bug zoo (real digits runs) flagged with its finding,
the healthy baselines without any warning; each rule on hand-made histories at both sides
of its threshold."""

import math

import numpy as np
import pytest

import optlab as ol
from optlab.diagnostics.zoo import BUGS, run_bug
from optlab.train.history import History


@pytest.mark.parametrize("name", list(BUGS))
def test_bug_zoo_is_diagnosed(name):
    history = run_bug(name, epochs=6, monitor=ol.diagnostics.Monitor(histograms=False))
    findings = ol.diagnostics.diagnose(history)
    warnings = [f.code for f in findings if f.severity != "info"]
    expected = BUGS[name].expected
    if expected is None:
        assert warnings == []
    else:
        assert expected in warnings
        finding = next(f for f in findings if f.code == expected)
        assert finding.advice and finding.epoch in history.epoch


def make_history(losses, val_losses=None, **stats):
    """A history with epoch losses and, given ``stats``, a diagnostics record: each keyword
    is ``{row: per-epoch values}`` or per-epoch values."""
    h = History()
    for i, loss in enumerate(losses):
        logs = {"loss": loss}
        if val_losses is not None:
            logs["val_loss"] = val_losses[i]
        h.append(i + 1, logs)
        if stats:
            h.append_diagnostics(
                i + 1,
                {
                    k: {r: np.float32(v[i]) for r, v in rows.items()}
                    if isinstance(rows, dict)
                    else np.float32(rows[i])
                    for k, rows in stats.items()
                },
            )
    return h


def codes(history):
    return [f.code for f in ol.diagnostics.diagnose(history)]


def test_loss_curve_rules():
    assert codes(make_history([1.0, 0.8, 0.6])) == []
    assert codes(make_history([1.0, 0.997, 0.995])) == ["lr_too_low"]
    assert codes(make_history([1.0, 0.98, 0.96])) == []  # 4% is not flat
    assert codes(make_history([1.0, 1.2, 0.9, 1.1])) == ["lr_too_high"]  # oscillating
    assert codes(make_history([1.0, 1.05, 0.9, 1.08])) == []  # rises below 10%
    nonfinite = ol.diagnostics.diagnose(make_history([1.0, math.nan, math.nan]))
    assert [(f.code, f.severity, f.epoch) for f in nonfinite] == [("lr_too_high", "error", 2)]
    over = make_history([1.0, 0.5, 0.3, 0.2], [1.0, 0.6, 0.65, 0.7])
    [finding] = ol.diagnostics.diagnose(over)
    assert (finding.code, finding.epoch, finding.value) == ("overfitting", 2, 0.7)
    assert codes(make_history([1.0, 0.5, 0.3, 0.2], [1.0, 0.6, 0.62, 0.65])) == []


def test_statistics_rules():
    base = dict(loss_first=[2.3] * 3, num_classes=[10] * 3, input_mean=[0.3] * 3)
    losses = [2.0, 1.5, 1.0]
    g = {"a/kernel": [1.0, 1.0, 1.0], "b/kernel": [1.0, 1.0, 1.0], "a/bias": [1e-9] * 3}
    assert codes(make_history(losses, grad_norm=g, **base)) == []
    g["a/kernel"] = [0.009, 0.009, 0.009]
    [finding] = ol.diagnostics.diagnose(make_history(losses, grad_norm=g, **base))
    assert (finding.code, finding.layer) == ("vanishing_gradients", "a/kernel")
    np.testing.assert_allclose(finding.value, 0.009, rtol=1e-6)
    g["a/kernel"] = [0.011, 0.011, 0.011]
    assert codes(make_history(losses, grad_norm=g, **base)) == []
    g["a/kernel"] = [1.0, 10.0, 1001.0]
    assert codes(make_history(losses, grad_norm=g, **base)) == ["exploding_gradients"]
    far = dict(base, loss_first=[4.7] * 3)
    assert codes(make_history(losses, **far)) == ["initial_loss"]
    assert codes(make_history(losses, **dict(base, loss_first=[4.5] * 3))) == []
    assert codes(make_history(losses, **dict(base, input_mean=[77.0] * 3))) == ["input_scale"]
    dead = {"h/act": [0.9, 0.8, 0.51]}
    assert codes(make_history(losses, activation_dead=dead, **base)) == ["dead_units"]
    sat = {"h/act": [0.9, 0.8, 0.49]}
    assert codes(make_history(losses, activation_saturated=sat, **base)) == []
    std = {"h/0": [0.5] * 3, "h/1": [0.049] * 3}
    assert codes(make_history(losses, activation_std=std, **base)) == ["vanishing_activations"]
    ratio = {"a/kernel": [2e-2, 1.1e-2, 1.2e-2], "b/kernel": [1e-3] * 3, "b/bias": [1.0] * 3}
    [finding] = ol.diagnostics.diagnose(make_history(losses, update_ratio=ratio, **base))
    assert (finding.code, finding.layer) == ("update_ratio", "a/kernel")
    ratio["a/kernel"] = [2e-2, 0.9e-2, 1e-3]
    assert codes(make_history(losses, update_ratio=ratio, **base)) == []


def test_underfitting_is_information_and_chance_level_a_warning():
    base = dict(loss_first=[2.3] * 3, num_classes=[10] * 3)
    findings = ol.diagnostics.diagnose(make_history([2.2, 2.0, 1.8], [2.25, 2.26, 2.24], **base))
    assert [(f.code, f.severity) for f in findings] == [
        ("chance_level", "warning"),
        ("underfitting", "info"),
    ]


def test_diagnose_refuses_what_is_not_a_history():
    with pytest.raises(TypeError, match="diagnose: history must be an optlab History"):
        ol.diagnostics.diagnose({"loss": [1.0]})
    assert str(ol.diagnostics.diagnose(make_history([1.0, 1.0, 1.0]))[0]).startswith(
        "[warning] lr_too_low: "
    )


def test_plot_diagnostics_draws_heat_maps_lines_and_verdicts():
    edges = np.linspace(0.0, 4.0, 33)
    hist = {f"b/{i}/act": [np.eye(32)[i]] * 3 for i in range(8)}
    history = make_history(
        [2.0, 1.5, 1.0],
        activation_hist=hist,
        activation_edges={name: [edges] * 3 for name in hist},
        grad_norm={"a/kernel": [0.001] * 3, "b/kernel": [1.0] * 3},
        update_ratio={"a/kernel": [1e-3] * 3, "b/kernel": [1e-3] * 3},
        activation_dead={"b/0/act": [0.1, 0.2, 0.3]},
    )
    fig = ol.diagnostics.plot_diagnostics(history)
    titles = [ax.get_title() for ax in fig.axes]
    # six of the eight layers, evenly spaced, first and last included
    assert titles[:6] == ["b/0/act", "b/1/act", "b/3/act", "b/4/act", "b/6/act", "b/7/act"]
    assert titles[6:] == [
        "gradient norm",
        "update / parameter ratio",
        "dead / saturated fraction",
        "loss",
        "verdicts",
    ]
    heat = fig.axes[5].collections[0].get_array().reshape(32, 3)
    np.testing.assert_array_equal(heat[7], [0.0, 0.0, 0.0])  # log10 of fraction 1
    np.testing.assert_array_equal(heat[0], [-4.0, -4.0, -4.0])  # the floor, 1e-4
    grad_lines = fig.axes[6].get_lines()
    assert [line.get_label() for line in grad_lines] == ["a", "b"]
    assert "vanishing_gradients" in fig.axes[-1].texts[0].get_text()
    with pytest.raises(TypeError, match="plot_diagnostics: history must be"):
        ol.diagnostics.plot_diagnostics([1.0])
