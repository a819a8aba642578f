"""The API reference, generated from the package itself at every build.

Nothing in ``docs/`` lists optlab's names: at ``builder-inited`` this extension walks the public
surface, ``optlab.__all__`` plus every subpackage or module the root re-exports (``ol.nn``,
``ol.data``, ``ol.callbacks`` today; ``ol.tune``, ``ol.diagnostics`` when they land) and the
modules named in ``optlab_api_extra_namespaces``, and writes one reStructuredText page per
layer into ``docs/api/`` (generated, not committed). A name is filed under the layer of the
module that defines it (``optlab.adam`` under optimizers, ``optlab.callbacks.EarlyStopping``
under train), in a section per defining module. A name added to the package appears in the
next build without anyone editing ``docs/``.

Each object is documented under its public name (``optlab.adam``, ``optlab.nn.MLP``), which is
what users type. Docstrings may also refer to an object by the path of its defining module
(``optlab.train.state.TrainState``) or by a bare name relative to that module
(``:meth:`Callback.get_state``` inside ``optlab.train.callbacks``): the ``missing-reference``
handler imports such a target, finds the public name bound to the same object and links there.
A target that is neither public nor an alias of a public object stays unresolved, which the
strict build (``nitpicky``, ``-W``) reports.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import pathlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer

# The layers of shared/ARCHITECTURE.md, lowest first; a layer not listed here (a new one) is
# appended after them, so it is never left out.
LAYERS = {
    "core": "Core: the protocol, composition, tree numerics",
    "schedules": "Schedules and injected hyperparameters",
    "transforms": "Transforms: scaling, clipping, regularization, constraints, controllers",
    "optimizers": "Optimizers: first order, second order, line searches",
    "nn": "Models, layers, losses (optlab.nn)",
    "data": "Datasets, splits, preprocessing, batching (optlab.data)",
    "train": "Training engine: fit, callbacks, checkpoints",
    "diagnostics": "Diagnostics",
    "tune": "Tuning",
    "cli": "The optlab command",
}


@dataclass(frozen=True)
class PublicName:
    """One public name: how users spell it, the object, and the module that defines it."""

    name: str  # "optlab.adam", "optlab.nn.MLP", "optlab.callbacks.EarlyStopping"
    obj: Any
    module: str  # "optlab.optimizers.adam"

    @property
    def layer(self) -> str:
        return self.module.split(".")[1] if self.module.count(".") else "core"


def _reexports(module: ModuleType) -> dict[str, str]:
    """``{name: source module}`` of ``from M import A as A`` lines (PEP 484 re-exports).

    For the root package these lines are in ``optlab/__init__.pyi``, the one list of the lazy
    public surface; for any other module, in its own source.
    """
    path = pathlib.Path(module.__file__)
    stub = path.with_suffix(".pyi")
    tree = ast.parse((stub if stub.exists() else path).read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.asname == alias.name or stub.exists():
                    found[alias.asname or alias.name] = node.module
    return found


def _defined_names(module: ModuleType) -> list[str]:
    """Top-level public definitions of a module's source: functions, classes, assignments."""
    tree = ast.parse(pathlib.Path(module.__file__).read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def namespace_names(module: ModuleType) -> dict[str, str]:
    """``{name: defining module}`` of a namespace's public names.

    ``__all__`` when the module has one. Otherwise every public object bound in it that is
    defined inside it (by ``__module__``), plus what it explicitly re-exports (``from M import A
    as A``: constants and type aliases have no ``__module__``) and, for a plain module, the
    names its source defines.
    """
    reexported = _reexports(module)
    if hasattr(module, "__all__"):
        names = list(module.__all__)
    else:
        names = list(reexported)
        if not module.__file__.endswith("__init__.py"):
            names += _defined_names(module)
        names += [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and not inspect.ismodule(value)
            and (getattr(value, "__module__", None) or "").startswith(module.__name__)
        ]
    result = {}
    for name in dict.fromkeys(names):
        obj = getattr(module, name)
        owner = getattr(obj, "__module__", None)
        if not (isinstance(owner, str) and owner.startswith("optlab.")):
            owner = reexported.get(name, module.__name__)
        result[name] = owner
    return result


def public_names(extra_namespaces: tuple[str, ...] = ()) -> list[PublicName]:
    """Every public name of optlab, in the order of ``__all__`` (root first).

    A module among a namespace's public names (``ol.nn``, ``ol.callbacks``,
    ``ol.diagnostics.surfaces``) is a namespace too, walked in turn.
    """
    import optlab

    found = []
    pending: list[tuple[str, ModuleType]] = [("optlab", optlab)]
    pending += [(path, importlib.import_module(path)) for path in extra_namespaces]
    seen: set[str] = set()
    while pending:
        prefix, module = pending.pop(0)
        if module.__name__ in seen:
            continue
        seen.add(module.__name__)
        for name, owner in namespace_names(module).items():
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                pending.append((f"{prefix}.{name}", obj))
            else:
                found.append(PublicName(f"{prefix}.{name}", obj, owner))
    return found


def _layer_order(layers: set[str]) -> list[str]:
    return [layer for layer in LAYERS if layer in layers] + sorted(layers - set(LAYERS))


def _directive(entry: PublicName) -> list[str]:
    obj = entry.obj
    if not _is_own(obj) and not inspect.isroutine(obj):  # a type alias: ``Params = Any``
        return _type_alias(entry)
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return [f".. autoexception:: {entry.name}", "   :members:"]
    if inspect.isclass(obj):
        return [f".. autoclass:: {entry.name}", "   :members:"]
    if inspect.isroutine(obj) or hasattr(obj, "__wrapped__"):  # jitted functions too
        return [f".. autofunction:: {entry.name}"]
    return [f".. autodata:: {entry.name}", "   :no-value:"]


def _is_own(obj: Any) -> bool:
    """A class or function of optlab's own (not a re-exported alias such as ``typing.Any``)."""
    return (inspect.isclass(obj) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__")) and (
        getattr(obj, "__module__", None) or ""
    ).startswith("optlab.")


def _type_alias(entry: PublicName) -> list[str]:
    """A name bound to another library's object (``Params = Any``): its value, and the ``#:``
    comment above its definition, if any (the object's own docstring is ``typing.Any``'s)."""
    module, name = entry.name.rsplit(".", 1)
    try:
        comments = ModuleAnalyzer.for_module(entry.module).find_attr_docs()
    except PycodeError:
        comments = {}
    doc = list(comments.get(("", name), []))
    value = repr(entry.obj).replace("typing.", "").replace("collections.abc.", "")
    return [
        f".. py:data:: {name}",
        f"   :module: {module}",
        f"   :value: {value}",
        "",
        f"   A type alias, defined in ``{entry.module}``.",
        "",
        *(f"   {line}" for line in doc),
    ]


def _alias(entry: PublicName, first: str) -> list[str]:
    """A second public name of an object documented under ``first``: a pointer, not a copy."""
    kind, role = ("class", "class") if inspect.isclass(entry.obj) else ("function", "func")
    module, name = entry.name.rsplit(".", 1)
    return [
        f".. py:{kind}:: {name}",
        f"   :module: {module}",
        "",
        f"   The same object as :{role}:`{first}`.",
    ]


def _title(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def _first_line(module_name: str) -> str:
    doc = inspect.getdoc(importlib.import_module(module_name)) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def layer_modules(layer: str) -> list[str]:
    """The layer's package and its modules, private ones (``_common``) left out."""
    package = importlib.import_module(f"optlab.{layer}")
    found = [package.__name__]
    if hasattr(package, "__path__"):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                found.append(info.name)
    return found


def _source_order(entry: PublicName) -> int:
    """Where the object is defined in its module (so a page reads like the source)."""
    try:
        return inspect.getsourcelines(inspect.unwrap(entry.obj))[1]
    except (TypeError, OSError):
        return 1 << 30


def layer_page(
    layer: str, entries: list[PublicName], all_entries: list[PublicName], others: list[str]
) -> str:
    """One layer's reference page: a summary table, then each module with its public names.

    The names documented besides the public ones are appended to ``others``.
    """
    package = f"optlab.{layer}"
    by_module: dict[str, list[PublicName]] = {m: [] for m in layer_modules(layer)}
    for entry in entries:
        by_module.setdefault(entry.module, []).append(entry)
    for members in by_module.values():
        members.sort(key=_source_order)
    ordered = [entry for members in by_module.values() for entry in members]
    names = {entry.name for entry in entries}
    public_ids = {id(entry.obj) for entry in all_entries}
    first_names: dict[int, str] = {}

    lines = [".. This page is generated by docs/_ext/optlab_api.py at build time.", ""]
    lines += _title(LAYERS.get(layer, layer.capitalize()), "=")
    lines += [f".. automodule:: {package}", "   :no-members:", ""]
    if ordered:
        lines += [".. currentmodule:: None", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {e.name}" for e in ordered] + [""]
    for module, members in by_module.items():
        if module == package and not members:
            continue  # its docstring opens the page
        lines += _title(f"``{module}``", "-")
        if module != package:
            lines += [f".. automodule:: {module}", "   :no-members:"]
            # ``optlab.data.preprocess`` is a function and a module: the function gets the name.
            lines += ["   :no-index:", ""] if module in names else [""]
        for entry in members:
            first = (
                first_names.setdefault(id(entry.obj), entry.name)
                if _is_own(entry.obj)
                else entry.name
            )
            lines += [*(_directive(entry) if first == entry.name else _alias(entry, first)), ""]
        defined = [] if module in names else _other_definitions(module, public_ids)
        if defined:
            lines += [".. rubric:: Also defined in this module", ""]
            lines += [line for entry in defined for line in (*_directive(entry), "")]
            others += [entry.name for entry in defined]
    return "\n".join(lines)


def _other_definitions(module_name: str, public_ids: set[int]) -> list[PublicName]:
    """The classes and functions a module defines that are not public under another name.

    They are not part of the public surface, but signatures and docstrings mention them (the
    ``loop`` a callback receives, a registry's entry type), so each gets an entry under its
    defining path, below the module's public names.
    """
    module = importlib.import_module(module_name)
    found = []
    for name in _defined_names(module):
        obj = getattr(module, name, None)
        if _is_own(obj) and obj.__module__ == module_name and id(obj) not in public_ids:
            found.append(PublicName(f"{module_name}.{name}", obj, module_name))
    return found


def index_page(layers: list[str], entries: list[PublicName]) -> str:
    lines = [".. This page is generated by docs/_ext/optlab_api.py at build time.", ""]
    lines += _title("API reference", "=")
    lines += [
        f"Every public name of optlab ({len(entries)} of them), documented from its docstring "
        "and filed under the layer of the module that defines it. Each layer imports only the "
        "layers above it in this list. Users write ``import optlab as ol`` and then "
        "``ol.adam``, ``ol.nn.MLP``, ``ol.data.load``, ``ol.callbacks.EarlyStopping``.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    lines += [f"   {layer}" for layer in layers] + [""]
    return "\n".join(lines)


def _write_if_changed(path: pathlib.Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a concurrent build never reads half a page


def generate(
    outdir: pathlib.Path, extra_namespaces: tuple[str, ...] = ()
) -> tuple[list[PublicName], list[str]]:
    """Writes ``index.rst`` and one page per layer into ``outdir``; removes stale pages.

    Returns the public names and the other names documented (under their defining paths).
    """
    entries = public_names(extra_namespaces)
    by_layer: dict[str, list[PublicName]] = {}
    import optlab

    for info in pkgutil.iter_modules(optlab.__path__):
        if info.ispkg and not info.name.startswith("_"):
            by_layer[info.name] = []
    for entry in entries:
        by_layer.setdefault(entry.layer, []).append(entry)
    layers = _layer_order(set(by_layer))
    outdir.mkdir(parents=True, exist_ok=True)
    pages = {"index.rst": index_page(layers, entries)}
    others: list[str] = []
    for layer in layers:
        pages[f"{layer}.rst"] = layer_page(layer, by_layer[layer], entries, others)
    for filename, text in pages.items():
        _write_if_changed(outdir / filename, text)
    for stale in outdir.glob("*.rst"):
        if stale.name not in pages:
            stale.unlink(missing_ok=True)
    return entries, others


# --- cross-references to defining paths ------------------------------------------------------


def _walk(path: str) -> tuple[int, list[Any]]:
    """Imports the longest module prefix of a dotted path, then follows attributes.

    Returns how many parts name the module, and the objects reached: ``a.b.C.m`` gives
    ``(2, [module a.b, C, C.m])``; the list stops early at a missing attribute.
    """
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        objects = [obj]
        for attribute in parts[split:]:
            try:
                obj = getattr(obj, attribute)
            except AttributeError:
                break
            objects.append(obj)
        return split, objects
    return 0, []


def _exists(path: str) -> bool:
    split, objects = _walk(path)
    return bool(objects) and split + len(objects) - 1 == len(path.split("."))


def _public_alias(target: str, by_id: dict[int, str]) -> str | None:
    """``target`` with its longest prefix that is a public object renamed to the public name."""
    parts = target.split(".")
    split, objects = _walk(target)
    for index in range(len(objects) - 1, -1, -1):  # objects[i] is parts[: split + i]
        public = by_id.get(id(objects[index]))
        if public is not None:
            return ".".join([public, *parts[split + index :]])
    return None


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if target.startswith("ol."):  # the pages write ``ol.adam`` as users do
        target = "optlab." + target[3:]
        node["reftarget"] = target
    module = node.get("py:module")
    key = (target, module, node.get("py:class"), node["reftype"], node.get("refspecific"))
    known = env.app.optlab_resolved.get(key, ())  # the same reference seen before: its answer
    if known is None or known == "text":
        return None if known is None else contnode
    if known:
        return _domain_resolve(app, env, node, contnode, known)
    answer = _resolve(app, env, node, contnode, target, module)
    if answer is None or answer == "text":
        env.app.optlab_resolved[key] = answer
        return None if answer is None else contnode
    env.app.optlab_resolved[key] = answer[0]
    return answer[1]


def _domain_resolve(app, env, node, contnode, alias):
    return env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], alias, node, contnode
    )


def _resolve(app, env, node, contnode, target, module):
    """Resolves a reference the first time: ``(alias, node)``, ``"text"`` or ``None``."""
    by_id = env.app.optlab_public_ids
    candidates = [target]
    if module:
        candidates.insert(0, f"{module}.{target}")
        if not target.startswith("optlab"):
            candidates.insert(0, f"{module}.{node.get('py:class')}.{target}")
    domain = env.get_domain("py")
    # A bare name (``Run``, ``ScheduleSpec.check``): the one documented object of that name.
    first, _, rest = target.partition(".")
    if not target.startswith("optlab."):
        names = env.app.optlab_documented
        matches = [name for name in names if name.rsplit(".", 1)[-1] == first]
        candidates += [f"{matches[0]}.{rest}".rstrip(".")] if len(matches) == 1 else []
    for candidate in candidates:
        if not candidate.startswith("optlab.") or "None" in candidate.split("."):
            continue
        alias = _public_alias(candidate, by_id) or candidate
        resolved = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], alias, node, contnode
        )
        if resolved is not None:
            return alias, resolved
    for candidate in candidates:  # an object that exists but has no entry (a constant): text
        if candidate.startswith("optlab.") and _exists(candidate):
            return "text"
    return None


def public_ids(entries: list[PublicName]) -> dict[int, str]:
    """``{id(obj): public name}`` of the objects that have an identity of their own.

    Classes, functions and modules only: a type alias (``optlab.Params`` is ``typing.Any``) or a
    constant is not something a docstring's path could be meant to designate.
    """
    ids: dict[int, str] = {}
    for entry in entries:
        obj = entry.obj
        if inspect.isclass(obj) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__"):
            ids.setdefault(id(obj), entry.name)
    return ids


def _builder_inited(app) -> None:
    srcdir = pathlib.Path(app.srcdir)
    extra = tuple(app.config.optlab_api_extra_namespaces)
    entries, others = generate(srcdir / "api", extra)
    app.optlab_public_ids = public_ids(entries)
    app.optlab_documented = [entry.name for entry in entries] + others
    # Each reference's answer, ``{(target, module, class, type, specific): alias, "text" or
    # None}``: the same type annotation recurs in hundreds of signatures, and finding it again
    # (imports, the domain's suffix searches) was a tenth of the build.
    app.optlab_resolved = {}


def _skip_member(app, what, name, obj, skip, options):
    """A NamedTuple's fields are its signature; its ``Attributes:`` section describes them."""
    if what in ("class", "exception") and type(obj).__name__ == "_tuplegetter":
        return True
    return None


_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([^']*)'\)")


def _process_signature(app, what, name, obj, options, signature, return_annotation):
    """``Numeric | None`` rather than ``TypeAliasForwardRef('Numeric') | None``.

    Sphinx 9 substitutes ``autodoc_type_aliases`` inside unions and ``Callable[...]`` as the
    repr of its forward reference; this puts the alias's name back. A dataclass field made by
    ``default_factory=dict`` shows as ``dict()``.
    """
    if signature is None and return_annotation is None:
        return None
    fix = lambda text: _FORWARD_REF.sub(r"\1", text) if text else text
    signature = fix(signature)
    if signature and "<factory>" in signature and dataclasses.is_dataclass(obj):
        # A field's default_factory shows as ``<factory>``, which no signature parser reads.
        for field in dataclasses.fields(obj):
            if field.default_factory is not dataclasses.MISSING:
                made = f"{getattr(field.default_factory, '__name__', 'factory')}()"
                signature = signature.replace("<factory>", made, 1)
    return signature, fix(return_annotation)


def setup(app) -> dict[str, Any]:
    app.add_config_value("optlab_api_extra_namespaces", (), "env")
    app.connect("builder-inited", _builder_inited)
    app.connect("missing-reference", _missing_reference)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-signature", _process_signature)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
