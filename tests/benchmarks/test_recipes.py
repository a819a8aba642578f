"""The recommended recipes, on a short budget: each trains through the same path as
``optlab train --dataset NAME`` and beats a floor that a broken recipe (a wrong architecture,
a learning rate off by 10x, a schedule that never decays) misses. benchmarks/recipes.py
measures the full budgets (README: Recommended recipes)."""

import pytest

import optlab as ol
from optlab.train import recipes

# (dataset, epochs, floor): chance is 10%; the floors sit well under what the recipe reaches
# in these epochs (mnist1d ~0.55 after 12, digits ~0.96 after 3, fashion ~0.84 after 1).
CASES = [("mnist1d", 12, 0.45), ("digits", 3, 0.92), ("fashion_mnist", 1, 0.80)]


def _fit(config):
    data = recipes.load_data(config)
    model = recipes.build_model(config, data)
    opt = recipes.build_optimizer(config, data)
    history, model = ol.fit(
        model,
        opt.tx,
        data.train,
        loss=data.task.loss,
        metrics=data.task.metrics,
        validation_data=data.validation,
        epochs=config.epochs,
        batch_size=opt.batch_size,
        seed=config.seed,
        progress=False,
    )
    return history


@pytest.mark.parametrize("name, epochs, floor", CASES)
def test_recipe_beats_its_floor_on_a_short_budget(name, epochs, floor):
    config = recipes.recommended(name, epochs=epochs)
    try:
        recipes.load_data(config)
    except FileNotFoundError as err:  # Fashion-MNIST's files are not on every machine
        pytest.skip(f"{name} is not installed: {err}")
    history = _fit(config)
    assert history["val_accuracy"][-1] >= floor, history["val_accuracy"]


def test_mnist1d_recipe_is_the_papers_mlp():
    config = recipes.recommended("mnist1d")
    data = recipes.load_data(config.replace(epochs=1))
    model = recipes.build_model(config, data)
    # 40-100-100-10 with biases: the paper's torch MLP has 40*100+100 + 100*100+100 + 100*10+10.
    assert ol.nn.count_params(model) == 4100 + 10100 + 1010
    assert [b.residual for b in model.blocks] == [False, True]
    assert config.batch_size * config.epochs * 40 // 100 == 6000  # 4000 rows: 6000 steps
