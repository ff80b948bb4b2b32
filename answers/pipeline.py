"""The RAG pipeline: retrieve, answer in the chosen mode, attach citations, fall back to the passages.

One function for every caller: the Chat page (streaming into the page), ``POST /answer`` and
``bench/answers.py`` (which retrieves once and calls :func:`answer_hits` per mode).

    from answers.pipeline import answer_question
    answer = answer_question(index, "How does a volcano erupt?", mode="extractive", embedder=minilm)
    print(answer.text, [c.hit.doc_id for c in answer.citations], answer.retrieval.seconds)

Modes: ``extractive`` (sentences quoted from the passages, the offline default), ``local`` and
``openai`` (a generator writes the answer from numbered sources; a generator that cannot run here or
fails mid-answer gives the passages answer with the reason), ``none`` (the best passages).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from answers.citations import attach_citations, passages_answer
from answers.extractive import ExtractiveConfig, extractive_answer
from answers.prompt import build_messages
from answers.records import Answer
from indexing.records import Hit
from linqrag.errors import LinqragError

MODES = ("extractive", "local", "openai", "none")
GENERATED_MODES = ("local", "openai")
MAX_ANSWER_TOKENS = 200
REPETITION_PENALTY = 1.1


class RetrievalError(LinqragError, RuntimeError):
    """The search itself failed (a missing model, a damaged index); the message is the search's own."""


def needs_embedder(mode: str, retriever: str) -> bool:
    """Whether answering needs the embedder: dense retrieval, and extractive answers (which score
    sentences with it whatever the retriever)."""
    return retriever != "bm25" or mode == "extractive"


def _generator_of(generator, mode: str):
    """``generator`` itself, what a loader callable returns, or a fresh :func:`load_generator` of ``mode``."""
    if generator is None:
        from linqrag.generation import load_generator

        return load_generator(mode)
    if hasattr(generator, "generate"):
        return generator
    return generator()


def generated_answer(question: str, hits: Sequence[Hit], generator, *, history: Sequence[dict] = (),
                     on_text: Callable[[str], None] | None = None) -> Answer:
    """A generator's answer from numbered ``hits``, its citations attached (parsed or inferred).

    With ``on_text`` the answer is streamed and ``on_text`` gets the text so far after every piece;
    without it, one ``generate`` call."""
    from linqrag.generation import GenerationConfig

    config = GenerationConfig(max_new_tokens=MAX_ANSWER_TOKENS, repetition_penalty=REPETITION_PENALTY)
    messages = build_messages(question, hits, history)
    if on_text is None:
        text = generator.generate(messages, config)
    else:
        text = ""
        for piece in generator.stream(messages, config):
            text += piece
            on_text(text)
    answer = attach_citations(text, hits)
    notes = [f"written by {generator!r}"]
    counted = getattr(generator, "count_tokens", None)
    if counted and counted(text) >= MAX_ANSWER_TOKENS - 2:
        notes.append(f"the answer reached the {MAX_ANSWER_TOKENS}-token limit and was cut off")
    return replace(answer, notes=notes + answer.notes)


def answer_hits(question: str, hits: Sequence[Hit], *, mode: str = "extractive", embedder=None, generator=None,
                history: Sequence[dict] = (), on_text: Callable[[str], None] | None = None,
                extractive: ExtractiveConfig | None = None, passages_reason: str = "none chosen") -> Answer:
    """The answer to ``question`` from already retrieved ``hits``, written in ``mode``.

    ``generator`` (generated modes): a generator, or a callable returning one (called only when there
    are hits), or None for ``load_generator(mode)``; a generator that is unavailable or fails gives
    the passages answer with the reason. ``extractive``: the extractive settings (default ones)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not hits:
        return passages_answer([], "nothing was retrieved")
    if mode == "none":
        return passages_answer(hits, passages_reason)
    if mode == "extractive":
        return extractive_answer(question, hits, embedder, extractive)
    from linqrag.generation import GeneratorUnavailable

    try:
        return generated_answer(question, hits, _generator_of(generator, mode), history=history, on_text=on_text)
    except GeneratorUnavailable as error:
        return passages_answer(hits, str(error))
    except Exception as error:  # noqa: BLE001 (an endpoint that fails mid-answer: fall back to the passages)
        return passages_answer(hits, f"the generator failed: {error}")


def answer_question(index, question: str, *, mode: str = "extractive", k: int = 5, filter=None,
                    retriever: str = "hybrid", embedder=None, generator=None, history: Sequence[dict] = (),
                    on_text: Callable[[str], None] | None = None, extractive: ExtractiveConfig | None = None,
                    passages_reason: str = "none chosen") -> Answer:
    """Retrieve the top ``k`` chunks for ``question`` and answer from them (:func:`answer_hits`).

    ``index``: an opened index (searched with its ``retriever`` of that kind, ``embedder`` where the
    kind needs one) or a retriever (anything with ``search(query, k, filter=)``). A failed search
    raises :class:`RetrievalError`; the answer's ``retrieval`` is the search it was written from."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    try:
        search = index if hasattr(index, "search") else index.retriever(retriever, embedder)
        result = search.search(question, k, filter=filter)
    except Exception as error:  # noqa: BLE001 (the caller says "search failed" and stays up)
        raise RetrievalError(str(error)) from error
    answer = answer_hits(question, result.hits, mode=mode, embedder=embedder, generator=generator, history=history,
                         on_text=on_text, extractive=extractive, passages_reason=passages_reason)
    return replace(answer, retrieval=result)
