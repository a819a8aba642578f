"""Schedules by name: parameters checked by kind and range, names with suggestions.

The schedules themselves are checked against their formulas in tests/train/test_recipes.py.
"""

import pytest

from optlab.schedules.registry import SCHEDULE_ALIASES, SCHEDULES, Param, parse_value, schedule_spec


@pytest.mark.parametrize(
    "param, value, expected",
    [
        (Param("float", "x", low=0.0, low_open=True), 2, 2),
        (Param("int", "x", low=1), 3.0, 3),
        (Param("bool", "x"), True, True),
        (Param("epoch_list", "x"), 5, [5]),
        (Param(("a", "b"), "x"), "b", "b"),
    ],
)
def test_param_accepts(param, value, expected):
    assert param.check("f", "p", value) == expected


@pytest.mark.parametrize(
    "param, value, rule",
    [
        (Param("float", "x", low=0.0, low_open=True), 0.0, "a number > 0"),
        (Param("float", "x", 0.0, 0.0, 1.0, True, True), 1.0, "a number in (0, 1)"),
        (Param("float", "x"), float("nan"), "a number"),
        (Param("float", "x"), True, "a number"),
        (Param("float", "x"), "0.1", "a number"),
        (Param("int", "x", low=1), 2.5, "an integer >= 1"),
        (Param("bool", "x"), 1, "true or false"),
        (Param("epochs", "x"), -1, "a number of epochs > 0"),
        (Param("epoch_list", "x"), [5, 3], "comma-separated increasing epochs"),
        (Param(("linear", "cosine"), "x"), "cosin", "one of linear, cosine"),
    ],
)
def test_param_refuses_with_the_rule(param, value, rule):
    with pytest.raises(
        ValueError, match=rf"f: p must be {rule.replace('(', '.').replace(')', '.')}"
    ):
        param.check("f", "p", value)


def test_parse_value():
    assert parse_value(" true ") is True
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-3") == 1e-3
    assert parse_value("10,20") == [10, 20]
    assert parse_value("cosine") == "cosine"
    assert parse_value("a,1") == "a,1"


def test_schedules_by_name_and_their_checks():
    assert schedule_spec("Warmup_Cosine").name == "warmup-cosine"
    assert {schedule_spec(a).name for a in SCHEDULE_ALIASES} <= set(SCHEDULES)
    with pytest.raises(ValueError, match=r"unknown schedule 'sgrd'; did you mean sgdr"):
        schedule_spec("sgrd")
    step = SCHEDULES["step"].check({"boundaries": [4, 8]}, epochs=10, warmup_epochs=1)
    assert step == {"boundaries": [4, 8], "factor": 0.1}
    with pytest.raises(ValueError, match="boundaries must lie after the warmup"):
        SCHEDULES["step"].check({"boundaries": [1, 8]}, epochs=10, warmup_epochs=2)
    with pytest.raises(ValueError, match="does not take a warmup"):
        SCHEDULES["one-cycle"].check({}, epochs=10, warmup_epochs=2)
    with pytest.raises(ValueError, match="warmup_epochs must be fewer than"):
        SCHEDULES["cosine"].check({}, epochs=3, warmup_epochs=3)
    assert [n for n, s in SCHEDULES.items() if not s.horizon] == ["constant", "reduce-on-plateau"]
