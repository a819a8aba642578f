"""Search spaces and samplers, against the formulas and scipy.stats.qmc."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import qmc

import optlab as ol

SPACE = ol.tune.Space(
    lr=ol.tune.log_uniform(1e-4, 1e-1),
    momentum=ol.tune.uniform(0.8, 0.99),
    width=ol.tune.int_uniform(16, 128),
    act=ol.tune.choice(["relu", "tanh", "gelu"]),
)


def reference(u: np.ndarray) -> list[dict]:
    """The documented maps from the unit cube, written out in float64."""
    out = []
    for a, b, c, d in u:
        out.append(
            {
                "lr": 10 ** (-4 + a * 3),
                "momentum": 0.8 + b * 0.19,
                "width": 16 + min(math.floor(c * 113), 112),
                "act": ["relu", "tanh", "gelu"][min(int(d * 3), 2)],
            }
        )
    return out


def assert_configs_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.keys() == e.keys()
        assert a["lr"] == pytest.approx(e["lr"], rel=1e-12)
        assert a["momentum"] == pytest.approx(e["momentum"], rel=1e-12)
        assert (a["width"], a["act"]) == (e["width"], e["act"])
        assert type(a["width"]) is int and type(a["lr"]) is float


@pytest.mark.parametrize("seed", [0, 7])
def test_quasi_random_is_scrambled_halton_mapped(seed):
    points = qmc.Halton(4, scramble=True, seed=np.random.default_rng(seed)).random(20)
    assert_configs_equal(ol.tune.quasi_random(SPACE, 20, seed=seed), reference(points))


def test_quasi_random_sobol_takes_the_first_n_of_a_power_of_two():
    points = qmc.Sobol(4, scramble=True, seed=np.random.default_rng(3)).random_base2(4)[:12]
    assert_configs_equal(ol.tune.quasi_random(SPACE, 12, seed=3, method="sobol"), reference(points))


def test_random_is_numpy_uniform_mapped():
    points = np.random.default_rng(11).random((15, 4))
    assert_configs_equal(ol.tune.random(SPACE, 15, seed=11), reference(points))


def test_quasi_random_covers_the_square_more_evenly_than_random():
    space = ol.tune.Space(a=ol.tune.uniform(0.0, 1.0), b=ol.tune.uniform(0.0, 1.0))

    def discrepancy(configs):
        return qmc.discrepancy(np.array([[c["a"], c["b"]] for c in configs]))

    quasi = np.mean([discrepancy(ol.tune.quasi_random(space, 64, seed=s)) for s in range(5)])
    rand = np.mean([discrepancy(ol.tune.random(space, 64, seed=s)) for s in range(5)])
    assert quasi < 0.5 * rand


def test_grid_takes_cell_centres_and_every_option():
    configs = ol.tune.grid(SPACE, 2)
    assert len(configs) == 2 * 2 * 2 * 3
    assert sorted({c["lr"] for c in configs}) == pytest.approx([10**-3.25, 10**-1.75])
    assert sorted({c["momentum"] for c in configs}) == pytest.approx([0.8475, 0.9425])
    assert sorted({c["width"] for c in configs}) == [44, 100]
    assert [c["act"] for c in configs[:3]] == ["relu", "tanh", "gelu"]  # the last varies fastest
    small = ol.tune.grid(ol.tune.Space(k=ol.tune.int_uniform(1, 3)), {"k": 10})
    assert [c["k"] for c in small] == [1, 2, 3]  # no more values than integers


def test_a_grid_tries_few_values_of_each_hyperparameter_random_tries_many():
    """The picture of Bergstra and Bengio: with 9 trials over 2 hyperparameters a 3 x 3 grid
    tries 3 values of the one that matters; random and quasi-random points try 9."""
    space = ol.tune.Space(important=ol.tune.uniform(0, 1), unimportant=ol.tune.uniform(0, 1))
    distinct = {
        name: len({c["important"] for c in configs})
        for name, configs in (
            ("grid", ol.tune.grid(space, 3)),
            ("random", ol.tune.random(space, 9, seed=0)),
            ("quasi", ol.tune.quasi_random(space, 9, seed=0)),
        )
    }
    assert distinct == {"grid": 3, "random": 9, "quasi": 9}


def test_shrink_works_in_unit_coordinates():
    space = ol.tune.Space(
        lr=ol.tune.log_uniform(1e-4, 1.0),
        act=["relu", "tanh", "gelu"],
        width=ol.tune.int_uniform(10, 110),
    )
    small = space.shrink(
        [{"lr": 1e-3, "act": "tanh", "width": 40}, {"lr": 1e-2, "act": "relu", "width": 50}],
        margin=0.25,
    )
    # log10 range [-3, -2] widened by a quarter of the 4 decades on each side: [-4, -1]
    assert small["lr"].low == pytest.approx(1e-4) and small["lr"].high == pytest.approx(0.1)
    assert small["act"].options == ("relu", "tanh")
    assert (small["width"].low, small["width"].high) == (15, 75)


def test_coarse_to_fine_narrows_onto_the_optimum():
    space = ol.tune.Space(lr=ol.tune.log_uniform(1e-5, 1.0), act=["relu", "tanh"])
    target = math.log10(3e-3)
    calls = []

    def objective(configs):
        calls.append(len(configs))
        return [(math.log10(c["lr"]) - target) ** 2 + (c["act"] == "tanh") for c in configs]

    result = ol.tune.coarse_to_fine(objective, space, rounds=4, trials=12, keep=0.25)
    assert calls == [12, 12, 12, 12]
    widths = [math.log10(s["lr"].high / s["lr"].low) for s in result.spaces]
    assert all(b < a for a, b in itertools.pairwise(widths))
    assert result.spaces[-1]["act"].options == ("relu",)
    assert result.best["act"] == "relu" and abs(math.log10(result.best["lr"]) - target) < 0.05
    assert result.best_score == min(min(s) for s in result.scores)
    # a NaN score is never kept
    nan_first = ol.tune.coarse_to_fine(
        lambda cs: [math.nan] + [1.0] * (len(cs) - 1), space, rounds=1, trials=4
    )
    assert nan_first.best == nan_first.configs[0][1]


def test_bad_spaces_are_refused_with_names():
    with pytest.raises(ValueError, match=r"log_uniform: low must be > 0 \(a log scale\)"):
        ol.tune.log_uniform(0.0, 1.0)
    with pytest.raises(ValueError, match="uniform: low must be < high, got low=2, high=1"):
        ol.tune.uniform(2, 1)
    with pytest.raises(TypeError, match="int_uniform: low must be an integer"):
        ol.tune.int_uniform(1.5, 4)
    with pytest.raises(ValueError, match="choice: options must hold at least one value"):
        ol.tune.choice([])
    with pytest.raises(TypeError, match="Space: lr must be log_uniform, uniform"):
        ol.tune.Space(lr=0.1)
    with pytest.raises(ValueError, match="quasi_random: method must be one of"):
        ol.tune.quasi_random(SPACE, 4, method="lhs")
    with pytest.raises(TypeError, match=r"grid: space must be an optlab\.tune\.Space"):
        ol.tune.grid({"lr": [1, 2]})
    with pytest.raises(ValueError, match="every score was NaN"):
        ol.tune.coarse_to_fine(lambda cs: [math.nan] * len(cs), SPACE, rounds=1, trials=2)
