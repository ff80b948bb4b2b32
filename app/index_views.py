"""The Index page's widgets: where the documents come from, the embedder picker, the build and its report."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import access, session
from app.choices import EmbedderChoices
from linqrag.errors import LinqragError
from linqrag.settings import cache_dir

FOLDER, UPLOAD, DEMO = "A folder on this machine", "Upload files", "The built-in demo corpus"
UPLOAD_TYPES = ["txt", "md", "markdown", "html", "htm", "pdf", "jsonl"]


def document_source() -> tuple[Path | None, str | None]:
    """``(folder, corpus name)``; the name is None for a folder (its own name is used)."""
    source = st.radio("Documents", [FOLDER, UPLOAD, DEMO], key="index_source", horizontal=True)
    if source == FOLDER:
        return _typed_folder(), None
    if source == UPLOAD:
        return _uploaded()
    from corpora import DEMO_CORPUS_NAME, demo_corpus_dir

    return demo_corpus_dir(), DEMO_CORPUS_NAME


def _typed_folder() -> Path | None:
    """The folder typed, when this server allows it (``app.access.folder_refusal``), else None."""
    roots = access.allowed_roots()
    if roots:
        st.caption("Allowed folders: " + ", ".join(f"`{r}`" for r in roots))
    typed = st.text_input("Folder (txt, md, html, pdf, BEIR jsonl, or a BEIR dataset folder)", key="index_folder")
    if not typed.strip():
        return None
    folder = Path(typed).expanduser()
    refusal = access.folder_refusal(folder)
    if refusal:
        st.error(refusal)
        return None
    return folder


def _uploaded() -> tuple[Path | None, str | None]:
    name = st.text_input("Corpus name", "uploads", key="upload_name")
    files = st.file_uploader("Files", accept_multiple_files=True, key="upload_files", type=UPLOAD_TYPES)
    if not files:
        return None, None
    from corpora.uploads import safe_corpus_name, save_upload_batch

    batch = save_upload_batch(cache_dir() / "uploads", name, [(f.name, f.getvalue()) for f in files])
    st.caption(f"{len(batch.saved)} file(s) of this upload saved to `{batch.folder}`: the index will hold "
               "exactly these")
    for dropped in batch.dropped:
        st.warning(f"not saved: {dropped.path}: {dropped.reason}")
    return batch.folder, safe_corpus_name(name)


def embedder_picker(choices: EmbedderChoices) -> str:
    preferred = st.session_state.pop("build_embedder_choice", None)
    if preferred in choices.options:  # chosen on the Models page
        st.session_state["index_embedder"] = preferred
    option = st.selectbox("Embedder", choices.options, key="index_embedder", format_func=choices.label,
                          help="a preset, or a fine-tuned checkpoint from `python -m finetune.domain`")
    if choices.refusal(option):
        st.warning(choices.refusal(option))
    return option


def build(folder: Path | None, corpus_name: str | None, option: str, choices: EmbedderChoices) -> None:
    """Build the index with a progress bar; on success rerun, so the sidebar lists the new index."""
    if folder is None:
        st.warning("Choose a folder or upload files first.")
        return
    if not folder.is_dir():
        st.error(f"{folder} is not a folder on this machine.")
        return
    from embedder import load_embedder
    from indexing import build_index

    bar = st.progress(0.0, text="loading the embedder ...")
    try:
        embedder = (load_embedder(None, option) if choices.is_checkpoint(option)
                    else session.cached_embedder(option, None, None))

        def progress(stage: str, done: int, total: int) -> None:
            bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{stage}: {done}/{total}")

        report = build_index(folder, embedder, session.current_index_dir(), name=corpus_name,
                             show_progress=False, progress=progress)
    except (LinqragError, OSError, ValueError) as error:
        bar.empty()
        st.error(str(error))
    else:
        st.session_state["last_build"] = report  # shown after the rerun
        st.session_state["offer_built"] = True  # the Chat page offers to search the new index
        st.rerun()


def last_build_report() -> None:
    report = st.session_state.pop("last_build", None)
    if report is None:
        return
    st.success(f"{report.summary()} · {report.documents} documents in {report.seconds:.1f} s")
    for skipped in report.skipped:
        st.warning(f"skipped {skipped.path}: {skipped.reason}")
    for note in report.notes:
        st.caption(note)
