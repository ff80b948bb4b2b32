"""The package map holds: each package imports only the floors below it (README, "Layout"); and
no module imports itself back, through any chain of modules, anywhere in the project.

Read from the source with ``ast``, so a lazy import inside a function counts as much as one at
the top: an arrow back up is a cycle waiting to happen whichever way it is written. Two kinds of
block are not imports of the module they sit in, and the module check leaves them out:
``if TYPE_CHECKING:`` (never run: it names a type for the checker) and ``if __name__ ==
"__main__":`` (run only as the ``__main__`` module, a module of its own, when the file is a
command). An import of ``a.b.c`` is an arrow to the module ``a.b.c``, not to the packages above it
(whose ``__init__`` Python runs first): a package's ``__init__`` gathers its modules' names, so
counting it would make every module of a package a cycle with its own ``__init__``.
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


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: every module of the project's packages, by dotted name
MODULES: dict[str, Path] = {_module_name(path): path for package in MAY_IMPORT if (ROOT / package).is_dir()
                            for path in sorted((ROOT / package).rglob("*.py"))}


def _not_run_on_import(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` (see the module's docstring)."""
    if isinstance(test, ast.Name | ast.Attribute):
        return (test.id if isinstance(test, ast.Name) else test.attr) == "TYPE_CHECKING"
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _imports_run(tree: ast.AST):
    """The import statements of ``tree`` that run when the module is imported or its functions called."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _not_run_on_import(node.test):
            yield from (n for child in node.orelse for n in _imports_run_in(child))
            continue
        yield from _imports_run_in(node)


def _imports_run_in(node: ast.AST):
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports_run(node)


def _known_module(name: str) -> str | None:
    """``name`` or the nearest module above it (``a.b.func`` is in ``a.b``); None outside the project."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(module: str) -> set[str]:
    """The project modules ``module`` imports (``from a import b`` names the module ``a.b`` when there
    is one, else ``a``); relative imports resolved."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _imports_run(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(_known_module(alias.name) for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        found.update(_known_module(f"{base}.{alias.name}") for alias in node.names)
    return found - {None, module}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import that closes a loop, as the loop (``a -> b -> ... -> a``): depth first from every module."""
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        path.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target, path)
        path.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    return cycles


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


def test_no_module_imports_itself_back():
    graph = {module: imported_modules(module) for module in MODULES}
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_check_sees_lazy_imports_and_skips_blocks_that_do_not_run():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    source = ("import os\nif TYPE_CHECKING:\n    import typed\nelse:\n    import other\n"
              "def f():\n    from lazy import g\nif __name__ == '__main__':\n    import command\n")
    assert {node.names[0].name for node in _imports_run(ast.parse(source))} == {"os", "other", "g"}
    assert imported_modules("finetune.domain") >= {"finetune.config", "finetune.train"}  # train: in a function
    assert "finetune.cli" not in imported_modules("finetune.domain")  # only under __name__ == "__main__"
