"""Parametrizes the shared optimizer checks (``common.RuleChecks``) from each module's cases."""

from tests.optimizers.common import RuleChecks


def pytest_generate_tests(metafunc):
    cls = metafunc.cls
    if cls is None or not issubclass(cls, RuleChecks):
        return
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cls.CASES, ids=[c.name for c in cls.CASES])
    if "mismatch_case" in metafunc.fixturenames:
        cases = cls.MISMATCH_CASES if cls.MISMATCH_CASES is not None else cls.CASES
        metafunc.parametrize("mismatch_case", cases, ids=[c.name for c in cases])
