"""Run directories that never mix: what ``--output``, ``--overwrite`` and ``--resume`` may do.

A run directory holds what ``optlab train`` writes (``config.json``, ``checkpoints/``,
``model/``, ``run.json``, ``history.json``, ``history.csv``, ``curves.png``, with
``--diagnostics`` ``diagnostics.npz``/``.json``/``.png``) or what
``optlab compare`` writes (``compare.json``, ``compare.png``). A directory holding either is
never written into again unless ``--overwrite`` clears those entries first (other files of
yours are never deleted); ``--resume DIR`` continues a training run. Plain Python: these
refusals come before jax is imported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from optlab.cli.options import UsageError, one_line

TRAIN_ENTRIES = (
    "config.json",
    "run.json",
    "checkpoints",
    "model",
    "history.json",
    "history.csv",
    "curves.png",
    "diagnostics.npz",
    "diagnostics.json",
    "diagnostics.png",
)
COMPARE_ENTRIES = ("compare.json", "compare.png")
# optlab sweep and optlab lr-find (optlab.cli.tuning)
TUNE_ENTRIES = ("sweep.csv", "sweep.json", "metric.png", "best.json", "lr_find.json", "lr_find.png")
PROBE = ".optlab-write-test"


def run_entries(directory: Path) -> list[str]:
    """The entries of ``directory`` that an optlab command wrote."""
    if not directory.is_dir():
        return []
    ours = TRAIN_ENTRIES + COMPARE_ENTRIES + TUNE_ENTRIES
    return sorted(p.name for p in directory.iterdir() if p.name in ours)


def prepare_output(path: str, *, overwrite: bool, command: str = "train") -> Path:
    """Makes ``path`` ready for a new run: created if needed; refused (UsageError) if it
    holds a run, unless ``overwrite`` (then the run's entries are removed first); refused if
    it holds other files only, or cannot be written."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {path!r} is a file, not a directory")
    ours = run_entries(out)
    if ours and not overwrite:
        kind = "a comparison" if set(ours) <= set(COMPARE_ENTRIES) else "a run"
        resume = f"continue it with --resume {path} or " if "config.json" in ours else ""
        if command == "compare":
            resume = ""
        raise UsageError(
            f"--output {path!r} already holds {kind} ({', '.join(ours)}); {resume}replace it "
            "with --overwrite, or choose another directory"
        )
    others = [p.name for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []
    if not ours and others:
        shown = ", ".join(sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
        raise UsageError(
            f"--output {path!r} is not empty and holds no optlab run ({shown}); choose a new "
            "or empty directory"
        )
    try:
        for name in ours:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        out.mkdir(parents=True, exist_ok=True)
        probe = out / PROBE
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(
            f"cannot write to the output directory {path!r}: {err.strerror or err}"
        ) from None
    return out


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; UsageError naming ``what`` if unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{what}: no {path.name} in {str(path.parent)!r}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"{what}: {str(path)!r} is unreadable ({one_line(err)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what}: {str(path)!r} does not hold a JSON object")
    return data


def read_run_config(path: str, option: str) -> dict[str, Any]:
    """The saved ``config.json`` of the run in ``path`` (``option`` names the argument)."""
    run = Path(path)
    if not run.is_dir():
        raise UsageError(
            f"{option} {path!r}: no such run directory (pass the --output of an earlier "
            "optlab train)"
        )
    if not (run / "config.json").is_file():
        raise UsageError(
            f"{option} {path!r}: no config.json there (pass the --output of an earlier "
            "optlab train)"
        )
    return read_json(run / "config.json", f"{option} {path!r}")


def read_run_record(path: str, option: str) -> dict[str, Any]:
    """The ``run.json`` of a run whose model was saved (task, widths, final metrics)."""
    run = Path(path)
    read_run_config(path, option)
    if not (run / "run.json").is_file() or not (run / "model").is_dir():
        raise UsageError(
            f"{option} {path!r}: no saved model (model/ and run.json are written when "
            "optlab train finishes)"
        )
    return read_json(run / "run.json", f"{option} {path!r}")
