"""Loading documents and BEIR folders, including the bad inputs users will hand us."""

from __future__ import annotations

import gzip
import json

import pytest

from corpora import CorpusError, demo_corpus_dir, load_beir, load_directory


def test_loads_every_supported_format(topic_corpus):
    report = load_directory(topic_corpus)
    by_id = {d.doc_id: d for d in report.documents}
    assert set(by_id) == {"solar.md", "bread.txt", "volcano.html", "chess.md", "bees.txt", "rivers.txt", "trains.pdf"}
    assert report.skipped == []
    assert by_id["solar.md"].title == "Solar power"
    assert "Steam locomotives" in by_id["trains.pdf"].text


def test_html_boilerplate_is_stripped(topic_corpus):
    doc = next(d for d in load_directory(topic_corpus).documents if d.doc_id == "volcano.html")
    assert doc.title == "Volcanoes"
    assert "magma rises" in doc.text
    for boilerplate in ("tracking", "Home | About", "Copyright"):
        assert boilerplate not in doc.text


def test_bad_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "good.txt").write_text("A perfectly good document about rivers.")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    (tmp_path / "copy.txt").write_text("A perfectly good document about rivers.")
    (tmp_path / "image.png").write_bytes(b"\x89PNG....")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with open(tmp_path / "huge.txt", "wb") as fh:  # sparse: 200 MB on paper, nothing on disk
        fh.truncate(200 * 2**20)
    report = load_directory(tmp_path)
    assert [d.doc_id for d in report.documents] == ["copy.txt"] or [d.doc_id for d in report.documents] == ["good.txt"]
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["blob.txt"]
    assert "duplicate of copy.txt" in reasons["good.txt"]
    assert "unsupported" in reasons["image.png"]
    assert "MiB limit" in reasons["huge.txt"]
    assert "broken.pdf" in reasons


def test_non_utf8_text_is_decoded_and_noted(tmp_path):
    (tmp_path / "latin.txt").write_bytes("Café crème brûlée à la française, déjà vu, naïve façade.".encode("cp1252"))
    report = load_directory(tmp_path)
    assert report.documents[0].text.startswith("Café crème brûlée")
    assert any("not UTF-8" in note for note in report.notes)


def test_empty_and_missing_directories(tmp_path):
    assert load_directory(tmp_path).documents == []
    with pytest.raises(CorpusError, match="not a directory"):
        load_directory(tmp_path / "nope")


def test_beir_jsonl_in_a_directory_yields_one_document_per_row(tmp_path):
    rows = [{"_id": "a", "title": "T", "text": "first"}, {"_id": "b", "title": "", "text": "second"}]
    with gzip.open(tmp_path / "docs.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    report = load_directory(tmp_path)
    assert [d.doc_id for d in report.documents] == ["docs.jsonl.gz#a", "docs.jsonl.gz#b"]


def test_load_beir_reads_corpus_queries_qrels(shared_data):
    data = load_beir(shared_data / "scifact")
    assert len(data.corpus) == 5183 and len(data.judged_queries) == 300
    assert all(all(r > 0 for r in rels.values()) for rels in data.qrels.values())


def test_malformed_beir_folder_gives_clear_error(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n')
    with pytest.raises(CorpusError, match="missing queries.jsonl, qrels/test.tsv"):
        load_beir(tmp_path)
    (tmp_path / "queries.jsonl").write_text("not json\n")
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t1\t1\n")
    with pytest.raises(CorpusError, match="not valid JSON"):
        load_beir(tmp_path)


def test_demo_corpus_is_written_from_the_project_docs(tmp_path):
    folder = demo_corpus_dir(tmp_path / "demo")
    report = load_directory(folder)
    assert any(d.doc_id == "README.md" for d in report.documents)
    assert any("load_embedder" in d.text for d in report.documents)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    demo_corpus_dir(tmp_path / "demo")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # unchanged files untouched
