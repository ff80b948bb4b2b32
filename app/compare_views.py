"""The Compare page's widgets: the query picker, one retriever's column, the batch table and plot."""

from __future__ import annotations

import streamlit as st

from app import session
from app.comparison import SHOW, TABLE_ORDER, RetrieverColumn, batch_figure
from corpora import DEMO_CORPUS_NAME
from indexing import RETRIEVERS, FilterError

__all__ = ["batch_result", "compare_hint", "open_for_page", "query_picker", "retriever_column",
           "retriever_title", "sidebar_restriction"]

OWN_QUERY = "(type your own)"
TABLE_CONFIG = {
    "text": st.column_config.TextColumn("text", width="large",
                                        help="the chunk around its sentence closest to the query, marked «like this»"),
    "document": st.column_config.TextColumn("document", width="medium"),
}


@st.cache_resource(show_spinner="Reading the relevance judgements ...")
def judgements(corpus_path: str):
    from corpora import is_beir_folder, load_beir

    return load_beir(corpus_path) if is_beir_folder(corpus_path) else None


def open_for_page(manifest, purpose: str):
    """``(index, embedder, judgements or None)``, or None after saying on the page why not."""
    if manifest is None:
        st.info(f"There is no index to {purpose} yet. Build one on the **Index** page.")
        return None
    try:
        return session.index_for(manifest), session.embedder_for(manifest), judgements(manifest.corpus_path)
    except Exception as error:  # noqa: BLE001 - a missing model, a damaged index or store: say so, keep the page alive
        st.error(f"Cannot open this index: {error}")
        return None


def query_picker(judged: dict[str, str], dataset, corpus: str) -> tuple[str | None, str]:
    """A judged query to pick (when the corpus has judgements) or one to type: ``(query id, text)``."""
    query, qid = "", None
    if judged:
        st.caption(f"{corpus} has relevance judgements for {len(judged)} queries ({dataset.split} split).")
        picked = st.selectbox("Pick a judged query", [OWN_QUERY, *judged], key="compare_qid",
                              format_func=lambda i: i if i == OWN_QUERY else f"{i}: {judged[i][:90]}")
        if picked != OWN_QUERY:
            qid, query = picked, judged[picked]
    typed = st.text_input("Query", value=query, key=f"compare_query_{qid}", placeholder="a question or keywords")
    return qid, typed.strip()


def sidebar_restriction(settings: session.Settings, query: str):
    """The sidebar's file restriction; a malformed one is shown and searches nothing (not everything)."""
    try:
        return settings.search_filter, query
    except FilterError as error:
        st.error(f"Restrict to files: {error}")
        return None, ""


def compare_hint(manifest, judged: bool) -> None:
    examples = ("e.g. *how are dense and BM25 rankings fused?*" if manifest.corpus == DEMO_CORPUS_NAME
                else "a question or a few keywords about these documents")
    pick = " or pick a judged query above to score each list against its relevance judgements" if judged else ""
    st.info(f"Type a query above ({examples}){pick}. The top {SHOW} hits of each retriever "
            f"({', '.join(RETRIEVERS)}) then appear side by side, with latency and the hits they share.")


def retriever_title(kind: str, manifest) -> str:
    """The column title the kind registers (:attr:`indexing.RetrieverKind.title`), with this index's embedder."""
    registered = RETRIEVERS.get(kind)
    return registered.title.format(embedder=session.embedder_label(manifest)) if registered else kind


def retriever_column(column: RetrieverColumn, manifest) -> None:
    st.subheader(retriever_title(column.kind, manifest))
    cells = st.columns(1 + len(column.scores))
    cells[0].metric("latency (ms)", f"{column.milliseconds:.0f}")
    for cell, (name, value) in zip(cells[1:], column.scores.items(), strict=True):
        cell.metric(name, f"{value:.3f}")
    for note in column.notes:
        st.caption(note)
    if column.rows:
        st.dataframe(column.rows, hide_index=True, column_config=TABLE_CONFIG,
                     column_order=[c for c in TABLE_ORDER if c in column.rows[0]])
    else:
        st.info("no hits")


def batch_result(result: dict | None, corpus: str) -> None:
    """The last batch's table and plot, when it was run on this corpus."""
    if not result or result["corpus"] != corpus:
        return
    import matplotlib.pyplot as plt

    st.dataframe(result["table"], hide_index=True)
    fig = batch_figure(result["table"], f"{result['corpus']}: {result['n']} judged queries")
    st.pyplot(fig)
    plt.close(fig)
