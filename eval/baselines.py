"""BM25 as an MTEB search model, so the baseline row goes through the same tasks and scorer.

It is the project's own BM25 (bm25s, English stemmer and stopwords: ``indexing.bm25``) over the
same document text the embedders see (title, space, text). BM25 has no vectors, so STS tasks do
not apply to it; the harness records them as not applicable.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version

from mteb.models.model_meta import ModelMeta
from tqdm.auto import tqdm

from eval.sampling import document_text
from indexing.bm25 import LANGUAGE, BM25Index

BM25_NAME = "bm25"


def bm25_meta() -> ModelMeta:
    """Metadata whose revision follows bm25s' version and the tokenisation settings."""
    revision = hashlib.sha256(f"bm25s={version('bm25s')}|{LANGUAGE}|stopwords=en".encode()).hexdigest()[:16]
    return ModelMeta(
        loader=None, name="linqrag/bm25", revision=revision, release_date=None, languages=["eng-Latn"],
        n_parameters=None, memory_usage_mb=None, max_tokens=None, embed_dim=None, license="mit",
        open_weights=True, public_training_code=None, public_training_data=None, framework=["NumPy"],
        similarity_fn_name=None, use_instructions=False, training_datasets=None, model_type=["sparse"],
    )


class BM25Search:
    """mteb's ``SearchProtocol``: ``index`` a corpus, then ``search`` queries for their top ``k``."""

    def __init__(self, show_progress: bool = True) -> None:
        self.mteb_model_meta = bm25_meta()
        self.show_progress = show_progress
        self._index: BM25Index | None = None

    def index(self, corpus, *, task_metadata, hf_split: str, hf_subset: str, encode_kwargs: dict,
              num_proc: int | None = None, **kwargs) -> None:
        titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
        texts = [document_text(t or "", x) for t, x in zip(titles, corpus["text"], strict=False)]
        self._index = BM25Index.build([str(i) for i in corpus["id"]], texts)

    def search(self, queries, *, task_metadata, hf_split: str, hf_subset: str, top_k: int, encode_kwargs: dict,
               top_ranked=None, num_proc: int | None = None, **kwargs) -> dict[str, dict[str, float]]:
        if self._index is None:
            raise RuntimeError("BM25Search.search called before index")
        results = {}
        pairs = list(zip(queries["id"], queries["text"], strict=False))
        for qid, text in tqdm(pairs, desc=f"BM25 {task_metadata.name}", unit="query",
                              disable=not encode_kwargs.get("show_progress_bar", self.show_progress)):
            results[str(qid)] = dict(self._index.search(text, top_k))
        return results
