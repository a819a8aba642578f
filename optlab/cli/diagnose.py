"""``optlab diagnose RUN`` and what ``optlab train --diagnostics`` writes into a run.

A monitored run (``--diagnostics``: ``fit(..., diagnostics=optlab.diagnostics.Monitor())``)
holds, beside ``history.json``, ``diagnostics.npz`` (the per-layer statistics,
:meth:`~optlab.train.history.DiagnosticsRecord.save_npz`), ``diagnostics.json`` (the
verdicts of :func:`optlab.diagnostics.diagnose`) and ``diagnostics.png``
(:func:`optlab.diagnostics.plot_diagnostics`). ``optlab diagnose RUN`` prints the verdicts of
any training run (the loss-curve rules only, without ``diagnostics.npz``) and rewrites its
``diagnostics.json`` and ``diagnostics.png`` from the run's own files.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

from optlab.cli.options import UsageError, nonempty, one_line

STATISTICS = "diagnostics.npz"
VERDICTS = "diagnostics.json"
FIGURE = "diagnostics.png"
ENTRIES = (STATISTICS, VERDICTS, FIGURE)


def add_parser(sub: Any) -> None:
    """Registers ``optlab diagnose`` on the command's subparsers."""
    p = sub.add_parser(
        "diagnose",
        allow_abbrev=False,
        help="print a training run's verdicts and draw diagnostics.png",
        description="Read the run optlab train wrote in RUN (history.json, and the per-layer "
        "statistics of diagnostics.npz when it was trained with --diagnostics), print the "
        "verdicts (vanishing or exploding gradients, dead or saturated units, update ratios, "
        "learning rate too high or too low, over- and underfitting) and write "
        "diagnostics.json and diagnostics.png into RUN.",
    )
    p.add_argument("run", type=nonempty("RUN"), metavar="RUN", help="a run directory")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")


def _findings_record(findings: list[Any]) -> list[dict[str, Any]]:
    return [f._asdict() for f in findings]


def write(out: Path, history: Any) -> list[Any]:
    """Writes a run's ``diagnostics.npz``, ``diagnostics.json`` and ``diagnostics.png`` (the
    statistics only when the history has some); returns the verdicts."""
    from optlab.diagnostics import diagnose, plot_diagnostics
    from optlab.train import report

    findings = diagnose(history)
    if history.diagnostics is not None:
        history.diagnostics.save_npz(out / STATISTICS)
    report.write_json(out / VERDICTS, {"findings": _findings_record(findings)})
    report.save_figure(plot_diagnostics(history, findings), out / FIGURE)
    return findings


def print_findings(findings: list[Any], *, label: str = "diagnostics") -> None:
    """One line per verdict (most severe first), or one line saying there are none."""
    if not findings:
        print(f"{label}: no finding: the statistics look healthy")
    for f in findings:
        print(f"{label}: {f}")


def load_history(run: str) -> Any:
    """The history of the run in ``run`` with its statistics (UsageError if it is not one)."""
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise UsageError(f"RUN {run!r} is not a directory")
    path = run_dir / "history.json"
    if not path.is_file():
        raise UsageError(f"RUN {run!r} holds no history.json: not a run of optlab train")
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), list):
            raise ValueError("not a history record (no epoch list)")
    except (ValueError, OSError) as err:
        raise UsageError(f"{path}: {one_line(err)}") from None
    from optlab.train.history import DiagnosticsRecord, History

    try:
        history = History.from_dict(record)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{path}: not a history record: {one_line(err)}") from None
    stats = run_dir / STATISTICS
    if stats.is_file():
        try:
            with stats.open("rb") as f:  # np.load leaves its own handle open on a bad zip
                history.diagnostics = DiagnosticsRecord.load_npz(f)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
            raise UsageError(f"{stats}: damaged: {one_line(err)}") from None
    return history


def diagnose(args: argparse.Namespace) -> int:
    """``optlab diagnose RUN``."""
    history = load_history(args.run)
    findings = write(Path(args.run), history)
    if args.json:
        print(json.dumps({"findings": _findings_record(findings)}, indent=1))
    else:
        print_findings(findings)
        print(f"diagnostics: wrote {Path(args.run) / FIGURE}")
    return 0
