"""``optlab evaluate RUN`` and ``optlab predict RUN``: the saved model of a run, applied.

Plain-Python checks first (the run directory, the files), then jax: the model is loaded with
the engine's ``load_model`` and applied with ``evaluate`` / ``predict``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optlab.cli.commands import value_error
from optlab.cli.options import UsageError, check_dataset_options, readable_file
from optlab.cli.rundir import read_run_config, read_run_record


def _load_model(run: str) -> Any:
    from optlab.train.saved_model import load_model

    try:
        return load_model(run)
    except (ValueError, FileNotFoundError, OSError) as err:
        raise value_error(err, f"RUN {run!r}: ") from None


def evaluate(args: argparse.Namespace) -> int:
    """``optlab evaluate RUN``: the saved model's metrics."""
    saved = read_run_config(args.run, "RUN")
    record = read_run_record(args.run, "RUN")
    own = args.dataset is None
    if not own:
        dataset = check_dataset_options(args)
    elif args.target is not None or args.data_dir is not None:
        raise UsageError("--target and --data-dir describe --dataset; give --dataset too")
    from optlab.train import recipes, report
    from optlab.train.evaluation import evaluate as evaluate_model

    try:
        config = recipes.Recipe.from_dict(saved)
    except (ValueError, TypeError) as err:
        raise value_error(err, f"RUN {args.run!r}: config.json: ") from None
    if own:
        data = _load(config)
        if args.split is not None:
            (x, y), where = _split(data.dataset, args.split), f"{args.split} split"
        elif data.validation is None:
            raise UsageError(f"the run in {args.run} has no validation data; give --split")
        else:
            (x, y), where = data.validation, data.validation_name
    else:
        changes = dict(dataset=dataset, target=args.target, data_dir=args.data_dir)
        data = _load(config.replace(**changes, validation_split=0.0))
        split = args.split or ("test" if data.validation is not None else "train")
        (x, y), where = _split(data.dataset, split), f"{split} split of {data.dataset.name}"
    task = _check_rows(args.run, record, x, y)
    model = _load_model(args.run)
    logs = evaluate_model(
        model, (x, y), loss=task.loss, metrics=task.metrics, batch_size=args.batch_size
    )
    metrics = {k: float(logs[k]) for k in sorted(logs, key=lambda k: k != "loss")}
    if args.json:
        import json

        print(json.dumps({"run": args.run, "data": where, "rows": len(x), **metrics}))
    else:
        print(f"{report.metrics_line(metrics)}  ({where}, {len(x)} rows)")
    return 0


def _load(config: Any) -> Any:
    from optlab.train import recipes

    try:
        return recipes.load_data(config)
    except (ValueError, TypeError, OSError) as err:
        raise value_error(err) from None


def _split(ds: Any, split: str) -> tuple[Any, Any]:
    import numpy as np

    x = getattr(ds, f"x_{split}", None)
    if x is None or len(x) == 0:
        raise UsageError(f"--split {split}: {ds.name} has no {split} split")
    return np.asarray(x).reshape(len(x), -1), np.asarray(getattr(ds, f"y_{split}"))


def _check_rows(run: str, record: dict[str, Any], x: Any, y: Any) -> Any:
    from optlab.train.run_data import task_for

    if x.shape[1] != record.get("num_features"):
        raise UsageError(
            f"the data has {x.shape[1]} features per row but the model in {run} takes "
            f"{record.get('num_features')}"
        )
    try:
        task = task_for(y, record.get("num_outputs"))
    except ValueError as err:
        raise value_error(err) from None
    if task.kind != record.get("task") or task.num_outputs != record.get("num_outputs"):
        raise UsageError(
            f"the data's targets make a {task.kind} task with {task.num_outputs} outputs, but "
            f"the model in {run} was trained for {record.get('task')} with "
            f"{record.get('num_outputs')}"
        )
    return task


def predict(args: argparse.Namespace) -> int:
    """``optlab predict RUN --input X --output P.csv``: one row of predictions per input."""
    record = read_run_record(args.run, "RUN")
    source = readable_file("--input", args.input, (".npy", ".csv"))
    target = Path(args.output)
    if not target.name.lower().endswith(".csv"):
        raise UsageError(f"--output {args.output!r}: the predictions are written as a .csv file")
    if target.is_dir():
        raise UsageError(f"--output {args.output!r} is a directory")
    if target.exists() and not args.overwrite:
        raise UsageError(f"--output {args.output!r} exists; pass --overwrite to replace it")
    if not target.parent.is_dir() if str(target.parent) else False:
        raise UsageError(f"--output {args.output!r}: no directory {str(target.parent)!r}")
    from optlab.train import report, run_data
    from optlab.train.evaluation import predict as predict_model

    try:
        x = run_data.read_inputs(source)
    except ValueError as err:
        raise value_error(err) from None
    if x.shape[1] != record.get("num_features"):
        raise UsageError(
            f"--input {args.input!r} has {x.shape[1]} features per row but the model in "
            f"{args.run} takes {record.get('num_features')}"
        )
    model = _load_model(args.run)
    outputs = predict_model(model, x, batch_size=args.batch_size)
    try:
        report.write_predictions(target, outputs, task=record.get("task", "classification"))
    except OSError as err:
        raise UsageError(f"cannot write --output {args.output!r}: {err.strerror or err}") from None
    print(f"wrote {len(x)} predictions to {target}")
    return 0
