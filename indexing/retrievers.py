"""The retriever kinds, each one entry of :data:`RETRIEVERS`: dense, BM25, hybrid (reciprocal rank
fusion of the two), and whatever :func:`register_retriever` adds.

Everything that offers a choice of retriever reads the registry: ``Index.retriever``, the
``--retriever`` choices and help of ``python -m indexing search``, the API's ``"retriever"`` field,
the app's sidebar and its Compare page (one column per kind, titled by :attr:`RetrieverKind.title`),
and whether answering needs the query embedder. Adding a kind is one :class:`RetrieverKind`
(docs/extending.md walks through one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from indexing.filters import SearchFilter
from indexing.records import SearchResult
from indexing.selection import SearchError, Selection, begin_search
from linqrag.registry import Registry

if TYPE_CHECKING:
    from indexing.retrieval import Index

RRF_K = 60


class Retriever(Protocol):
    name: str

    def search(self, query: str, k: int = 10, filter: SearchFilter | None = None) -> SearchResult: ...


def rrf_fuse(rankings: dict[str, list[str]], weights: dict[str, float] | None = None,
             k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``sum_r w_r / (k + rank_r(d))`` with ranks from 1, best first."""
    scores: dict[str, float] = {}
    for name, ids in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, doc in enumerate(ids, 1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class RankingRetriever:
    """One ``search`` for every retriever: the shared checks, ``ranked`` (the subclass's ranking of
    chunk ids) and the notes a reader needs (a cut-off query, a filter that keeps few chunks)."""

    name = ""
    index: Index

    def ranked(self, query: str, k: int, selection: Selection | None = None) -> list[tuple[str, float]]:
        raise NotImplementedError

    def notes_for(self, query: str) -> list[str]:
        return []

    def notes_when_empty(self, selection: Selection | None) -> list[str]:
        return []

    def search(self, query: str, k: int = 10, filter: SearchFilter | None = None) -> SearchResult:
        t0 = time.perf_counter()
        k, selection, early = begin_search(self.name, self.index, query, k, filter, t0)
        if early is not None:
            return early
        scored = self.ranked(query, k, selection)
        notes = self.notes_for(query) + (selection.notes(k) if selection is not None else [])
        if not scored:
            notes += self.notes_when_empty(selection)
        return SearchResult(self.name, query, self.index.hits(scored), time.perf_counter() - t0, notes)


class BM25Retriever(RankingRetriever):
    name = "bm25"

    def __init__(self, index: Index) -> None:
        self.index = index

    def ranked(self, query: str, k: int, selection: Selection | None = None) -> list[tuple[str, float]]:
        if selection is not None and not selection.ids:
            return []
        mask = None if selection is None or selection.everything else selection.mask
        return self.index.bm25.search(query, k, mask=mask)

    def notes_when_empty(self, selection: Selection | None) -> list[str]:
        kept = "the filter keeps " if selection is not None else ""
        return [f"no chunk {kept}shares a word with the query"]


#: Characters per token of its window an embedder is given of a text: a token seldom spans more than
#: a few characters, so 8 keep all the window reads, and a long query costs what its first window costs
#: (the tokenizer otherwise runs over the whole text before truncating). BM25 still reads all of it.
WINDOW_CHARS_PER_TOKEN = 8


def window_text(embedder, text: str) -> str:
    """``text`` cut to what ``embedder``'s window can read (:data:`WINDOW_CHARS_PER_TOKEN`)."""
    limit = WINDOW_CHARS_PER_TOKEN * max(1, int(getattr(embedder, "max_length", 0) or 512))
    return text if len(text) <= limit else text[:limit]


class DenseRetriever(RankingRetriever):
    name = "dense"

    def __init__(self, index: Index, embedder, instruction: str | None = None) -> None:
        self.index, self.embedder, self.instruction = index, embedder, instruction

    def notes_for(self, query: str) -> list[str]:
        window = window_text(self.embedder, query)
        formatted = self.embedder.format_queries([window], self.instruction)[0]
        full = len(self.embedder.tokenizer(formatted, add_special_tokens=True, verbose=False)["input_ids"])
        if full > self.embedder.max_length:
            longer = f"over {full}" if len(window) < len(query) else f"{full}"
            return [f"query is {longer} tokens; the embedder read only its first {self.embedder.max_length}"]
        return []

    def ranked(self, query: str, k: int, selection: Selection | None = None) -> list[tuple[str, float]]:
        if selection is not None and not selection.ids:
            return []
        vector = self.index.query_vector(self.embedder, window_text(self.embedder, query), self.instruction)
        ids = None if selection is None or selection.everything else selection.ids
        return self.index.store.query(vector, k, ids=ids)


class HybridRetriever(RankingRetriever):
    name = "hybrid"

    def __init__(self, index: Index, dense: DenseRetriever, bm25: BM25Retriever, weights: dict[str, float],
                 depth: int) -> None:
        self.index, self.dense, self.bm25, self.weights, self.depth = index, dense, bm25, weights, depth

    def notes_for(self, query: str) -> list[str]:
        return self.dense.notes_for(query)

    def ranked(self, query: str, k: int, selection: Selection | None = None) -> list[tuple[str, float]]:
        """Reciprocal-rank fusion of the dense and BM25 rankings, each ``depth`` (at least ``k``) deep."""
        depth = max(self.depth, k)
        rankings = {
            "dense": [cid for cid, _ in self.dense.ranked(query, depth, selection)],
            "bm25": [cid for cid, _ in self.bm25.ranked(query, depth, selection)],
        }
        return rrf_fuse(rankings, self.weights)[:k]


@dataclass(frozen=True)
class RetrieverOptions:
    """What a caller may tune when it asks an index for a retriever (each kind reads what it uses)."""

    instruction: str | None = None  #: the query's task instruction (decoder embedders)
    weights: dict[str, float] | None = None  #: hybrid: each fused ranking's weight (default 1 each)
    depth: int = 100  #: hybrid: hits of each ranking fused (at least ``k``)


@dataclass(frozen=True)
class RetrieverKind:
    """One kind of retriever, and all that the CLI, the API and the app need to offer it.

    ``build(index, embedder, options)`` returns the retriever (anything with ``name`` and
    ``search(query, k, filter=)``; :class:`RankingRetriever` gives the shared checks and notes);
    ``embedder`` is the query embedder, checked against the index, when ``needs_embedder``, else None.
    """

    name: str
    help: str  #: one line: ``--help``, the sidebar's help
    title: str  #: the Compare page's column title; ``{embedder}`` becomes the index's embedder
    needs_embedder: bool
    build: Callable[[Index, object, RetrieverOptions], Retriever]
    score_label: str | None = None  #: what a hit's score is, where a reader can read it ("similarity")


#: Every retriever kind by name, in the order they are offered.
RETRIEVERS: Registry[RetrieverKind] = Registry("retriever", SearchError)
DEFAULT_RETRIEVER = "hybrid"
#: Add a kind (a name is registered once).
register_retriever = RETRIEVERS.register
#: The registered kind of a name; :class:`SearchError` naming the kinds otherwise.
retriever_kind = RETRIEVERS.entry


def retriever_help() -> str:
    """The kinds, one ``name: help`` each, for a ``--retriever`` flag."""
    return "; ".join(f"{kind.name}: {kind.help}" for kind in RETRIEVERS.values())


def _dense(index: Index, embedder, options: RetrieverOptions) -> DenseRetriever:
    return DenseRetriever(index, embedder, options.instruction)


def _hybrid(index: Index, embedder, options: RetrieverOptions) -> HybridRetriever:
    return HybridRetriever(index, _dense(index, embedder, options), BM25Retriever(index),
                           options.weights or {"dense": 1.0, "bm25": 1.0}, options.depth)


register_retriever(RetrieverKind(
    "dense", "cosine similarity of query and chunk vectors (the index's embedder)", "Dense · {embedder}",
    needs_embedder=True, build=_dense, score_label="similarity"))
register_retriever(RetrieverKind(
    "bm25", "BM25 over the chunks' words (no model)", "BM25 · bm25s",
    needs_embedder=False, build=lambda index, embedder, options: BM25Retriever(index)))
register_retriever(RetrieverKind(
    "hybrid", f"dense and bm25 fused by reciprocal rank (RRF k={RRF_K})", f"Hybrid · RRF k={RRF_K}",
    needs_embedder=True, build=_hybrid))
