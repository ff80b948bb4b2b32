"""One base for every error a user can fix, and the one way a CLI reports it.

Each package raises its own subclass (a corpus it cannot read, a model that is not here, an
index built with another embedder); a CLI catches only :class:`LinqragError`, prints one
``error:`` line and exits 2, so a real bug still surfaces with its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

#: The exit status of a run stopped by a :class:`LinqragError` (argparse uses it for bad flags too).
EXIT_USAGE = 2


class LinqragError(Exception):
    """A problem the user can fix; the message says what went wrong and what to do."""


class ConfigError(LinqragError, ValueError):
    """A setting or a config file that cannot be used as given."""


class ModelNotFoundError(LinqragError, RuntimeError):
    """A model's weights are not on this machine; the message says how to get them."""


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a CLI's ``main``: a :class:`LinqragError` becomes one ``error:`` line and exit 2."""
    try:
        return main(argv)
    except LinqragError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run_parser(build_parser: Callable[[], argparse.ArgumentParser], argv: Sequence[str] | None = None,
               configure: Callable[[argparse.Namespace], None] | None = None) -> int:
    """The ``main`` of every package's ``cli.py``: parse, go offline, ``configure(args)`` (logging),
    then run the subcommand's ``func(args)`` under :func:`run_cli`."""

    def run(argv: Sequence[str] | None) -> int:
        parser = build_parser()
        named = _RUN_AS.get()
        if named is not None:
            subcommand_parser(parser, *named)
        args = parser.parse_args(argv)
        from linqrag.settings import apply_offline_env

        apply_offline_env()
        if configure is not None:
            configure(args)
        return args.func(args)

    return run_cli(run, argv)


#: While the ``linqrag`` command runs a package's subcommand: (the subcommand, the name it was typed as).
_RUN_AS: ContextVar[tuple[str, str] | None] = ContextVar("linqrag_run_as", default=None)


@contextmanager
def run_as(subcommand: str, prog: str) -> Iterator[None]:
    """Within it, :func:`run_parser` names ``subcommand``'s parser ``prog``: ``linqrag build`` runs
    ``python -m indexing build`` with its usage lines and argparse errors saying ``linqrag build``."""
    token = _RUN_AS.set((subcommand, prog))
    try:
        yield
    finally:
        _RUN_AS.reset(token)


def subcommand_parser(parser: argparse.ArgumentParser, subcommand: str, prog: str | None = None
                      ) -> argparse.ArgumentParser:
    """``parser``'s parser of ``subcommand`` (its flags, description and help), renamed ``prog`` when given."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and subcommand in action.choices:
            found = action.choices[subcommand]
            if prog is not None:
                found.prog = prog
            return found
    raise KeyError(f"{parser.prog} has no subcommand {subcommand!r}")
