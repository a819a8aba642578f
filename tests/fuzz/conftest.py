"""The fuzz suite writes every file (runs, checkpoints, IDX files) under pytest's tmp_path."""

import pytest

from tests.fuzz import public


@pytest.fixture(autouse=True)
def _files_in_tmp(tmp_path_factory, monkeypatch):
    """Relative paths a fuzzed call creates ('abc', '') land in a temporary working directory,
    and the valid calls' directories under a temporary root."""
    root = tmp_path_factory.mktemp("fuzz")
    monkeypatch.setattr(public, "TMP_ROOT", str(root))
    public._idx_dataset_dir_cached.cache_clear()
    monkeypatch.chdir(root)
