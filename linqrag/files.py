"""Files written whole or not at all: the one atomic write every package uses.

A reader (a search opening a manifest, a resumed run reading a stage's output, the app's next
session) must never see half a file, so each write goes to a temporary sibling that is then
``os.replace``-d over the target: a killed writer leaves the old file (and at most a stray
``*.tmp`` sibling), never a torn one. The temporary name carries the process and thread, so two
writers of one file (two Streamlit sessions, two builds) never write into each other's copy.
There is no ``fsync``: the failure guarded against is a killed process, not a lost disk cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` for the block to write (itself or through a library that takes
    a file name); renamed over ``path`` when the block ends, removed when it raises. The parent
    folder is made if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes | Iterable[str]) -> None:
    """Write ``data`` (text as UTF-8, bytes as they are, or an iterable of text pieces streamed in
    order) to ``path`` atomically; the parent folder is made if missing."""
    with replacing(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines([data] if isinstance(data, str) else data)


def write_json_atomic(path: str | Path, data, indent: int | None = 1) -> None:
    """``data`` as JSON (UTF-8, non-ASCII kept as is), written atomically."""
    write_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False))


def write_jsonl_atomic(path: str | Path, rows: Iterable) -> int:
    """One JSON document per line (``row.to_json()`` for records, dicts as they are), written
    atomically and streamed; returns the number of rows."""
    count = 0

    def lines():
        nonlocal count
        for row in rows:
            count += 1
            yield json.dumps(row.to_json() if hasattr(row, "to_json") else row, ensure_ascii=False) + "\n"

    write_atomic(path, lines())
    return count
