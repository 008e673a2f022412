"""Imports flow one way: app -> db <- worker -> list_engine. Every import statement under
db/, worker/ and list_engine/ (at any depth: lazy imports inside functions count too) is
checked against the packages that layer may use."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# layer -> the project's top-level packages it must never import
FORBIDDEN = {
    "list_engine": {"app", "db", "worker", "streamlit"},  # the library stands alone
    "db": {"app", "worker", "list_engine", "streamlit"},
    "worker": {"app", "streamlit"},
}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(layer: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {package}"
            for path in sorted((ROOT / layer).rglob("*.py"))
            for line, package in imported_packages(path) if package in FORBIDDEN[layer]]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_against_the_flow(layer):
    assert violations(layer) == []


def test_the_checker_sees_lazy_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from app.services.labelling import x\n    import app\n"
                      "from . import sibling\n")
    assert imported_packages(source) == [(2, "app"), (3, "app")]
