"""``linqrag``: the one command. Each subcommand is a package's own, run by that package's ``main``:

    linqrag build --corpus DIR      is  python -m indexing build --corpus DIR
    linqrag serve                   is  python -m app serve

so the flags, the ``--help`` text, the one ``error:`` line and the exit codes are the package's (only the
usage line says ``linqrag build``), and ``python -m PACKAGE SUBCOMMAND`` keeps working. ``linqrag --help``
imports no package CLI (they load torch); ``linqrag SUBCOMMAND`` imports only its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from linqrag.errors import run_as, subcommand_parser


def _app() -> ModuleType:
    from app import cli

    return cli


def _indexing() -> ModuleType:
    from indexing import cli

    return cli


def _embedder() -> ModuleType:
    from embedder import cli

    return cli


def _finetune() -> ModuleType:
    from finetune import cli

    return cli


def _eval() -> ModuleType:
    from eval import cli

    return cli


@dataclass(frozen=True)
class Subcommand:
    """``linqrag NAME`` runs ``python -m PACKAGE TARGET``; ``summary`` is its line in ``linqrag --help``
    (the package parser's own help line for it: ``tests/test_commands.py`` checks they agree)."""

    name: str
    package: str
    target: str
    summary: str
    cli: Callable[[], ModuleType]

    @property
    def module_command(self) -> str:
        return f"python -m {self.package} {self.target}"


SUBCOMMANDS: dict[str, Subcommand] = {c.name: c for c in (
    Subcommand("serve", "app", "serve", "index the demo corpus (incrementally) and serve the app on loopback", _app),
    Subcommand("api", "app", "api",
               "serve the embedder (OpenAI-compatible /v1/embeddings) and the retrievers (/search)", _app),
    Subcommand("build-demo", "app", "build-demo", "only index the demo corpus", _app),
    Subcommand("build", "indexing", "build", "index a corpus directory (incremental)", _indexing),
    Subcommand("search", "indexing", "search", "query an index", _indexing),
    Subcommand("stats", "indexing", "stats", "describe the indexes in a directory", _indexing),
    Subcommand("embed-demo", "embedder", "demo", "print query/passage similarities", _embedder),
    Subcommand("encode", "embedder", "encode", "encode texts (arguments or stdin lines)", _embedder),
    Subcommand("presets", "embedder", "presets", "list the named embedders", _embedder),
    Subcommand("finetune", "finetune", "domain", "adapt an embedder to a document collection (resumable)", _finetune),
    Subcommand("export", "finetune", "export", "merge a LoRA adapter into its base for serving engines", _finetune),
    Subcommand("eval", "eval", "score",
               "score a model or checkpoint on a suite and write eval-<suite>.json beside it", _eval),
    Subcommand("compare", "eval", "compare", "rank runs of one suite: a table and a plot, BM25 always included",
               _eval),
    Subcommand("suites", "eval", "suites", "list the suites, their tasks and whether the local data is present",
               _eval),
)}


#: The headings of ``linqrag --help``, one per package, in the order of :data:`SUBCOMMANDS`.
GROUPS = {"app": "the app", "indexing": "indexes", "embedder": "embedders", "finetune": "domain adaptation",
          "eval": "evaluation"}


def subcommand_list() -> str:
    """The subcommands under their packages' headings, each with its one-line summary."""
    width = max(len(c.name) for c in SUBCOMMANDS.values())
    lines = []
    for package, heading in GROUPS.items():
        commands = [c for c in SUBCOMMANDS.values() if c.package == package]
        renamed = "".join(f"; {c.name} is its {c.target}" for c in commands if c.name != c.target)
        lines.append(f"{heading} (python -m {package}{renamed}):")
        lines += [f"  {c.name:<{width}}  {c.summary}" for c in commands]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The top level only: one line per subcommand. A subcommand's flags are its package's parser
    (:func:`parser_of`), built when it runs."""
    parser = argparse.ArgumentParser(
        prog="linqrag", usage="linqrag [-h] SUBCOMMAND ...", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Retrieval and RAG with LLM embedders, and domain adaptation of the embedder.\n\n"
                    + subcommand_list(),
        epilog="`linqrag SUBCOMMAND --help` shows its flags. `linqrag SUBCOMMAND` is `python -m PACKAGE "
               "SUBCOMMAND` with the same flags, help and exit codes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND", help=argparse.SUPPRESS)
    for command in SUBCOMMANDS.values():
        sub.add_parser(command.name, add_help=False)
    return parser


def parser_of(name: str) -> argparse.ArgumentParser:
    """The parser ``linqrag NAME`` runs: its package's, named ``linqrag NAME``."""
    command = SUBCOMMANDS[name]
    return subcommand_parser(command.cli().build_parser(), command.target, f"linqrag {name}")


def run(name: str, argv: Sequence[str]) -> int:
    """``linqrag NAME ARGV...``: the package's ``main`` on ``TARGET ARGV...``."""
    command = SUBCOMMANDS[name]
    with run_as(command.target, f"linqrag {name}"):
        return command.cli().main([command.target, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    """The ``linqrag`` console script (``[project.scripts]`` in pyproject.toml)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return run(argv[0], argv[1:])
    build_parser().parse_args(argv)  # --help (exit 0), or no or an unknown subcommand (usage, exit 2)
    return 0
