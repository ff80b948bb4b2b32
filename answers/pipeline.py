"""The RAG pipeline: retrieve, answer in the chosen mode, attach citations, fall back to the passages.

One function for every caller: the Chat page (streaming into the page), ``POST /answer`` and
``bench/answers.py`` (which retrieves once and calls :func:`answer_hits` per mode).

    from answers.pipeline import answer_question
    answer = answer_question(index, "How does a volcano erupt?", mode="extractive", embedder=minilm)
    print(answer.text, [c.hit.doc_id for c in answer.citations], answer.retrieval.seconds)

Modes (``extractive``, ``local``, ``openai``, ``none``, and any other registered) are the entries of
:data:`answers.modes.ANSWER_MODES`; retriever kinds those of :data:`indexing.retrievers.RETRIEVERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from answers.citations import passages_answer
from answers.extractive import ExtractiveConfig
from answers.modes import DEFAULT_MODE, ModeInput, answer_mode
from answers.records import Answer
from indexing.records import Hit
from indexing.retrievers import DEFAULT_RETRIEVER, retriever_kind
from linqrag.errors import LinqragError


class RetrievalError(LinqragError, RuntimeError):
    """The search itself failed (a missing model, a damaged index); the message is the search's own."""


def needs_embedder(mode: str, retriever: str) -> bool:
    """Whether answering needs the embedder: a retriever kind that ranks by vectors, or a mode that
    scores text with it (extractive answers score sentences, whatever the retriever)."""
    return retriever_kind(retriever).needs_embedder or answer_mode(mode).needs_embedder


def answer_hits(question: str, hits: Sequence[Hit], *, mode: str = DEFAULT_MODE, embedder=None, generator=None,
                history: Sequence[dict] = (), on_text: Callable[[str], None] | None = None,
                extractive: ExtractiveConfig | None = None, passages_reason: str = "none chosen") -> Answer:
    """The answer to ``question`` from already retrieved ``hits``, written in ``mode``.

    ``generator`` (generated modes): a generator, or a callable returning one (called only when there
    are hits), or None for ``load_generator(mode)``; a generator that is unavailable or fails gives
    the passages answer with the reason. ``extractive``: the extractive settings (default ones)."""
    chosen = answer_mode(mode)
    if not hits:
        return passages_answer([], "nothing was retrieved")
    return chosen.answer(ModeInput(question, hits, embedder, generator, history, on_text, extractive,
                                   passages_reason))


def answer_question(index, question: str, *, mode: str = DEFAULT_MODE, k: int = 5, filter=None,
                    retriever: str = DEFAULT_RETRIEVER, embedder=None, generator=None, history: Sequence[dict] = (),
                    on_text: Callable[[str], None] | None = None, extractive: ExtractiveConfig | None = None,
                    passages_reason: str = "none chosen") -> Answer:
    """Retrieve the top ``k`` chunks for ``question`` and answer from them (:func:`answer_hits`).

    ``index``: an opened index (searched with its ``retriever`` of that kind, ``embedder`` where the
    kind needs one) or a retriever (anything with ``search(query, k, filter=)``). A failed search
    raises :class:`RetrievalError`; the answer's ``retrieval`` is the search it was written from."""
    answer_mode(mode)  # an unknown mode is refused before searching
    try:
        search = index if hasattr(index, "search") else index.retriever(retriever, embedder)
        result = search.search(question, k, filter=filter)
    except Exception as error:  # noqa: BLE001 (the caller says "search failed" and stays up)
        raise RetrievalError(str(error)) from error
    answer = answer_hits(question, result.hits, mode=mode, embedder=embedder, generator=generator, history=history,
                         on_text=on_text, extractive=extractive, passages_reason=passages_reason)
    return replace(answer, retrieval=result)
