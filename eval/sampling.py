"""The light evaluation sets: a subsampled corpus and query set, or a sample of STS pairs.

The corpus keeps every document judged for the chosen queries (so no relevant document is lost),
the top candidates of each chosen query from two cheap retrievers, BM25 and a small dense model
(the hard distractors a full corpus would put in front of a model), and a random sample of the rest
(easy distractors). Everything is drawn with a fixed seed, so two checkpoints see exactly the same set.

Why two pool retrievers: a pooled corpus holds every distractor the pool retrievers rank high, and
drops the distractors only other models would rank high, so it flatters models unlike the pool.
Pooled with BM25 alone, MiniLM outranked BM25 on sampled SciFact and NFCorpus while BM25 wins on
the full sets (bench/RESULTS.md); with the dense pool too, both kinds of hard negatives are kept.
The dense pool costs one pass of the pool model over the full corpus, so the light set is built once
and cached (:func:`eval.tasks.prepare_task`), then shared by every checkpoint.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from corpora import BeirDataset
from eval.localdata import StsPairs


@dataclass(frozen=True)
class RetrievalSampling:
    """How many queries to keep, how deep to pool BM25 and dense candidates, how many random documents."""

    max_queries: int = 50
    bm25_depth: int = 10
    random_docs: int = 100
    seed: int = 42
    #: Top candidates per query from the dense pool model (0: BM25 pool only).
    dense_depth: int = 10
    dense_model: str = "minilm"

    @property
    def key(self) -> str:
        dense = ""
        if self.dense_depth:
            dense = f"-dn{self.dense_depth}" + ("" if self.dense_model == "minilm" else self.dense_model)
        return f"q{self.max_queries}-bm{self.bm25_depth}{dense}-r{self.random_docs}-s{self.seed}"


@dataclass(frozen=True)
class PairSampling:
    """How many STS pairs to keep."""

    max_pairs: int = 500
    seed: int = 42

    @property
    def key(self) -> str:
        """Names the sample in task names and cache keys: another sample is another task."""
        return f"p{self.max_pairs}-s{self.seed}"


def document_text(title: str, text: str) -> str:
    """A document as MTEB's retrieval loader feeds it to a model: title, space, text."""
    return f"{title} {text}".strip() if title else text


def judged_query_ids(dataset: BeirDataset) -> list[str]:
    """Queries with a text and at least one positive judgement, in file order."""
    return [q for q in dataset.queries if any(r > 0 for r in dataset.qrels.get(q, {}).values())]


def bm25_candidates(dataset: BeirDataset, query_ids: list[str], depth: int, show_progress: bool = False) -> set[str]:
    """The union of each query's top-``depth`` BM25 documents over the full corpus."""
    from indexing.bm25 import BM25Index

    if depth <= 0 or not query_ids:
        return set()
    index = BM25Index.build([d.doc_id for d in dataset.corpus],
                            [document_text(d.title, d.text) for d in dataset.corpus])
    found: set[str] = set()
    for qid in tqdm(query_ids, desc=f"BM25 candidates {dataset.name}", unit="query", disable=not show_progress):
        found.update(doc for doc, _ in index.search(dataset.queries[qid], depth))
    return found


def dense_candidates(dataset: BeirDataset, query_ids: list[str], depth: int, model: str,
                     instruction: str | None = None, show_progress: bool = False) -> set[str]:
    """The union of each query's top-``depth`` documents by the dense ``model`` over the full corpus."""
    from embedder import load_embedder

    if depth <= 0 or not query_ids:
        return set()
    emb = load_embedder(model, quantization="none", backend="torch")
    docs = emb.encode_documents([document_text(d.title, d.text) for d in dataset.corpus], show_progress=show_progress)
    queries = emb.encode_queries([dataset.queries[q] for q in query_ids], instruction=instruction)
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
    return {dataset.corpus[int(i)].doc_id for row in top for i in row}


def restrict(dataset: BeirDataset, query_ids: list[str], doc_ids: set[str]) -> BeirDataset:
    """``dataset`` with only these queries (in file order, their qrels) and documents."""
    chosen = set(query_ids)
    queries = {q: t for q, t in dataset.queries.items() if q in chosen}
    return BeirDataset(
        name=dataset.name,
        corpus=[d for d in dataset.corpus if d.doc_id in doc_ids],
        queries=queries,
        qrels={q: dict(dataset.qrels[q]) for q in queries},
        split=dataset.split,
    )


def subsample_retrieval(dataset: BeirDataset, sampling: RetrievalSampling, show_progress: bool = False,
                        instruction: str | None = None) -> BeirDataset:
    """A light copy of ``dataset``: chosen queries, their judged documents, pooled and random distractors."""
    rng = random.Random(sampling.seed)
    judged = judged_query_ids(dataset)
    chosen_set = set(rng.sample(judged, min(sampling.max_queries, len(judged))))
    chosen = [q for q in judged if q in chosen_set]
    doc_ids = [d.doc_id for d in dataset.corpus]
    known = set(doc_ids)
    keep = {d for q in chosen for d in dataset.qrels[q] if d in known}
    keep |= bm25_candidates(dataset, chosen, sampling.bm25_depth, show_progress)
    keep |= dense_candidates(dataset, chosen, sampling.dense_depth, sampling.dense_model, instruction, show_progress)
    rest = [d for d in doc_ids if d not in keep]
    keep |= set(rng.sample(rest, min(sampling.random_docs, len(rest))))
    return restrict(dataset, chosen, keep)


def subsample_pairs(pairs: StsPairs, sampling: PairSampling) -> StsPairs:
    """A seeded sample of pairs, in file order."""
    rng = random.Random(sampling.seed)
    indices = sorted(rng.sample(range(len(pairs)), min(sampling.max_pairs, len(pairs))))
    return pairs.select(indices)
