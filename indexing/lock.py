"""One writer per index directory: a build holds an exclusive ``flock`` on
``INDEX_DIR/.linqrag-write.lock`` from before it reads the manifest until the manifest is written.

Two builds into one directory at once used to interleave their upserts and deletes in one Chroma
collection and leave chunks != vectors behind, both exiting 0. Now the second waits (``wait``
seconds) or stops with a message naming the first. Readers (search, stats, the app) never take the
lock: every file a build replaces is swapped in atomically, so they see the old index or the new.
The lock is the kernel's (released when the holder dies, even by ``kill -9``) and local to one
machine: with ``--chroma-url`` it orders the builds started from this index directory only.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexing.store import IndexStoreError, permission_faults

LOCK_NAME = ".linqrag-write.lock"
#: Lock files this process holds: a CLI takes the lock before loading a model (so a second build
#: stops at once, not after a model conversion) and ``build_index`` inside it takes it again.
_HELD: set[Path] = set()


class IndexBusyError(IndexStoreError):
    """Another build holds the index directory's write lock."""


def holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another build"
    if not info:
        return "another build"
    started = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
    return f"another build (pid {info.get('pid')}, {info.get('what', 'build')}, since {started})"


@contextmanager
def writer_lock(index_dir: Path, wait: float = 0.0, what: str = "build") -> Iterator[None]:
    """Hold the write lock of ``index_dir``; wait up to ``wait`` seconds for it, then stop."""
    path = (Path(index_dir) / LOCK_NAME).resolve()
    if path in _HELD:
        yield
        return
    with permission_faults(Path(index_dir), "write"):  # a read-only folder: one line naming it, not a traceback
        fh = open(path, "a+")  # noqa: SIM115 (held for the body)
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"{index_dir} is being written by {holder(path)}; wait for it to finish, or pass "
                        "--wait-lock SECONDS to queue behind it (searches keep working meanwhile)") from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "since": time.time(), "what": what}))
        fh.flush()
        _HELD.add(path)
        try:
            yield
        finally:
            _HELD.discard(path)
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()
