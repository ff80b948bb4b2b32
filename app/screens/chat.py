"""Chat: questions answered from the retrieved chunks, with numbered citations."""

from __future__ import annotations

import streamlit as st

from answers.pipeline import RetrievalError
from app import session
from app.views import LiveReply, plain_label, render_history
from corpora import DEMO_CORPUS_NAME

#: what a new user of the demo corpus asks first; shown as buttons on an empty Chat page
DEMO_EXAMPLES = (
    "How do I index my own folder?",
    "Which embedder is used without a GPU?",
    "How do I fine-tune the embedder on my documents?",
)


def offer_new_index(settings: session.Settings) -> None:
    """After a build on the Index page, a button that points Chat at the new index."""
    newest = session.newest_offer(settings.manifest)
    if newest is None:
        return
    label = session.embedder_label(newest)
    st.info(f"You built **{plain_label(newest.corpus)}** ({plain_label(label)}); Chat is searching "
            f"**{plain_label(settings.manifest.corpus)}**.")
    if st.button(f"Search {newest.corpus} in Chat", key="switch_to_built", type="primary"):
        st.session_state["switch_to"] = (newest.corpus, label)
        st.session_state.pop("offer_built", None)
        st.session_state["chat"] = []
        st.rerun()


def example_question(settings: session.Settings) -> str | None:
    """Buttons with example questions on an empty chat (the demo corpus); the one clicked, or None."""
    st.caption(f"Searching **{plain_label(settings.manifest.corpus)}** with {settings.retriever} retrieval, "
               f"top {settings.top_k}. Answers quote the documents and cite them.")
    if settings.manifest.corpus != DEMO_CORPUS_NAME:
        return None
    st.caption("Try one of these, or type your own below:")
    for column, text in zip(st.columns(len(DEMO_EXAMPLES)), DEMO_EXAMPLES, strict=True):
        if column.button(text, key=f"example_{text}", use_container_width=True):
            return text
    return None


def render(settings: session.Settings) -> None:
    st.title("Chat with your documents")
    history: list[dict] = st.session_state.setdefault("chat", [])
    if settings.manifest is not None:
        offer_new_index(settings)
    render_history(history)

    question = st.chat_input("Ask a question about the documents")
    if settings.manifest is None:
        st.info("There is no index to search yet. Build one on the **Index** page (or run `make demo`).")
        return
    if question is None and not history:
        question = example_question(settings)
    if question is None:
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
