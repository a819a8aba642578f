"""Reports: tables, the figure's panels (inspected as matplotlib objects), JSON and CSV."""

import csv
import itertools
import json
import math

import numpy as np
import pytest
from matplotlib.ticker import MaxNLocator
from scipy.special import softmax

from optlab.train import report
from optlab.train.history import History


def _history(val_loss, *, lr=None, accuracy=True):
    h = History()
    for i, v in enumerate(val_loss):
        logs = {"loss": 1.0 / (i + 1), "val_loss": v}
        if accuracy:
            logs.update(accuracy=0.5 + 0.1 * i, val_accuracy=0.4 + 0.1 * i)
        if lr is not None:
            logs["learning_rate"] = lr[i]
        h.append(i, logs)
    return h


def _axes(fig):
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}


def test_one_run_has_loss_accuracy_and_rate_panels_with_a_star_at_the_best_epoch():
    h = _history([0.9, 0.5, 0.7], lr=[0.1, 0.05, 0.01])
    fig = report.plot_histories({"adam": h}, title="t")
    axes = _axes(fig)
    assert list(axes) == ["loss", "accuracy", "learning rate"]
    for ax in axes.values():
        assert ax.get_legend() is not None
        assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
        assert ax.xaxis.get_major_locator()._integer
        assert ax.get_xlabel() == "epoch"
    lines = {line.get_label(): line for line in axes["loss"].get_lines()}
    np.testing.assert_array_equal(lines["validation"].get_xdata(), [1, 2, 3])
    assert lines["training"].get_linestyle() != lines["validation"].get_linestyle()
    assert lines["training"].get_color() != lines["validation"].get_color()
    stars = [line for line in axes["loss"].get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1
    assert (list(stars[0].get_xdata()), list(stars[0].get_ydata())) == ([2], [0.5])
    legend = [t.get_text() for t in axes["loss"].get_legend().get_texts()]
    assert legend == ["training", "validation", "best val_loss"]
    rate = axes["learning rate"].get_lines()[0]
    np.testing.assert_allclose(rate.get_ydata(), [0.1, 0.05, 0.01])


def test_several_runs_differ_in_colour_and_style_and_split_the_panels():
    runs = {f"opt{i}": _history([1.0 - 0.1 * i, 0.5], lr=[0.1, 0.1]) for i in range(12)}
    runs["lbfgs"] = _history([0.8, 0.9])  # no learning rate recorded
    fig = report.plot_histories(runs)
    axes = _axes(fig)
    assert list(axes) == [
        "training loss",
        "validation loss",
        "training accuracy",
        "validation accuracy",
        "learning rate",
    ]
    curves = [line for line in axes["validation loss"].get_lines() if line.get_marker() != "*"]
    assert [c.get_label() for c in curves] == list(runs)
    looks = [(c.get_color(), c.get_linestyle()) for c in curves]
    assert len(set(looks)) == len(looks)  # 13 runs: no two alike
    for a, b in itertools.pairwise(looks):  # neighbours differ in both
        assert a[0] != b[0] and a[1] != b[1]
    stars = [line for line in axes["validation loss"].get_lines() if line.get_marker() == "*"]
    assert len(stars) == len(runs)
    assert [line.get_label() for line in axes["learning rate"].get_lines()] == list(runs)[:12]
    for ax in axes.values():
        assert ax.get_legend() is not None


def test_a_panel_without_curves_still_explains_itself():
    fig = report.plot_histories({"lbfgs": _history([1.0, 0.5], accuracy=False)})
    axes = _axes(fig)
    assert list(axes) == ["loss", "learning rate"]  # a regression: no accuracy panel
    texts = [t.get_text() for t in axes["learning rate"].get_legend().get_texts()]
    assert texts == ["not recorded (line search)"]


def test_save_figure_writes_a_png(tmp_path):
    path = report.save_figure(report.plot_histories({"a": _history([1.0])}), tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_epoch_counts_from_one_and_prefers_the_earliest():
    h = _history([0.9, 0.5, 0.5, math.nan])
    assert report.best_epoch(h, "val_loss") == (2, 0.5)
    assert report.best_epoch(h, "val_accuracy") == (4, pytest.approx(0.7))  # the largest
    assert report.best_epoch(_history([math.nan]), "val_loss") is None
    assert report.epochs_of(h) == [1, 2, 3, 4]


def test_compare_table_has_rate_and_schedule_columns():
    runs = {
        "sgd": dict(
            learning_rate=0.1,
            schedule="cosine",
            train_loss=0.5,
            train_accuracy=0.9,
            val_loss=0.6,
            val_accuracy=0.85,
            best_epoch=3,
            seconds=1.25,
            steps_per_second=1234.4,
        ),
        "lbfgs (full batch)": dict(
            learning_rate=None,
            schedule="line search",
            train_loss=0.4,
            val_loss=math.nan,
            best_epoch=None,
            seconds=2.0,
            steps_per_second=12.0,
        ),
    }
    lines = report.compare_table(runs).splitlines()
    assert lines[0].split() == [
        "optimizer",
        "lr",
        "schedule",
        "train",
        "loss",
        "train",
        "acc",
        "val",
        "loss",
        "val",
        "acc",
        "best",
        "epoch",
        "time",
        "s",
        "steps/s",
    ]
    assert lines[2].split() == [
        "sgd",
        "0.1",
        "cosine",
        "0.5000",
        "0.9000",
        "0.6000",
        "0.8500",
        "3",
        "1.2",
        "1234",
    ]
    assert lines[3].split() == [
        "lbfgs",
        "(full",
        "batch)",
        "-",
        "line",
        "search",
        "0.4000",
        "-",
        "nan",
        "-",
        "-",
        "2.0",
        "12",
    ]
    regression = report.compare_table({"sgd": dict(train_loss=1.0, val_loss=2.0)})
    assert "acc" not in regression


def test_json_and_csv_records(tmp_path):
    h = _history([0.9, math.nan], lr=[0.1, 0.2])
    report.write_json(tmp_path / "h.json", report.history_record(h))
    record = json.loads((tmp_path / "h.json").read_text())
    assert record["epoch"] == [1, 2] and record["val_loss"] == [0.9, None]
    report.write_history_csv(tmp_path / "h.csv", h)
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[1]["learning_rate"] == "0.2"
    assert report.write_json(tmp_path / "x.json", {"a": np.float32(1.5), "b": [math.inf]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1.5, "b": [None]}


def test_predictions_are_softmax_rows_and_the_argmax(tmp_path):
    logits = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32) * 4
    report.write_predictions(tmp_path / "p.csv", logits, task="classification")
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prob_0", "prob_1", "prob_2", "predicted"]
    probs = np.array([[float(v) for v in r[:3]] for r in rows[1:]])
    np.testing.assert_allclose(probs, softmax(logits.astype(np.float64), axis=1), rtol=1e-6)
    assert [int(r[3]) for r in rows[1:]] == list(np.argmax(logits, axis=1))
    report.write_predictions(tmp_path / "r.csv", logits[:, :1], task="regression")
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction"]
    assert [float(r[0]) for r in rows[1:]] == [float(v) for v in logits[:, 0]]


def test_format_table_aligns():
    text = report.format_table(["a", "bb"], [["xyz", "1"], ["w", "22"]])
    assert text.splitlines() == ["a    bb", "---  --", "xyz   1", "w    22"]
