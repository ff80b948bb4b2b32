"""What the Compare page shows, computed without Streamlit: side-by-side hit tables and a batch score.

One query runs through every retriever; each table row says which other lists hold the same
chunk. With relevance judgements, each list is scored, and a batch of judged queries is scored
with :func:`eval.runs.retriever_run` and :func:`eval.runs.score_run`, the figures the CLI reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from answers.highlight import highlight_span
from eval.metrics import ndcg_at_k, recall_at_k
from eval.runs import retriever_run, score_run
from indexing.records import SearchResult

DEPTH = 100  # hits per retriever behind the metrics; the tables show the first SHOW
SHOW = 10
SNIPPET = 320  # characters of chunk text per row
#: columns in the order a reader scans them; the wide text last, so the short ones never sit past the right edge
TABLE_ORDER = ("rank", "document", "shared", "relevant", "score", "text")
BATCH_METRICS = ("ndcg@10", "recall@10", "recall@100")


def snippet(text: str, query: str, size: int = SNIPPET) -> str:
    """About ``size`` characters of ``text`` around its sentence closest to ``query``, that sentence
    between « and », whitespace collapsed; the start of the chunk when no sentence shares a word."""
    span = highlight_span(text, query)
    if span is None:
        flat = " ".join(text.split())
        return flat if len(flat) <= size else flat[:size].rsplit(" ", 1)[0] + " …"
    start, end = span
    before, marked, after = (" ".join(part.split()) for part in (text[:start], text[start:end], text[end:]))
    if len(marked) > size:
        marked = marked[:size].rsplit(" ", 1)[0] + " …"
    room = max(size - len(marked), 0)
    lead = before[-min(len(before), room // 3):] if before and room else ""
    if lead and len(lead) < len(before):
        lead = "… " + lead.split(" ", 1)[-1]
    tail = after[:max(room - len(lead), 0)] if after else ""
    if tail and len(tail) < len(after):
        tail = tail.rsplit(" ", 1)[0] + " …"
    return " ".join(p for p in (lead, f"«{marked}»", tail) if p)


def mark(kind: str) -> str:
    """A retriever's letter in the Shared column: the first of its name."""
    return kind[0].upper()


def mark_legend(kinds) -> str:
    """``D dense, B bm25, H hybrid``: what each letter of the Shared column stands for."""
    return ", ".join(f"{mark(kind)} {kind}" for kind in kinds)


@dataclass(frozen=True)
class RetrieverColumn:
    """One retriever's answer to the query: its table rows, latency, notes and (judged) scores."""

    kind: str
    rows: list[dict]
    milliseconds: float
    notes: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)  #: nDCG@10, recall@10 when the query is judged


@dataclass(frozen=True)
class SideBySide:
    columns: list[RetrieverColumn]
    shared_by_all: int  #: chunks in every top-SHOW list


def side_by_side(retrievers: Mapping, query: str, source_name: Callable, search_filter=None,
                 qrels: Mapping[str, int] | None = None) -> SideBySide:
    """Search ``query`` with each retriever; ``qrels`` (that query's judgements) adds scores and a
    relevance column; ``source_name(hit)`` names a hit's document for the reader."""
    results: dict[str, SearchResult] = {kind: r.search(query, DEPTH, filter=search_filter)
                                        for kind, r in retrievers.items()}
    holders: dict[str, list[str]] = {}
    for kind, result in results.items():
        for hit in result.hits[:SHOW]:
            holders.setdefault(hit.chunk_id, []).append(kind)
    marks = {kind: mark(kind) for kind in results}
    columns = []
    for kind, result in results.items():
        rows = [{"rank": hit.rank, "score": round(hit.score, 4), "document": source_name(hit),
                 "shared": "".join(marks[k] for k in holders[hit.chunk_id]),
                 **({"relevant": qrels.get(hit.doc_id, 0)} if qrels is not None else {}),
                 "text": snippet(hit.text, query)} for hit in result.hits[:SHOW]]
        scores = {}
        if qrels is not None:
            ranking = [doc for doc, _ in result.doc_ranking()]
            scores = {"nDCG@10": ndcg_at_k(ranking, qrels, 10), "recall@10": recall_at_k(ranking, qrels, 10)}
        columns.append(RetrieverColumn(kind, rows, result.seconds * 1000, tuple(result.notes), scores))
    return SideBySide(columns, sum(1 for kinds in holders.values() if len(kinds) == len(results)))


def batch_scores(retrievers: Mapping, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                 progress: Callable[[float, str], None] | None = None) -> list[dict]:
    """Each retriever over the judged ``queries``: nDCG@10, recall@10/@100 and ms per query."""
    table = []
    for done, (kind, retriever) in enumerate(retrievers.items()):
        if progress:
            progress(done / len(retrievers), f"{kind}: {len(queries)} queries")
        start = time.perf_counter()
        run = retriever_run(retriever, queries, DEPTH, show_progress=False)
        seconds = time.perf_counter() - start
        scores = score_run(run, {q: qrels[q] for q in queries})
        table.append({"retriever": kind, **{m: round(v, 4) for m, v in scores.items()},
                      "ms/query": round(1000 * seconds / len(queries), 1)})
    return table


def batch_figure(table: list[dict], title: str):
    """Grouped bars: one group per metric, one bar per retriever."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(len(table), 1)
    for i, row in enumerate(table):
        offset = (i - (len(table) - 1) / 2) * width
        ax.bar(np.arange(len(BATCH_METRICS)) + offset, [row[m] for m in BATCH_METRICS], width, label=row["retriever"])
    ax.set_xticks(np.arange(len(BATCH_METRICS)), BATCH_METRICS)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return fig
