"""Token-aware chunking with llama-index's SentenceSplitter; stable chunk ids from source and content."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from corpora.records import Document
from indexing.records import Chunk


@dataclass(frozen=True)
class ChunkConfig:
    chunk_size: int = 256  # tokens of the embedder's tokenizer
    chunk_overlap: int = 32

    def to_json(self) -> dict:
        return asdict(self)


def default_chunk_config(max_length: int) -> ChunkConfig:
    """Chunks that fit the embedder's window with room for the title: at most 512 tokens, 1/8 overlap."""
    size = max(64, min(512, max_length) - 24)
    return ChunkConfig(chunk_size=size, chunk_overlap=size // 8)


def chunk_id(doc_id: str, text: str, occurrence: int = 0) -> str:
    """Same source and same text -> same id, whatever else changed in the file."""
    digest = hashlib.sha256(f"{doc_id}\x00{text}\x00{occurrence}".encode()).hexdigest()[:24]
    return f"c{digest}"


def token_counter(tokenizer) -> Callable[[str], list]:
    """A ``text -> tokens`` callable for the splitter from a Hugging Face tokenizer."""

    def encode(text: str) -> list:
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    return encode


#: a text whose first characters already hold this many tokens more than a chunk is longer than a chunk
LONG_MARGIN = 8
#: characters of a long text tokenised to tell it is longer than a chunk (per token of the chunk)
PROBE_CHARS_PER_TOKEN = 6


def bounded_counter(tokenize: Callable[[str], list], limit: int) -> Callable[[str], list]:
    """``tokenize`` for a splitter that compares a text's token count with ``limit`` and splits any
    text above it: a long text is tokenised only up to a space that already lies past ``limit`` (plus a
    margin); the count it returns is then too small but still above ``limit``, which is all the
    splitter reads of it. The chunks are the same; the splitter otherwise tokenises every document
    whole, then each paragraph, then each sentence (3.7 times the PEPs' characters)."""
    probe = (limit + LONG_MARGIN) * PROBE_CHARS_PER_TOKEN

    def count(text: str) -> list:
        if len(text) > probe + probe // 4:
            cut = text.rfind(" ", probe // 2, probe)
            if cut > 0:
                head = tokenize(text[:cut])
                if len(head) > limit + LONG_MARGIN:
                    return head
        return tokenize(text)

    return count


#: Characters the sentence splitter sees at once. Long texts are cut into windows at a paragraph
#: (else line, sentence, word) break first: the splitter's time and memory grow with its input,
#: and on a whole 15-50 MB file it ran out of its regex time limit after gigabytes of memory.
WINDOW_CHARS = 200_000


def text_windows(text: str, size: int | None = None) -> Iterator[tuple[int, str]]:
    """``(offset, piece)`` covering ``text`` in order, each at most ``size`` characters, cut at the
    last paragraph, line, sentence or word break of the window where there is one."""
    size = size or WINDOW_CHARS
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            for mark in ("\n\n", "\n", ". ", " "):
                cut = text.rfind(mark, start + size // 2, end)
                if cut != -1:
                    end = cut + len(mark)
                    break
        yield start, text[start:end]
        start = end


def chunk_documents(documents: Iterable[Document], config: ChunkConfig, tokenize: Callable[[str], list]) -> list[Chunk]:
    from llama_index.core import Document as LIDocument
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(
        chunk_size=config.chunk_size, chunk_overlap=config.chunk_overlap,
        tokenizer=bounded_counter(tokenize, config.chunk_size),
        include_metadata=False, include_prev_next_rel=False,
    )
    chunks: list[Chunk] = []
    for doc in documents:
        seen: dict[str, int] = {}
        for offset, piece in text_windows(doc.text):
            nodes = splitter.get_nodes_from_documents([LIDocument(text=piece, id_=doc.doc_id)])
            for node in nodes:
                text = node.get_content()
                if not text.strip():
                    continue
                occurrence = seen.get(text, 0)
                seen[text] = occurrence + 1
                start = node.start_char_idx if node.start_char_idx is not None else piece.find(text)
                end = node.end_char_idx if node.end_char_idx is not None else start + len(text)
                chunks.append(Chunk(chunk_id(doc.doc_id, text, occurrence), doc.doc_id, text, doc.title, doc.source,
                                    offset + max(start, 0), offset + end))
    return chunks
