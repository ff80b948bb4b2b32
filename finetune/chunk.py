"""Stage 1: the chunk pool. Documents are read and chunked with ``indexing/``'s code, sampled
into a pool of at most ``max_chunks`` (``max_chunks_per_doc`` each, so a few long documents
cannot fill it), and split by document into train and held-out chunks.

Only document text enters the pipeline: for a BEIR folder ``load_corpus`` returns the corpus and
drops queries and qrels, which keeps the evaluation on real queries honest.
"""

from __future__ import annotations

import math
import random

from tqdm.auto import tqdm

from corpora import CorpusError, load_corpus
from corpora.records import Document
from finetune.config import DomainConfig
from finetune.rundir import RunDir
from indexing.chunking import ChunkConfig, chunk_documents, default_chunk_config, token_counter
from indexing.records import Chunk
from linqrag.files import write_json_atomic, write_jsonl_atomic

#: Default chunk size cap in tokens: a small generator reads a short passage better, and the cost of
#: CPU training grows with input length. Indexes may use longer chunks; an adapter serves both.
DEFAULT_MAX_CHUNK_TOKENS = 128
#: Documents chunked per call of the splitter.
CHUNK_BATCH = 32


def base_tokenizer(name: str):
    """The base embedder's tokenizer and window, without loading its weights."""
    from embedder.presets import get_preset
    from embedder.tokenizers import tokenizer_for

    spec = get_preset(name)
    tokenizer = tokenizer_for(spec or name)
    window = spec.max_length if spec else min(512, int(getattr(tokenizer, "model_max_length", 512) or 512))
    return tokenizer, window


def chunk_config_for(window: int, chunk_size: int | None) -> ChunkConfig:
    default = default_chunk_config(window)
    size = chunk_size or min(default.chunk_size, DEFAULT_MAX_CHUNK_TOKENS)
    return ChunkConfig(chunk_size=size, chunk_overlap=size // 8)


def sample_pool(documents: list[Document], chunker, max_chunks: int, max_per_doc: int, seed: int,
                show_progress: bool = True) -> tuple[list[Chunk], int]:
    """Chunks of randomly ordered documents, at most ``per_document_cap(...)`` each, until ``max_chunks``.

    Documents are chunked only until the pool is full, so a huge corpus costs what the pool needs.
    Returns the pool and the number of documents chunked.
    """
    max_per_doc = per_document_cap(max_chunks, max_per_doc, len(documents))
    rng = random.Random(seed)
    order = list(range(len(documents)))
    rng.shuffle(order)
    pool: list[Chunk] = []
    seen: set[str] = set()
    done = 0
    with tqdm(total=max_chunks, desc="chunk", unit="chunk", disable=not show_progress) as bar:
        for start in range(0, len(order), CHUNK_BATCH):
            batch = [documents[i] for i in order[start:start + CHUNK_BATCH]]
            by_doc: dict[str, list[Chunk]] = {}
            for chunk in chunker(batch):
                by_doc.setdefault(chunk.doc_id, []).append(chunk)
            for doc in batch:
                done += 1
                chunks = [c for c in by_doc.get(doc.doc_id, []) if c.text.strip() and c.chunk_id not in seen]
                if len(chunks) > max_per_doc:
                    chunks = sorted(rng.sample(chunks, max_per_doc), key=lambda c: c.start)
                take = chunks[: max_chunks - len(pool)]
                pool.extend(take)
                seen.update(c.chunk_id for c in take)
                bar.update(len(take))
                if len(pool) >= max_chunks:
                    return pool, done
    return pool, done


def per_document_cap(max_chunks: int, max_per_doc: int, documents: int) -> int:
    """Chunks one document may give: ``max_per_doc``, less when the corpus has enough documents to fill
    the pool with fewer. A pool spread over more documents covers more of the domain, and a title or
    cloze query then has no sibling chunk of its own document in the pool scored as a wrong answer."""
    return max(1, min(max_per_doc, math.ceil(max_chunks / max(documents, 1))))


def split_by_document(chunks: list[Chunk], heldout_fraction: float, seed: int) -> dict[str, str]:
    """Held-out chunks are whole documents' chunks, so no sibling chunk of a held-out one trains."""
    docs = sorted({c.doc_id for c in chunks})
    random.Random(seed + 1).shuffle(docs)
    target = round(heldout_fraction * len(chunks))
    per_doc: dict[str, int] = {}
    for c in chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    heldout_docs: set[str] = set()
    count = 0
    for doc in docs:
        if count >= target or len(heldout_docs) >= len(docs) - 1:
            break
        heldout_docs.add(doc)
        count += per_doc[doc]
    return {c.chunk_id: ("heldout" if c.doc_id in heldout_docs else "train") for c in chunks}


def run_chunk_stage(config: DomainConfig, run: RunDir, show_progress: bool = True) -> dict:
    if not config.corpus:
        raise CorpusError("no corpus given (--corpus DIR)")
    report = load_corpus(config.corpus)
    if not report.documents:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:5]) or "no files in it"
        raise CorpusError(f"no readable documents in {config.corpus} ({reasons})")
    tokenizer, window = base_tokenizer(config.base)
    chunk_config = chunk_config_for(window, config.chunk_size)
    tokenize = token_counter(tokenizer)
    pool, chunked_docs = sample_pool(
        report.documents, lambda docs: chunk_documents(docs, chunk_config, tokenize),
        config.max_chunks, config.max_chunks_per_doc, config.seed, show_progress,
    )
    if len(pool) < 4:
        raise CorpusError(f"{config.corpus} gives only {len(pool)} chunk(s); the pipeline needs at least 4")
    split = split_by_document(pool, config.heldout_fraction, config.seed)
    write_jsonl_atomic(run.chunks, pool)
    write_json_atomic(run.path("split.json"), split)
    summary = {
        "documents": len(report.documents),
        "documents_chunked": chunked_docs,
        "skipped_files": len(report.skipped),
        "chunks": len(pool),
        "train_chunks": sum(1 for s in split.values() if s == "train"),
        "heldout_chunks": sum(1 for s in split.values() if s == "heldout"),
        "chunks_per_document_cap": per_document_cap(config.max_chunks, config.max_chunks_per_doc,
                                                    len(report.documents)),
        "chunk_size": chunk_config.chunk_size,
        "chunk_overlap": chunk_config.chunk_overlap,
        "notes": report.notes[:5],
    }
    run.mark_done("chunk", summary)
    return summary
