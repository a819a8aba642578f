"""Progress lines: what survives at 80 columns, one line per epoch on a terminal and off."""

import io
import re

import numpy as np
import pytest

import optlab as ol
from optlab.train.progress import Progress, ProgressCallback, format_line

LOGS = {
    "loss": 0.123456,
    "accuracy": 0.96,
    "val_loss": 0.234567,
    "val_accuracy": 0.95,
    "grad_norm": 1.5,
    "learning_rate": 3e-4,
    "time": 0.2,
    "steps_per_second": 12345.6,
}


def test_at_80_columns_the_line_keeps_epoch_loss_monitor_rate_and_speed():
    line = format_line(120, 1000, LOGS, width=80)
    assert len(line) <= 80
    assert line.startswith("epoch  120/1000  loss 0.1235  ")
    for part in ("val_loss 0.2346", "lr 3.0e-04", "12346 steps/s"):
        assert part in line
    full = format_line(120, 1000, LOGS)
    assert "accuracy 0.9600" in full and "val_accuracy 0.9500" in full
    assert "grad_norm" not in full


def test_fields_go_least_important_first():
    kept = [format_line(3, 20, LOGS, width=w, monitor="val_accuracy") for w in (200, 75, 57, 30)]
    assert "  accuracy 0.9600" in kept[0]
    assert "val_accuracy 0.9500" in kept[1] and "  accuracy" not in kept[1]
    assert kept[2] == "epoch  3/20  loss 0.1235  val_accuracy 0.9500  lr 3.0e-04"
    assert kept[3] == "epoch  3/20  loss 0.1235"  # never less than the epoch and the loss
    # A less important value that still fits is kept after a longer one was left out.
    line = format_line(3, 20, LOGS, width=86)
    assert "  accuracy 0.9600" in line and "val_accuracy" not in line and len(line) <= 86


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream", [io.StringIO(), _Terminal()], ids=["plain", "terminal"])
def test_each_finished_epoch_stays_as_one_line(stream):
    bar = Progress(3, stream=stream, width=80)
    assert bar.mode == ("rich" if stream.isatty() else "plain")
    bar.start(0)
    for epoch in range(3):
        bar.epoch_end(epoch, {**LOGS, "loss": float(epoch)})
    bar.stop()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # terminal control codes
    lines = [line for line in text.splitlines() if "loss" in line]
    assert [line.split()[:4] for line in lines] == [
        ["epoch", f"{e}/3", "loss", f"{e - 1:.0f}"] for e in (1, 2, 3)
    ]


def test_progress_callback_prints_one_prefixed_line_per_epoch():
    stream = io.StringIO()
    x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    model = ol.nn.MLP(1, (), 1, rngs=0)
    ol.fit(
        model,
        ol.sgd(0.1),
        (x, x[:, 0]),
        loss=lambda p, y: (p[:, 0] - y) ** 2,
        metrics=(),
        epochs=3,
        batch_size=8,
        progress=False,
        callbacks=[ProgressCallback(3, prefix="sgd  ", stream=stream)],
    )
    lines = stream.getvalue().splitlines()
    assert [line.split("  loss")[0] for line in lines] == [f"sgd  epoch {e}/3" for e in (1, 2, 3)]


def test_silent_progress_writes_nothing():
    stream = io.StringIO()
    bar = Progress(2, enabled=False, stream=stream)
    bar.start()
    bar.epoch_end(0, LOGS)
    bar.stop()
    assert stream.getvalue() == "" and bar.mode == "off"
