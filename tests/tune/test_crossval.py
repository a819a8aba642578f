"""Cross-validation: the folds are scikit-learn's, each fold is the solo ``fit`` of its rows;
the Optuna bridge tells the study each batch's scores."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx
from sklearn.model_selection import StratifiedKFold

import optlab as ol
from tests.tune.common import assert_histories_close, blobs, mlp, sgd, xent

X, Y = blobs(61, spread=1.0)


def test_folds_are_stratified_kfold_and_each_is_a_solo_fit():
    model = mlp({}, nnx.Rngs(0))
    # one transformation object: fit compiles its epoch once for both solo fits below
    tx = ol.sgd(0.05, momentum=0.9)
    cv = ol.tune.cross_validate(model, tx, (X, Y), loss=xent, k=3, epochs=2, batch_size=8, seed=2)
    splits = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=2).split(X, Y))
    m = min(len(tr) for tr, _ in splits)  # 61 rows: the folds train on 40 or 41; all keep 40
    assert m == 40
    for (tr, va), (ref_tr, ref_va) in zip(cv.folds, splits, strict=True):
        np.testing.assert_array_equal(va, ref_va)
        np.testing.assert_array_equal(tr, ref_tr[:m])
    for f in (0, 2):
        tr, va = cv.folds[f]
        history, _ = ol.fit(
            mlp({}, nnx.Rngs(0)),
            tx,
            (X[tr], Y[tr]),
            loss=xent,
            epochs=2,
            batch_size=8,
            seed=2,
            validation_data=(X[va], Y[va]),
            progress=False,
        )
        assert_histories_close(cv.histories[f], history)
    scores = np.array([h["val_loss"][-1] for h in cv.histories])
    assert cv.scores == scores.tolist() and len(set(cv.scores)) == 3
    assert cv.mean == pytest.approx(scores.mean()) and cv.std == pytest.approx(scores.std())
    with pytest.raises(ValueError, match="cross_validate: metric must be a validation value"):
        ol.tune.cross_validate(model, ol.sgd(0.1), (X, Y), loss=xent, metric="loss")


def test_optuna_batches_are_sweeps_told_back_to_the_study():
    optuna = pytest.importorskip("optuna", reason="optuna is the optional 'tune' extra")
    space = ol.tune.Space(lr=ol.tune.log_uniform(1e-3, 0.3))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    results = ol.tune.optuna_ask_tell(
        study,
        3,
        space=space,
        model_fn=mlp,
        tx_fn=sgd,
        data=(X[:48], Y[:48]),
        rounds=2,
        loss=xent,
        epochs=1,
        batch_size=16,
        validation_data=(X[48:], Y[48:]),
        warn=False,
    )
    assert len(study.trials) == 6 and [len(r.configs) for r in results] == [3, 3]
    told = [(t.params, t.value) for t in study.trials]
    swept = [(c, s) for r in results for c, s in zip(r.configs, r.scores, strict=True)]
    assert told == swept
    for params, _ in told:
        assert 1e-3 <= params["lr"] <= 0.3
    maximize = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="optuna_ask_tell: the study's direction is maximize"):
        ol.tune.optuna_ask_tell(
            maximize, 2, space=space, model_fn=mlp, tx_fn=sgd, data=(X, Y), loss=xent
        )
