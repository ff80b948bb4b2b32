"""Index: build an index from a folder or uploaded files with a chosen embedder; see what is indexed."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import session
from embedder import PRESETS, unavailable_reason
from linqrag.settings import cache_dir


def render(settings: session.Settings) -> None:
    st.title("Index documents")
    st.caption(f"Index directory: `{session.current_index_dir()}`")

    source = st.radio("Documents", ["A folder on this machine", "Upload files", "The built-in demo corpus"],
                      key="index_source", horizontal=True)
    folder: Path | None = None
    corpus_name: str | None = None  # None: the folder's name
    if source == "A folder on this machine":
        typed = st.text_input("Folder (txt, md, html, pdf, BEIR jsonl, or a BEIR dataset folder)", key="index_folder")
        folder = Path(typed).expanduser() if typed.strip() else None
    elif source == "Upload files":
        name = st.text_input("Corpus name", "uploads", key="upload_name")
        files = st.file_uploader("Files", accept_multiple_files=True, key="upload_files",
                                 type=["txt", "md", "markdown", "html", "htm", "pdf", "jsonl"])
        if files:
            from corpora.uploads import safe_corpus_name, save_upload_batch

            batch = save_upload_batch(cache_dir() / "uploads", name, [(f.name, f.getvalue()) for f in files])
            folder, corpus_name = batch.folder, safe_corpus_name(name)
            st.caption(f"{len(batch.saved)} file(s) of this upload saved to `{folder}`: the index will hold "
                       "exactly these")
            for dropped in batch.dropped:
                st.warning(f"not saved: {dropped.path}: {dropped.reason}")
    else:
        from corpora import DEMO_CORPUS_NAME, demo_corpus_dir

        folder, corpus_name = demo_corpus_dir(), DEMO_CORPUS_NAME

    runs = session.adapted_runs()
    labels_by_option = {r.best_checkpoint: r.label for r in runs}
    options = ["minilm", "smollm2", "auto", "linq", "e5-mistral"] + list(labels_by_option)
    preferred = st.session_state.pop("build_embedder_choice", None)
    if preferred in options:  # chosen on the Models page
        st.session_state["index_embedder"] = preferred
    reasons = {name: unavailable_reason(name) for name in PRESETS}
    reasons.update({r.best_checkpoint: reasons.get(r.base) for r in runs})
    reasons["auto"] = None  # auto picks what runs here
    embedder_name = st.selectbox("Embedder", options, key="index_embedder",
                                 format_func=lambda o: labels_by_option.get(o, o) + ("" if reasons.get(o) is None
                                                                                     else " (cannot run here)"),
                                 help="a preset, or a fine-tuned checkpoint from `python -m finetune.domain`")
    if reasons.get(embedder_name):
        st.warning(f"{labels_by_option.get(embedder_name, embedder_name)} cannot run on this machine: "
                   f"{reasons[embedder_name].rstrip('.')}.")

    if st.button("Build index", type="primary", key="build"):
        if folder is None:
            st.warning("Choose a folder or upload files first.")
        elif not folder.is_dir():
            st.error(f"{folder} is not a folder on this machine.")
        else:
            from corpora import CorpusError
            from embedder import ModelNotFoundError, load_embedder
            from indexing import IndexStoreError, build_index

            bar = st.progress(0.0, text="loading the embedder ...")
            try:
                is_checkpoint = embedder_name not in options[:5]
                embedder = (load_embedder(None, embedder_name) if is_checkpoint
                            else session.cached_embedder(embedder_name, None, None))

                def progress(stage: str, done: int, total: int) -> None:
                    bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{stage}: {done}/{total}")

                report = build_index(folder, embedder, session.current_index_dir(), name=corpus_name,
                                     show_progress=False, progress=progress)
            except (ModelNotFoundError, CorpusError, IndexStoreError, OSError, ValueError) as error:
                bar.empty()
                st.error(str(error))
            else:
                # rerun so the sidebar lists the new index; the report is shown after the rerun
                st.session_state["last_build"] = report
                st.rerun()

    report = st.session_state.pop("last_build", None)
    if report is not None:
        st.success(f"{report.summary()} · {report.documents} documents in {report.seconds:.1f} s")
        for skipped in report.skipped:
            st.warning(f"skipped {skipped.path}: {skipped.reason}")
        for note in report.notes:
            st.caption(note)

    st.divider()
    st.subheader("Indexes")
    manifests, reason = session.available_indexes()
    if manifests:
        st.dataframe([{
            "corpus": m.corpus, "embedder": session.embedder_label(m), "documents": len(m.files),
            "chunks": m.chunk_count, "chunk size": m.chunk_config.get("chunk_size"), "path": m.corpus_path,
        } for m in manifests], hide_index=True)
    else:
        st.info(reason)
