"""Chat: questions answered from the retrieved chunks, with numbered citations."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from answers.citations import attach_citations, passages_answer
from answers.extractive import extractive_answer
from answers.prompt import build_messages
from app import session
from app.views import render_answer

MAX_ANSWER_TOKENS = 200


def render(settings: session.Settings) -> None:
    st.title("Chat with your documents")
    history: list[dict] = st.session_state.setdefault("chat", [])

    for turn in history:
        with st.chat_message(turn["role"]):
            if turn["role"] == "assistant":
                render_answer(turn["answer"], turn["question"], turn.get("retriever"))
            else:
                st.markdown(turn["content"])

    question = st.chat_input("Ask a question about the documents")
    if settings.manifest is None:
        st.info("There is no index to search yet. Build one on the **Index** page (or run `make demo`).")
        return
    if question is None:
        if not history:
            st.caption(f"Searching **{settings.manifest.corpus}** with {settings.retriever} retrieval, top {settings.top_k}.")
        return
    if not question.strip():
        st.warning("Type a question first.")
        return

    with st.chat_message("user"):
        st.markdown(question)

    try:
        index = session.index_for(settings.manifest)
        # extractive answers score sentences with the embedder, whatever the retriever
        needs_embedder = settings.retriever != "bm25" or settings.generator == "extractive"
        embedder = session.embedder_for(settings.manifest) if needs_embedder else None
        result = index.retriever(settings.retriever, embedder).search(question, settings.top_k,
                                                                      filter=settings.search_filter)
    except Exception as error:  # noqa: BLE001 (a missing model or a damaged index: say so, keep the page alive)
        st.error(f"Search failed: {error}")
        return

    with st.chat_message("assistant"):
        for note in result.notes:
            st.caption(note)
        if not result.hits:
            answer = passages_answer([], "nothing was retrieved")
        elif settings.generator == "none":
            answer = passages_answer(result.hits, "none chosen in the sidebar")
        elif settings.generator == "extractive":
            answer = extractive_answer(question, result.hits, embedder)
        else:
            try:
                from linqrag.generation import GenerationConfig, GeneratorUnavailable

                model = settings.local_model if settings.generator == "local" else settings.endpoint_model
                generator = session.cached_generator(settings.generator, model, settings.base_url)
                messages = build_messages(question, result.hits, [
                    {"role": t["role"], "content": t["answer"].text if t["role"] == "assistant" else t["content"]}
                    for t in history
                ])
                placeholder, text = st.empty(), ""
                for piece in generator.stream(messages, GenerationConfig(max_new_tokens=MAX_ANSWER_TOKENS, repetition_penalty=1.1)):
                    text += piece
                    placeholder.markdown(text + " ▌")
                placeholder.empty()
                answer = attach_citations(text, result.hits)
                notes = [f"written by {generator!r}"]
                counted = getattr(generator, "count_tokens", None)
                if counted and counted(text) >= MAX_ANSWER_TOKENS - 2:
                    notes.append(f"the answer reached the {MAX_ANSWER_TOKENS}-token limit and was cut off")
                answer = replace(answer, notes=notes + answer.notes)
            except GeneratorUnavailable as error:
                answer = passages_answer(result.hits, str(error))
            except Exception as error:  # noqa: BLE001 (an endpoint that fails mid-answer: fall back to the passages)
                answer = passages_answer(result.hits, f"the generator failed: {error}")
        render_answer(answer, question, settings.retriever)
        st.caption(f"{settings.retriever} retrieval: {len(result.hits)} chunks in {result.seconds * 1000:.0f} ms")

    history.append({"role": "user", "content": question})
    history.append({"role": "assistant", "answer": answer, "question": question, "retriever": settings.retriever})
