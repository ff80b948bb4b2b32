"""Extractive answers: verbatim sentences of retrieved chunks only, cited, and "not found" when none fits."""

from __future__ import annotations

import pytest

from answers.extractive import NOT_FOUND, ExtractiveConfig, extractive_answer, sentence_spans
from answers.highlight import highlighted_html
from indexing import open_index

RST = """PEP title
=========

Abstract
--------

This PEP proposes a walrus operator, e.g. ``:=``, for assignment expressions. It was accepted in 2018.

Example::

    if (n := len(a)) > 10:
        print(n)

Prose resumes here after the literal block.

- A list item is its own sentence.
- So is this one.

```
fenced code is never quoted
```
"""


def test_sentence_spans_skip_code_headings_and_rules():
    quoted = [RST[s:e] for s, e in sentence_spans(RST)]
    assert "This PEP proposes a walrus operator, e.g. ``:=``, for assignment expressions." in quoted
    assert "It was accepted in 2018." in quoted
    assert "Prose resumes here after the literal block." in quoted
    assert "- A list item is its own sentence." in quoted
    joined = " ".join(quoted)
    for never in ("print(n)", "fenced code", "=====", "Abstract", "if (n"):
        assert never not in joined, never


def test_highlight_marks_every_quoted_span():
    text = "One sentence. Two sentence. Three."
    assert highlighted_html(text, [(0, 13), (28, 34)]) == "<mark>One sentence.</mark> Two sentence. <mark>Three.</mark>"
    assert highlighted_html(text, (14, 27)) == "One sentence. <mark>Two sentence.</mark> Three."


@pytest.fixture(scope="module")
def topics(topics_index_dir):
    return open_index(topics_index_dir)


@pytest.mark.parametrize("question, expected, source", [
    ("How does a volcano erupt?", "magma rises through the crust", "volcano.html"),
    ("What ingredients does bread need?", "flour, water, salt and yeast", "bread.txt"),
    ("Who lives in a bee colony?", "one queen, many workers", "bees.txt"),
])
def test_extractive_answer_quotes_only_cited_retrieved_text(topics, minilm, question, expected, source):
    hits = topics.retriever("hybrid", minilm).search(question, 4).hits
    answer = extractive_answer(question, hits, minilm)
    assert answer.mode == "extractive" and not answer.generated
    assert expected in answer.text, answer.text
    retrieved = {h.chunk_id for h in hits}
    assert answer.citations and all(c.hit.chunk_id in retrieved for c in answer.citations)
    assert any(c.hit.doc_id == source for c in answer.citations)
    rest = answer.text
    for citation in answer.citations:
        for start, end in citation.spans:
            quoted = " ".join(citation.hit.text[start:end].split())
            assert f"{quoted} [{citation.number}]" in answer.text
            rest = rest.replace(f"{quoted} [{citation.number}]", "")
    assert not rest.strip(), f"text outside the quoted spans: {rest!r}"


def test_question_the_documents_do_not_answer_is_not_found(topics, minilm):
    question = "What is the boiling point of mercury in kelvin?"
    hits = topics.retriever("hybrid", minilm).search(question, 4).hits
    answer = extractive_answer(question, hits, minilm)
    assert answer.text == NOT_FOUND and not answer.citations
    assert answer.references == hits and answer.notes


def test_no_hits_and_a_strict_threshold_are_not_found(topics, minilm):
    assert extractive_answer("anything", [], minilm).text == NOT_FOUND
    hits = topics.retriever("dense", minilm).search("How does a volcano erupt?", 3).hits
    strict = ExtractiveConfig(min_score=1.01)
    assert extractive_answer("How does a volcano erupt?", hits, minilm, strict).text == NOT_FOUND
