"""save_model / load_model: the architecture and the arrays, without any optimizer; damaged
folders refused (by damaging real files)."""

import numpy as np
import pytest
from flax import nnx

import optlab as ol
import optlab.nn
from tests.train.models import Tiny, blobs, xent


@pytest.fixture
def describable(monkeypatch):
    """``optlab.nn.model_config``/``from_config`` for the test model Tiny, so the saving and
    loading machinery is tested on its own (the test of an ``ol.nn.MLP`` below uses the real
    ones)."""

    def model_config(model):
        if not isinstance(model, Tiny):
            raise TypeError(f"model_config: cannot describe {type(model).__name__}")
        return {
            "din": model.l1.in_features,
            "hidden": model.l1.out_features,
            "dout": model.l2.out_features,
            "batchnorm": model.bn is not None,
            "dropout": 0.0 if model.do is None else model.do.rate,
        }

    monkeypatch.setattr(optlab.nn, "model_config", model_config, raising=False)
    monkeypatch.setattr(optlab.nn, "from_config", lambda c: Tiny(**c, seed=99), raising=False)


@pytest.fixture(scope="module")
def trained_tiny():
    """A trained Tiny (BatchNorm statistics moved, dropout), trained once for the module: the
    tests save it and never change it."""
    model = Tiny(batchnorm=True, dropout=0.3, seed=1)
    ol.fit(model, ol.adam(1e-2), blobs(64), loss=xent, epochs=2, batch_size=16, progress=False)
    return model


def test_round_trip_predicts_bitwise_the_same(tmp_path, describable, trained_tiny):
    model = trained_tiny
    x, _ = blobs(20, seed=5)
    folder = ol.save_model(model, tmp_path / "run" / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["arrays", "model.json"]
    for where in (tmp_path / "run", folder):  # a run folder or the model's own
        loaded = ol.load_model(where)
        assert isinstance(loaded, Tiny) and loaded is not model
        np.testing.assert_array_equal(
            np.asarray(ol.predict(loaded, x)), np.asarray(ol.predict(model, x))
        )
    with pytest.raises(ValueError, match="already exists and is not empty"):
        ol.save_model(model, folder)
    ol.save_model(Tiny(batchnorm=True, dropout=0.3, seed=7), folder, overwrite=True)
    replaced = ol.load_model(folder)
    assert not np.array_equal(np.asarray(ol.predict(replaced, x)), np.asarray(ol.predict(model, x)))


def _flip_data(folder):
    for f in (folder / "arrays").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            raw = bytearray(f.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            f.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage, match",
    [
        pytest.param(
            _flip_data, r"is damaged: arrays/.*d/[0-9a-f]+ does not match its checksum", id="bits"
        ),
        pytest.param(
            lambda f: (f / "arrays" / "arrays" / "_METADATA").unlink(),
            r"is damaged: arrays/_METADATA is missing",
            id="deleted-metadata",
        ),
        pytest.param(
            lambda f: (f / "model.json").write_text(
                (f / "model.json").read_text().replace('"hidden": 8', '"hidden": 9')
            ),
            r"model.json is damaged \(its description was altered\)",
            id="edited-description",
        ),
    ],
)
def test_damaged_saved_model_is_refused_in_one_line(
    tmp_path, describable, trained_tiny, damage, match
):
    folder = ol.save_model(trained_tiny, tmp_path / "m")
    damage(folder)
    with pytest.raises(ValueError, match=f"load_model: .*{match}") as err:
        ol.load_model(folder)
    assert "\n" not in str(err.value)


def test_refusals(tmp_path, describable):
    with pytest.raises(TypeError, match=r"save_model supports the optlab\.nn models"):
        ol.save_model(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), tmp_path / "plain")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not empty; pass overwrite=True"):
        ol.save_model(Tiny(), tmp_path / "full")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="load_model: no saved model in"):
        ol.load_model(tmp_path)
    with pytest.raises(TypeError, match=r"save_model: model must be a flax\.nnx\.Module"):
        ol.save_model(blobs(4), tmp_path / "x")
    with pytest.raises(TypeError, match="save_model: directory must be a path"):
        ol.save_model(Tiny(), None)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"load_model: .*model\.json is unreadable"):
        ol.load_model(tmp_path / "bad")


def test_an_optlab_mlp_round_trips_through_its_description(tmp_path):
    ds = ol.data.load("blobs", num_samples=80)
    model = ol.nn.MLP(ds.num_features, (8,), ds.num_classes, norm="batch", dropout=0.2, rngs=0)
    loss = ol.nn.softmax_cross_entropy_with_integer_labels
    ol.fit(model, ol.adam(1e-2), ds, loss=loss, epochs=2, batch_size=16, progress=False)
    loaded = ol.load_model(ol.save_model(model, tmp_path / "m"))
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(
        np.asarray(ol.predict(loaded, ds.x_test)), np.asarray(ol.predict(model, ds.x_test))
    )
    assert ol.evaluate(loaded, ds, loss=loss) == ol.evaluate(model, ds, loss=loss)
