"""Recipes: a configuration becomes data, a model, a transformation and a schedule.

The schedules are checked against NumPy float64 formulas written out here (one-cycle and
cyclic against the library functions they wrap: tests/schedules compares those with torch).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab.schedules.registry import SCHEDULES
from optlab.train import recipes, run_data
from optlab.train.recipes import Recipe

SPE = 10  # steps per epoch in the schedule tests


def _values(config: Recipe, peak: float, steps: int) -> np.ndarray:
    sched = recipes.build_schedule(config, peak, SPE)
    if not callable(sched):
        return np.full(steps, sched)
    # Compiled as one program: op by op, a vmapped schedule costs ~8x the CPU time.
    return np.asarray(jax.jit(jax.vmap(sched))(jnp.arange(steps)))


def _cosine(x):
    return 0.5 * (1 + np.cos(np.pi * x))


T = 8 * SPE  # the horizon: 8 epochs
t = np.arange(T + 15)  # past the horizon too
held = np.minimum(t, T - 1)  # the value at T - 1 holds afterwards
W = 2 * SPE


@pytest.mark.parametrize(
    "schedule, options, warmup, expected",
    [
        ("constant", {}, 0, np.full(t.shape, 0.1)),
        ("constant", {}, 2, np.where(held < W, 0.1 * held / W, 0.1)),
        ("step", {}, 0, 0.1 * np.where(held < 40, 1, np.where(held < 60, 0.1, 0.01))),
        (
            "step",
            {"boundaries": [3, 5], "factor": 0.5},
            2,
            np.select([held < W, held < 30, held < 50], [0.1 * held / W, 0.1, 0.05], 0.025),
        ),
        ("exponential", {}, 0, 0.1 * 0.1 ** (held / T)),
        (
            "exponential",
            {"decay_rate": 0.5, "transition_epochs": 2, "staircase": True},
            0,
            0.1 * 0.5 ** np.floor(held / 20),
        ),
        ("inverse-time", {"decay_rate": 0.5}, 0, 0.1 / (1 + 0.5 * held / SPE)),
        ("cosine", {"alpha": 0.1}, 0, 0.1 * (0.9 * _cosine(held / T) + 0.1)),
        ("cosine", {}, 2, np.where(held < W, 0.1 * held / W, 0.1 * _cosine((held - W) / (T - W)))),
        (
            "warmup-cosine",
            {"init_value": 0.01, "end_value": 0.001},
            2,
            np.where(
                held < W, 0.01 + 0.09 * held / W, 0.001 + 0.099 * _cosine((held - W) / (T - W))
            ),
        ),
        ("sgdr", {}, 0, 0.1 * _cosine((held % 20) / 20)),
        (
            "sgdr",
            {"cycle_epochs": 2, "t_mult": 2, "alpha": 0.1},
            0,
            0.1
            * (
                0.1
                + 0.9
                * np.select(
                    [held < 20, held < 60],
                    [_cosine(held / 20), _cosine((held - 20) / 40)],
                    _cosine((held - 60) / 80),
                )
            ),
        ),
        (
            "warmup-stable-decay",
            {},
            2,
            np.select(
                [held < W, held < T - 12], [0.1 * held / W, 0.1], 0.1 * (1 - (held - (T - 12)) / 12)
            ),
        ),
        ("reduce-on-plateau", {}, 0, np.full(t.shape, 0.1)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_schedules_follow_their_formulas_and_hold_after_the_horizon(
    schedule, options, warmup, expected
):
    config = Recipe(schedule=schedule, schedule_opt=options, warmup_epochs=warmup, epochs=8)
    np.testing.assert_allclose(_values(config, 0.1, len(t)), expected, rtol=2e-5, atol=1e-8)


@pytest.mark.parametrize(
    "schedule, options, direct",
    [
        ("one-cycle", {"pct_start": 0.25}, lambda: ol.cosine_onecycle_schedule(T, 0.1, 0.25)),
        (
            "cyclic",
            {"half_cycle_epochs": 1, "mode": "triangular2"},
            lambda: ol.cyclic_schedule(0.01, 0.1, SPE, mode="triangular2"),
        ),
    ],
)
def test_schedules_wrapping_a_library_function(schedule, options, direct):
    config = Recipe(schedule=schedule, schedule_opt=options, epochs=8)
    expected = np.asarray(jax.jit(jax.vmap(direct()))(jnp.minimum(jnp.asarray(t), T - 1)))
    np.testing.assert_allclose(_values(config, 0.1, len(t)), expected, rtol=1e-6)


def test_every_schedule_of_the_registry_builds():
    for name in SCHEDULES:
        warmup = 1 if SCHEDULES[name].warmup else 0
        config = Recipe(schedule=name, warmup_epochs=warmup, epochs=4)
        values = _values(config, 0.1, 4 * SPE)
        assert np.all(np.isfinite(values)) and values.max() <= 0.1 + 1e-7, name


def test_reduce_on_plateau_is_the_callback_with_its_parameters():
    config = Recipe(schedule="reduce-on-plateau", schedule_opt={"patience": 2, "factor": 0.5})
    (cb,) = recipes.build_callbacks(config)
    assert isinstance(cb, ol.callbacks.ReduceLROnPlateau)
    assert (cb.monitor, cb.patience, cb.factor) == ("val_loss", 2, 0.5)
    assert recipes.needs_validation(config) == ["schedule reduce-on-plateau"]


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"optimizer": "adamm"}, ValueError, "did you mean adam"),
        ({"optimizer": "lbfgs", "weight_decay": 1e-4}, ValueError, "lbfgs takes no weight_decay"),
        ({"optimizer": "lbfgs", "batch_size": 8}, ValueError, "takes no batch_size"),
        ({"schedule": "cosin"}, ValueError, "did you mean cosine"),
        ({"opt": {"bogus": 1}}, ValueError, "adam takes no option 'bogus'"),
        ({"epochs": "3"}, TypeError, "epochs must be an integer >= 1"),
        ({"epochs": 0}, ValueError, "epochs must be an integer >= 1"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
        ({"hidden": (16, 0)}, ValueError, "hidden (each width) must be an integer >= 1"),
        ({"dropout": 1.0}, ValueError, "dropout must be in [0, 1)"),
        ({"lr": "fast"}, TypeError, "lr must be a real number"),
        ({"lr": float("nan")}, ValueError, "lr must be finite"),
        ({"validation_split": True}, TypeError, "validation_split must be a real number"),
        ({"dataset": ""}, ValueError, "dataset must not be empty"),
        ({"optimizer": 3}, TypeError, "optimizer must be a string"),
    ],
)
def test_recipe_refuses_bad_configurations(changes, error, message):
    with pytest.raises(
        error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        Recipe(**changes)


def test_config_round_trips_through_json():
    config = Recipe(
        optimizer="nesterov",
        hidden=(32, 16),
        opt={"nesterov": True},
        schedule="step",
        schedule_opt={"boundaries": [5]},
        epochs=10,
    )
    record = config.to_dict()
    assert record["format"] == "optlab.run/1" and record["schedule_epochs"] == 10
    assert Recipe.from_dict(record) == dataclasses.replace(config, schedule_epochs=10)
    with pytest.raises(ValueError, match="unknown keys bogus"):
        Recipe.from_dict({**record, "bogus": 1})
    with pytest.raises(ValueError, match=r"format must be 'optlab\.run/1'"):
        Recipe.from_dict({"optimizer": "adam"})


def test_task_follows_the_targets():
    classes = run_data.task_for(np.array([0, 3, 1]), num_classes=5)
    assert (classes.kind, classes.num_outputs, classes.metrics) == (
        "classification",
        5,
        ("accuracy",),
    )
    values = run_data.task_for(np.array([[0.5, 1.0]], np.float32))
    assert (values.kind, values.num_outputs, values.metrics) == ("regression", 2, ())
    with pytest.raises(ValueError, match="class labels must be >= 0"):
        run_data.task_for(np.array([0, -1]))


def test_a_regression_run_reports_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)
    task = run_data.task_for(y)
    model = ol.nn.MLP(3, (), 1, rngs=0)
    history, _ = ol.fit(
        model,
        ol.sgd(0.1),
        (x, y),
        loss=task.loss,
        metrics=task.metrics,
        epochs=3,
        batch_size=16,
        validation_data=(x, y),
        progress=False,
    )
    assert "accuracy" not in history and "val_accuracy" not in history
    np.testing.assert_allclose(task.loss(jnp.ones((2, 1)), jnp.array([0.0, 3.0])), [1.0, 4.0])


def test_load_data_splits_stratified_and_refuses_empty_parts():
    data = recipes.load_data(Recipe(validation_split=0.25, seed=1))
    (x, _), (xv, yv) = data.train, data.validation
    assert len(xv) == int(np.ceil(0.25 * 1437)) and len(x) + len(xv) == 1437
    assert x.shape[1] == 64 and data.validation_name == "validation split (0.25)"
    # Stratified: every class keeps a quarter of its rows in validation, to within one row.
    ds = ol.data.load("digits")
    for c in range(10):
        assert abs(np.sum(yv == c) - 0.25 * np.sum(ds.y_train == c)) <= 1
    with pytest.raises(ValueError, match="leaves 0 training and 1437 validation rows"):
        recipes.load_data(Recipe(validation_split=0.9999))
    with pytest.raises(ValueError, match=r"target \(--target\) applies to \.csv files"):
        recipes.load_data(Recipe(target="label"))
    assert recipes.load_data(Recipe()).validation_name == "test split"


def _one_update(tx, params, grads):
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_build_optimizer_composes_clipping_decay_and_options():
    data = recipes.load_data(Recipe())
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    # sgd + weight decay: an L2 term lambda * w added to the gradient, lr 0.1:
    # -0.1 * (g + 0.1 w) = -0.1 * ([0.5, 0.25] + [0.1, -0.2]).
    opt = recipes.build_optimizer(Recipe(optimizer="sgd", weight_decay=0.1), data)
    np.testing.assert_allclose(_one_update(opt.tx, params, grads)["w"], [-0.06, -0.005], atol=1e-7)
    assert opt.description == {
        "name": "sgd",
        "learning_rate": 0.1,
        "schedule": "constant",
        "l2": 0.1,
    }
    assert (opt.batch_size, opt.steps_per_epoch) == (32, 1437 // 32)
    # adamw: decoupled decay through its own argument.
    opt = recipes.build_optimizer(Recipe(optimizer="adamw", weight_decay=0.5, lr=0.01), data)
    ref = ol.adamw(0.01, weight_decay=0.5)
    np.testing.assert_allclose(
        _one_update(opt.tx, params, grads)["w"], _one_update(ref, params, grads)["w"], rtol=1e-6
    )
    # Clipping first, then the method with --momentum and --opt.
    config = Recipe(optimizer="sgd", lr=0.05, momentum=0.8, opt={"nesterov": True}, clip_norm=0.1)
    opt = recipes.build_optimizer(config, data)
    ref = ol.chain(ol.clip_by_global_norm(0.1), ol.sgd(0.05, momentum=0.8, nesterov=True))
    np.testing.assert_allclose(
        _one_update(opt.tx, params, grads)["w"], _one_update(ref, params, grads)["w"], rtol=1e-6
    )
    # A full-batch method: every row in one step, no learning rate.
    opt = recipes.build_optimizer(Recipe(optimizer="lbfgs"), data)
    assert (opt.batch_size, opt.steps_per_epoch, opt.learning_rate) == (1437, 1, None)


def test_build_model_fits_the_data():
    data = recipes.load_data(Recipe())
    model = recipes.build_model(Recipe(hidden=(8,), norm="batch", seed=3), data)
    out = model(jnp.asarray(data.validation[0][:4]), train=False)
    assert out.shape == (4, 10)
    same = recipes.build_model(Recipe(hidden=(8,), norm="batch", seed=3), data)
    leaves = jax.tree.leaves(ol.nn.functional(model)[1])
    for a, b in zip(leaves, jax.tree.leaves(ol.nn.functional(same)[1]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_read_inputs(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "h.csv").write_text("a,b,c\n" + "\n".join(",".join(map(str, r)) for r in x))
    np.testing.assert_array_equal(run_data.read_inputs(tmp_path / "x.npy"), x)
    np.testing.assert_array_equal(run_data.read_inputs(tmp_path / "h.csv"), x)
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match="line 2 holds 'x', not a number"):
        run_data.read_inputs(tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="line 2 has 1 columns, line 1 has 2"):
        run_data.read_inputs(tmp_path / "ragged.csv")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="rows 1 hold NaN or infinite values"):
        run_data.read_inputs(tmp_path / "nan.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"junk\.npy'"):
        run_data.read_inputs(tmp_path / "junk.npy")
