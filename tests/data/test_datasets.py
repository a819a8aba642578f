"""Datasets load offline with the documented splits and metadata."""

import gc
import os
import warnings

import numpy as np
import pytest

import optlab.data as od


def test_digits_split_is_fixed_stratified_and_documented():
    from sklearn.datasets import load_digits

    ds = od.load("digits")
    assert (ds.num_train, ds.num_test, ds.num_classes, ds.input_shape) == (1437, 360, 10, (64,))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # Stratified: class proportions in test match the full set to within one example.
    full = np.bincount(load_digits().target, minlength=10) / 1797
    assert np.all(np.abs(np.bincount(ds.y_test, minlength=10) - full * 360) <= 1)
    # Fixed: a second load gives the same split; the rows are a partition of the data.
    again = od.load("digits")
    np.testing.assert_array_equal(ds.x_test, again.x_test)
    rows = {r.tobytes() for r in np.concatenate([ds.x_train, ds.x_test])}
    assert len(np.unique(load_digits().data, axis=0)) == len(rows)


def test_digits_images():
    ds = od.load("digits", flatten=False)
    assert ds.x_train.shape == (1437, 8, 8, 1) and ds.input_shape == (8, 8, 1)


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="did you mean 'digits'"):
        od.load("digit")


def test_mnist1d_is_generated_offline_cached_and_matches_the_package(tmp_path, monkeypatch):
    from mnist1d.data import get_dataset_args, make_dataset

    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path))
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (checking the global state)
    # 1000 samples instead of the default 5000 (4000/1000 split) keep the test fast; every
    # other argument is the package's default.
    ds = od.load("mnist1d", num_samples=1000)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert (ds.num_train, ds.num_test, ds.input_shape, ds.num_classes) == (800, 200, (40,), 10)
    cached = list(tmp_path.glob("mnist1d-*.npz"))
    assert len(cached) == 1
    args = get_dataset_args()
    args.num_samples = 1000
    ref = make_dataset(args)
    np.testing.assert_allclose(ds.x_train, ref["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    again = od.load("mnist1d", num_samples=1000)  # from the cache file
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    cached[0].write_bytes(b"PK\x03\x04" + b"\x00junk" * 40)  # a damaged cache file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        regenerated = od.load("mnist1d", num_samples=1000)
        gc.collect()  # an unclosed file warns when it is collected
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    np.testing.assert_array_equal(regenerated.x_test, ds.x_test)
    with pytest.raises(ValueError, match="unknown option"):
        od.load("mnist1d", num_sample=10)


def _write_idx_dir(path, n_train=6, n_test=4, gz=True):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        od.write_idx(path / f"{split}-images-idx3-ubyte{ext}", x)
        od.write_idx(path / f"{split}-labels-idx1-ubyte{ext}", y)
        arrays[split] = (x, y)
    return arrays


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_from_a_directory(tmp_path, name):
    arrays = _write_idx_dir(tmp_path, gz=name == "mnist")
    ds = od.load(name, path=str(tmp_path))
    assert ds.x_train.shape == (6, 784) and ds.num_test == 4 and ds.input_shape == (784,)
    np.testing.assert_allclose(ds.x_train, arrays["train"][0].reshape(6, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k"][1])
    images = od.load(name, path=str(tmp_path), flatten=False)
    assert images.x_test.shape == (4, 28, 28, 1)


def test_missing_datasets_say_how_to_get_them(tmp_path, monkeypatch):
    # An empty directory stands for a machine without the dataset, whatever this one has.
    monkeypatch.setattr(od.datasets, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="has no file train-images-idx3-ubyte"):
        od.load("fashion_mnist", path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        od.load("fashion_mnist")
    with pytest.raises(FileNotFoundError, match="Pass path= a directory"):
        od.load("mnist")
    with pytest.raises(FileNotFoundError, match="has no file t10k-images-idx3-ubyte"):
        _write_idx_dir(tmp_path)
        (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
        od.load("mnist", path=str(tmp_path))


def _damage(kind, path):
    """Replaces one file of a good IDX directory by a damaged one; returns its name."""
    labels, images = path / "train-labels-idx1-ubyte.gz", path / "train-images-idx3-ubyte.gz"
    if kind == "label-10":
        od.write_idx(labels, np.array([0, 1, 10, 3, 4, 5], np.uint8))
        return labels, r"1 label\(s\) outside \[0, 10\) \(label 2 is 10\)"
    if kind == "label-negative":
        od.write_idx(labels, np.array([0, 1, 2, -1, 4, 5], np.int8))
        return labels, r"outside \[0, 10\) \(label 3 is -1\)"
    if kind == "label-float":
        od.write_idx(labels, np.zeros(6, np.float32))
        return labels, "expected one integer label per image"
    if kind == "zero-images":
        od.write_idx(images, np.zeros((0, 28, 28), np.uint8))
        return images, r"shape \(0, 28, 28\); expected \(n, height, width\) images"
    if kind == "nan-pixels":
        x = np.zeros((6, 28, 28), np.float32)
        x[4, 2, 3] = np.nan
        od.write_idx(images, x)
        return images, r"non-finite pixel value\(s\) \(image 4, pixel \(2, 3\) is nan"
    if kind == "truncated-gz":
        images.write_bytes(images.read_bytes()[:200])
        return images, "cannot decompress the gzip stream"
    if kind == "overflowing-header":
        header = bytes([0, 0, 8, 3]) + np.array([2**32 - 1] * 3, ">u4").tobytes()
        images.unlink()
        images = path / "train-images-idx3-ubyte"
        images.write_bytes(header + bytes(10))
        return images, "truncated: shape"
    if kind == "directory":
        images.unlink()
        images.mkdir()
        return images, "is a directory, not an IDX file"
    if kind == "image-size":
        od.write_idx(images, np.zeros((6, 27, 28), np.uint8))
        return images, "hold images of different sizes"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "label-10",
        "label-negative",
        "label-float",
        "zero-images",
        "nan-pixels",
        "truncated-gz",
        "overflowing-header",
        "directory",
        "image-size",
    ],
)
def test_damaged_idx_files_are_refused_naming_the_file(tmp_path, kind):
    _write_idx_dir(tmp_path)
    damaged, message = _damage(kind, tmp_path)
    with pytest.raises(od.IdxError, match=message) as info:
        od.load("mnist", path=str(tmp_path))
    assert str(damaged) in str(info.value) and "\n" not in str(info.value)


def test_float_idx_images_are_kept_as_stored(tmp_path):
    _write_idx_dir(tmp_path)
    x = np.linspace(-1, 1, 6 * 28 * 28, dtype=np.float32).reshape(6, 28, 28)
    od.write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    ds = od.load("mnist", path=str(tmp_path))  # uint8 test images are still scaled by 1/255
    np.testing.assert_array_equal(ds.x_train, x.reshape(6, -1))
    assert ds.x_test.max() <= 1.0


def test_a_file_given_as_the_idx_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"path=.*file' is a file; pass the directory"):
        od.load("fashion_mnist", path=str(tmp_path / "file"))


@pytest.mark.skipif(
    not os.path.isdir(od.datasets.FASHION_MNIST_DIR),
    reason=f"Fashion-MNIST is not installed in {od.datasets.FASHION_MNIST_DIR} "
    "(apt-get install dataset-fashion-mnist); the synthetic IDX tests cover the reader",
)
def test_the_installed_fashion_mnist_files():
    ds = od.load("fashion_mnist")
    # The published facts of Fashion-MNIST: 60000 / 10000 images of 28x28, 10 balanced classes.
    assert (ds.num_train, ds.num_test, ds.input_shape) == (60000, 10000, (784,))
    np.testing.assert_array_equal(np.bincount(ds.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0


def test_mismatched_idx_files(tmp_path):
    _write_idx_dir(tmp_path)
    od.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="expected \\(n, h, w\\) images and n labels"):
        od.load("mnist", path=str(tmp_path))


@pytest.mark.parametrize(
    ("name", "options", "classes", "shape"),
    [
        pytest.param("two_spirals", {"num_samples": 200}, 2, (2,), id="two_spirals"),
        pytest.param("blobs", {"num_samples": 200, "num_classes": 4}, 4, (2,), id="blobs"),
    ],
)
def test_synthetic(name, options, classes, shape):
    ds = od.load(name, **options)
    assert ds.num_train + ds.num_test == 200 and ds.input_shape == shape
    assert set(np.unique(ds.y_train)) == set(range(classes))
    again = od.load(name, **options)
    np.testing.assert_array_equal(ds.x_train, again.x_train)  # seeded
    assert not np.array_equal(ds.x_train, od.load(name, seed=1, **options).x_train)


def test_two_spirals_are_interleaved():
    ds = od.load("two_spirals", num_samples=400, noise=0.0)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    # Class 1 is class 0 rotated by pi: every class-1 point's mirror is near the class-0 spiral.
    a, b = x[y == 0], -x[y == 1]
    dist = np.min(np.linalg.norm(a[:, None] - b[None], axis=-1), axis=1)
    assert np.median(dist) < 0.05
    assert abs(np.linalg.norm(x, axis=1).max() - 1.0) < 0.05


def test_everything_loads_with_the_network_disabled(monkeypatch, tmp_path):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path))
    _write_idx_dir(tmp_path)
    for name, options in [
        ("digits", {}),
        ("blobs", {}),
        ("two_spirals", {}),
        ("mnist", {"path": str(tmp_path)}),
        ("mnist1d", {"num_samples": 500}),
    ]:
        assert od.load(name, **options).num_train > 0
