"""What the pages share: cached models and indexes, and the sidebar's choices.

Models and indexes are loaded once per process (``st.cache_resource``); the choices live in
``st.session_state`` so every page sees the same corpus, embedder, retriever and generator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from linqrag.settings import apply_offline_env, index_dir, runs_dir

apply_offline_env()

from indexing import RETRIEVERS, FilterError, IndexStoreError, SearchFilter, list_indexes, open_index
from indexing.manifest import Manifest

GENERATOR_CHOICES = {
    "extractive": "Extractive: quote the best sentences (offline, never invents)",
    "local": "Local LLM (SmolLM2-135M: small, may invent)",
    "openai": "OpenAI-compatible endpoint",
    "none": "None: show the best passages",
}


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


@st.cache_resource(show_spinner="Loading the embedder ...")
def cached_embedder(name: str, adapter: str | None, max_length: int | None):
    from embedder import load_embedder

    return load_embedder(name, adapter, max_length=max_length)


def embedder_for(manifest: Manifest):
    return cached_embedder(manifest.embedder, manifest.adapter, manifest.max_length)


@st.cache_resource(show_spinner="Opening the index ...")
def cached_index(directory: str, corpus: str, signature: str, built_at: float):
    # built_at is part of the key: a rebuilt index is reopened, not served stale
    return open_index(directory, corpus=corpus, signature=signature)


def index_for(manifest: Manifest):
    return cached_index(str(current_index_dir()), manifest.corpus, manifest.signature, manifest.built_at)


@st.cache_resource(show_spinner="Loading the answer model ...")
def cached_generator(kind: str, model: str | None, base_url: str | None):
    from linqrag.generation import load_generator

    return load_generator(kind, model=model or None, base_url=base_url or None)


def sidebar() -> Settings:
    """Draw the sidebar and return its choices."""
    manifests, reason = available_indexes()
    with st.sidebar:
        st.header("linqrag")
        manifest = None
        if manifests:
            corpora = list(dict.fromkeys(m.corpus for m in manifests))
            corpus = st.selectbox("Corpus", corpora, key="corpus")
            choices = [m for m in manifests if m.corpus == corpus]
            labels = [embedder_label(m) for m in choices]
            wanted = st.session_state.pop("preferred_embedder", None)
            if wanted in labels:  # set by the Models page; applied before the widget exists
                st.session_state["embedder_label"] = wanted
            elif st.session_state.get("embedder_label") not in labels:
                st.session_state.pop("embedder_label", None)
            label = st.selectbox("Embedder", labels, key="embedder_label")
            manifest = choices[labels.index(label)]
            st.caption(f"{manifest.chunk_count} chunks from {len(manifest.files)} documents")
        else:
            st.info(f"No index yet ({reason}). Build one on the Index page.")
        retriever = st.radio("Retriever", RETRIEVERS, index=RETRIEVERS.index("hybrid"), key="retriever",
                             horizontal=True)
        top_k = st.slider("Top k", 1, 20, 5, key="top_k")
        path_filter = st.text_input(
            "Restrict to files (glob)", key="path_filter", placeholder="docs/, *.md",
            help="Comma-separated patterns on paths relative to the corpus folder: 'docs/' keeps that folder, "
                 "'*.md' Markdown files anywhere, 'notes/2024-*' some notes. Empty searches the whole corpus.")
        try:
            SearchFilter.parse(path_filter)
        except FilterError as error:
            st.error(str(error))
        generator = st.selectbox("Answer generator", list(GENERATOR_CHOICES), key="generator",
                                 format_func=GENERATOR_CHOICES.get)
        local_model, base_url, endpoint_model = "smollm2", "", ""
        if generator == "local":
            local_model = st.text_input("Local model (preset, hub id or path)", "smollm2", key="local_model")
        elif generator == "openai":
            base_url = st.text_input("Base URL", os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
                                     key="base_url")
            endpoint_model = st.text_input("Model", os.environ.get("OPENAI_MODEL", ""), key="endpoint_model")
            st.caption("The API key is read from OPENAI_API_KEY in the server's environment.")
    return Settings(manifest, retriever, top_k, generator, local_model, base_url, endpoint_model, path_filter)


def adapted_runs(root: Path | None = None) -> list:
    """Finished ``finetune.domain`` runs: best checkpoint, base and gain (``finetune.catalog.AdaptedRun``)."""
    from finetune.catalog import find_runs

    return find_runs(root or runs_dir())
