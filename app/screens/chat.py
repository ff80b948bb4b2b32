"""Chat: questions answered from the retrieved chunks, with numbered citations."""

from __future__ import annotations

import streamlit as st

from answers.pipeline import RetrievalError
from app import session
from app.views import LiveReply, render_history


def render(settings: session.Settings) -> None:
    st.title("Chat with your documents")
    history: list[dict] = st.session_state.setdefault("chat", [])
    render_history(history)

    question = st.chat_input("Ask a question about the documents")
    if settings.manifest is None:
        st.info("There is no index to search yet. Build one on the **Index** page (or run `make demo`).")
        return
    if question is None:
        if not history:
            st.caption(f"Searching **{settings.manifest.corpus}** with {settings.retriever} retrieval, "
                       f"top {settings.top_k}.")
        return
    if not question.strip():
        st.warning("Type a question first.")
        return

    with st.chat_message("user"):
        st.markdown(question)
    reply = LiveReply()
    try:
        answer = session.ask(settings, question, history, on_text=reply.show)
    except RetrievalError as error:  # a missing model or a damaged index: say so, keep the page alive
        st.error(f"Search failed: {error}")
        return
    reply.finish(answer, question, settings.retriever)

    history.append({"role": "user", "content": question})
    history.append({"role": "assistant", "answer": answer, "question": question, "retriever": settings.retriever})
