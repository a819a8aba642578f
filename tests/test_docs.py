"""The documentation site: it builds with warnings as errors, its API reference documents every
public name, it renders the notebooks from their committed outputs, and the Python examples of
its pages run.

The build runs as ``make docs`` does (``sphinx -W --keep-going``), in a subprocess, into a
temporary directory with a fresh environment, so nothing cached by an earlier build can hide a
warning. A broken docstring (bad RST, a cross-reference to nothing) fails this test.
"""

import contextlib
import inspect
import io
import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

import optlab

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PAGES = sorted(p for p in DOCS.rglob("*.md") if not {"_build", "api"} & set(p.parts))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _public_names() -> set[str]:
    """Every public name, found by introspection (the site's generator reads the sources).

    The root's ``__all__``; for each module among them (``ol.nn``, ``ol.data``,
    ``ol.callbacks``, ``ol.diagnostics`` and its ``surfaces``...), that module's ``__all__`` or
    else the objects it holds that are defined inside it, recursively.
    """
    names = set()
    pending = [("optlab", optlab, list(optlab.__all__))]
    while pending:
        prefix, module, public = pending.pop()
        for attr in public:
            value = getattr(module, attr)
            if inspect.ismodule(value):
                inner = getattr(value, "__all__", None)
                if inner is None:
                    inner = [
                        name
                        for name, obj in vars(value).items()
                        if not name.startswith("_")
                        and not inspect.ismodule(obj)
                        and (getattr(obj, "__module__", None) or "").startswith(value.__name__)
                    ]
                pending.append((f"{prefix}.{attr}", value, inner))
            else:
                names.add(f"{prefix}.{attr}")
    return names


def _anchors(html_dir: Path) -> set[str]:
    return {
        anchor
        for page in html_dir.glob("*.html")
        for anchor in re.findall(r'<dt class="sig[^"]*" id="([^"]+)"', page.read_text())
    }


def _committed_images(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        "image/png" in output.get("data", {})
        for cell in cells
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )


def test_site_builds_strictly_and_documents_every_public_name(tmp_path):
    html = tmp_path / "html"
    build = subprocess.run(
        [
            *(sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"),
            *("-d", str(tmp_path / "doctrees"), str(DOCS), str(html)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert build.returncode == 0, f"the docs build failed:\n{build.stderr[-6000:]}"

    # Every public name has its own entry in the reference, under its public name.
    documented = _anchors(html / "api")
    missing = sorted(_public_names() - documented)
    assert not missing, f"public names missing from the API reference: {missing}"
    assert "optlab.optimizers.registry.REGISTRY" in documented  # an extra namespace (conf.py)

    # The reference renders the docstrings' math (MathJax input) and their doctests.
    optimizers = (html / "api" / "optimizers.html").read_text()
    assert re.search(r'<div class="math[^"]*">\s*\\\[', optimizers), "no display math"
    assert "mathjax" in optimizers.lower()
    assert '<span class="gp">&gt;&gt;&gt; </span>' in optimizers, "no doctest examples"

    # Each notebook is a page showing its committed outputs: its plots and its printed text.
    for notebook in NOTEBOOKS:
        page = unescape((html / "notebooks" / f"{notebook.stem}.html").read_text())
        images = re.findall(r'<img[^>]+src="\.\./_images/[^"]+\.png"', page)
        assert len(images) == _committed_images(notebook), notebook.name
        first_stream = next(
            "".join(output["text"])
            for cell in json.loads(notebook.read_text())["cells"]
            if cell["cell_type"] == "code"
            for output in cell["outputs"]
            if output["output_type"] == "stream"
        )
        first_line = first_stream.strip().splitlines()[0]
        assert first_line in page, (notebook.name, first_line)

    # The command page carries every sub-command's --help, generated from the parser.
    cli = (html / "guide" / "cli.html").read_text()
    for command in ("train", "compare"):
        assert f"usage: optlab {command}" in cli


def test_every_page_with_examples_is_in_the_list():
    """The examples below run page by page; a page without any would be silently skipped."""
    with_examples = [p for p in PAGES if PYTHON_BLOCK.search(p.read_text())]
    assert len(with_examples) >= 10
    assert DOCS / "getting_started.md" in with_examples


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if PYTHON_BLOCK.search(p.read_text())],
    ids=lambda p: str(p.relative_to(DOCS)),
)
def test_page_examples_run(page):
    """Each page's ```python blocks run in order, in one namespace, and print what they show.

    Illustrations that cannot run here (Keras or PyTorch code) are written as
    ``{code-block} python`` directives, which this test leaves out.
    """
    namespace = {"__name__": f"docs.{page.stem}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text())):
            exec(compile(block, f"{page}:block{number}", "exec"), namespace)
    assert out.getvalue().strip(), f"{page.name}: the examples printed nothing"
