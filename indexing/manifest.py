"""The manifest of one index: which files it holds, their digests and chunk ids, and the embedder."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexing.errors import IndexStoreError
from linqrag.files import write_json_atomic


@dataclass
class Manifest:
    corpus: str
    corpus_path: str
    signature: str
    embedder: str
    chunk_config: dict
    files: dict[str, dict] = field(default_factory=dict)  # doc_id -> {"digest", "chunks"}
    chunk_count: int = 0
    adapter: str | None = None  # the PEFT adapter the embedder was loaded with, if any
    max_length: int | None = None
    backend: str = "torch"  #: how the embedder ran (embedder.onnx.BACKENDS); older manifests: torch
    built_at: float = field(default_factory=time.time)

    def save(self, path: Path) -> None:
        """Stamp the build time and write (a finished build)."""
        self.built_at = time.time()
        self.write(path)

    def write(self, path: Path) -> None:
        """Write as is (a cached copy keeps the build's own time)."""
        write_json_atomic(path, self.to_json())

    def to_json(self) -> dict:
        return asdict(self)

    def load_embedder(self, **kwargs):
        """The query embedder this index was built with (same preset or path, adapter and backend)."""
        from embedder import load_embedder

        kwargs.setdefault("max_length", self.max_length)
        kwargs.setdefault("backend", self.backend)
        return load_embedder(self.embedder, self.adapter, **kwargs)

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
            reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error
            raise IndexStoreError(f"{path} is damaged ({reason}); run build again to repair it") from error
