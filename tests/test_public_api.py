"""The package's shape: the public surface and the layering of shared/ARCHITECTURE.md."""

import ast
import pathlib

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
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    exported = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            exported.update(alias.asname or alias.name for alias in node.names)
    assert optlab.__all__ == sorted(optlab.__all__)
    assert set(optlab.__all__) == exported
    for name in optlab.__all__:
        assert hasattr(optlab, name), name
