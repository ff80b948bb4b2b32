"""The package map holds: each package imports only the floors below it (README, "Layout").

Read from the source with ``ast``, so a lazy import inside a function counts as much as one at
the top: an arrow back up is a cycle waiting to happen whichever way it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the packages it may import (its floors below); the README's Layout table says the same
MAY_IMPORT: dict[str, set[str]] = {
    "linqrag": set(),
    "corpora": {"linqrag"},
    "embedder": {"linqrag"},
    "indexing": {"linqrag", "corpora", "embedder"},
    "answers": {"linqrag", "corpora", "embedder", "indexing"},
    "eval": {"linqrag", "corpora", "embedder", "indexing"},
    "finetune": {"linqrag", "corpora", "embedder", "indexing", "eval"},
    "app": {"linqrag", "corpora", "embedder", "indexing", "answers", "eval", "finetune"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(MAY_IMPORT)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_floors_below_it(package):
    folder = ROOT / package
    if not folder.is_dir():
        pytest.skip(f"{package}/ is not in this checkout")
    climbing = {f"{path.relative_to(ROOT)} -> {other}"
                for path in sorted(folder.rglob("*.py"))
                for other in imported_packages(path) - MAY_IMPORT[package] - {package}}
    assert not climbing, sorted(climbing)


def test_every_package_is_on_the_map():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages <= set(MAY_IMPORT), packages - set(MAY_IMPORT)


def test_every_cli_package_has_the_same_shape():
    """``python -m PACKAGE`` is three lines over ``PACKAGE/cli.py``."""
    for main in sorted(ROOT.glob("*/__main__.py")):
        code = [line for line in main.read_text(encoding="utf-8").splitlines() if line.strip()]
        package = main.parent.name
        assert (main.parent / "cli.py").is_file(), f"{package} has no cli.py"
        assert code[-2:] == [f"from {package}.cli import main", "sys.exit(main())"], code
        assert len(code) <= 4, code
