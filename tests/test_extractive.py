"""Extractive answers: verbatim sentences of retrieved chunks only, cited, and "not found" when none fits."""

from __future__ import annotations

import pytest

from answers.extractive import NOT_FOUND, ExtractiveConfig, extractive_answer
from answers.highlight import highlighted_html
from answers.sentences import clean_span, sentence_spans
from indexing import open_index
from indexing.records import Hit

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


def _hit(text: str, doc: str = "guide.rst", rank: int = 1) -> Hit:
    return Hit(f"{doc}:0", 1.0 / rank, rank, text, {"doc_id": doc, "title": "Guide"})


def _assert_verbatim_and_cited(answer, hits):
    """Every quoted piece is a whitespace-collapsed range of its cited hit, followed by its number."""
    assert answer.citations
    rest = answer.text
    for citation in answer.citations:
        assert citation.hit in hits
        for start, end in citation.spans:
            quoted = clean_span(citation.hit.text[start:end])
            assert f"{quoted} [{citation.number}]" in answer.text
            rest = rest.replace(f"{quoted} [{citation.number}]", "")
    assert not rest.strip(), rest


LISTED = """Configuration
=============

The cache lives in the user's home folder and is created on first use.

The build reads three environment variables:

- ``LINQRAG_INDEX_DIR`` names the index folder.
- ``LINQRAG_DATA`` names the data folder.
- ``LINQRAG_API_KEY`` protects the served API.

To rebuild from scratch, run::

    python -m indexing build --corpus docs --rebuild

The rebuild drops the old collection first.
"""


@pytest.mark.parametrize("question, gold", [
    ("Which environment variable protects the served API?", "LINQRAG_API_KEY"),
    ("What command rebuilds the index from scratch?", "--rebuild"),
])
def test_list_items_and_literals_after_a_lead_in_can_be_quoted(minilm, question, gold):
    hits = [_hit(LISTED), _hit("Unrelated text about volcanoes and magma chambers in the crust.", "other.md", 2)]
    answer = extractive_answer(question, hits, minilm, ExtractiveConfig(min_score=-1.0))
    assert gold in answer.text, answer.text
    _assert_verbatim_and_cited(answer, hits)


def test_the_fact_in_the_sentence_after_the_topic_sentence_is_quoted(minilm):
    text = ("The line length limit was discussed at length on the mailing list. "
            "It was finally set to 79 characters, with 72 for docstrings.\n\nOther rules follow.")
    hits = [_hit(text)]
    answer = extractive_answer("How many characters is the line length limit?", hits, minilm,
                               ExtractiveConfig(min_score=-1.0))
    assert "79 characters" in answer.text, answer.text
    _assert_verbatim_and_cited(answer, hits)


def test_a_long_legal_sentence_is_offered_by_its_clauses(minilm):
    text = ("(1) Whoever commits forgery of a document which purports to be a valuable security or a will, or an "
            "authority to adopt a son, or which purports to give authority to any person to make or transfer any "
            "valuable security, or to receive the principal, interest or dividends thereon, or to receive or deliver "
            "any money, movable property, or valuable security, shall be punished with imprisonment for life, or "
            "with imprisonment of either description for a term which may extend to ten years, and shall also be "
            "liable to fine.")
    hits = [_hit(text, "S99")]
    answer = extractive_answer("What is the maximum punishment for forging a will?", hits, minilm,
                               ExtractiveConfig(min_score=-1.0))
    assert "imprisonment for life" in answer.text
    _assert_verbatim_and_cited(answer, hits)
