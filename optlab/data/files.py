"""Your own data: ``optlab.data.load("file.npz")`` and ``load("file.csv", target="label")``.

Both return the same :class:`~optlab.data.Dataset` as the bundled datasets.

* ``.npz`` (``np.savez``): arrays ``x_train`` and ``y_train``, and optionally ``x_test`` and
  ``y_test`` (both or neither); no other names. Inputs may have any shape ``(n, ...)``
  (``(n,)`` is read as one feature, ``(n, 1)``).
* ``.csv``: a header row naming the columns, then one row per example, comma-separated numbers
  (UTF-8, quotes allowed). ``target=`` names the target column; every other column is an input
  feature, in file order (kept as ``Dataset.feature_names``).

The test split is, in order of precedence: the file's own ``x_test``/``y_test`` (``.npz``);
``test=`` a second ``.csv`` file with the same columns; else a seeded split of the rows,
``test_size=0.2`` and ``seed=0`` by default (stratified by class for classification, like the
bundled datasets; :func:`optlab.data.validation_indices`). Giving two of them is an error.

Targets: ``task="auto"`` (default) reads a one-dimensional target whose values are all integers
as class labels (int32, ``num_classes = max + 1``; a negative label is an error), and anything
else as regression targets (float32, ``num_classes=None``). ``task="classification"`` or
``"regression"`` decides explicitly (e.g. an integer-valued regression target such as a count).

Every problem is one ``ValueError`` line naming the file and what is wrong: an unknown
extension, a directory, an empty file, a file that is not a ``.npz`` archive, missing or
unexpected arrays (listing the arrays there are), a missing target column (listing the
columns there are), duplicate or unnamed columns, a row with the wrong number of fields, an
empty or non-numeric cell (row and column), NaN or infinity (row and column), values too large
for float32, mismatched lengths or input shapes. A path that does not exist raises
``FileNotFoundError``. Rows are counted from 1 after the header; the line of the file is given
too.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from optlab.core.validation import (
    as_path,
    check_choice,
    check_in_range,
    check_real,
    check_seed,
    check_str,
)
from optlab.data.dataset import Dataset
from optlab.data.splits import validation_indices

FILE_TYPES = (".npz", ".csv")
TASKS = ("auto", "classification", "regression")
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
DEFAULT_TEST_SIZE = 0.2


class _Bad(ValueError):
    """A problem with one file; ``load_file`` prefixes ``load: <file>:``."""


def _check_file(path: str, extensions: tuple[str, ...]) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: {path}: no such file")
    if os.path.isdir(path):
        raise _Bad("is a directory, not a .npz or .csv file")
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise _Bad(
            f"unknown file type {ext or '(no extension)'!r}; optlab reads .npz (arrays "
            f"x_train, y_train[, x_test, y_test]) and .csv (a header row, target= names the "
            f"target column), or a dataset name (optlab.data.dataset_names())"
            if extensions == FILE_TYPES
            else f"must be a {' or '.join(extensions)} file, got {ext or '(no extension)'!r}"
        )
    if os.path.getsize(path) == 0:
        raise _Bad("is empty")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _first_unusable(a: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first value that is NaN, infinite or beyond float32's range."""
    if a.dtype.kind != "f":
        return None
    bad = ~(np.abs(a) <= _FLOAT32_MAX)
    return tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None


# --- .npz ------------------------------------------------------------------------------------


def _read_npz(path: str) -> dict[str, np.ndarray]:
    # np.load(path) leaves the file open when a zip header is followed by a damaged archive:
    # open it here, so that it is closed on every path.
    try:
        fh = open(path, "rb")  # closed by the with statement below
    except OSError as err:
        raise _Bad(f"is not a readable .npz archive ({' '.join(str(err).split())})") from None
    with fh:
        try:
            loaded = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise _Bad(f"is not a readable .npz archive ({' '.join(str(err).split())})") from None
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise _Bad(
                "holds a single array (a .npy file), not named arrays; save with "
                "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
            )
        with loaded as f:
            names = list(f.files)
            unexpected = sorted(set(names) - set(NPZ_ARRAYS))
            missing = [k for k in ("x_train", "y_train") if k not in names]
            if missing or unexpected:
                what = f"has no array {missing[0]!r}" if missing else f"has unexpected {unexpected}"
                raise _Bad(
                    f"{what}; the arrays there are {sorted(names)}, expected x_train, y_train "
                    f"and optionally x_test, y_test"
                )
            if ("x_test" in names) != ("y_test" in names):
                raise _Bad(f"has only one of x_test and y_test (arrays: {sorted(names)})")
            arrays = {}
            for k in names:
                try:
                    arrays[k] = f[k]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
                    raise _Bad(
                        f"array {k!r} cannot be read ({' '.join(str(err).split())}); save "
                        f"numeric arrays with np.savez"
                    ) from None
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise _Bad(f"array {k!r} has dtype {a.dtype}; expected numbers")
        if a.ndim == 0 or len(a) == 0:
            raise _Bad(f"array {k!r} has shape {a.shape}; expected at least one row")
    return arrays


def _npz_arrays(path: str) -> dict[str, np.ndarray]:
    arrays = _read_npz(path)
    for split in ("train", "test"):
        if f"x_{split}" not in arrays:
            continue
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise _Bad(f"x_{split} has {len(x)} rows but y_{split} has {len(y)}")
        if x.ndim == 1:
            arrays[f"x_{split}"] = x[:, None]
    if "x_test" in arrays:
        for k in ("x", "y"):
            tr, te = arrays[f"{k}_train"], arrays[f"{k}_test"]
            if tr.shape[1:] != te.shape[1:]:
                raise _Bad(
                    f"{k}_train rows have shape {tr.shape[1:]} but {k}_test rows have "
                    f"{te.shape[1:]}"
                )
    for k, a in arrays.items():
        where = _first_unusable(a)
        if where is not None:
            value = a[where]
            index = ", ".join(str(i) for i in where)
            raise _Bad(
                f"{k}[{index}] (row {where[0]}"
                + (f", column {where[1]}" if a.ndim == 2 else "")
                + f", counted from 0) is {value}"
                + (" (too large for float32)" if np.isfinite(value) else "")
                + "; every value must be finite"
            )
    return arrays


# --- .csv ------------------------------------------------------------------------------------


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise _Bad(
            f"is not UTF-8 text ({err.reason} at byte {err.start}); is it a CSV file?"
        ) from None


def _header(text: str) -> tuple[list[str], int]:
    """The column names and the number of lines before the first data row."""
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if any(cell.strip() for cell in row):
            return [cell.strip() for cell in row], reader.line_num
    raise _Bad("is empty (no header row)")


def _locate_problem(text: str, columns: list[str], skip: int) -> str | None:
    """Scans the rows in Python for the first bad cell; ``None`` if every cell is a finite
    float32 number (only called on the error path, so the fast path stays NumPy's)."""
    reader = csv.reader(io.StringIO(text))
    row_number = 0
    for row in reader:
        if reader.line_num <= skip or not any(cell.strip() for cell in row):
            continue
        row_number += 1
        at = f"row {row_number} (line {reader.line_num})"
        if len(row) != len(columns):
            return f"{at} has {len(row)} fields but the header has {len(columns)} columns"
        for name, cell in zip(columns, row, strict=True):
            cell = cell.strip()
            if not cell:
                return f"{at}, column {name!r} is empty"
            try:
                value = float(cell)
                if "_" in cell:  # Python reads 1_000, NumPy does not
                    raise ValueError(cell)
            except ValueError:
                return f"{at}, column {name!r}: {cell[:40]!r} is not a number"
            if not abs(value) <= _FLOAT32_MAX:
                what = "too large for float32" if np.isfinite(value) else "not finite"
                return f"{at}, column {name!r} is {cell[:40]} ({what}); every value must be finite"
    return None


def _looks_numeric(names: list[str]) -> bool:
    try:
        [float(n) for n in names]
    except ValueError:
        return False
    return True


def _read_csv(path: str, target: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    text = _read_text(path)
    if not text.strip():
        raise _Bad("is empty")
    columns, skip = _header(text)
    unnamed = [i + 1 for i, c in enumerate(columns) if not c]
    if unnamed:
        raise _Bad(f"header column {unnamed[0]} has no name (header: {columns})")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise _Bad(f"the header names column(s) {duplicates} more than once")
    hint = (
        " (the first line holds numbers: a CSV file needs a header row naming the columns)"
        if _looks_numeric(columns)
        else ""
    )
    if target is None:
        raise _Bad(f"pass target= the name of the target column; the columns are {columns}{hint}")
    if target not in columns:
        raise _Bad(f"has no column {target!r}; the columns are {columns}{hint}")
    if len(columns) < 2:
        raise _Bad(f"has no feature columns besides the target {target!r}")
    if not any(line.strip() for line in text.splitlines()[skip:]):
        raise _Bad("has a header but no data rows")
    try:
        table = np.loadtxt(
            io.StringIO(text),
            delimiter=",",
            skiprows=skip,
            ndmin=2,
            dtype=np.float64,
            comments=None,
            quotechar='"',
        )
    except ValueError as err:
        problem = _locate_problem(text, columns, skip)
        raise _Bad(problem or " ".join(str(err).split())) from None
    if table.shape[1] != len(columns) or _first_unusable(table) is not None:
        problem = _locate_problem(text, columns, skip)
        raise _Bad(problem or f"rows have {table.shape[1]} fields, the header {len(columns)}")
    t = columns.index(target)
    features = [c for c in columns if c != target]
    return np.delete(table, t, axis=1), table[:, t], features


# --- targets and splits ----------------------------------------------------------------------


def _num_classes(targets: list[tuple[np.ndarray, Callable[[int], str]]], task: str) -> int | None:
    """The number of classes the targets say (``None``: regression), or a ``_Bad``; each
    target comes with a function naming where its 0-based row ``i`` is, for messages."""

    def integral(y):
        return y.ndim == 1 and (y.dtype.kind in "biu" or np.array_equal(y, np.round(y)))

    if task == "regression" or (task == "auto" and not all(integral(y) for y, _ in targets)):
        return None
    for y, place in targets:
        if y.ndim != 1:
            raise _Bad(f"task='classification' needs one label per row, got shape {y.shape}")
        if not integral(y):
            i = int(np.argmax(y != np.round(y)))
            raise _Bad(f"{place(i)} is {y[i]:g}, not an integer class label")
        if y.min() < 0:
            i = int(np.argmax(y < 0))
            raise _Bad(
                f"{place(i)} is {y[i]:g}: class labels must be 0, 1, ..., k - 1 "
                f"(for regression targets pass task='regression')"
            )
    top = max(float(y.max()) for y, _ in targets)
    if top >= 2**31 - 1:
        raise _Bad(f"a class label is {top:g}; labels must be 0, 1, ..., k - 1")
    return int(top) + 1


def load_file(
    path: str | os.PathLike,
    *,
    target: str | None = None,
    test: str | os.PathLike | None = None,
    test_size: float | None = None,
    seed: int = 0,
    task: str = "auto",
) -> Dataset:
    """Reads a ``.npz`` or ``.csv`` file into a :class:`~optlab.data.Dataset` (see the module
    docstring for the formats, the test split and the errors); ``optlab.data.load(path,
    ...)`` calls it.

    Args:
      path: the file.
      target: the name of the target column (``.csv`` only, required there).
      test: a second ``.csv`` file with the same columns, used as the test split.
      test_size: the fraction of rows split off as the test set when the file has no test
        split of its own and no ``test=`` is given (default 0.2).
      seed: the seed of that split.
      task: ``"auto"``, ``"classification"`` or ``"regression"``.

    Returns:
      A :class:`~optlab.data.Dataset` named after ``path``.

    Examples:
      >>> import os, tempfile, numpy as np, optlab
      >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
      >>> with open(path, "w") as f:
      ...     _ = f.write("a,b,label\\n" + "".join(f"{i},{i % 3},{i % 2}\\n" for i in range(10)))
      >>> ds = optlab.data.load(path, target="label", test_size=0.4)
      >>> print(ds.num_train, ds.num_test, ds.num_classes, ds.feature_names)
      6 4 2 ('a', 'b')
    """
    path = as_path("load", "name", path)
    ext = os.path.splitext(path)[1].lower()
    if target is not None:
        check_str("load", "target", target)
    if test_size is not None:
        check_real("load", "test_size", test_size)
        check_in_range("load", "test_size", test_size, 0.0, 1.0, low_closed=False)
    check_seed("load", "seed", seed)
    check_choice("load", "task", task, TASKS)
    test = None if test is None else as_path("load", "test", test)
    if test is not None and test_size is not None:
        raise ValueError(
            f"load: {path}: give test= (a test file) or test_size= (a split of the rows), not both"
        )
    try:
        _check_file(path, FILE_TYPES)
        if ext == ".npz":
            if target is not None:
                raise _Bad("target= is for .csv files; a .npz file holds y_train")
            if test is not None:
                raise _Bad("test= is for .csv files; a .npz file holds x_test and y_test")
            arrays, features = _npz_arrays(path), None
        else:
            x, y, features = _read_csv(path, target)
            arrays = {"x_train": x, "y_train": y}
    except _Bad as err:
        raise ValueError(f"load: {path}: {err}") from None
    if test is not None:
        try:
            _check_file(test, (".csv",))
            x_te, y_te, test_features = _read_csv(test, target)
            if test_features != features:
                raise _Bad(
                    f"has feature columns {test_features}, the training file {path} has {features}"
                )
        except _Bad as err:
            raise ValueError(f"load: {test}: {err}") from None
        arrays["x_test"], arrays["y_test"] = x_te, y_te
    if "x_test" in arrays and test_size is not None:
        raise ValueError(
            f"load: {path}: test_size={test_size} given, but the file holds its own x_test and "
            f"y_test"
        )
    if ext == ".npz":
        targets = [
            (arrays[k], lambda i, k=k: f"{k}[{i}]") for k in ("y_train", "y_test") if k in arrays
        ]
    else:
        targets = [(arrays["y_train"], lambda i: f"row {i + 1}, column {target!r}")]
        if test is not None:
            targets.append((arrays["y_test"], lambda i: f"{test} row {i + 1}, column {target!r}"))
    try:
        num_classes = _num_classes(targets, task)
    except _Bad as err:
        raise ValueError(f"load: {path}: {err}") from None
    if "x_test" in arrays:
        how = "test split from " + (test if test is not None else "x_test/y_test")
    else:
        size = DEFAULT_TEST_SIZE if test_size is None else test_size
        y = arrays["y_train"]
        try:
            train, held = validation_indices(
                y if y.ndim == 1 else np.zeros(len(y)),
                size,
                seed=seed,
                stratify=num_classes is not None,
            )
        except ValueError as err:
            raise ValueError(
                f"load: {path}: cannot split {len(y)} rows with test_size={size} "
                f"({' '.join(str(err).split())}); pass test= or another test_size"
            ) from None
        x = arrays["x_train"]
        arrays = {"x_train": x[train], "y_train": y[train], "x_test": x[held], "y_test": y[held]}
        how = (
            f"{'stratified ' if num_classes is not None else ''}test split "
            f"test_size={size}, seed={seed}"
        )
    kind = "regression" if num_classes is None else f"{num_classes} classes"
    return Dataset.from_arrays(
        path,
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        num_classes=num_classes,
        description=f"{path} ({kind}), {how}",
        feature_names=None if features is None else tuple(features),
    )
