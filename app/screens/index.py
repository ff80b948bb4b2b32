"""Index: build an index from a folder or uploaded files with a chosen embedder; see what is indexed."""

from __future__ import annotations

import streamlit as st

from app import index_views, session
from app.choices import embedder_choices, index_rows


def render(settings: session.Settings) -> None:
    st.title("Index documents")
    st.caption(f"Index directory: `{session.current_index_dir()}`")
    folder, corpus_name = index_views.document_source()
    choices = embedder_choices(session.adapted_runs(), with_auto=True)
    option = index_views.embedder_picker(choices)
    if st.button("Build index", type="primary", key="build"):
        index_views.build(folder, corpus_name, option, choices)
    index_views.last_build_report()

    st.divider()
    st.subheader("Indexes")
    manifests, reason = session.available_indexes()
    if manifests:
        st.dataframe(index_rows(manifests, session.embedder_label), hide_index=True)
    else:
        st.info(reason)
