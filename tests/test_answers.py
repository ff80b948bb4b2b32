"""The RAG pipeline (``answers.pipeline``) on a real index on disk with the real MiniLM: retrieval,
each answer mode, the generator's fallbacks, and streaming with the real SmolLM2."""

from __future__ import annotations

import pytest

from answers.citations import passages_answer
from answers.extractive import NOT_FOUND, extractive_answer
from answers.modes import ANSWER_MODES
from answers.pipeline import RetrievalError, answer_hits, answer_question, needs_embedder
from indexing import SearchFilter, open_index
from linqrag.generation import load_generator


@pytest.fixture(scope="module")
def topics(topics_index_dir):
    return open_index(topics_index_dir)


def test_extractive_is_the_default_and_quotes_what_was_retrieved(topics, minilm):
    question = "How does a volcano erupt?"
    answer = answer_question(topics, question, embedder=minilm, k=4)
    search = topics.retriever("hybrid", minilm).search(question, 4)
    assert answer.retrieval.hits == search.hits and answer.retrieval.retriever == "hybrid"
    assert answer == extractive_answer(question, search.hits, minilm)  # the same answer as the extractive step alone
    assert answer.mode == "extractive" and "magma rises through the crust" in answer.text
    assert answer.citations[0].hit.doc_id == "volcano.html"

    unanswerable = answer_question(topics, "What is the boiling point of mercury in kelvin?", embedder=minilm)
    assert unanswerable.text == NOT_FOUND and not unanswerable.citations and unanswerable.references


def test_passages_modes_and_a_retriever_given_directly(topics):
    bm25 = topics.retriever("bm25")
    answer = answer_question(bm25, "honey bees", mode="none", passages_reason="bench")
    assert answer == passages_answer(answer.retrieval.hits, "bench")
    assert not answer.generated and answer.citations[0].hit.doc_id == "bees.txt"
    assert "No answer generator is available (bench)" in answer.text

    nothing = answer_question(topics, "honey bees", mode="none", retriever="bm25",
                              filter=SearchFilter(("no-such-folder/",)))
    assert nothing.retrieval.hits == [] and nothing.text == "No passage matched the question."
    assert not needs_embedder("none", "bm25")
    assert needs_embedder("extractive", "bm25") and needs_embedder("none", "dense")


def test_a_generator_that_cannot_run_gives_the_passages_with_the_reason(topics, minilm, tmp_path):
    missing = str(tmp_path / "no-such-model")
    answer = answer_question(topics, "honey bees", mode="local", embedder=minilm,
                             generator=lambda: load_generator("local", model=missing, backend="transformers"))
    assert answer.mode == "passages" and not answer.generated and answer.citations
    assert "does not exist" in answer.notes[0]


def test_a_failed_search_and_a_bad_mode_are_errors(topics):
    with pytest.raises(RetrievalError, match="needs the query embedder"):
        answer_question(topics, "honey bees", retriever="dense")
    with pytest.raises(ValueError, match="mode"):
        answer_question(topics, "honey bees", mode="poetry")
    assert set(ANSWER_MODES) == {"extractive", "local", "openai", "none"}


def test_local_mode_streams_a_cited_answer_from_the_real_smollm2(topics, minilm):
    generator = load_generator("local", backend="transformers")
    shown: list[str] = []
    question = "How does a volcano erupt?"
    answer = answer_question(topics, question, mode="local", embedder=minilm, generator=generator,
                             on_text=shown.append)
    assert answer.generated and answer.mode == "generated" and answer.text.strip()
    assert shown and all(b.startswith(a) for a, b in zip(shown, shown[1:], strict=False))
    assert answer.notes[0] == f"written by {generator!r}"
    retrieved = {h.chunk_id for h in answer.retrieval.hits}
    assert answer.citations and all(c.hit.chunk_id in retrieved for c in answer.citations)
    # not streamed: one generate call, greedy, so the same text as the stream
    again = answer_hits(question, answer.retrieval.hits, mode="local", generator=generator)
    assert again.text == answer.text and again.citations == answer.citations
