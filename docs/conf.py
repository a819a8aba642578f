"""Sphinx configuration of optlab's documentation (``make docs``).

The JAX ecosystem's setup (optax, flax and equinox publish this way): Sphinx with autodoc and
napoleon for the Google-style docstrings, MathJax for their ``.. math::``, myst-nb for the
Markdown pages and the notebooks, and the book theme. The build needs no network: no
intersphinx, no remote assets at build time (MathJax is loaded by the reader's browser).

* The API reference (``api/``) is generated from the package at every build by
  ``_ext/optlab_api.py``: nothing here lists optlab's names.
* The notebooks are ``../notebooks/*.ipynb`` (through the ``notebooks`` link), rendered from
  their committed outputs and never executed here (the test suite executes them).
* ``nitpicky``: a cross-reference that resolves to nothing is a warning, and ``make docs`` and
  ``tests/test_docs.py`` build with ``-W``, so it fails the build.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the checkout's optlab, also without an install

project = "optlab"
author = "the optlab developers"
copyright = "the optlab developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
    "optlab_api",
    "optlab_cli",
]

# Documents: Markdown pages (MyST), notebooks, and the generated reStructuredText reference.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "README.md"]
root_doc = "index"

# Docstrings: Google style with RST inside (``.. math::``, roles).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_preprocess_types = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # ``linesearch=scale_by_zoom_linesearch(...)``, not a repr
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False
autosummary_generate = False
add_module_names = True
add_function_parentheses = False  # ``ol.adam`` in the text, as users write it
python_display_short_literal_types = True
# The protocol's vocabulary (optlab/core/base.py) shown by name in signatures, not as ``Any``.
autodoc_type_aliases = {
    "Params": "Params",
    "Updates": "Updates",
    "Schedule": "Schedule",
    "PyTree": "PyTree",
    "OptState": "OptState",
    "Numeric": "Numeric",
    "ScalarOrSchedule": "ScalarOrSchedule",
}

# Modules documented beside the root's re-exports (optlab.__all__ and its subpackages).
optlab_api_extra_namespaces = (
    "optlab.optimizers.registry",
    "optlab.optimizers.recommended",
    "optlab.schedules.registry",
    "optlab.train.recipes",
    "optlab.train.run_data",
    "optlab.train.report",
    "optlab.train.sharding",
    "optlab.train.distributed",
)

# Every cross-reference must resolve. Objects of other libraries (signatures mention jax.Array,
# nnx.Module, numpy dtypes...) have no inventory offline, so they are exempt by package.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|jnp|flax|nnx|optax|chex|orbax|matplotlib|sklearn|rich)\b.*"),
    # The standard library's types in signatures (there is no offline inventory of Python's).
    (r"py:.*", r"(collections\.abc|os|pathlib|typing|types|enum|dataclasses)\..*"),
]
nitpick_ignore = [
    # Type aliases of optlab/core/base.py that are not exported (shown by name, unlinked).
    *(("py:class", alias) for alias in ("PyTree", "OptState", "Numeric", "ScalarOrSchedule")),
]

# Notebooks: shown with the outputs they were committed with, never executed by the build.
nb_execution_mode = "off"
nb_merge_streams = True  # a training log printed line by line reads as one block
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "optlab"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = ["_static"]
html_css_files = ["optlab.css"]
