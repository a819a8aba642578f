"""Every public function and constructor of optlab.data refuses bad arguments by name.

A wrong type (a string, None, a list, a bool for a number, an array of the wrong shape or
dtype) or a value that would silently give garbage raises TypeError or ValueError on one line
that names the function and the argument. The table is checked for completeness against the
package itself, so a new public name must get its cases here.
"""

import inspect

import jax
import numpy as np
import pytest

import optlab.data as od

NAN, INF = float("nan"), float("inf")
Y = np.arange(20) % 2
X = np.random.default_rng(0).normal(size=(20, 3))
IMAGES = np.zeros((2, 4, 4, 1), np.float32)
KEY = jax.random.key(0)

# (public name, the call, the argument the message must name)
CASES = [
    ("two_spirals", lambda: od.two_spirals(turns=0), "turns"),
    ("two_spirals", lambda: od.two_spirals(turns=NAN), "turns"),
    ("two_spirals", lambda: od.two_spirals(turns=INF), "turns"),
    ("two_spirals", lambda: od.two_spirals(turns=-1.0), "turns"),
    ("two_spirals", lambda: od.two_spirals(turns="1.5"), "turns"),
    ("two_spirals", lambda: od.two_spirals(turns=None), "turns"),
    ("two_spirals", lambda: od.two_spirals(noise=-0.1), "noise"),
    ("two_spirals", lambda: od.two_spirals(noise=[0.1]), "noise"),
    ("two_spirals", lambda: od.two_spirals(num_samples=True), "num_samples"),
    ("two_spirals", lambda: od.two_spirals(num_samples=-5), "num_samples"),
    ("two_spirals", lambda: od.two_spirals(num_samples=100.0), "num_samples"),
    ("two_spirals", lambda: od.two_spirals(test_size=1.0), "test_size"),
    ("two_spirals", lambda: od.two_spirals(test_size=NAN), "test_size"),
    ("two_spirals", lambda: od.two_spirals(seed=-1), "seed"),
    ("two_spirals", lambda: od.two_spirals(seed="0"), "seed"),
    ("two_spirals", lambda: od.two_spirals(num_samples=4, test_size=0.1), "test_size"),
    ("blobs", lambda: od.blobs(num_classes=1), "num_classes"),
    ("blobs", lambda: od.blobs(num_classes=2.0), "num_classes"),
    ("blobs", lambda: od.blobs(num_samples=3, num_classes=2), "num_samples"),
    ("blobs", lambda: od.blobs(num_features=0), "num_features"),
    ("blobs", lambda: od.blobs(cluster_std=-1.0), "cluster_std"),
    ("blobs", lambda: od.blobs(cluster_std=None), "cluster_std"),
    ("blobs", lambda: od.blobs(test_size=0.0), "test_size"),
    ("digits", lambda: od.digits(test_size="0.2"), "test_size"),
    ("digits", lambda: od.digits(test_size=-0.5), "test_size"),
    ("digits", lambda: od.digits(flatten="yes"), "flatten"),
    ("digits", lambda: od.digits(seed=2.5), "seed"),
    ("mnist1d", lambda: od.mnist1d(cache="no"), "cache"),
    ("mnist1d", lambda: od.mnist1d(num_samples="10"), "num_samples"),
    ("mnist1d", lambda: od.mnist1d(num_samples=5), "num_samples"),
    ("mnist1d", lambda: od.mnist1d(train_split=1.5), "train_split"),
    ("mnist1d", lambda: od.mnist1d(iid_noise_scale=NAN), "iid_noise_scale"),
    ("mnist1d", lambda: od.mnist1d(padding=5), "padding"),
    ("mnist1d", lambda: od.mnist1d(shuffle_seq=1), "shuffle_seq"),
    ("mnist1d", lambda: od.mnist1d(url="http://example.com"), "url"),
    ("fashion_mnist", lambda: od.fashion_mnist(path=3), "path"),
    ("fashion_mnist", lambda: od.fashion_mnist(flatten=None), "flatten"),
    ("mnist", lambda: od.mnist(path=["/tmp"]), "path"),
    ("mnist", lambda: od.mnist(path="", flatten=True), "path"),
    ("load", lambda: od.load(42), "name"),
    ("load", lambda: od.load("two_spirals", turns=0), "turns"),
    ("read_idx", lambda: od.read_idx(None), "path"),
    ("write_idx", lambda: od.write_idx(3, np.zeros(2, np.uint8)), "path"),
    ("write_idx", lambda: od.write_idx("/tmp/x-idx1-ubyte", "abc"), "array"),
    ("write_idx", lambda: od.write_idx("/tmp/x-idx1-ubyte", np.zeros(2, bool)), "array"),
    ("write_idx", lambda: od.write_idx("/tmp/x-idx1-ubyte", np.zeros(2, np.int64)), "dtype"),
    ("validation_indices", lambda: od.validation_indices(Y, "0.2"), "validation_split"),
    ("validation_indices", lambda: od.validation_indices(Y, 0.0), "validation_split"),
    ("validation_indices", lambda: od.validation_indices(Y, 1.0), "validation_split"),
    ("validation_indices", lambda: od.validation_indices(Y, NAN), "validation_split"),
    ("validation_indices", lambda: od.validation_indices(Y, 0.2, seed=-1), "seed"),
    ("validation_indices", lambda: od.validation_indices(Y, 0.2, stratify="no"), "stratify"),
    ("validation_indices", lambda: od.validation_indices(Y, 0.2, shuffle=None), "shuffle"),
    ("validation_indices", lambda: od.validation_indices("abc", 0.2), "y"),
    ("validation_indices", lambda: od.validation_indices(None, 0.2), "y"),
    ("validation_indices", lambda: od.validation_indices(Y[:1], 0.2), "y"),
    (
        "validation_indices",
        lambda: od.validation_indices(Y, 1e-17, stratify=False, shuffle=False),
        "validation_split",
    ),
    (
        "validation_indices",
        lambda: od.validation_indices(Y, 0.99, stratify=False, shuffle=False),
        "validation_split",
    ),
    ("validation_indices", lambda: od.validation_indices(Y, 0.01), "validation_split"),
    ("train_val_split", lambda: od.train_val_split(X[:5], Y, 0.2), "x"),
    ("train_val_split", lambda: od.train_val_split((X, X[:3]), Y, 0.2), "x[1]"),
    ("train_val_split", lambda: od.train_val_split("abc", Y, 0.2), "x"),
    ("train_val_split", lambda: od.train_val_split(X, Y, 2), "validation_split"),
    ("kfold_indices", lambda: od.kfold_indices(Y, 1), "num_folds"),
    ("kfold_indices", lambda: od.kfold_indices(Y, 21), "num_folds"),
    ("kfold_indices", lambda: od.kfold_indices(Y, 2.5), "num_folds"),
    ("kfold_indices", lambda: od.kfold_indices(Y, True), "num_folds"),
    ("kfold_indices", lambda: od.kfold_indices(Y, 11), "folds"),  # > members of every class
    ("kfold_indices", lambda: od.kfold_indices(Y, 3, seed=None), "seed"),
    ("kfold_indices", lambda: od.kfold_indices(Y, 3, stratify=1), "stratify"),
    ("fit_preprocessor", lambda: od.fit_preprocessor(3, X), "method"),
    ("fit_preprocessor", lambda: od.fit_preprocessor("pca", "abc"), "x_train"),
    ("fit_preprocessor", lambda: od.fit_preprocessor("pca", np.array(["a", "b"])), "x_train"),
    ("fit_preprocessor", lambda: od.fit_preprocessor("center", np.where(X > 1, NAN, X)), "x_train"),
    ("fit_preprocessor", lambda: od.fit_preprocessor("standardize", X, epsilon=0), "epsilon"),
    ("fit_preprocessor", lambda: od.fit_preprocessor("standardize", X, epsilon="1"), "epsilon"),
    ("fit_preprocessor", lambda: od.fit_preprocessor("pca", X, num_components=0), "num_components"),
    (
        "fit_preprocessor",
        lambda: od.fit_preprocessor("pca", X, num_components=2.0),
        "num_components",
    ),
    ("preprocess", lambda: od.preprocess("center", X, X[:, :2]), "x"),
    ("preprocess", lambda: od.preprocess("bogus", X), "method"),
    ("Preprocessor", lambda: od.Preprocessor("bogus", np.zeros(3)), "method"),
    ("Preprocessor", lambda: od.Preprocessor("center", "abc"), "mean"),
    ("Preprocessor", lambda: od.fit_preprocessor("center", X)(np.zeros((2, 4))), "x"),
    ("Preprocessor", lambda: od.fit_preprocessor("center", X)(None), "x"),
    ("Dataset", lambda: od.Dataset("d", X, Y[:5], X, Y, 2, (3,)), "y_train"),
    ("Dataset", lambda: od.Dataset("d", X, Y, X[:, :2], Y, 2, (3,)), "x_test"),
    ("Dataset", lambda: od.Dataset("d", X, Y, X, Y, 2, (4,)), "input_shape"),
    ("Dataset", lambda: od.Dataset("d", X, Y, X, Y, 1, (3,)), "num_classes"),
    ("Dataset", lambda: od.Dataset("d", X, Y, X, Y, 2.0, (3,)), "num_classes"),
    ("Dataset", lambda: od.Dataset("d", X, Y, X, Y + 0.5, 2, (3,)), "y_test"),
    ("Dataset", lambda: od.Dataset("d", X.tolist(), Y, X, Y, 2, (3,)), "x_train"),
    ("Dataset", lambda: od.Dataset(None, X, Y, X, Y, 2, (3,)), "name"),
    ("Dataset", lambda: od.Dataset("d", X, Y, X, Y, 2, (3,), feature_names=("a",)), "feature"),
    ("Dataset", lambda: od.Dataset.from_arrays("d", X, Y, X, Y + 0.5, num_classes=2), "y_test"),
    ("Dataset", lambda: od.Dataset.from_arrays("d", "x", Y, X, Y, num_classes=2), "x_train"),
    ("batches", lambda: od.batches(X, Y, "4"), "batch_size"),
    ("num_batches", lambda: od.num_batches(NAN, 4), "num_examples"),
    ("gaussian_noise", lambda: od.gaussian_noise(IMAGES, KEY, -1.0), "stddev"),
    ("mixup", lambda: od.mixup(IMAGES, np.ones((2, 3), np.float32), KEY, 0.0), "alpha"),
    ("cutout", lambda: od.cutout(IMAGES, KEY, 0), "size"),
    ("random_shift", lambda: od.random_shift(IMAGES, KEY, -1), "max_shift"),
    ("random_flip_left_right", lambda: od.random_flip_left_right(IMAGES, KEY, 2), "probability"),
    ("GaussianNoise", lambda: od.GaussianNoise(INF), "stddev"),
    ("Mixup", lambda: od.Mixup(alpha=NAN), "alpha"),
    ("Cutout", lambda: od.Cutout(None), "size"),
    ("RandomShift", lambda: od.RandomShift(1.0), "max_shift"),
    ("RandomFlipLeftRight", lambda: od.RandomFlipLeftRight(-0.1), "probability"),
    ("compose", lambda: od.compose("flip"), "augmentation 0"),
]

# Public names without arguments to refuse (each with its reason).
EXEMPT = {
    "Batches": "a NamedTuple pytree: jax rebuilds it from tracers and placeholders",
    "IdxError": "the exception class itself",
    "cache_dir": "takes no arguments",
    "dataset_names": "takes no arguments",
}


@pytest.mark.parametrize(
    ("name", "call", "argument"),
    CASES,
    ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)],
)
def test_refused_by_name(name, call, argument):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    # load names the dataset whose option is wrong (two_spirals: turns must be > 0, ...).
    prefixes = (name, "load:", "two_spirals:") if name == "load" else (name,)
    assert message.startswith(prefixes), message
    assert argument in message, message
    assert "\n" not in message


def test_every_public_callable_has_cases():
    public = {
        name
        for name, value in vars(od).items()
        if not name.startswith("_") and callable(value) and not inspect.ismodule(value)
    }
    covered = {name for name, _, _ in CASES}
    assert public - covered - set(EXEMPT) == set(), "public names without bad-argument cases"
    assert covered | set(EXEMPT) <= public | {"Preprocessor"}
