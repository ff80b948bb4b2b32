"""Compare: one query through every retriever kind (dense, BM25, hybrid, ...) side by side; on a BEIR
folder, metrics too."""

from __future__ import annotations

import streamlit as st

from app import compare_views, comparison, session
from app.views import source_name
from indexing import RETRIEVERS


def render(settings: session.Settings) -> None:
    st.title("Compare retrievers")
    opened = compare_views.open_for_page(settings.manifest, "compare on")
    if opened is None:
        return
    index, embedder, dataset = opened
    retrievers = {kind: index.retriever(kind, embedder) for kind in RETRIEVERS}
    judged = dataset.judged_queries if dataset else {}
    qid, typed = compare_views.query_picker(judged, dataset, settings.manifest.corpus)
    restriction, query = compare_views.sidebar_restriction(settings, typed)
    if not typed:
        compare_views.compare_hint(settings.manifest, bool(judged))
    elif query:
        found = comparison.side_by_side(retrievers, query, source_name, restriction,
                                        dataset.qrels[qid] if qid else None)
        st.caption(f"{found.shared_by_all} chunk(s) appear in all {len(retrievers)} top-{comparison.SHOW} lists; "
                   f"the Shared column marks which lists hold each hit ({comparison.mark_legend(retrievers)}).")
        for column, found_column in zip(st.columns(len(found.columns)), found.columns, strict=True):
            with column:
                compare_views.retriever_column(found_column, settings.manifest)
    if judged:
        st.divider()
        st.subheader("Batch: the whole query set")
        if restriction:
            st.caption(f"The batch searches the whole corpus; the restriction ({restriction.describe()}) "
                       "applies to the query above.")
        n = st.number_input("Queries to run", 1, len(judged), min(len(judged), 50), key="batch_n")
        if st.button("Run the query set", key="batch_run"):
            bar = st.progress(0.0, text="running ...")
            table = comparison.batch_scores(retrievers, dict(list(judged.items())[: int(n)]), dataset.qrels,
                                            lambda share, text: bar.progress(share, text=text))
            bar.empty()
            st.session_state["batch_result"] = {"n": int(n), "corpus": settings.manifest.corpus, "table": table}
        compare_views.batch_result(st.session_state.get("batch_result"), settings.manifest.corpus)
