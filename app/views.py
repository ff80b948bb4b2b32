"""Rendering pieces the pages share: hits, citations, highlighted chunks."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from indexing.records import Hit
from linqrag.rag import Answer, citing_sentences, highlight_span, highlighted_html

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


def render_citations(answer: Answer, question: str) -> None:
    """One expander per citation: file, score, and the chunk with the cited passage marked."""
    for citation in answer.citations:
        hit = citation.hit
        tag = " · inferred" if citation.inferred else ""
        with st.expander(f"[{citation.number}] {source_name(hit)} · score {hit.score:.3f}{tag}"):
            reference = " ".join(citing_sentences(answer.text, citation.number)) or question
            span = highlight_span(hit.text, reference) or highlight_span(hit.text, question)
            st.caption(f"{hit.metadata.get('source', '')} · characters {hit.metadata.get('start', 0)}-"
                       f"{hit.metadata.get('end', 0)} · chunk {hit.chunk_id}")
            # st.html, not st.markdown: chunk text is shown as written, never re-rendered as markdown
            st.html(f"{CHUNK_CSS}<div class='linqrag-chunk'>{highlighted_html(hit.text, span)}</div>")


def render_answer(answer: Answer, question: str) -> None:
    st.markdown(answer.text)
    for note in answer.notes:
        st.caption(note)
    render_citations(answer, question)
