"""The recommended recipes, on a short budget: each trains through the same path as
``optlab train --dataset NAME`` (recipes.load_data, build_model, build_optimizer, fit_arguments)
and beats a floor that a broken recipe (a wrong architecture, a learning rate off by 10x, a
schedule that never decays) misses. benchmarks/recipes.py measures the full budgets (README:
Recommended recipes)."""

import pytest

import optlab as ol
from optlab.train import recipes

# (dataset, epochs, training rows kept, floor). Chance is 10%. The cosine schedule spans the
# short run, so it decays fully; measured over seeds 0-2 (under load): mnist1d 0.60-0.64 after
# 6 epochs, digits 0.94-0.96 after 2, fashion_mnist 0.75-0.77 after 1 epoch on 6000 rows.
CASES = [("mnist1d", 6, None, 0.52), ("digits", 2, None, 0.90), ("fashion_mnist", 1, 6000, 0.70)]


@pytest.mark.parametrize("name, epochs, rows, floor", CASES)
def test_recipe_beats_its_floor_on_a_short_budget(name, epochs, rows, floor):
    config = recipes.recommended(name, epochs=epochs)
    try:
        data = recipes.load_data(config)
    except FileNotFoundError as err:  # Fashion-MNIST's files are not on every machine
        pytest.skip(f"{name} is not installed: {err}")
    if rows is not None:  # a tenth of Fashion-MNIST, validated on 2000 test rows
        x, y = data.train
        xv, yv = data.validation
        data = data._replace(train=(x[:rows], y[:rows]), validation=(xv[:2000], yv[:2000]))
    model = recipes.build_model(config, data)
    opt = recipes.build_optimizer(config, data)
    history, _ = ol.fit(
        model, opt.tx, data.train, **recipes.fit_arguments(config, data, opt), progress=False
    )
    assert history["val_accuracy"][-1] >= floor, history["val_accuracy"]


def test_mnist1d_recipe_is_the_papers_mlp():
    config = recipes.recommended("mnist1d")
    data = recipes.load_data(config.replace(epochs=1))
    model = recipes.build_model(config, data)
    # 40-100-100-10 with biases: the paper's torch MLP has 40*100+100 + 100*100+100 + 100*10+10.
    assert ol.nn.count_params(model) == 4100 + 10100 + 1010
    assert [b.residual for b in model.blocks] == [False, True]
    assert config.batch_size * config.epochs * 40 // 100 == 6000  # 4000 rows: 6000 steps
