"""Your own data: .npz and .csv files into a Dataset; every bad file is one named line."""

import csv
import gc
import io
import pathlib
import warnings

import numpy as np
import pytest

import optlab.data as od

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))
Y = np.arange(30) % 3


def _sklearn_split(y, test_size, seed, stratify):
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    return np.sort(train), np.sort(test)


def _write_csv(path, header, rows, newline="\n"):
    text = newline.join([",".join(header)] + [",".join(str(v) for v in r) for r in rows])
    path.write_text(text + newline, encoding="utf-8")
    return path


def _csv_reference(path, target):
    """An independent reading with the standard library: header, then float() of each cell."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [h.strip() for h in rows[0]]
    table = np.array([[float(c) for c in r] for r in rows[1:]])
    t = header.index(target)
    return np.delete(table, t, axis=1), table[:, t], [h for h in header if h != target]


# --- .npz ------------------------------------------------------------------------------------


def test_npz_with_its_own_test_split(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=X[:20], y_train=Y[:20], x_test=X[20:], y_test=Y[20:])
    ds = od.load(str(path))
    assert isinstance(ds, od.Dataset) and ds.name == str(path)
    np.testing.assert_array_equal(ds.x_train, X[:20].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, Y[20:])
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert (ds.num_classes, ds.input_shape, ds.feature_names) == (3, (3,), None)
    assert od.load(path).num_train == 20  # a pathlib.Path works too


def test_npz_without_test_split_is_split_like_sklearn(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=X, y_train=Y)
    ds = od.load(str(path), test_size=0.3, seed=4)
    train, test = _sklearn_split(Y, 0.3, 4, stratify=True)
    np.testing.assert_array_equal(ds.x_train, X[train].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, Y[test])
    default = od.load(str(path))  # test_size=0.2, seed=0
    assert default.num_test == 6 and np.array_equal(np.bincount(default.y_test), [2, 2, 2])


def test_npz_regression_images_and_one_feature(tmp_path):
    path = tmp_path / "reg.npz"
    targets = X[:, 0] * 2.5
    np.savez(path, x_train=X[:, 0], y_train=targets)  # (n,) inputs: one feature
    ds = od.load(str(path), test_size=0.2)
    train, test = _sklearn_split(targets, 0.2, 0, stratify=False)
    assert ds.num_classes is None and ds.y_train.dtype == np.float32
    assert ds.input_shape == (1,)
    np.testing.assert_allclose(ds.y_test, targets[test].astype(np.float32))
    np.testing.assert_allclose(ds.x_train[:, 0], X[train, 0].astype(np.float32))
    images = tmp_path / "img.npz"
    np.savez(images, x_train=np.zeros((6, 4, 4, 1)), y_train=[0, 1, 0, 1, 0, 1],
             x_test=np.ones((2, 4, 4, 1)), y_test=[1, 0])  # fmt: skip
    assert od.load(str(images)).input_shape == (4, 4, 1)


def test_task_overrides_the_rule(tmp_path):
    path = tmp_path / "counts.npz"
    np.savez(path, x_train=X, y_train=Y * 1.0)  # integer-valued floats: classes by default
    assert od.load(str(path)).num_classes == 3
    ds = od.load(str(path), task="regression")
    assert ds.num_classes is None and ds.y_train.dtype == np.float32
    np.savez(path, x_train=X, y_train=Y + 0.5)
    with pytest.raises(ValueError, match=r"y_train\[0\] is 0.5, not an integer class label"):
        od.load(str(path), task="classification")


# --- .csv ------------------------------------------------------------------------------------


def test_csv_matches_a_standard_library_reading(tmp_path):
    rows = [[f"{a:.6f}", int(y), f"{b:.6f}", f"{c:.6f}"] for (a, b, c), y in zip(X, Y, strict=True)]
    path = _write_csv(tmp_path / "data.csv", ["a", "label", "b", "c"], rows)
    x_ref, y_ref, names = _csv_reference(path, "label")
    ds = od.load(str(path), target="label", test_size=0.2, seed=1)
    train, test = _sklearn_split(y_ref, 0.2, 1, stratify=True)
    np.testing.assert_allclose(ds.x_train, x_ref[train].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, y_ref[test])
    assert ds.feature_names == tuple(names) == ("a", "b", "c") and ds.num_classes == 3


def test_csv_dialect_details(tmp_path):
    # A byte-order mark, CRLF line ends, quoted numbers, spaces and a blank line are all read.
    text = '\ufeffx1, x2 ,y\r\n"1.5", 2,0\r\n\r\n3,4 ,1\r\n5,6,0\r\n7,8,1\r\n'
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8", newline="")
    test = _write_csv(tmp_path / "test.csv", ["x1", "x2", "y"], [[0, 0, 1], [1, 1, 0]])
    ds = od.load(str(path), target="y", test=str(test))
    np.testing.assert_array_equal(ds.x_train, [[1.5, 2], [3, 4], [5, 6], [7, 8]])
    np.testing.assert_array_equal(ds.y_train, [0, 1, 0, 1])
    np.testing.assert_array_equal(ds.x_test, [[0, 0], [1, 1]])
    assert ds.feature_names == ("x1", "x2") and "test.csv" in ds.description


def test_csv_regression_target(tmp_path):
    rows = [[i, i * 0.5 + 0.25] for i in range(10)]
    path = _write_csv(tmp_path / "reg.csv", ["x", "price"], rows)
    ds = od.load(str(path), target="price")
    assert ds.num_classes is None and ds.num_test == 2
    all_y = np.sort(np.concatenate([ds.y_train, ds.y_test]))
    np.testing.assert_allclose(all_y, [r[1] for r in rows])


# --- bad files: one line, naming the file and what is wrong -----------------------------------


def _npz(**arrays):
    def write(path):
        np.savez(path, **arrays)

    return write


def _text(text):
    def write(path):
        path.write_text(text, encoding="utf-8")

    return write


def _bytes(data):
    def write(path):
        path.write_bytes(data)

    return write


def _npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


GOOD = {"x_train": X[:4], "y_train": Y[:4]}
HEADER = "a,b,label\n"


@pytest.mark.parametrize(
    ("name", "write", "options", "message"),
    [
        pytest.param("d.txt", _text("1,2\n"), {}, "unknown file type '.txt'", id="extension"),
        pytest.param("d.npz", _bytes(b""), {}, "is empty", id="npz-empty"),
        pytest.param("d.csv", _bytes(b""), {"target": "y"}, "is empty", id="csv-empty"),
        pytest.param("d.csv", _text(" \n\n"), {"target": "y"}, "is empty", id="csv-blank"),
        pytest.param("d.npz", _bytes(b"not a zip"), {}, "not a readable .npz", id="not-zip"),
        pytest.param("d.npz", _npy, {}, "single array", id="npy-named-npz"),
        pytest.param(
            "d.npz",
            _npz(x_train=X),
            {},
            r"has no array 'y_train'; the arrays there are \['x_train'\]",
            id="missing-array",
        ),
        pytest.param(
            "d.npz", _npz(**GOOD, x_val=X), {}, r"unexpected \['x_val'\]", id="unexpected-array"
        ),
        pytest.param(
            "d.npz", _npz(**GOOD, x_test=X), {}, "only one of x_test and y_test", id="half-test"
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=np.array(["a", "b"]), y_train=[0, 1]),
            {},
            "array 'x_train' has dtype <U1; expected numbers",
            id="strings",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=np.array([{}, {}], dtype=object), y_train=[0, 1]),
            {},
            "array 'x_train' cannot be read",
            id="objects",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=X[:10], y_train=Y[:9]),
            {},
            "x_train has 10 rows but y_train has 9",
            id="lengths",
        ),
        pytest.param(
            "d.npz",
            _npz(**GOOD, x_test=np.zeros((2, 4)), y_test=[0, 1]),
            {},
            r"x_train rows have shape \(3,\) but x_test rows have \(4,\)",
            id="test-shape",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=np.where(np.arange(12).reshape(4, 3) == 7, np.nan, 1.0), y_train=Y[:4]),
            {},
            r"x_train\[2, 1\] \(row 2, column 1, counted from 0\) is nan",
            id="nan",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=X[:4], y_train=[0.0, 1.0, np.inf, 1.0]),
            {},
            r"y_train\[2\] .* is inf",
            id="inf",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=np.full((4, 3), 1e39), y_train=Y[:4]),
            {},
            "too large for float32",
            id="float32-overflow",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=np.zeros((0, 3)), y_train=np.zeros(0)),
            {},
            "expected at least one row",
            id="no-rows",
        ),
        pytest.param("d.npz", _npz(**GOOD), {"target": "y"}, "target= is for .csv", id="npz-tgt"),
        pytest.param(
            "d.npz",
            _npz(**GOOD, x_test=X[:2], y_test=Y[:2]),
            {"test_size": 0.3},
            "test_size=0.3 given, but the file holds its own x_test and y_test",
            id="test-twice",
        ),
        pytest.param(
            "d.npz",
            _npz(x_train=X[:4], y_train=[0, -1, 1, 0]),
            {},
            r"y_train\[1\] is -1: class labels must be 0, 1, ..., k - 1",
            id="negative-label",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n"),
            {"target": "y"},
            r"has no column 'y'; the columns are \['a', 'b', 'label'\]$",
            id="no-target",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n"),
            {},
            r"pass target= the name of the target column; the columns are",
            id="target-none",
        ),
        pytest.param(
            "d.csv",
            _text("1,2,0\n3,4,1\n"),
            {"target": "label"},
            "the first line holds numbers: a CSV file needs a header row",
            id="no-header",
        ),
        pytest.param(
            "d.csv",
            _text("a,a,label\n1,2,0\n"),
            {"target": "label"},
            r"names column\(s\) \['a'\] more than once",
            id="duplicate-column",
        ),
        pytest.param(
            "d.csv",
            _text("a,,label\n1,2,0\n"),
            {"target": "label"},
            "header column 2 has no name",
            id="unnamed-column",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n3,abc,1\n"),
            {"target": "label"},
            r"row 2 \(line 3\), column 'b': 'abc' is not a number",
            id="not-a-number",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n3,,1\n"),
            {"target": "label"},
            r"row 2 \(line 3\), column 'b' is empty",
            id="empty-cell",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n3,4,1\n5,6\n"),
            {"target": "label"},
            r"row 3 \(line 4\) has 2 fields but the header has 3 columns",
            id="short-row",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0,9\n3,4,1,9\n"),
            {"target": "label"},
            r"row 1 \(line 2\) has 4 fields but the header has 3 columns",
            id="every-row-long",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "nan,2,0\n"),
            {"target": "label"},
            r"row 1 \(line 2\), column 'a' is nan \(not finite\)",
            id="csv-nan",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n\n3,-inf,1\n"),
            {"target": "label"},
            r"row 2 \(line 4\), column 'b' is -inf",
            id="csv-inf-after-blank-line",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,1e39,0\n"),
            {"target": "label"},
            "too large for float32",
            id="csv-overflow",
        ),
        pytest.param(
            "d.csv", _text(HEADER), {"target": "label"}, "has a header but no data rows", id="hdr"
        ),
        pytest.param(
            "d.csv",
            _text("label\n1\n"),
            {"target": "label"},
            "no feature columns besides the target 'label'",
            id="only-target",
        ),
        pytest.param(
            "d.csv",
            _bytes(b"a,b\n\xff\xfe\x00\x01"),
            {"target": "b"},
            "is not UTF-8 text",
            id="binary",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n3,4,-1\n"),
            {"target": "label"},
            r"row 2, column 'label' is -1: class labels must be",
            id="csv-negative-label",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,cat\n"),
            {"target": "label"},
            r"column 'label': 'cat' is not a number",
            id="string-labels",
        ),
        pytest.param(
            "d.csv",
            _text(HEADER + "1,2,0\n3,4,1\n5,6,1\n"),
            {"target": "label"},
            "cannot split 3 rows with test_size=0.2",
            id="class-with-one-row",
        ),
    ],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path, name, write, options, message):
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError, match=message) as info:
        od.load(str(path), **options)
    text = str(info.value)
    assert text.startswith(f"load: {path}: ") and "\n" not in text


def test_a_directory_and_a_missing_file(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ValueError, match=r"dir\.csv: is a directory, not a \.npz or \.csv file"):
        od.load(str(tmp_path / "dir.csv"), target="y")
    with pytest.raises(FileNotFoundError, match=r"load: .*nope\.npz: no such file"):
        od.load(str(tmp_path / "nope.npz"))


def test_a_test_file_with_other_columns(tmp_path):
    train = _write_csv(tmp_path / "train.csv", ["a", "b", "y"], [[1, 2, 0], [3, 4, 1]])
    test = _write_csv(tmp_path / "test.csv", ["a", "c", "y"], [[1, 2, 0]])
    with pytest.raises(ValueError, match=r"test\.csv: has feature columns \['a', 'c'\], the"):
        od.load(str(train), target="y", test=str(test))
    np.savez(tmp_path / "test.npz", x_train=X)
    with pytest.raises(ValueError, match=r"test\.npz: must be a \.csv file, got '\.npz'"):
        od.load(str(train), target="y", test=str(tmp_path / "test.npz"))
    with pytest.raises(ValueError, match=r"give test= \(a test file\) or test_size="):
        od.load(str(train), target="y", test=str(test), test_size=0.5)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        pytest.param({"test_size": 1.5}, ValueError, r"test_size must be in \(0, 1\)", id="big"),
        pytest.param({"test_size": 0}, ValueError, r"test_size must be in \(0, 1\)", id="zero"),
        pytest.param({"test_size": "a"}, TypeError, "test_size must be a real number", id="str"),
        pytest.param({"seed": -1}, ValueError, "seed must be an integer >= 0", id="seed"),
        pytest.param({"seed": 1.0}, TypeError, "seed must be an integer", id="seed-float"),
        pytest.param({"task": "regresion"}, ValueError, "did you mean 'regression'", id="task"),
        pytest.param({"target": 3}, TypeError, "target must be a string", id="target"),
        pytest.param({"test": 3}, TypeError, "test must be a path", id="test-type"),
    ],
)
def test_bad_options(tmp_path, options, error, match):
    path = _write_csv(tmp_path / "d.csv", ["a", "y"], [[1, 0], [2, 1]])
    options = {"target": "y", **options}
    with pytest.raises(error, match=match) as info:
        od.load(str(path), **options)
    assert str(info.value).startswith("load: ")


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        pytest.param(123, TypeError, "name must be a dataset name", id="int"),
        pytest.param(None, TypeError, "name must be a dataset name", id="none"),
        pytest.param(["digits"], TypeError, "name must be a dataset name", id="list"),
        pytest.param("", ValueError, "name must be a dataset name or a path", id="empty"),
        pytest.param("digit", ValueError, r"did you mean 'digits'.*\.npz/\.csv file", id="typo"),
    ],
)
def test_bad_names(name, error, match):
    with pytest.raises(error, match=match):
        od.load(name)


def test_unknown_options_of_a_bundled_dataset():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_sample'\] for 'blobs'"):
        od.load("blobs", num_sample=10)


def test_a_path_object_and_a_bundled_name_side_by_side(tmp_path, monkeypatch):
    # A file in the working directory named like no dataset is read as a file.
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "mine.npz", **GOOD, x_test=X[:2], y_test=Y[:2])
    assert od.load("mine.npz").num_train == 4
    assert od.load(pathlib.Path("mine.npz")).num_test == 2
    buffer = io.StringIO()  # not a path at all
    with pytest.raises(TypeError, match="name must be"):
        od.load(buffer)


def test_a_damaged_zip_is_one_line_and_closes_its_file(tmp_path):
    """np.load(path) leaves its file open on a zip header followed by junk: load must not."""
    path = tmp_path / "damaged.npz"
    path.write_bytes(b"PK\x03\x04" + b"\x00junk" * 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ValueError) as info:
            od.load(str(path))
        message = str(info.value)
        del info  # its traceback would keep a leaked file alive
        gc.collect()  # an unclosed file warns when it is collected
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert "\n" not in message
    assert str(path) in message and "is not a readable .npz archive" in message
