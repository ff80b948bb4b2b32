"""What the pages share: cached models and indexes, and the sidebar's choices.

Models and indexes are loaded once per process (``st.cache_resource``); the choices live in
``st.session_state`` so every page sees the same corpus, embedder, retriever and generator.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from linqrag.files import write_json_atomic
from linqrag.settings import apply_offline_env, index_dir, runs_dir

apply_offline_env()  # before the imports below, which load transformers and chromadb

from answers.modes import ANSWER_MODES, DEFAULT_MODE  # noqa: E402
from answers.pipeline import RetrievalError, answer_question, needs_embedder  # noqa: E402
from answers.records import Answer  # noqa: E402
from app import access  # noqa: E402
from corpora import DEMO_CORPUS_NAME  # noqa: E402
from indexing import (  # noqa: E402
    DEFAULT_RETRIEVER,
    RETRIEVERS,
    FilterError,
    IndexStoreError,
    SearchFilter,
    list_indexes,
    open_index,
)
from indexing.manifest import Manifest  # noqa: E402
from indexing.retrievers import retriever_help  # noqa: E402

#: In the index directory: the corpus and embedder last chosen in the sidebar, which a new browser
#: session opens on (``{"corpus", "embedder", "signature"}``).
LAST_USED_FILE = "app-last-used.json"



@dataclass(frozen=True)
class Settings:
    """The sidebar's choices for this run of a page."""

    manifest: Manifest | None
    retriever: str
    top_k: int
    generator: str
    local_model: str
    base_url: str
    endpoint_model: str
    path_filter: str = ""  # comma-separated globs on paths relative to the corpus folder
    api_key_env: str | None = "OPENAI_API_KEY"  # None: send no key to base_url (a visitor typed it)

    @property
    def search_filter(self) -> SearchFilter | None:
        """The sidebar's file restriction for ``search(..., filter=)``; raises ``FilterError`` if malformed."""
        return SearchFilter.parse(self.path_filter)


def current_index_dir() -> Path:
    return Path(st.session_state.get("index_dir") or index_dir())


def embedder_label(manifest: Manifest) -> str:
    if manifest.adapter:
        return f"{manifest.embedder} + {Path(manifest.adapter).name}"
    return manifest.embedder


def available_indexes() -> tuple[list[Manifest], str | None]:
    """Finished indexes in the index directory, newest first, or the reason there are none."""
    try:
        manifests = list_indexes(current_index_dir())
    except IndexStoreError as error:
        return [], str(error)
    if not manifests:
        return [], f"no finished index in {current_index_dir()}"
    return sorted(manifests, key=lambda m: -m.built_at), None


def read_last_used() -> dict | None:
    """The sidebar's last choice in this index directory, or ``None`` (none yet, unreadable)."""
    try:
        data = json.loads((current_index_dir() / LAST_USED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remember_choice(manifest: Manifest) -> None:
    """Record ``manifest`` as the last choice, for the next browser session; a read-only index
    directory just forgets it."""
    path = current_index_dir() / LAST_USED_FILE
    record = {"corpus": manifest.corpus, "embedder": embedder_label(manifest), "signature": manifest.signature}
    try:
        write_json_atomic(path, record)
    except OSError:
        pass


def opening_index(manifests: list[Manifest]) -> tuple[Manifest, str]:
    """The index a new browser session opens on, and why: the last one chosen here, else the demo,
    else the newest (``manifests`` newest first)."""
    last = read_last_used()
    if last:
        same_corpus = [m for m in manifests if m.corpus == last.get("corpus")]
        for manifest in same_corpus:
            if manifest.signature == last.get("signature"):
                return manifest, "last used"
        for manifest in same_corpus:
            if embedder_label(manifest) == last.get("embedder"):
                return manifest, "last used"
    demo = [m for m in manifests if m.corpus == DEMO_CORPUS_NAME]
    if demo:
        return demo[0], "the demo"
    return manifests[0], "newest"


def newest_offer(current: Manifest | None) -> Manifest | None:
    """The index built last on the Index page when the sidebar is on another one (the Chat page offers
    to switch), else None; the offer is made once."""
    if not st.session_state.get("offer_built"):
        return None
    manifests, _ = available_indexes()
    newest = manifests[0] if manifests else None
    if newest is None or current is None or (newest.corpus, newest.signature) == (current.corpus, current.signature):
        st.session_state.pop("offer_built", None)
        return None
    return newest


def _mark_chosen() -> None:
    st.session_state["choice_made"] = True


@st.cache_resource(show_spinner="Loading the embedder ...")
def cached_embedder(name: str, adapter: str | None, max_length: int | None, backend: str = "auto"):
    from embedder import load_embedder

    return load_embedder(name, adapter, max_length=max_length, backend=backend)


def embedder_for(manifest: Manifest):
    return cached_embedder(manifest.embedder, manifest.adapter, manifest.max_length, manifest.backend)


@st.cache_resource(show_spinner="Opening the index ...")
def cached_index(directory: str, corpus: str, signature: str, built_at: float):
    # built_at is part of the key: a rebuilt index is reopened, not served stale, and with a Chroma
    # reader of its own (one opened earlier in this process misses vectors another process wrote)
    index = open_index(directory, corpus=corpus, signature=signature, fresh_store=True)
    index.warm_up()  # Chroma reads the HNSW segment now, not during the first search (~0.3 s at 10k chunks)
    return index


def index_for(manifest: Manifest):
    return cached_index(str(current_index_dir()), manifest.corpus, manifest.signature, manifest.built_at)


@st.cache_resource(show_spinner="Loading the answer model ...")
def cached_generator(kind: str, model: str | None, base_url: str | None, api_key_env: str | None = "OPENAI_API_KEY"):
    from linqrag.generation import load_generator

    return load_generator(kind, model=model or None, base_url=base_url or None, api_key_env=api_key_env)


def chat_messages(history: list[dict]) -> list[dict]:
    """The Chat page's turns as chat messages (an assistant turn contributes its answer's text)."""
    return [{"role": t["role"], "content": t["answer"].text if t["role"] == "assistant" else t["content"]}
            for t in history]


def ask(settings: Settings, question: str, history: list[dict], on_text=None) -> Answer:
    """The answer to ``question`` with the sidebar's choices, the conversation so far as context.

    Raises :class:`~answers.pipeline.RetrievalError` when the index, its embedder, the file filter or
    the search fails; a generator that fails gives the passages answer instead."""
    try:
        index = index_for(settings.manifest)
        embedder = embedder_for(settings.manifest) if needs_embedder(settings.generator, settings.retriever) else None
        search_filter = settings.search_filter
    except Exception as error:  # noqa: BLE001 (shown as "search failed", the page stays up)
        raise RetrievalError(str(error)) from error
    kind = ANSWER_MODES[settings.generator].generator_kind
    model = settings.local_model if kind == "local" else settings.endpoint_model
    return answer_question(
        index, question, mode=settings.generator, k=settings.top_k, filter=search_filter,
        retriever=settings.retriever, embedder=embedder, history=chat_messages(history), on_text=on_text,
        generator=lambda: cached_generator(settings.generator, model, settings.base_url, settings.api_key_env),
        passages_reason="none chosen in the sidebar")


def sidebar() -> Settings:
    """Draw the sidebar and return its choices."""
    manifests, reason = available_indexes()
    with st.sidebar:
        st.header("linqrag")
        manifest = None
        if manifests:
            corpora = list(dict.fromkeys(m.corpus for m in manifests))
            switch_to = st.session_state.pop("switch_to", None)  # (corpus, embedder label) from the Chat page's offer
            if switch_to and switch_to[0] in corpora:  # applied before the widgets exist
                st.session_state["corpus"], st.session_state["preferred_embedder"] = switch_to
                st.session_state["choice_made"] = True
            if st.session_state.get("corpus") not in corpora:  # a new browser session (or its corpus is gone)
                first, why = opening_index(manifests)
                st.session_state["corpus"] = first.corpus
                st.session_state["embedder_label"] = embedder_label(first)
                st.session_state["opened"] = (first.corpus, embedder_label(first), why)
            corpus = st.selectbox("Corpus", corpora, key="corpus", on_change=_mark_chosen)
            choices = [m for m in manifests if m.corpus == corpus]
            labels = [embedder_label(m) for m in choices]
            wanted = st.session_state.pop("preferred_embedder", None)
            if wanted in labels:  # set by the Models page; applied before the widget exists
                st.session_state["embedder_label"] = wanted
                st.session_state["choice_made"] = True
            elif st.session_state.get("embedder_label") not in labels:
                st.session_state.pop("embedder_label", None)
            label = st.selectbox("Embedder", labels, key="embedder_label", on_change=_mark_chosen)
            manifest = choices[labels.index(label)]
            if st.session_state.pop("choice_made", False):
                remember_choice(manifest)
            caption = f"{manifest.chunk_count} chunks from {len(manifest.files)} documents"
            opened = st.session_state.get("opened")
            if opened and opened[:2] == (corpus, label):
                caption = f"opened: {corpus} · {label} ({opened[2]}) · {caption}"
            st.caption(caption)
        else:
            st.info(f"No index yet ({reason}). Build one on the Index page.")
        kinds = list(RETRIEVERS)
        retriever = st.radio("Retriever", kinds, index=kinds.index(DEFAULT_RETRIEVER), key="retriever",
                             horizontal=True, help=retriever_help())
        top_k = st.slider("Top k", 1, 20, 5, key="top_k")
        path_filter = st.text_input(
            "Restrict to files (glob)", key="path_filter", placeholder="docs/, *.md",
            help="Comma-separated patterns on paths relative to the corpus folder: 'docs/' keeps that folder, "
                 "'*.md' Markdown files anywhere, 'notes/2024-*' some notes. Empty searches the whole corpus.")
        try:
            SearchFilter.parse(path_filter)
        except FilterError as error:
            st.error(str(error))
        modes = list(ANSWER_MODES)
        generator = st.selectbox("Answer generator", modes, index=modes.index(DEFAULT_MODE), key="generator",
                                 format_func=lambda name: ANSWER_MODES[name].label,
                                 help=" ".join(mode.help for mode in ANSWER_MODES.values()))
        local_model, base_url, endpoint_model, key_env = "smollm2", "", "", "OPENAI_API_KEY"
        kind = ANSWER_MODES[generator].generator_kind
        if kind == "local":
            local_model = st.text_input("Local model (preset, hub id or path)", "smollm2", key="local_model")
        elif kind == "openai":
            base_url = st.text_input("Base URL", os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
                                     key="base_url")
            endpoint_model = st.text_input("Model", os.environ.get("OPENAI_MODEL", ""), key="endpoint_model")
            key_env = access.key_env_for(base_url)
            st.caption("The API key is read from OPENAI_API_KEY in the server's environment." if key_env else
                       "No API key is sent to this URL: the server's key goes only to its own OPENAI_BASE_URL.")
    return Settings(manifest, retriever, top_k, generator, local_model, base_url, endpoint_model, path_filter,
                    key_env)


def adapted_runs(root: Path | None = None) -> list:
    """Finished ``finetune.domain`` runs: best checkpoint, base and gain (``finetune.catalog.AdaptedRun``)."""
    from finetune.catalog import find_runs

    return find_runs(root or runs_dir())
