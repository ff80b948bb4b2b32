"""The built-in demo corpus: linqrag's own documentation, written out so the app has something to
search on a fresh machine with no data."""

from __future__ import annotations

import ast
from pathlib import Path

from linqrag.settings import cache_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: README.md and docs/*.md as an installed wheel carries them (setup.py copies them here when it builds)
PACKAGED_GUIDE = Path(__file__).resolve().with_name("demo_docs")
#: The corpus name of the demo index (``python -m app serve``, the Index page); the app opens on it first.
DEMO_CORPUS_NAME = "linqrag-docs"
PACKAGES = ("linqrag", "embedder", "corpora", "indexing", "finetune", "eval", "app")


def demo_documents() -> dict[str, str]:
    """``{file name: markdown}``: the README, the user guide (``docs/*.md``) and, per module, its docstrings."""
    docs: dict[str, str] = {}
    guide = guide_root()
    readme = guide / "README.md"
    if readme.exists():
        docs["README.md"] = readme.read_text(encoding="utf-8")
    for page in sorted((guide / "docs").glob("*.md")):
        docs[f"docs/{page.name}"] = page.read_text(encoding="utf-8")
    for package in PACKAGES:
        for module in sorted((PROJECT_ROOT / package).rglob("*.py")):  # subpackages too (linqrag.generation)
            tree = ast.parse(module.read_text(encoding="utf-8"))
            parts = [ast.get_docstring(tree) or ""]
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
                    kind = "class" if isinstance(node, ast.ClassDef) else "function"
                    parts.append(f"## {kind} `{node.name}`\n\n{ast.get_docstring(node)}")
            body = "\n\n".join(p for p in parts if p)
            if len(body) > 80:
                relative = module.relative_to(PROJECT_ROOT)
                dotted = ".".join(relative.with_suffix("").parts)
                if len(relative.parts) > 2 and module.stem == "__init__":  # a subpackage: named as imported
                    dotted = dotted.removesuffix(".__init__")
                docs[f"{dotted}.md"] = f"# Module `{relative.as_posix()}`\n\n{body}\n"
    return docs


def guide_root() -> Path:
    """Where README.md and docs/ are read: the checkout (it has pyproject.toml), else the installed wheel's copy."""
    return PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else PACKAGED_GUIDE


def demo_corpus_dir(target: Path | None = None) -> Path:
    """Write the demo corpus (only files whose text changed, so rebuilds stay incremental)."""
    target = target or cache_dir() / "demo-corpus"
    target.mkdir(parents=True, exist_ok=True)
    docs = demo_documents()
    for name, text in docs.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in target.rglob("*.md"):
        if stale.relative_to(target).as_posix() not in docs:
            stale.unlink()
    return target
