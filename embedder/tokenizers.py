"""One way from an embedder's name to its tokenizer, at the preset's pinned revision.

Loading an embedder, a remote embedder chunking on this machine and the fine-tuning pool all need
the tokenizer of a preset, hub id or path; asked here, they read the same files at the same
revision (a copy that dropped the revision could chunk with another vocabulary than the index).
No weights are loaded.
"""

from __future__ import annotations

from embedder.presets import get_preset
from embedder.sources import resolve_source
from embedder.spec import EmbedderSpec


def tokenizer_for(name_or_spec: str | EmbedderSpec, path: str | None = None):
    """The tokenizer of a preset (its name or its :class:`EmbedderSpec`), a hub id or a local path.

    ``path``: where the model is already resolved to (by :func:`embedder.sources.resolve_source`);
    found from the name otherwise. Raises what ``resolve_source`` and ``AutoTokenizer`` raise
    (:class:`~embedder.sources.ModelNotFoundError`, ``OSError``) when the files are not here."""
    from transformers import AutoTokenizer

    spec = name_or_spec if isinstance(name_or_spec, EmbedderSpec) else get_preset(name_or_spec)
    if path is None:
        source = spec.source if spec else str(name_or_spec)
        path, _ = resolve_source(source, spec.how_to_get if spec else "")
    return AutoTokenizer.from_pretrained(path, revision=spec.revision if spec else None)
