"""Sweeps: every member is the solo ``fit`` of its configuration and seed; groups, early
stopping, successive halving, chunks, the Playbook's warnings, files and plots."""

from __future__ import annotations

import csv
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab as ol
from optlab.train.history import History
from optlab.tune.population import compilations_bound, population_epoch
from optlab.tune.results import Member, SweepResult
from tests.tune.common import Net, assert_histories_close, blobs, mlp, sgd, xent

_X, _Y = blobs(136)
X, Y, VAL = _X[:96], _Y[:96], (_X[96:], _Y[96:])
SPACE = ol.tune.Space(lr=ol.tune.log_uniform(1e-3, 0.3), momentum=ol.tune.uniform(0.5, 0.9))
KW = dict(loss=xent, batch_size=16, validation_data=VAL)
quiet = pytest.mark.filterwarnings("ignore::optlab.tune.TuningWarning")


def solo(model_fn, tx_fn, config, seed, epochs, **kw):
    history, _ = ol.fit(
        model_fn(config, nnx.Rngs(seed)),
        tx_fn(config),
        (X, Y),
        epochs=epochs,
        seed=seed,
        progress=False,
        **KW,
        **kw,
    )
    return history


@pytest.fixture(scope="module")
def swept():
    """4 quasi-random configurations x seeds (0, 3), 3 epochs: an optlab MLP with BatchNorm and
    dropout, SGD with momentum; learning rate and momentum traced."""
    return ol.tune.sweep(
        mlp, sgd, SPACE, (X, Y), epochs=3, trials=4, seeds=[0, 3], warn=False, **KW
    )


def test_members_equal_solo_fits_with_dropout_and_batchnorm(swept):
    assert swept.traced == ["lr", "momentum"] and swept.groups == 1
    assert [(m.config_index, m.seed) for m in swept.members] == [
        (i, s) for i in range(4) for s in (0, 3)
    ]
    assert [m.config for m in swept.members[::2]] == ol.tune.quasi_random(SPACE, 4, seed=0)
    for m in (swept.members[1], swept.members[6]):
        assert_histories_close(m.history, solo(mlp, sgd, m.config, m.seed, 3))
    # the members differ from each other: the comparison is not vacuous
    assert swept.members[0].history["loss"] != swept.members[1].history["loss"]
    assert swept.members[1].history["loss"] != swept.members[3].history["loss"]


@quiet
def test_a_plain_nnx_model_and_adam_with_two_traced_hyperparameters():
    def model_fn(config, rngs):
        return Net(4, 8, 3, rngs=rngs)

    def tx_fn(config):
        return ol.adam(config["lr"], b1=config["b1"])

    configs = [{"lr": 3e-3, "b1": 0.9}, {"lr": 1e-2, "b1": 0.8}]
    result = ol.tune.sweep(model_fn, tx_fn, configs, (X, Y), epochs=2, **KW)
    assert result.traced == ["lr", "b1"]
    # b1 traced is float32(0.8), whose 1 - b1 differs from Python's in the last bit, and Adam's
    # normalized steps amplify last-bit differences of near-zero gradients over the 12 steps
    assert_histories_close(
        result.members[1].history, solo(model_fn, tx_fn, configs[1], 0, 2), rtol=2e-4, atol=2e-5
    )


@quiet
def test_shape_groups_one_program_each_and_model_reads_are_static():
    def model_fn(config, rngs):  # an int (width) and a float (dropout) read by model_fn
        return ol.nn.MLP(
            4, (config["width"],), 3, norm="batch", dropout=config["dropout"], rngs=rngs
        )

    configs = [
        {"width": 8, "dropout": 0.2, "lr": 0.1},
        {"width": 16, "dropout": 0.3, "lr": 0.1},
        {"width": 8, "dropout": 0.2, "lr": 0.02},
    ]
    result = ol.tune.sweep(model_fn, sgd, configs, (X, Y), epochs=1, **KW)
    # the float read by model_fn is static (it selects the program), not traced like lr
    assert result.static == ["dropout", "width"] and result.traced == ["lr"]
    assert result.groups == 2 and result.compilations == 2
    # the member of the second group trained with its own width and dropout rate
    assert_histories_close(result.members[1].history, solo(model_fn, sgd, configs[1], 0, 1))


def test_new_values_of_traced_hyperparameters_do_not_recompile(swept):
    again = ol.tune.sweep(
        mlp, sgd, SPACE, (X, Y), epochs=1, trials=4, seeds=[0, 3], search_seed=5, warn=False, **KW
    )
    assert again.compilations == 0
    assert again.configs != swept.configs


@quiet
def test_early_stopping_masks_finished_members_like_fit():
    stopper = ol.callbacks.EarlyStopping(monitor="val_loss", min_delta=0.05, patience=0)
    configs = [{"lr": 0.002}, {"lr": 0.3}]
    result = ol.tune.sweep(mlp, sgd, configs, (X, Y), epochs=5, early_stopping=stopper, **KW)
    lengths = [m.epochs for m in result.members]
    assert lengths[0] < 5 and lengths[1] > lengths[0]  # stopped at different epochs
    assert result.members[0].stop_reason.startswith("early stopping: val_loss")
    for m in result.members:
        fresh = ol.callbacks.EarlyStopping(monitor="val_loss", min_delta=0.05, patience=0)
        assert_histories_close(m.history, solo(mlp, sgd, m.config, m.seed, 5, callbacks=[fresh]))
    assert stopper.best is None  # the template itself was not used


def _truncated(history, epochs):
    return History({k: v[:epochs] for k, v in history.history.items()}, history.epoch[:epochs])


def test_successive_halving_keeps_the_best_and_compacts(swept):
    before = population_epoch._cache_size()
    half = ol.tune.sweep(
        mlp,
        sgd,
        SPACE,
        (X, Y),
        epochs=3,
        trials=4,
        seeds=[0, 3],
        warn=False,
        halving=ol.tune.HalvingConfig(eta=2, min_epochs=1),
        # chunks of 3 members before and after the compaction: one compiled program, which
        # test_chunks_give_the_results_of_one_dispatch reuses when it runs in the same process
        memory_budget=3 * swept.member_bytes + 1,
        **KW,
    )
    # rungs at epoch 1 (4 configurations -> 2) and 2 (2 <= eta: no more halving); the sizes met
    # are 8 members and 4, both run in chunks of 3
    assert half.chunk_size == 3
    assert population_epoch._cache_size() - before <= compilations_bound(4, 2) == 2
    first = np.array([m.history["val_loss"][0] for m in swept.members]).reshape(4, 2).mean(1)
    kept = {m.config_index for m in half.members if m.epochs == 3}
    assert kept == set(np.argsort(first)[:2])
    for m in half.members:  # every member trained exactly as in the full sweep, then stopped
        assert m.epochs == (3 if m.config_index in kept else 1) == m.budget
        full = swept.members[2 * m.config_index + (m.seed == 3)].history
        assert_histories_close(m.history, _truncated(full, m.epochs), rtol=1e-6, atol=1e-7)
    assert half.member_epochs == 8 + 4 * 2
    assert half.best_index in kept


def test_chunks_give_the_results_of_one_dispatch(swept):
    assert swept.chunk_size == 8
    chunked = ol.tune.sweep(
        mlp,
        sgd,
        SPACE,
        (X, Y),
        epochs=3,
        trials=4,
        seeds=[0, 3],
        memory_budget=3 * swept.member_bytes + 1,
        warn=False,
        **KW,
    )
    assert chunked.chunk_size == 3  # chunks of 3, 3 and 2 (padded to 3)
    for a, b in zip(swept.members, chunked.members, strict=True):
        assert_histories_close(b.history, a.history, rtol=1e-6, atol=1e-7)


def test_member_bytes_counts_state_data_and_step(swept):
    model = mlp({}, nnx.Rngs(0))
    floats = [a for a in jax.tree.leaves(nnx.state(model)) if jnp.issubdtype(a.dtype, jnp.floating)]
    state_bytes = sum(a.nbytes for a in floats)
    assert swept.member_bytes > 3 * state_bytes + X.nbytes + Y.nbytes  # plus the step's values


def test_table_scores_best_files_and_plots(swept, tmp_path):
    table = swept.table()
    assert len(table) == 8 and set(table[0]) >= {
        "lr",
        "momentum",
        "seed",
        "best_val_loss",
        "best_epoch",
        "epochs",
        "diverged",
    }
    for row, m in zip(table, swept.members, strict=True):
        epoch, value = m.history.best("val_loss")
        assert row["best_val_loss"] == value and row["best_epoch"] == epoch
        assert row["diverged"] == (m.history["loss"][-1] > m.history["loss"][0])
    scores = np.array([row["best_val_loss"] for row in table]).reshape(4, 2).mean(axis=1)
    np.testing.assert_allclose(swept.scores, scores)
    assert swept.best_index == int(np.argmin(scores))
    assert swept.best_config == swept.configs[swept.best_index]

    written = swept.save(tmp_path / "sweep")
    assert sorted(p.name for p in written) == [
        "curves.png",
        "metric.png",
        "sweep.csv",
        "sweep.json",
    ]
    with open(tmp_path / "sweep" / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    assert float(rows[3]["best_val_loss"]) == pytest.approx(table[3]["best_val_loss"])
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert record["best_config"] == swept.best_config
    assert record["space"]["lr"] == {"log_uniform": [1e-3, 0.3]}
    assert record["histories"][5]["val_loss"] == swept.members[5].history["val_loss"]
    with pytest.raises(FileExistsError, match="nothing is overwritten"):
        swept.save(tmp_path / "sweep")

    fig = swept.plot()
    scales = {ax.get_xlabel().split()[0]: ax.get_xscale() for ax in fig.axes if ax.get_visible()}
    assert scales == {"lr": "log", "momentum": "linear"}
    curves = swept.plot_curves(k=3)
    assert len(curves.axes[0].get_lines()) == 6  # the metric and the training loss of each


def test_divergence_is_flagged_and_warned():
    configs = [{"lr": 1e6}, {"lr": 1e7}, {"lr": 0.05}]
    with pytest.warns(ol.tune.TuningWarning) as caught:
        result = ol.tune.sweep(
            lambda c, rngs: ol.nn.MLP(4, (8,), 3, rngs=rngs), sgd, configs, (X, Y), epochs=2, **KW
        )
    assert [m.diverged for m in result.members] == [True, True, False]
    assert any("2 of 3 members diverged" in str(w.message) for w in caught)
    assert result.best_config == {"lr": 0.05}


def _result(space, configs, values):
    members = [
        Member(i, c, 0, History({"loss": [1.0], "val_loss": [v]}, [1]), 1, None, "val_loss")
        for i, (c, v) in enumerate(zip(configs, values, strict=True))
    ]
    return SweepResult(
        configs,
        [0],
        members,
        "val_loss",
        "min",
        space,
        ["lr"],
        [],
        1,
        1,
        1,
        0,
        1,
        len(members),
        0.0,
    )


def test_boundary_of_a_space_in_unit_coordinates_and_of_a_list():
    space = ol.tune.Space(lr=ol.tune.log_uniform(1e-4, 1.0), width=ol.tune.int_uniform(8, 64))
    configs = [{"lr": 1.2e-4, "width": 20}, {"lr": 0.01, "width": 64}, {"lr": 0.9, "width": 30}]
    # 1.2e-4 lies at unit 0.02 (< 0.05): an edge; 0.9 at 0.99: an edge; 0.01 at 0.5: inside
    assert _result(space, configs, [0.1, 0.5, 0.9]).boundary() == [
        "the best configuration has lr=0.00012 at the lower edge of the range searched "
        "[0.0001, 1]: the optimum may lie outside; extend the range and search again"
    ]
    assert "lr=0.9 at the upper edge" in _result(space, configs, [0.9, 0.5, 0.1]).boundary()[0]
    inside = _result(space, configs, [0.5, 0.1, 0.9]).boundary()
    assert len(inside) == 1 and "width=64 at the upper edge" in inside[0]
    # without a space: the smallest or largest value tried
    assert (
        "lr=0.9 at the upper edge of the range searched [0.00012, 0.9]"
        in _result(None, configs, [0.9, 0.5, 0.1]).boundary()[0]
    )
    result = _result(space, configs, [math.nan, math.nan, 0.3])
    with pytest.warns(ol.tune.TuningWarning) as caught:
        result.check()
    assert [str(w.message).split(":")[1].split()[0] for w in caught] == ["the", "2"]
    assert result.best_index == 2 and len(result.warnings) == 2


def test_bad_arguments_are_named():
    kw = dict(loss=xent, epochs=1)
    with pytest.raises(ValueError, match="metric='val_loss' needs validation data"):
        ol.tune.sweep(mlp, sgd, [{"lr": 0.1}], (X, Y), **kw)
    with pytest.raises(TypeError, match="sweep: space must be"):
        ol.tune.sweep(mlp, sgd, "lr", (X, Y), **kw)
    with pytest.raises(ValueError, match="sweep: trials must be an integer >= 1"):
        ol.tune.sweep(mlp, sgd, ol.tune.Space(lr=[0.1]), (X, Y), trials=0, **kw)
    with pytest.raises(TypeError, match="sweep: seeds must be"):
        ol.tune.sweep(mlp, sgd, [{"lr": 0.1}], (X, Y), seeds=1.5, validation_data=VAL, **kw)
    with pytest.raises(TypeError, match="early_stopping must be"):
        ol.tune.sweep(mlp, sgd, [{"lr": 0.1}], (X, Y), early_stopping=3, **kw)
    with pytest.raises(ValueError, match="HalvingConfig: eta must be an integer >= 2"):
        ol.tune.HalvingConfig(eta=1)
    with pytest.raises(ValueError, match="every configuration must have the same keys"):
        ol.tune.sweep(mlp, sgd, [{"lr": 0.1}, {"lr": 0.1, "momentum": 0.9}], (X, Y), **kw)
    bad = X.copy()
    bad[5, 0] = math.nan
    with pytest.raises(ValueError, match=r"1 rows \(5\) of the training data"):
        ol.tune.sweep(mlp, sgd, [{"lr": 0.1}], (bad, Y), metric="loss", **kw)
