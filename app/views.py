"""Rendering pieces the pages share: hits, citations, highlighted chunks, the chat's turns."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from answers.citations import citing_sentences
from answers.highlight import highlight_span, highlighted_html
from answers.records import MODE_LABELS, Answer
from indexing import RETRIEVERS
from indexing.records import Hit

CHUNK_CSS = (
    "<style>.linqrag-chunk { white-space: pre-wrap; font-family: sans-serif; font-size: 0.9rem; line-height: 1.45; }"
    " .linqrag-chunk mark { background: #ffe58a; padding: 0 2px; }</style>"
)


def source_name(hit: Hit) -> str:
    """The file a hit came from; for a BEIR corpus file, the document id (what qrels judge)."""
    source = hit.metadata.get("source") or hit.doc_id
    name = Path(source).name if "/" in source else source
    if name.endswith((".jsonl", ".jsonl.gz")):
        return hit.doc_id
    return name


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$])")  # what formats inside a label (a "." or "-" never does)


def plain_label(text: str) -> str:
    """``text`` for a Streamlit label, which renders Markdown: ``corpora.__init__.md`` must not turn bold."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def hit_label(hit: Hit, retriever: str | None) -> str:
    """Rank always; the score only where a reader can read it (a kind's ``score_label``: dense cosine),
    not RRF or BM25 values. The file name is escaped: labels render Markdown."""
    label = f"{plain_label(source_name(hit))} · retrieved #{hit.rank}"
    kind = RETRIEVERS.get(retriever) if retriever else None
    return label + (f" · {kind.score_label} {hit.score:.2f}" if kind and kind.score_label else "")


def render_passage(hit: Hit, spans) -> None:
    st.caption(f"{hit.metadata.get('source', '')} · characters {hit.metadata.get('start', 0)}-"
               f"{hit.metadata.get('end', 0)} · chunk {hit.chunk_id}")
    # st.html, not st.markdown: chunk text is shown as written, never re-rendered as markdown
    st.html(f"{CHUNK_CSS}<div class='linqrag-chunk'>{highlighted_html(hit.text, spans)}</div>")


def render_citations(answer: Answer, question: str, retriever: str | None = None) -> None:
    """One expander per citation: file, rank, and the chunk with the cited passage marked (the exact
    quoted sentences for an extractive answer)."""
    for citation in answer.citations:
        hit = citation.hit
        tag = " · inferred" if citation.inferred else ""
        with st.expander(f"[{citation.number}] {hit_label(hit, retriever)}{tag}"):
            if citation.spans:
                spans = citation.spans
            else:
                reference = " ".join(citing_sentences(answer.text, citation.number)) or question
                spans = highlight_span(hit.text, reference) or highlight_span(hit.text, question)
            render_passage(hit, spans)
    if answer.references and not answer.citations:
        st.caption("Closest retrieved passages (none of them is cited):")
        for hit in answer.references:
            with st.expander(hit_label(hit, retriever)):
                render_passage(hit, highlight_span(hit.text, question))


def render_answer(answer: Answer, question: str, retriever: str | None = None) -> None:
    st.caption(MODE_LABELS.get(answer.mode, answer.mode))
    st.markdown(answer.text)
    for note in answer.notes:
        st.caption(note)
    render_citations(answer, question, retriever)


def render_history(history: list[dict]) -> None:
    """The chat's earlier turns: questions as written, answers with their citations."""
    for turn in history:
        with st.chat_message(turn["role"]):
            if turn["role"] == "assistant":
                render_answer(turn["answer"], turn["question"], turn.get("retriever"))
            else:
                st.markdown(turn["content"])


class LiveReply:
    """The assistant's turn on the Chat page: opened at the first streamed piece (a generated answer
    is shown as it is written) or when the answer is shown, whichever comes first."""

    def __init__(self) -> None:
        self.bubble = None
        self.placeholder = None

    def _open(self):
        if self.bubble is None:
            self.bubble = st.chat_message("assistant")
        return self.bubble

    def show(self, text: str) -> None:
        """The answer written so far, with a cursor (``on_text`` of :func:`answers.pipeline.answer_question`)."""
        if self.placeholder is None:
            self.placeholder = self._open().empty()
        self.placeholder.markdown(text + " ▌")

    def finish(self, answer: Answer, question: str, retriever: str) -> None:
        """The finished answer: the search's notes, the answer and its citations, the search's time.
        A stream that failed part way stays visible above the passages shown instead."""
        if self.placeholder is not None and answer.generated:
            self.placeholder.empty()
        result = answer.retrieval
        with self._open():
            for note in result.notes:
                st.caption(note)
            render_answer(answer, question, retriever)
            st.caption(f"{retriever} retrieval: {len(result.hits)} chunks in {result.seconds * 1000:.0f} ms")
