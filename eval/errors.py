"""Errors the eval CLI turns into one clear line and exit code 2 (no traceback)."""

from __future__ import annotations

from linqrag.errors import LinqragError


class EvalError(LinqragError, RuntimeError):
    """A problem the user can fix (bad arguments, an unknown task, a run directory without results)."""


class DatasetError(EvalError):
    """An evaluation dataset is missing or malformed; the message names the file and what to do."""
