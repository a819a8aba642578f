"""The :class:`Dataset` every loader returns: a fixed train/test split as NumPy arrays.

Classification datasets hold integer labels in ``[0, num_classes)``; regression datasets (from
your own files, see :func:`optlab.data.load`) hold float targets and ``num_classes=None``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from optlab.core.validation import check_array, check_int_range, check_str, describe_value


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset with its fixed train/test split, as NumPy arrays, and its metadata.

    The constructor checks the arrays against each other (matching row counts, the same input
    shape in both splits, labels in ``[0, num_classes)``) and raises a ``TypeError`` or
    ``ValueError`` naming what is wrong; :meth:`from_arrays` also converts the dtypes.

    Attributes:
      name: the dataset's name (for a file: its path).
      x_train: training inputs ``(num_train, *input_shape)``, float32.
      y_train: training targets ``(num_train,)``: int32 class labels (or ``(num_train, k)``
        for multi-label), float32 for regression.
      x_test: test inputs.
      y_test: test targets.
      num_classes: number of classes; ``None`` for regression targets.
      input_shape: the shape of one input.
      description: where the data comes from and how it was split.
      feature_names: the input columns' names when the data came from a CSV file, else ``None``.

    Examples:
      >>> import numpy as np, optlab
      >>> ds = optlab.data.Dataset.from_arrays(
      ...     "toy", np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 2)), np.array([1, 0]),
      ...     num_classes=2)
      >>> print(ds, ds.x_train.dtype, ds.y_train.dtype)
      Dataset(name='toy', train=(4, 2), test=(2, 2), num_classes=2) float32 int32
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    input_shape: tuple[int, ...]
    description: str = ""
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        fn = "Dataset"
        check_str(fn, "name", self.name)
        check_str(fn, "description", self.description)
        if self.num_classes is not None:
            check_int_range(fn, "num_classes", self.num_classes, 1)
        for field in ("x_train", "y_train", "x_test", "y_test"):
            value = getattr(self, field)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                raise TypeError(
                    f"{fn}: {field} must be a NumPy array of numbers, got "
                    f"{describe_value(value)}"
                    + (f" of dtype {value.dtype}" if isinstance(value, np.ndarray) else "")
                )
            if value.ndim == 0:
                raise ValueError(f"{fn}: {field} must have a leading row axis, got a scalar")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y):
                raise ValueError(
                    f"{fn}: x_{split} has {len(x)} rows but y_{split} has {len(y)}; each input "
                    f"needs one target"
                )
        if self.x_train.ndim < 2 or self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{fn}: x_train and x_test must be (rows, *input_shape) with the same input "
                f"shape, got {self.x_train.shape} and {self.x_test.shape}"
            )
        if not isinstance(self.input_shape, tuple) or self.input_shape != self.x_train.shape[1:]:
            raise ValueError(
                f"{fn}: input_shape must be the tuple x_train.shape[1:] = "
                f"{self.x_train.shape[1:]}, got input_shape={self.input_shape!r}"
            )
        if self.feature_names is not None and (
            not isinstance(self.feature_names, tuple)
            or len(self.feature_names) != self.num_features
            or not all(isinstance(f, str) for f in self.feature_names)
        ):
            raise ValueError(
                f"{fn}: feature_names must be None or a tuple of {self.num_features} strings, "
                f"got {describe_value(self.feature_names)}"
            )
        if self.num_classes is not None:
            self._check_labels()

    def _check_labels(self) -> None:
        for split in ("train", "test"):
            y = getattr(self, f"y_{split}")
            if y.dtype.kind not in "biu":
                raise TypeError(
                    f"Dataset: y_{split} must hold integer class labels when num_classes is "
                    f"given, got dtype {y.dtype} (pass num_classes=None for regression targets)"
                )
            if y.size == 0:
                continue
            if y.ndim == 2 and y.shape[1] == self.num_classes:
                continue  # multi-label: one 0/1 column per class
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= self.num_classes:
                raise ValueError(
                    f"Dataset: y_{split} holds labels in [{low}, {high}], outside "
                    f"[0, num_classes={self.num_classes})"
                )

    @classmethod
    def from_arrays(
        cls,
        name: str,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        *,
        num_classes: int | None,
        description: str = "",
        feature_names: tuple[str, ...] | None = None,
    ) -> Dataset:
        """Builds a checked :class:`Dataset` from array-likes: inputs as float32, targets as
        int32 class labels (``num_classes`` an int) or float32 regression targets (``None``)."""
        fn = "Dataset.from_arrays"
        if num_classes is not None:
            check_int_range(fn, "num_classes", num_classes, 1)
        arrays = {
            field: np.asarray(check_array(fn, field, value, min_ndim=1))
            for field, value in (
                ("x_train", x_train),
                ("y_train", y_train),
                ("x_test", x_test),
                ("y_test", y_test),
            )
        }
        for field in ("y_train", "y_test"):
            y = arrays[field]
            if num_classes is None:
                arrays[field] = y.astype(np.float32)
            elif y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
                raise ValueError(
                    f"{fn}: {field} must hold integer class labels, got non-integer values "
                    f"(pass num_classes=None for regression targets)"
                )
            else:
                arrays[field] = y.astype(np.int32)
        x_tr = np.ascontiguousarray(arrays["x_train"], np.float32)
        return cls(
            name=name,
            x_train=x_tr,
            y_train=arrays["y_train"],
            x_test=np.ascontiguousarray(arrays["x_test"], np.float32),
            y_test=arrays["y_test"],
            num_classes=None if num_classes is None else int(num_classes),
            input_shape=tuple(int(s) for s in x_tr.shape[1:]),
            description=description,
            feature_names=feature_names,
        )

    @property
    def num_features(self) -> int:
        """The number of input features once flattened."""
        return int(np.prod(self.input_shape))

    @property
    def num_train(self) -> int:
        """Number of training examples."""
        return len(self.x_train)

    @property
    def num_test(self) -> int:
        """Number of test examples."""
        return len(self.x_test)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape}, "
            f"test={self.x_test.shape}, num_classes={self.num_classes})"
        )
