"""The installed command as a user runs it: a new process per call.

One process per kind of failure path found before jax is imported (a bad argument, a run
directory, a resume that would change the run, a data option): each exits 2 with one line on
standard error and no traceback, without importing jax (the proxy for "answers at once"; no
timed assertion). One real training run checks the entry point after jax is imported: a clean
standard error and JAX's persistent compilation cache. The failures found after loading the
data or the checkpoints are the same code in process: ``test_main.py`` runs each of them
through ``main([...])``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args, tmp_path, **env):
    environ = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "OPTLAB_CACHE_DIR": str(tmp_path / "cache"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "optlab.cli.main", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _fake_run(directory: Path, **config) -> Path:
    """A run directory as optlab train leaves it, as far as the refusals read it."""
    directory.mkdir(parents=True)
    record = {"format": "optlab.run/1", "optimizer": "adam", "lr": None, "epochs": 20, **config}
    (directory / "config.json").write_text(json.dumps(record))
    return directory


def test_help_and_argument_refusals_do_not_import_jax(tmp_path):
    """``--help`` and every refusal that needs no data run without jax, flax, orbax or
    matplotlib (the command answers them in a few tens of milliseconds)."""
    run = _fake_run(tmp_path / "run")
    argvs = [
        ["--help"],
        ["train", "--help"],
        ["train", "--optimizer", "adamm"],
        ["train", "--init", "he_nromal"],
        ["train", "--optimizer", "lbfgs", "--weight-decay", "0.1"],
        ["train", "--opt", "bogus=1"],
        ["train", "--schedule", "sgdr", "--schedule-opt", "t_mult=0"],
        ["train", "--lr", "nan"],
        ["train", "--dataset", "digits", "--data-dir", str(tmp_path)],
        ["train", "--output", str(run)],
        ["train", "--resume", str(run), "--lr", "0.1"],
        ["train", "--resume", str(run), "--overwrite"],
        ["compare", "--optimizers", "sgd,adamm"],
        ["evaluate", str(tmp_path)],
        ["predict", str(run), "--input", str(tmp_path / "x.npy"), "--output", "p.csv"],
    ]
    code = (
        "import sys, json\n"
        "from optlab.cli.main import main\n"
        "codes = []\n"
        f"for argv in {argvs!r}:\n"
        "    try:\n"
        "        codes.append(main(argv))\n"
        "    except SystemExit as e:\n"
        "        codes.append(e.code)\n"
        "heavy = [m for m in ('jax', 'flax', 'orbax', 'matplotlib') if m in sys.modules]\n"
        "print(json.dumps([codes, heavy]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    codes, heavy = json.loads(proc.stdout.splitlines()[-1])
    assert codes == [0, 0] + [2] * (len(argvs) - 2)
    assert heavy == []
    errors = proc.stderr.splitlines()
    assert len(errors) == len(argvs) - 2 and all(e.startswith("optlab: error: ") for e in errors)


def _one_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("optlab: error: ")
    return proc.stderr


@pytest.mark.parametrize(
    "kind, args, expected",
    [
        ("argument", ["train", "--optimizer", "adamm"], "did you mean adam"),
        ("output holds a run", ["train", "--output", "{run}"], "--resume {run}"),
        ("resume changes the run", ["train", "--resume", "{run}", "--lr", "0.5"], "--lr 0.5"),
        ("data-dir of a bundled dataset", ["train", "--data-dir", "{tmp}"], "--data-dir applies"),
    ],
)
def test_each_failure_path_is_one_line_and_status_2(kind, args, expected, tmp_path):
    run = _fake_run(tmp_path / "run")
    args = [a.replace("{run}", str(run)).replace("{tmp}", str(tmp_path)) for a in args]
    if "--output" not in args and "--resume" not in args:
        args += ["--output", str(tmp_path / "out")]
    err = _one_line(_run(args, tmp_path))
    assert expected.replace("{run}", str(run)) in err, kind
    assert not (tmp_path / "out").exists()


def test_the_command_trains_with_the_persistent_compilation_cache(tmp_path):
    """A run of the installed command writes nothing to standard error and fills
    ``$OPTLAB_CACHE_DIR/jax`` (JAX's persistent compilation cache), which a second run of the
    same architecture reads instead of compiling (the README gives the measured times)."""
    run = tmp_path / "run"
    args = ["train", "--epochs", "1", "--hidden", "8", "--no-progress"]
    proc = _run([*args, "--output", str(run)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("adam: saved ") and proc.stderr == ""
    entries = list((tmp_path / "cache" / "jax").iterdir())
    assert len(entries) >= 2  # at least the compiled epoch and the evaluation
    assert (run / "model").is_dir() and (run / "checkpoints" / "1").is_dir()
