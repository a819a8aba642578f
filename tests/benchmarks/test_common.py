"""benchmarks/common.py: the machine record and the JSON writer every benchmark script uses,
importable both as ``benchmarks.common`` and from a script run as ``python benchmarks/x.py``."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks import common

ROOT = Path(__file__).resolve().parents[2]


def test_write_json_puts_bare_names_in_results_and_converts_numpy(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    record = {"x": np.float32(0.5), "v": np.arange(3), "t": (1, 2)}
    path = common.write_json(record, "demo.json")
    assert path == tmp_path / "results" / "demo.json"
    assert json.loads(path.read_text()) == {"x": 0.5, "v": [0, 1, 2], "t": [1, 2]}
    other = common.write_json({"a": 1}, tmp_path / "deep" / "b.json")
    assert json.loads(other.read_text()) == {"a": 1}


def test_machine_names_the_versions_and_the_device():
    import jax

    record = common.machine(note="n")
    assert record["jax"] == jax.__version__ and record["device"] == str(jax.devices()[0])
    assert record["note"] == "n" and len(record["load_average"]) == 3


def test_a_script_run_from_its_folder_finds_the_helper():
    # As `python benchmarks/suite.py`: its folder, not the repository, is on sys.path.
    proc = subprocess.run(
        [sys.executable, "benchmarks/suite.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "--derive-targets" in proc.stdout, proc.stderr
