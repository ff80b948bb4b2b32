"""What every search does before it ranks: ``k`` checked, an empty query answered, and a filter
resolved to the chunks it keeps (:class:`Selection`, made once per filter by ``Index.select``).

Below both the opened index (:mod:`indexing.retrieval`) and the retrievers
(:mod:`indexing.retrievers`), which both use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from indexing.filters import SearchFilter
from indexing.records import SearchResult
from linqrag.errors import LinqragError

if TYPE_CHECKING:
    from indexing.retrieval import Index


class SearchError(LinqragError, ValueError):
    """A search asked for something that cannot be searched (``k`` below 1, not an integer)."""


def checked_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SearchError(f"k must be a whole number of hits, 1 or more (got {k!r})")
    return int(k)


def no_query(retriever: str, query) -> SearchResult | None:
    """The answer to an empty query: no hits and a note, not ten arbitrary chunks."""
    if isinstance(query, str) and query.strip():
        return None
    return SearchResult(retriever, query if isinstance(query, str) else "", [], 0.0,
                        ["no query: type some words to search for"])


def begin_search(name: str, index: Index, query: str, k, search_filter: SearchFilter | None,
                 t0: float) -> tuple[int, Selection | None, SearchResult | None]:
    """What every retriever checks first: ``k``, an empty query, a filter that keeps nothing.
    Returns ``(k, selection, early)``; ``early`` is the whole answer when there is nothing to search."""
    k = checked_k(k)
    if (empty := no_query(name, query)) is not None:
        return k, None, empty
    selection = index.select(search_filter)
    if selection is not None and not selection.ids:
        return k, selection, SearchResult(name, query, [], time.perf_counter() - t0, selection.notes(k))
    return k, selection, None


@dataclass(frozen=True, eq=False)
class Selection:
    """The chunks a filter keeps in one index: their ids (for Chroma) and a BM25 row mask."""

    search_filter: SearchFilter
    ids: list[str]
    mask: np.ndarray
    total: int

    @property
    def everything(self) -> bool:
        return len(self.ids) == self.total

    def notes(self, k: int) -> list[str]:
        if not self.ids:
            return [f"no chunk matches the filter ({self.search_filter.describe()}); nothing was searched"]
        if len(self.ids) < k:
            return [f"the filter ({self.search_filter.describe()}) keeps {len(self.ids)} of {self.total} chunks"]
        return []
