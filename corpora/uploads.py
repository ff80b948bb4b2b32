"""Uploaded files into a corpus folder of their own, one folder per upload batch.

A shared upload folder kept every earlier upload, so pressing Build after uploading one file
indexed five. Each batch now lands in ``ROOT/NAME/BATCH`` (``BATCH`` a digest of the names and
bytes, so the same upload twice reuses its folder): an index built from it holds exactly the
uploaded set. Files the loader would pass over are reported, never dropped without a word.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from corpora.records import Skipped


@dataclass(frozen=True)
class UploadBatch:
    folder: Path
    saved: list[str] = field(default_factory=list)
    dropped: list[Skipped] = field(default_factory=list)


def safe_corpus_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "uploads"


def save_upload_batch(root: Path, name: str, files: Iterable[tuple[str, bytes]]) -> UploadBatch:
    """Write one batch of ``(file name, bytes)`` under ``root``; only the base name of each is kept
    (an upload cannot choose where it lands)."""
    kept: dict[str, bytes] = {}
    dropped: list[Skipped] = []
    for raw_name, data in files:
        base = Path(raw_name.replace("\\", "/")).name
        if not base or base in (".", ".."):
            dropped.append(Skipped(raw_name or "(no name)", "no usable file name"))
        elif base.startswith("."):
            dropped.append(Skipped(base, "a hidden file name (starts with '.'): the loader skips those; rename it"))
        elif base in kept:
            dropped.append(Skipped(base, "the same name as another file of this upload; the first one is kept"))
        else:
            kept[base] = data
    digest = hashlib.sha256()
    for base in sorted(kept):
        digest.update(base.encode() + b"\x00" + hashlib.sha256(kept[base]).digest())
    folder = root / safe_corpus_name(name) / f"batch-{digest.hexdigest()[:12]}"
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for base, data in kept.items():
            (partial / base).write_bytes(data)
        partial.rename(folder)  # a killed write leaves a .partial folder, never a half batch
    return UploadBatch(folder, sorted(kept), dropped)
