"""Generate the remote-code modules (one shared, one thin module per family) from the package source.

    python -m spectrogram_transformers.modeling.remote_code.generate           # rewrite the modules
    python -m spectrogram_transformers.modeling.remote_code.generate --check   # exit 1 if one is stale

`transformers` copies a custom-code module and its sibling relative imports into one flat folder, so the
package's nested imports (`from ..pos_embed import ...`) cannot travel. This tool inlines them, as `transformers`
turns `modular_*.py` into `modeling_*.py`: starting from the modules that define a family's Auto classes, it
follows every relative import (also the lazy ones inside functions), keeps only the top-level statements the
family's classes reach (by the names they use, resolved module by module), and writes them in dependency order
below the external imports. What two or more families reach goes once into `spectrogram_transformers_shared.py`;
each family module holds the rest and imports the shared one (`from .spectrogram_transformers_shared import
...`). Two different definitions that would land on one name are an error naming both modules, never a silent
shadowing. Every output starts with a do-not-edit banner; `tests/models/test_remote_code.py` fails when a file
differs from what this tool generates now."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import REMOTE_CODE_CLASSES, REMOTE_CODE_PIPELINE, SHARED_MODULE, module_name

__all__ = ["ROOT_MODULES", "GenerationError", "generate_files", "generate_module", "main"]

PACKAGE = "spectrogram_transformers"
# modules defining each family's Auto classes (relative to the package); everything else is found from them
ROOT_MODULES: dict[str, tuple[str, ...]] = {
    "ast": (
        "modeling.ast.configuration_ast",
        "modeling.ast.modeling_ast",
        "feature_extraction.feature_extraction_ast",
    ),
    "ssast": (
        "modeling.ssast.configuration_ssast",
        "modeling.ssast.modeling_ssast",
        "feature_extraction.feature_extraction_ast",
    ),
    "htsat": (
        "modeling.htsat.configuration_htsat",
        "modeling.htsat.modeling_htsat",
        "feature_extraction.feature_extraction_htsat",
    ),
}


# the module defining REMOTE_CODE_PIPELINE, which every family's directory ships (config.json's custom_pipelines)
PIPELINE_MODULE = "pipelines"


class GenerationError(RuntimeError):
    """The package source cannot be flattened as it is (a name clash, a star import, a module import)."""


@dataclass
class _Statement:
    module: str
    node: ast.stmt
    defines: set[str] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)
    # names this statement takes from other package modules: (module, name) -- top-level or lazy imports
    imports_from: list[tuple[str, str]] = field(default_factory=list)
    external_import: str | None = None  # canonical text of an external import binding exactly one name
    alias_of: tuple[str, str] | None = None  # `from .x import a as b` -> b = a


@dataclass
class _Module:
    name: str
    path: Path
    source: str
    statements: list[_Statement]
    bindings: dict[str, _Statement]
    top_level_dependencies: list[str]


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise GenerationError(f"cannot find module {name}")
    return Path(spec.origin)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    package = module if is_package else module.rpartition(".")[0]
    return importlib.util.resolve_name("." * node.level + (node.module or ""), package)


def _bound_names(node: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the module namespace."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    if isinstance(node, (ast.If, ast.Try, ast.With, ast.For)):
        names = set()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
        for handler in getattr(node, "handlers", []):
            for child in handler.body:
                names |= _bound_names(child)
        return names
    return set()


def _parse_module(name: str) -> _Module:
    path = _module_path(name)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    is_package = path.name == "__init__.py"
    statements, bindings, dependencies = [], {}, []
    body = tree.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the module docstring
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            continue
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            target = _resolve(name, node, is_package)
            if node.module is None:
                raise GenerationError(
                    f"{name}: `from {'.' * node.level} import ...` imports modules; import names instead"
                )
            dependencies.append(target)
            for alias in node.names:
                if alias.name == "*":
                    raise GenerationError(f"{name}: star import from {target}")
                statement = _Statement(
                    name, node, defines={alias.asname or alias.name}, imports_from=[(target, alias.name)]
                )
                if alias.asname and alias.asname != alias.name:
                    statement.alias_of = (alias.asname, alias.name)
                statements.append(statement)
                bindings[alias.asname or alias.name] = statement
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if isinstance(node, ast.Import):
                    text = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                    bound = alias.asname or alias.name.split(".")[0]
                else:
                    text = f"from {node.module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                    bound = alias.asname or alias.name
                statement = _Statement(name, node, defines={bound}, external_import=text)
                statements.append(statement)
                bindings[bound] = statement
            continue
        statement = _Statement(name, node, defines=_bound_names(node))
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                statement.uses.add(child.id)
            elif isinstance(child, ast.ImportFrom) and child.level > 0:  # a lazy import inside a function
                target = _resolve(name, child, is_package)
                if child.module is None:
                    raise GenerationError(f"{name}: lazy `from . import ...` of modules is not supported")
                statement.imports_from += [(target, alias.name) for alias in child.names]
        statements.append(statement)
        for bound in statement.defines:
            bindings[bound] = statement
    return _Module(name, path, source, statements, bindings, dependencies)


def _load_modules(roots: list[str]) -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    pending = list(roots)
    while pending:
        name = pending.pop(0)
        if name in modules:
            continue
        modules[name] = _parse_module(name)
        for statement in modules[name].statements:
            pending += [target for target, _ in statement.imports_from if target not in modules]
    return modules


def _definition(modules: dict[str, _Module], module: str, name: str, seen=()) -> _Statement | None:
    """The statement that really defines `name` as seen from `module` (following relative re-imports)."""
    binding = modules[module].bindings.get(name)
    if binding is None:
        return None
    if binding.imports_from and binding.external_import is None and isinstance(binding.node, ast.ImportFrom):
        target, original = binding.imports_from[0]
        if (target, original) in seen:
            raise GenerationError(f"import cycle for {name} via {target}")
        if target not in modules:
            raise GenerationError(f"{module} imports {original} from {target}, which was not loaded")
        resolved = _definition(modules, target, original, (*seen, (target, original)))
        if resolved is None:
            raise GenerationError(f"{module} imports {original} from {target}, which does not define it")
        return resolved
    return binding


def _reachable(modules: dict[str, _Module], roots: list[tuple[str, str]]) -> list[_Statement]:
    kept: dict[int, _Statement] = {}
    aliases: list[_Statement] = []
    pending = list(roots)
    while pending:
        module, name = pending.pop()
        binding = modules[module].bindings.get(name)
        if binding is not None and binding.alias_of is not None and id(binding) not in kept:
            kept[id(binding)] = binding
            aliases.append(binding)
        statement = _definition(modules, module, name)
        if statement is None or id(statement) in kept:
            continue
        kept[id(statement)] = statement
        pending += [(statement.module, used) for used in sorted(statement.uses)]
        pending += statement.imports_from
    return list(kept.values())


def _order(modules: dict[str, _Module]) -> list[str]:
    """Modules with their top-level relative imports first (lazy imports do not constrain the order)."""
    ordered: list[str] = []

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        if name in ordered:
            return
        if name in stack:
            raise GenerationError(f"top-level import cycle: {' -> '.join((*stack, name))}")
        for dependency in modules[name].top_level_dependencies:
            visit(dependency, (*stack, name))
        ordered.append(name)

    for name in modules:
        visit(name)
    return ordered


def _statement_text(module: _Module, statement: _Statement) -> str:
    """Source lines of a statement (with its decorators and the comment lines right above it); lazy relative
    imports inside become `pass`, or `alias = name` where they rename."""
    lines = module.source.splitlines()
    node = statement.node
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    while start > 1 and lines[start - 2].lstrip().startswith("#"):
        start -= 1
    chunk = {number: lines[number - 1] for number in range(start, node.end_lineno + 1)}
    for child in ast.walk(node):
        if isinstance(child, ast.ImportFrom) and child.level > 0:
            indent = " " * child.col_offset
            renames = [f"{indent}{a.asname} = {a.name}" for a in child.names if a.asname and a.asname != a.name]
            for number in range(child.lineno, child.end_lineno + 1):
                chunk[number] = None
            chunk[child.lineno] = "\n".join(renames) or f"{indent}pass  # inlined: {ast.unparse(child)}"
    return "\n".join(line for line in chunk.values() if line is not None)


BANNER = (
    "# GENERATED FILE: DO NOT EDIT. Written by `python -m spectrogram_transformers.modeling.remote_code.generate`\n"
    "# from the package source; change the package and regenerate (tests/models/test_remote_code.py checks it).\n"
)


def _roots(modules: dict[str, _Module], root_modules: list[str], class_names: list[str]) -> list[tuple[str, str]]:
    roots = []
    for class_name in class_names:
        owners = [name for name in root_modules if class_name in modules[name].bindings]
        owners += [name for name, module in modules.items() if class_name in module.bindings and name not in owners]
        defining = [name for name in owners if _definition(modules, name, class_name).module == name]
        if not defining:
            raise GenerationError(f"no module of {', '.join(root_modules)} defines {class_name}")
        roots.append((defining[0], class_name))
    return roots


def _reached(modules: dict[str, _Module], roots: list[tuple[str, str]]) -> list[_Statement]:
    """Every statement `roots` reach, in dependency order (identical copies of a definition included)."""
    position = _position(modules)
    return sorted(_reachable(modules, roots), key=lambda statement: position[id(statement)])


def _position(modules: dict[str, _Module]) -> dict[int, tuple[int, int]]:
    order = _order(modules)
    return {
        id(statement): (order.index(name), index)
        for name in order
        for index, statement in enumerate(modules[name].statements)
    }


def _dedup(statements: list[_Statement], title: str) -> list[_Statement]:
    """One statement per flat name: identical copies collapse to the first; different meanings are an error."""
    by_name: dict[str, _Statement] = {}
    for statement in statements:
        for name in statement.defines:
            other = by_name.get(name)
            if other is None or other is statement:
                by_name[name] = statement
                continue
            same_import = other.external_import is not None and other.external_import == statement.external_import
            same_code = ast.dump(other.node) == ast.dump(statement.node) and not other.external_import
            if not (same_import or same_code):
                raise GenerationError(
                    f"{title}: {name!r} is defined differently in {other.module} and {statement.module}; "
                    "rename one (or import it from the other) so the flat module has one meaning per name"
                )
    kept_ids = {id(s) for s in by_name.values()} | {id(s) for s in statements if s.alias_of}
    return [statement for statement in statements if id(statement) in kept_ids]


def _render(modules: dict[str, _Module], statements: list[_Statement], docstring: str, shared_import: str = "") -> str:
    """A flat module: banner, docstring, external imports, `shared_import`, then the statements grouped by the
    package module they come from."""
    imports = sorted({s.external_import for s in statements if s.external_import})
    plain = [text for text in imports if text.startswith("import ")]
    from_imports = [text for text in imports if text.startswith("from ")]
    order = _order(modules)
    sources = []
    for module_name_ in order:
        module = modules[module_name_]
        chosen = {id(s) for s in statements if s.module == module_name_}
        texts = []
        for statement in module.statements:
            if id(statement) not in chosen or statement.external_import:
                continue
            if statement.alias_of is not None:
                texts.append(f"{statement.alias_of[0]} = {statement.alias_of[1]}")
            elif not isinstance(statement.node, ast.ImportFrom):
                texts.append(_statement_text(module, statement))
        if texts:
            sources.append(f"# ---- from {module_name_} " + "-" * max(0, 100 - len(module_name_) - 13))
            sources.append("\n\n\n".join(texts))
    # postponed annotations: feature-extraction modules annotate with classes defined further down
    future = "from __future__ import annotations"
    parts = [BANNER + f'"""{docstring}\n"""', "", future, "", *plain, *from_imports]
    if shared_import:
        parts += ["", shared_import]
    return "\n".join([*parts, "", "", "\n\n\n".join(sources), ""])


def _source_list(statements: list[_Statement]) -> str:
    names = sorted({s.module.removeprefix(f"{PACKAGE}.") for s in statements if not s.external_import})
    return ", ".join(names)


def generate_module(root_modules: list[str], class_names: list[str], title: str) -> str:
    """One flat module holding `class_names` (defined in `root_modules`) and everything they reach."""
    modules = _load_modules(root_modules)
    statements = _dedup(_reached(modules, _roots(modules, root_modules, class_names)), title)
    docstring = f"{title} as one self-contained module.\n\nFrom the package modules {_source_list(statements)}."
    return _render(modules, statements, docstring)


def generate_files() -> dict[str, str]:
    """File name -> text of every generated module: the shared one and one thin module per family.

    A statement two or more families reach goes to the shared module once; a family module holds the rest of
    its family and imports its share from the shared module with a sibling relative import, which transformers
    copies along when it loads the family module as remote code.
    """
    roots = {
        family: [f"{PACKAGE}.{root}" for root in (*modules, PIPELINE_MODULE)]
        for family, modules in ROOT_MODULES.items()
    }
    modules = _load_modules([root for family_roots in roots.values() for root in family_roots])
    reached = {
        family: _reached(
            modules, _roots(modules, roots[family], [*REMOTE_CODE_CLASSES[family].values(), REMOTE_CODE_PIPELINE])
        )
        for family in ROOT_MODULES
    }
    for family, statements in reached.items():
        _dedup(statements, f"{family} family")  # each family alone has one meaning per name
    count: dict[int, int] = {}
    for statements in reached.values():
        for statement in statements:
            count[id(statement)] = count.get(id(statement), 0) + 1
    shared_ids = {identity for identity, families in count.items() if families > 1}
    everything = {id(s): s for statements in reached.values() for s in statements}
    position = _position(modules)
    shared = _dedup(sorted((everything[i] for i in shared_ids), key=lambda s: position[id(s)]), "the shared module")
    files = {
        f"{SHARED_MODULE}.py": _render(
            modules,
            shared,
            "What the AST, SSAST and HTS-AT families of spectrogram-transformers share, for transformers'\n"
            "`trust_remote_code=True`: the family modules beside this file import it.\n\n"
            f"From the package modules {_source_list(shared)}.",
        )
    }
    for family, statements in reached.items():
        # names the family takes from the shared module (external imports are repeated, not re-exported)
        imported = sorted(
            {name for s in statements if id(s) in shared_ids and not s.external_import for name in s.defines}
        )
        # the family's own statements and all its external imports; identical copies of what it takes from the
        # shared module are left out
        own = _dedup(
            [
                s
                for s in statements
                if s.external_import or (id(s) not in shared_ids and not (s.defines and s.defines <= set(imported)))
            ],
            family,
        )
        shared_import = (
            f"from .{SHARED_MODULE} import (  # noqa: F401\n" + "".join(f"    {name},\n" for name in imported) + ")"
        )
        files[f"{module_name(family)}.py"] = _render(
            modules,
            own,
            f"The {family.upper()} family of spectrogram-transformers for transformers' `trust_remote_code=True`\n"
            "(the Auto classes and pipeline load a saved directory without the package); what the families share\n"
            f"is in `{SHARED_MODULE}.py`, copied beside it.\n\n"
            f"From the package modules {_source_list(own) or '(none of its own)'}.",
            shared_import,
        )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale modules (exit status 1)")
    args = parser.parse_args(argv)
    directory = Path(__file__).parent
    stale = []
    files = generate_files()
    for name, text in files.items():
        path = directory / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python -m spectrogram_transformers.modeling.remote_code.generate")
        return 1
    print(("regenerated: " + ", ".join(stale)) if stale else "remote code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
