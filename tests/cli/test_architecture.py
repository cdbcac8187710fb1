"""The layer rules docs/architecture.md states, checked on the source: every import of every module (also the
ones inside functions, which run later but still tie the layers) is read with `ast` and mapped to the part of
the package it reaches."""

import ast
from pathlib import Path

import pytest

from testing_utils.fixtures import REPO_ROOT

PACKAGE = "spectrogram_transformers"
# top-level folders that setup.py maps into the package (`modeling/` is `spectrogram_transformers.modeling`)
MAPPED_FOLDERS = ("modeling", "feature_extraction", "training", "hub_configs")
APPLICATIONS = {"inference", "detection", "pipelines", "plotting", "demo", "onnx_export", "archive"}


def dotted_name(path: Path) -> str:
    """The module name of a source file, e.g. modeling/ast/modeling_ast.py -> spectrogram_transformers.modeling.ast.modeling_ast."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[0] != PACKAGE:
        parts.insert(0, PACKAGE)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    files = []
    for folder in (PACKAGE, *MAPPED_FOLDERS):
        files += [path for path in sorted((REPO_ROOT / folder).rglob("*.py")) if "__pycache__" not in path.parts]
    return files


def imports_of(path: Path, top_level_only: bool = False) -> set[str]:
    """The package modules (dotted names) a file imports; `from X import Y` counts as X and X.Y."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    module_parts = dotted_name(path).split(".")
    is_package = path.name == "__init__.py"
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts if is_package else module_parts[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def part_of(module: str) -> str:
    """The part of the package a module belongs to: `modeling`, `modeling.remote_code`, `cli`, `detection`, ..."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    if parts[:2] == ["modeling", "remote_code"]:
        return "modeling.remote_code"
    return parts[0]


def reached_parts(part: str, top_level_only: bool = False) -> dict[str, set[str]]:
    """part reached -> the files of `part` that import it."""
    reached: dict[str, set[str]] = {}
    for path in source_files():
        if part_of(dotted_name(path)) not in (part, *([f"{part}.remote_code"] if part == "modeling" else [])):
            continue
        for module in imports_of(path, top_level_only):
            reached.setdefault(part_of(module), set()).add(str(path.relative_to(REPO_ROOT)))
    return reached


RULES = [
    # (part, parts it must not import, why)
    ("modeling", {"training", "cli", *APPLICATIONS}, "a model is usable, saved and loaded without the applications"),
    ("feature_extraction", {"training", "cli", "modeling", *APPLICATIONS}, "front ends stand below the models"),
    (
        "inference",
        {"training", "cli", *(APPLICATIONS - {"inference"})},
        "the classifier core stands below every application (its ONNX runner included)",
    ),
    ("detection", {"training", "cli"}, "applications run on a base install"),
    ("pipelines", {"training", "cli"}, "applications run on a base install"),
    ("plotting", {"training", "cli"}, "applications run on a base install"),
    ("demo", {"training", "cli"}, "applications run on a base install"),
    ("onnx_export", {"training", "cli"}, "applications run on a base install"),
    ("training", {"cli"}, "the command line drives training, not the reverse"),
    (
        "hub_configs",
        {"__init__", "modeling", "feature_extraction", "training", "cli", *APPLICATIONS},
        "variants are data",
    ),
]


@pytest.mark.parametrize(("part", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_layer_rule(part, forbidden, why):
    reached = reached_parts(part)
    broken = {name: sorted(files) for name, files in reached.items() if name in forbidden}
    assert not broken, f"{part} must not import {sorted(broken)} ({why}): {broken}"


def test_rules_see_the_imports_they_judge():
    """The reader finds the imports that exist (a rule over an empty set would pass for nothing)."""
    assert "modeling.remote_code" in reached_parts("modeling")
    assert "feature_extraction" in reached_parts("inference")
    assert {"modeling", "feature_extraction"} <= set(reached_parts("training"))


def test_feature_extraction_reaches_modeling_only_for_remote_code():
    """A saved HTS-AT feature extractor carries its generated code: the one way feature_extraction may reach modeling."""
    reached = reached_parts("feature_extraction")
    assert "modeling" not in reached
    assert set(reached) <= {"feature_extraction", "modeling.remote_code"}, sorted(reached)


def test_one_logger():
    """Every module logs through transformers.utils.logging (one convention, one verbosity switch), never stdlib logging."""
    offenders = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Import) and any(alias.name == "logging" for alias in node.names)) or (
                isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "logging"
            ):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert not offenders, offenders
