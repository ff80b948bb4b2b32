"""The Streamlit app under ``AppTest``: real indexes on disk, real MiniLM, the real SmolLM2 generator."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from indexing import build_index, open_index

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


def new_app(index_dir: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("LINQRAG_INDEX_DIR", str(index_dir))
    at = AppTest.from_file(MAIN, default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


@pytest.fixture(scope="module")
def topic_index(tmp_path_factory, minilm) -> Path:
    from tests.conftest import TOPICS, make_pdf

    corpus = tmp_path_factory.mktemp("app-corpus")
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "trains.pdf").write_bytes(make_pdf(["Steam locomotives pulled the first passenger trains."]))
    index_dir = tmp_path_factory.mktemp("app-index") / "index"
    build_index(corpus, minilm, index_dir, name="topics", show_progress=False)
    return index_dir


@pytest.fixture(scope="module")
def statutes_index(tmp_path_factory, minilm, shared_data) -> Path:
    folder = shared_data / "aila-statutes"
    if not folder.is_dir():
        pytest.skip(f"aila-statutes not found at {folder}")
    index_dir = tmp_path_factory.mktemp("app-statutes") / "index"
    build_index(folder, minilm, index_dir, show_progress=False)
    return index_dir


def test_chat_answers_extractively_by_default(topic_index, monkeypatch):
    at = new_app(topic_index, monkeypatch)
    assert at.sidebar.selectbox(key="generator").value == "extractive"
    at.chat_input[0].set_value("How does a volcano erupt?").run()
    assert not at.exception, at.exception
    answer = at.session_state["chat"][-1]["answer"]
    assert answer.mode == "extractive" and "magma rises through the crust" in answer.text, answer.text
    assert any("Extractive answer" in c for c in texts(at.caption))
    labels = [e.label for e in at.expander]
    assert any(label.startswith("[1] volcano.html · retrieved #") for label in labels), labels
    assert any("<mark>A volcano erupts when magma" in h.proto.body for h in at.get("html")), "the quote is marked"

    at.chat_input[0].set_value("What is the boiling point of mercury in kelvin?").run()
    assert not at.exception, at.exception
    answer = at.session_state["chat"][-1]["answer"]
    assert answer.text == "I found no passage that answers this." and not answer.citations
    assert any("Closest retrieved passages" in c for c in texts(at.caption)), "the retrieved passages stay visible"


def test_chat_round_trip_answers_with_citations_to_real_chunks(topic_index, monkeypatch):
    at = new_app(topic_index, monkeypatch)
    at.sidebar.selectbox(key="generator").set_value("local")
    at.chat_input[0].set_value("How does a volcano erupt?").run()
    assert not at.exception, at.exception
    turn = at.session_state["chat"][-1]
    answer = turn["answer"]
    assert answer.generated and answer.text.strip()
    assert answer.citations, answer
    chunks = open_index(topic_index).chunks
    for citation in answer.citations:
        assert f"[{citation.number}]" in answer.text
        assert citation.hit.chunk_id in chunks and chunks[citation.hit.chunk_id].text == citation.hit.text
    assert any(c.hit.doc_id == "volcano.html" for c in answer.citations)
    labels = [e.label for e in at.expander]
    assert any(label.startswith(f"[{answer.citations[0].number}] volcano.html") for label in labels), labels
    assert any("<mark>" in h.proto.body for h in at.get("html")), "the cited passage is highlighted"

    # the conversation keeps its history: a second question adds a turn, the first stays on the page
    at.chat_input[0].set_value("And what flows from the crater?").run()
    assert not at.exception, at.exception
    assert len(at.session_state["chat"]) == 4
    assert "How does a volcano erupt?" in texts(at.markdown)


def test_chat_without_a_generator_shows_the_best_passages(topic_index, monkeypatch):
    at = new_app(topic_index, monkeypatch)
    at.sidebar.selectbox(key="generator").set_value("none")
    at.sidebar.radio(key="retriever").set_value("bm25")
    at.chat_input[0].set_value("steam trains").run()
    assert not at.exception, at.exception
    answer = at.session_state["chat"][-1]["answer"]
    assert not answer.generated and answer.citations[0].hit.doc_id == "trains.pdf"
    assert any("No answer generator is available" in m for m in texts(at.markdown))


def test_missing_generator_model_falls_back_to_passages(topic_index, monkeypatch):
    at = new_app(topic_index, monkeypatch)
    at.sidebar.selectbox(key="generator").set_value("local").run()
    at.sidebar.text_input(key="local_model").set_value(str(topic_index / "no-such-model"))
    at.chat_input[0].set_value("honey bees").run()
    assert not at.exception, at.exception
    answer = at.session_state["chat"][-1]["answer"]
    assert not answer.generated and answer.citations and answer.notes


def test_empty_query_and_empty_index_show_messages(topic_index, tmp_path, monkeypatch):
    at = new_app(topic_index, monkeypatch)
    at.chat_input[0].set_value("   ").run()
    assert not at.exception and "Type a question first." in texts(at.warning)
    assert not at.session_state["chat"]

    empty = new_app(tmp_path / "nothing-here", monkeypatch)
    assert any("No index yet" in t for t in texts(empty.sidebar.info))
    assert any("no index to search" in t for t in texts(empty.info))
    for page in ("Compare", "Index", "Models"):
        empty.sidebar.radio(key="page").set_value(page).run()
        assert not empty.exception, (page, empty.exception)


def test_missing_embedder_model_on_the_index_page_is_a_message(topic_index, tmp_path, monkeypatch):
    at = new_app(tmp_path / "fresh", monkeypatch)
    at.sidebar.radio(key="page").set_value("Index").run()
    at.radio(key="index_source").set_value("The built-in demo corpus").run()
    at.selectbox(key="index_embedder").set_value("linq")
    at.button(key="build").click().run()
    assert not at.exception, at.exception
    errors = texts(at.error)
    assert errors and "not available" in errors[0] and errors[0].count("CC-BY-NC-4.0") == 1, errors
    built = tmp_path / "fresh" / "indexes"
    assert not built.exists() or not list(built.glob("*/manifest.json"))


def test_index_page_builds_uploaded_files(tmp_path, monkeypatch):
    at = new_app(tmp_path / "uploads-index", monkeypatch)
    at.sidebar.radio(key="page").set_value("Index").run()
    at.radio(key="index_source").set_value("Upload files").run()
    name = f"test-upload-{tmp_path.name}"
    at.text_input(key="upload_name").set_value(name)
    uploader = at.file_uploader(key="upload_files")
    uploader.upload("glaciers.txt", b"Glaciers carve U-shaped valleys as they slide downhill.", "text/plain")
    uploader.upload("empty.txt", b"", "text/plain")
    uploader.upload(".hidden.txt", b"A file the loader would pass over.", "text/plain").run()
    assert any("not saved: .hidden.txt" in w for w in texts(at.warning)), texts(at.warning)
    at.button(key="build").click().run()
    try:
        assert not at.exception, at.exception
        assert any("embedded 1 new chunks" in s for s in texts(at.success)), texts(at.success)
        assert any("empty.txt" in w for w in texts(at.warning)), "the empty file is listed as skipped"
        assert at.sidebar.selectbox(key="corpus").value == name
    finally:
        from linqrag.settings import cache_dir

        shutil.rmtree(cache_dir() / "uploads" / name, ignore_errors=True)


def test_compare_page_on_a_beir_folder(statutes_index, monkeypatch):
    at = new_app(statutes_index, monkeypatch)
    at.sidebar.radio(key="page").set_value("Compare").run()
    assert not at.exception, at.exception
    qid = at.selectbox(key="compare_qid").options[1]
    at.selectbox(key="compare_qid").set_value(qid.split(":")[0]).run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 3, "three result lists"
    for frame in at.dataframe:
        assert len(frame.value) == 10 and {"rank", "score", "document", "shared"} <= set(frame.value.columns)
    labels = [m.label for m in at.metric]
    assert labels.count("nDCG@10") == 3 and labels.count("latency (ms)") == 3
    values = [float(m.value) for m in at.metric if m.label == "nDCG@10"]
    assert all(0.0 <= v <= 1.0 for v in values)

    at.number_input(key="batch_n").set_value(5)
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    table = at.session_state["batch_result"]["table"]
    assert [row["retriever"] for row in table] == ["dense", "bm25", "hybrid"]
    assert all(0.0 <= row["ndcg@10"] <= 1.0 for row in table)
    assert at.get("image"), "the metrics plot is drawn"


def _adapted_run(runs: Path, name: str, base_score: float, best_score: float) -> Path:
    """A finished run as ``finetune.domain`` leaves it: a real MiniLM LoRA adapter and its report."""
    import json

    from embedder import load_embedder
    from finetune.lora import add_lora, save_adapter

    model = add_lora(load_embedder("minilm").model, r=4, alpha=8, dropout=0.0, quantized=False,
                     gradient_checkpointing=False)
    checkpoint = save_adapter(model, runs / name / "checkpoints" / "step-000010", {"base": "minilm", "step": 10})
    rows = [{"name": "base", "ndcg@10": base_score}, {"name": "step-000010", "ndcg@10": best_score}]
    report = {"best_checkpoint": str(checkpoint), "base": "minilm", "gain": round(best_score - base_score, 4),
              "config": {"corpus": f"/data/{name}-docs"},
              "evaluation": {"metric": "ndcg@10", "rows": rows, "best": {"path": str(checkpoint), **rows[1]}}}
    (runs / name / "report.json").write_text(json.dumps(report))
    return checkpoint


def test_models_page_shows_adapted_runs_with_their_gain_and_builds_with_one(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    better = _adapted_run(runs, "helped", 0.40, 0.45)
    _adapted_run(runs, "hurt", 0.40, 0.35)
    monkeypatch.setenv("LINQRAG_RUNS", str(runs))
    at = new_app(tmp_path / "index", monkeypatch)
    at.sidebar.radio(key="page").set_value("Models").run()
    assert not at.exception, at.exception
    table = at.dataframe[1].value
    assert list(table["run"]) == ["helped", "hurt"]
    assert list(table["gain"]) == pytest.approx([0.05, -0.05])
    warnings = texts(at.warning)
    assert any("hurt" in w and "helped" not in w and "base is the better choice" in w for w in warnings), warnings

    # choosing the checkpoint preselects it for a build, and the Index page builds with the adapter
    at.selectbox(key="model_choice").set_value(str(better))
    at.button(key="use_model").click().run()
    assert any("No index was built with" in w for w in texts(at.warning))
    at.sidebar.radio(key="page").set_value("Index").run()
    assert at.selectbox(key="index_embedder").value == str(better)
    at.radio(key="index_source").set_value("The built-in demo corpus").run()
    at.button(key="build").click().run()
    assert not at.exception, at.exception
    assert any("embedded" in s for s in texts(at.success)), texts(at.success)
    manifests = list((tmp_path / "index").glob("**/manifest.json"))
    assert manifests and any("step-000010" in m.read_text() for m in manifests)


def _tiny_corpus(root: Path, name: str) -> Path:
    folder = root / f"{name}-docs"
    folder.mkdir(parents=True)
    (folder / "note.txt").write_text(f"The {name} note says that glaciers carve valleys.", encoding="utf-8")
    return folder


def test_a_new_session_opens_on_the_last_choice_else_the_demo_else_the_newest(tmp_path, minilm, monkeypatch):
    from corpora import DEMO_CORPUS_NAME
    from embedder import load_embedder

    adapter = _adapted_run(tmp_path / "runs", "tuned", 0.40, 0.45)
    index_dir = tmp_path / "index"
    build_index(_tiny_corpus(tmp_path, "alpha"), minilm, index_dir, name="alpha", show_progress=False)
    build_index(_tiny_corpus(tmp_path, "alpha-tuned"), load_embedder(None, adapter), index_dir, name="alpha",
                show_progress=False)
    build_index(_tiny_corpus(tmp_path, "demo"), minilm, index_dir, name=DEMO_CORPUS_NAME, show_progress=False)
    build_index(_tiny_corpus(tmp_path, "beta"), minilm, index_dir, name="beta", show_progress=False)

    # nothing chosen yet: the demo, although beta is newer, and the caption says so
    first = new_app(index_dir, monkeypatch)
    assert first.sidebar.selectbox(key="corpus").value == DEMO_CORPUS_NAME
    assert any(c.startswith(f"opened: {DEMO_CORPUS_NAME} · minilm (the demo)") for c in texts(first.sidebar.caption))

    # the first session picks alpha with the adapted embedder; a second session opens on exactly that
    first.sidebar.selectbox(key="corpus").set_value("alpha").run()
    tuned = next(o for o in first.sidebar.selectbox(key="embedder_label").options if "step-000010" in o)
    first.sidebar.selectbox(key="embedder_label").set_value(tuned).run()
    assert not first.exception, first.exception
    assert not any(c.startswith("opened:") for c in texts(first.sidebar.caption)), "the caption names the opening only"
    second = new_app(index_dir, monkeypatch)
    assert second.sidebar.selectbox(key="corpus").value == "alpha"
    assert second.sidebar.selectbox(key="embedder_label").value == tuned
    assert any(c.startswith(f"opened: alpha · {tuned} (last used)") for c in texts(second.sidebar.caption))

    # no remembered choice and no demo: the newest index
    other = tmp_path / "other-index"
    build_index(_tiny_corpus(tmp_path, "gamma"), minilm, other, name="gamma", show_progress=False)
    build_index(_tiny_corpus(tmp_path, "delta"), minilm, other, name="delta", show_progress=False)
    third = new_app(other, monkeypatch)
    assert third.sidebar.selectbox(key="corpus").value == "delta"
    assert any(c.startswith("opened: delta · minilm (newest)") for c in texts(third.sidebar.caption))


def test_models_page_defaults_to_a_preset_that_runs_here(tmp_path, monkeypatch):
    from embedder import unavailable_reason

    monkeypatch.setattr("embedder.presets.gpu_memory_gib", lambda: 0.0)  # a CPU-only machine, GPU or not
    monkeypatch.setenv("LINQRAG_RUNS", str(tmp_path / "no-runs"))
    at = new_app(tmp_path / "index", monkeypatch)
    at.sidebar.radio(key="page").set_value("Models").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("preset")
    assert table.loc["linq", "runs here"].startswith("no: needs a CUDA GPU")
    assert table.loc["minilm", "runs here"] == "yes"
    assert table.loc["linq", "licence"].startswith("CC-BY-NC-4.0")
    choice = at.selectbox(key="model_choice")
    assert choice.value == "minilm" and unavailable_reason(choice.value) is None
    assert not at.button(key="use_model").proto.disabled and not at.warning

    choice.set_value("linq").run()
    assert at.button(key="use_model").proto.disabled, "'Use it' is off for a preset that cannot run here"
    assert any("linq cannot run on this machine: needs a CUDA GPU" in w for w in texts(at.warning)), texts(at.warning)


def test_compare_page_hints_before_a_query_and_shows_readable_text(topic_index, monkeypatch):
    import json

    at = new_app(topic_index, monkeypatch)
    at.sidebar.radio(key="page").set_value("Compare").run()
    assert not at.exception, at.exception
    assert any(t.startswith("Type a query above") for t in texts(at.info)), texts(at.info)
    assert not at.dataframe

    at.text_input(key="compare_query_None").set_value("How does a volcano erupt?").run()
    assert not at.exception, at.exception
    assert not any(t.startswith("Type a query above") for t in texts(at.info))
    assert len(at.dataframe) == 3
    for frame in at.dataframe:
        order = list(frame.proto.column_order)
        assert order[:2] == ["rank", "document"] and order[-1] == "text", "short columns first, the wide text last"
        columns = json.loads(frame.proto.columns)
        assert columns["text"]["width"] == "large", columns
    top = at.dataframe[0].value.iloc[0]
    assert top["document"] == "volcano.html"
    assert "«A volcano erupts when magma" in top["text"], top["text"]
