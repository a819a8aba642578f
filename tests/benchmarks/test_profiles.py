"""Performance profiles, AlgoPerf's score, steps to target and the population trainer, against
plain NumPy re-implementations of the definitions on small hand-made tables."""

import numpy as np
import pytest

import optlab as ol
from optlab.train.benchmark import (
    integrated_score,
    performance_profile,
    performance_ratios,
    select_transform,
    steps_to_target,
    summarize,
    train_population,
)

INF = np.inf
TABLES = {
    "plain": [[1.0, 4.0, 3.0], [2.0, 1.0, 3.0], [8.0, 2.0, 1.0]],
    "misses": [[1.0, INF, 5.0], [INF, 2.0, 1.0], [1.5, 3.0, INF]],
    "nobody_solves_one": [[2.0, INF], [1.0, INF]],
    "ties": [[3.0, 3.0], [3.0, 6.0]],
}


def reference_ratios(t):
    """Dolan-Moré ratios, one loop per cell (float64)."""
    t = np.asarray(t, np.float64)
    r = np.empty_like(t)
    for w in range(t.shape[1]):
        best = min(t[:, w])
        for o in range(t.shape[0]):
            r[o, w] = INF if not np.isfinite(best) or not np.isfinite(t[o, w]) else t[o, w] / best
    return r


def reference_score(t, r_max):
    """(1 / (r_max - 1)) * integral_1^r_max rho(tau) dtau, by a fine midpoint rule."""
    r = reference_ratios(t)
    n = 200_000
    taus = 1.0 + (np.arange(n) + 0.5) * (r_max - 1.0) / n
    scores = []
    for o in range(r.shape[0]):
        rho = np.array([(r[o] <= tau).mean() for tau in taus[::50]])  # 4000 points
        scores.append(rho.mean())
    return np.array(scores)


@pytest.mark.parametrize("name", list(TABLES))
def test_ratios_and_profile_match_the_definition(name):
    t = TABLES[name]
    r = reference_ratios(t)
    np.testing.assert_array_equal(performance_ratios(t), r)
    taus = [1.0, 1.5, 2.0, 3.0, 4.0, 10.0]
    expected = np.array([[(r[o] <= tau).mean() for tau in taus] for o in range(len(t))])
    np.testing.assert_array_equal(performance_profile(t, taus), expected)


@pytest.mark.parametrize("name", list(TABLES))
@pytest.mark.parametrize("r_max", [4.0, 2.5])
def test_integrated_score_is_the_area_under_the_profile(name, r_max):
    # The midpoint rule on 4000 points is within one step (0.00075 * 3 / 3) of the exact area.
    got = integrated_score(TABLES[name], r_max)
    np.testing.assert_allclose(got, reference_score(TABLES[name], r_max), atol=1e-3)


def test_score_extremes():
    # Fastest everywhere scores 1; never within r_max scores 0.
    np.testing.assert_allclose(integrated_score([[1.0, 1.0], [5.0, INF]]), [1.0, 0.0])


@pytest.mark.parametrize("bad", [[[0.0, 1.0]], [[np.nan, 1.0]], [1.0, 2.0]])
def test_bad_tables_are_refused(bad):
    with pytest.raises(ValueError, match="performance_ratios"):
        performance_ratios(bad)


def test_r_max_must_exceed_one():
    with pytest.raises(ValueError, match="integrated_score: r_max must be > 1, got r_max=1"):
        integrated_score([[1.0]], r_max=1)


def test_steps_to_target_counts_whole_epochs():
    acc = [[0.2, 0.5, 0.7], [0.9, 0.1, 0.1], [0.1, 0.2, 0.3]]
    np.testing.assert_array_equal(steps_to_target(acc, 0.5, 7), [14.0, 7.0, INF])


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0, 5.0], [1.0, 2.0, INF], [INF, INF, 4.0]])
def test_summarize_is_numpys_quantiles_with_inf_as_largest(values):
    big = np.where(np.isinf(values), 1e30, values)  # a stand-in larger than every finite one
    q = np.quantile(big, [0.25, 0.5, 0.75])
    got = summarize(values)
    for key, want in zip(("q25", "median", "q75"), q, strict=True):
        assert (got[key] == INF) if want >= 1e29 else got[key] == pytest.approx(want)


def test_population_members_are_independent_runs():
    """Members trained together, each with its own optimizer chosen by a traced index
    (select_transform), equal each trained alone with that optimizer; a zero rate changes
    nothing."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    kw = dict(
        loss=ol.nn.softmax_cross_entropy_with_integer_labels,
        epochs=3,
        batch_size=16,
        test=(x, y),
    )

    def sgd(learning_rate, one_minus_momentum):
        return ol.sgd(learning_rate, momentum=1.0 - one_minus_momentum)

    def adam(learning_rate, one_minus_momentum):
        return ol.adam(learning_rate, b1=1.0 - one_minus_momentum)

    def either(index, **point):
        return select_transform(index, [sgd(**point), adam(**point)])

    def model(s):
        return ol.nn.MLP(3, (8,), 2, rngs=s)

    rows = [(0, 0.0, 0.1, 3), (0, 0.3, 0.5, 4), (1, 0.05, 0.2, 5)]  # (index, lr, 1 - m, seed)
    both = train_population(
        model,
        either,
        {
            "index": [r[0] for r in rows],
            "learning_rate": [r[1] for r in rows],
            "one_minus_momentum": [r[2] for r in rows],
        },
        [r[3] for r in rows],
        (x, y),
        (x, y),
        **kw,
    )
    cache: dict = {}  # the two one-member SGD runs share one compiled program
    alone = [
        train_population(
            model,
            (sgd, adam)[i],
            {"learning_rate": [lr], "one_minus_momentum": [m]},
            [s],
            (x, y),
            (x, y),
            cache=cache,
            **kw,
        )
        for i, lr, m, s in rows
    ]
    assert len(cache) == 2
    for i, single in enumerate(alone):
        np.testing.assert_allclose(both.val_accuracy[i], single.val_accuracy[0], atol=1e-6)
        np.testing.assert_allclose(both.train_loss[i], single.train_loss[0], rtol=1e-5)
    # Adam's rows differ from SGD's at the same point (the index does choose).
    assert not np.allclose(both.train_loss[2], alone[0].train_loss[0])
    # lr = 0: the accuracy stays the initial model's, computed here directly.
    m = model(3)
    m.eval()
    initial = float(np.mean(np.argmax(np.asarray(m(x)), axis=1) == y))
    np.testing.assert_allclose(both.val_accuracy[0], initial, atol=1e-6)
    assert both.test_accuracy[1] > initial + 0.1
