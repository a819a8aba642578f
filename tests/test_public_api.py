"""The package's shape: the public surface and the layering of shared/ARCHITECTURE.md."""

import ast
import pathlib
import subprocess
import sys

import pytest

import optlab

PACKAGE = pathlib.Path(optlab.__file__).parent

# Each layer may import only the layers with a smaller number (and itself).
LAYERS = {
    "core": 0,
    "schedules": 1,
    "transforms": 2,
    "optimizers": 3,
    "data": 4,
    "nn": 4,
    "train": 5,
    "diagnostics": 6,
    "tune": 7,
    "cli": 8,
}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def _stub_exports():
    """The names ``optlab/__init__.pyi`` re-exports (the lazy surface reads the same file)."""
    tree = ast.parse((PACKAGE / "__init__.pyi").read_text())
    exported = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            exported.update(alias.asname or alias.name for alias in node.names)
    return exported


def _imported_optlab_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "optlab" or alias.name.startswith("optlab."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "optlab":
                for alias in node.names:
                    yield f"optlab.{alias.name}", node.lineno
            elif node.module.startswith("optlab."):
                yield node.module, node.lineno


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_lower_layers(path):
    layer = path.relative_to(PACKAGE).parts[0]
    assert layer in LAYERS, f"{path}: '{layer}' is not a layer of the architecture"
    for module, line in _imported_optlab_modules(path):
        parts = module.split(".")
        assert len(parts) >= 2, f"{path}:{line} imports the package root; import the module"
        target = parts[1]
        assert target in LAYERS, f"{path}:{line} imports {module}, which is not a layer"
        assert LAYERS[target] <= LAYERS[layer], (
            f"{path}:{line}: layer '{layer}' imports '{target}', a higher layer"
        )


def test_all_is_sorted_and_lists_every_reexport():
    assert optlab.__all__ == sorted(optlab.__all__)
    assert set(optlab.__all__) == _stub_exports()
    for name in optlab.__all__:
        assert hasattr(optlab, name), name


def test_stub_imports_only_lower_layers_by_module():
    """Every line of the stub names a module of a layer (or a subpackage), never the root."""
    tree = ast.parse((PACKAGE / "__init__.pyi").read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert node.module and node.level == 0, ast.dump(node)
            parts = node.module.split(".")
            assert parts[0] == "optlab", node.module
            if len(parts) > 1:
                assert parts[1] in LAYERS, node.module


def test_lazy_names_are_the_module_objects():
    """A lazily imported name is the very object of its module (no copy, no wrapper)."""
    from optlab.optimizers.adam import adam
    from optlab.train import callbacks

    assert optlab.adam is adam
    assert optlab.callbacks is callbacks
    with pytest.raises(AttributeError, match="no attribute 'adma'"):
        optlab.adma  # noqa: B018


def test_importing_optlab_imports_no_jax():
    """``import optlab`` is instant: jax, flax and orbax load when a name is first used."""
    code = (
        "import sys, optlab; heavy = [m for m in ('jax', 'flax', 'orbax', 'numpy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
