"""Metadata filters on a real index (Chroma on disk, bm25s, MiniLM) over a corpus of several folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexing import FilterError, IndexStoreError, SearchFilter, build_index, open_index
from indexing.chunking import ChunkConfig
from indexing.filters import chunk_path, path_matches, title_matches

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("bm25", "dense", "hybrid")
QUERY = "solar panels on the roof"

# every sentence says "solar", so an unfiltered search spreads over all folders and BM25 scores every chunk
FILES = {
    "docs/guide/install.md": "# Installing solar panels\n\nMount the solar rails on the rafters first. Bolt each solar "
    "panel to the rails with two clamps. Run the solar cables to the inverter in conduit. Check every solar "
    "connector before the roof is closed.",
    "docs/guide/cleaning.md": "# Cleaning solar panels\n\nDust lowers solar output by a few percent a year. Rinse the "
    "solar glass with soft water in the morning. Never scrub a hot solar panel. Birds nesting under solar arrays "
    "need a mesh guard.",
    "docs/api.md": "# Solar API reference\n\nThe solar endpoint returns the output of each panel. Query the solar "
    "history by day or by month. The solar forecast uses cloud cover from the weather service.",
    "notes/2024-01.txt": "January: the solar inverter tripped twice in the frost. The installer replaced the solar "
    "fuse. Output of the solar roof was low under the snow.",
    "notes/2024-02.txt": "February: solar output recovered as the days grew longer. We ordered a solar battery. "
    "The neighbours asked about our solar bill.",
    "blog/bees.md": "# Honey bees on a solar farm\n\nWildflowers between solar rows feed the bees. A solar farm can "
    "host hives at its edges. Beekeepers like the quiet of a solar site.",
    "readme.txt": "This folder collects everything about our solar roof: the guide, the api, notes and the blog. "
    "Start with the solar guide.",
}
FAQ = [  # a JSONL file of several documents: their ids are data/faq.jsonl#ID
    {"_id": "q1", "title": "Solar FAQ: cost", "text": "A solar roof pays for itself in about nine years. Solar "
     "prices fell by half in a decade."},
    {"_id": "q2", "title": "Wind FAQ", "text": "Small wind turbines suit windy farms better than a solar roof "
     "does. Solar and wind together smooth the supply."},
]


@pytest.fixture(scope="module")
def folder_index(tmp_path_factory, minilm):
    corpus = tmp_path_factory.mktemp("filters") / "corpus"
    for name, text in FILES.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "data").mkdir()
    (corpus / "data" / "faq.jsonl").write_text("\n".join(json.dumps(row) for row in FAQ) + "\n", encoding="utf-8")
    index_dir = corpus.parent / "index"
    build_index(corpus, minilm, index_dir, chunk_config=ChunkConfig(24, 4), show_progress=False)
    index = open_index(index_dir)
    assert len(index.chunks) > len(FILES) + len(FAQ)  # small chunks: documents were split
    return index


def expected_ids(index, keep) -> set[str]:
    """The chunk ids a filter should keep, decided here from the doc ids (not through SearchFilter)."""
    return {cid for cid, chunk in index.chunks.items() if keep(chunk.doc_id, chunk.title)}


FILTERS = {
    "folder": (SearchFilter(paths=("docs/",)), lambda d, t: d.startswith("docs/")),
    "nested folder": (SearchFilter(paths=("docs/guide",)), lambda d, t: d.startswith("docs/guide/")),
    "suffix glob": (SearchFilter(paths=("*.txt",)), lambda d, t: d.endswith(".txt")),
    "one file": (SearchFilter(paths=("notes/2024-02.txt",)), lambda d, t: d == "notes/2024-02.txt"),
    "either of two": (SearchFilter(paths=("blog/", "readme.txt")),
                      lambda d, t: d.startswith("blog/") or d == "readme.txt"),
    "jsonl file": (SearchFilter(paths=("data/faq.jsonl",)), lambda d, t: d.startswith("data/faq.jsonl#")),
    "title": (SearchFilter(titles=("CLEANING",)), lambda d, t: "cleaning" in t.lower()),
    "title glob": (SearchFilter(titles=("solar*",)), lambda d, t: t.lower().startswith("solar")),
    "path and title": (SearchFilter(paths=("docs/",), titles=("panels",)),
                       lambda d, t: d.startswith("docs/") and "panels" in t.lower()),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(FILTERS))
def test_a_filtered_search_returns_only_matching_chunks_and_k_of_them(folder_index, minilm, kind, name):
    search_filter, keep = FILTERS[name]
    wanted = expected_ids(folder_index, keep)
    assert wanted and len(wanted) < len(folder_index.chunks), name
    assert set(folder_index.select(search_filter).ids) == wanted
    retriever = folder_index.retriever(kind, minilm)
    for k in (3, len(wanted), len(folder_index.chunks)):
        result = retriever.search(QUERY, k, filter=search_filter)
        assert set(result.ids) <= wanted, (name, kind, k)
        assert all(search_filter.matches(hit.metadata) for hit in result.hits)
        # every chunk says "solar", so BM25 too scores them all: k hits, or every matching chunk
        assert len(result.hits) == min(k, len(wanted)), (name, kind, k, result.notes)
        assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    everything = retriever.search(QUERY, len(folder_index.chunks), filter=search_filter)
    assert any(f"keeps {len(wanted)} of {len(folder_index.chunks)} chunks" in note for note in everything.notes)


@pytest.mark.parametrize("kind", KINDS)
def test_the_filter_selects_before_ranking_not_after(folder_index, minilm, kind):
    """The best notes chunks rank low unfiltered; the filtered search still fills k with them."""
    retriever = folder_index.retriever(kind, minilm)
    query = "scrub the solar glass and rinse the panels"
    notes = SearchFilter(paths=("notes/",))
    unfiltered = retriever.search(query, 3).ids
    assert not set(unfiltered) & set(folder_index.select(notes).ids)  # plain top 3 holds no note
    assert len(retriever.search(query, 3, filter=notes).hits) == 3


def test_filtered_rankings_are_the_full_rankings_restricted(folder_index, minilm):
    search_filter = SearchFilter(paths=("docs/", "notes/"))
    allowed = folder_index.select(search_filter).ids
    k = 5
    # BM25: exactly the best-scoring allowed rows
    scores = folder_index.bm25.scores(QUERY)
    rows = {cid: i for i, cid in enumerate(folder_index.bm25.ids)}
    best_bm25 = sorted(allowed, key=lambda c: -scores[rows[c]])[:k]
    got = folder_index.retriever("bm25").search(QUERY, k, filter=search_filter)
    assert got.ids == best_bm25
    # dense: exactly the nearest allowed vectors (exact cosine here)
    stored = folder_index.store.collection.get(ids=allowed, include=["embeddings"])
    query_vector = minilm.encode_queries([QUERY])[0]
    sims = np.asarray(stored["embeddings"]) @ query_vector
    best_dense = [stored["ids"][i] for i in np.argsort(-sims)[:k]]
    assert folder_index.retriever("dense", minilm).search(QUERY, k, filter=search_filter).ids == best_dense
    # hybrid: the fusion of the two filtered rankings, all allowed
    hybrid = folder_index.retriever("hybrid", minilm).search(QUERY, k, filter=search_filter)
    assert len(hybrid.hits) == k and set(hybrid.ids) <= set(allowed)


@pytest.mark.parametrize("kind", KINDS)
def test_a_filter_that_matches_nothing_gives_a_note_not_an_error(folder_index, minilm, kind):
    for nothing in (SearchFilter(paths=("nowhere/",)), SearchFilter(titles=("no such title",)),
                    SearchFilter(paths=("notes/",), titles=("cleaning",))):
        result = folder_index.retriever(kind, minilm).search(QUERY, 5, filter=nothing)
        assert result.hits == []
        assert any(note.startswith("no chunk matches the filter (") for note in result.notes), result.notes


@pytest.mark.parametrize("kind", KINDS)
def test_no_filter_and_an_empty_filter_search_everything(folder_index, minilm, kind):
    retriever = folder_index.retriever(kind, minilm)
    plain = retriever.search(QUERY, 5)
    assert retriever.search(QUERY, 5, filter=None).ids == plain.ids
    assert retriever.search(QUERY, 5, filter=SearchFilter()).ids == plain.ids
    everything = SearchFilter(paths=("*",))
    assert len(folder_index.select(everything).ids) == len(folder_index.chunks)
    assert len(retriever.search(QUERY, 5, filter=everything).hits) == 5


def test_selections_are_resolved_once_per_filter(folder_index):
    first = folder_index.select(SearchFilter(paths=("docs/",)))
    assert folder_index.select(SearchFilter(paths=["docs/"])) is first  # equal filters share the resolution
    assert folder_index.select(None) is None and folder_index.select(SearchFilter()) is None


def test_path_and_title_rules():
    assert path_matches("docs/", "docs/guide/a.md") and path_matches("docs", "docs/a.md")
    assert not path_matches("doc", "docs/a.md") and not path_matches("docs/", "mydocs/a.md")
    assert path_matches("*.md", "docs/guide/a.md") and not path_matches("*.md", "a.txt")
    assert path_matches("docs/*/a.md", "docs/guide/a.md") and path_matches("notes/2024-*", "notes/2024-01.txt")
    assert path_matches("notes[1].md", "notes[1].md")  # a literal name with glob characters still matches itself
    assert not path_matches("Docs/", "docs/a.md")  # paths are case-sensitive, like file names
    assert title_matches("cost", "Solar FAQ: Cost") and title_matches("SOLAR*", "Solar FAQ: cost")
    assert not title_matches("solar", "Wind FAQ") and not title_matches("solar", "")
    assert chunk_path({"doc_id": "data/faq.jsonl#q1"}) == "data/faq.jsonl"
    assert chunk_path({"doc_id": "a#b.md"}) == "a#b.md"  # a '#' in a file name is part of the path
    # the record normalises what a user types
    assert SearchFilter(paths="./docs\\guide/").paths == ("docs/guide/",)
    assert SearchFilter.parse(" docs/ , *.txt,, ") == SearchFilter(paths=("docs/", "*.txt"))
    assert SearchFilter.parse("", "") is None and SearchFilter.parse(" , ") is None
    assert SearchFilter(paths=("docs/",), titles=("x",)).describe() == "path docs/; title 'x'"


@pytest.mark.parametrize("bad, says", [
    ({"paths": ("/home/me/corpus/docs",)}, "relative to the corpus folder"),
    ({"paths": ("C:\\corpus\\docs",)}, "relative to the corpus folder"),
    ({"paths": ("../elsewhere",)}, "cannot leave it"),
    ({"paths": ("  ",)}, "empty path pattern"),
    ({"titles": ("",)}, "empty title pattern"),
    ({"paths": (3,)}, "must be strings"),
    ({"titles": 7}, "must be strings"),
])
def test_invalid_filters_are_clear_errors(bad, says):
    with pytest.raises(FilterError, match=says) as caught:
        SearchFilter(**bad)
    assert isinstance(caught.value, IndexStoreError) and isinstance(caught.value, ValueError)


def test_a_filter_of_the_wrong_type_is_refused(folder_index):
    with pytest.raises(FilterError, match="SearchFilter"):
        folder_index.retriever("bm25").search(QUERY, 3, filter={"source": "docs/"})


def test_llamaindex_retriever_passes_the_filter(folder_index, minilm):
    from indexing.llamaindex import LinqragRetriever

    nodes = LinqragRetriever(folder_index.retriever("hybrid", minilm), k=4,
                             filter=SearchFilter(paths=("notes/",))).retrieve(QUERY)
    assert len(nodes) == 4 and all(n.node.metadata["doc_id"].startswith("notes/") for n in nodes)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "indexing", *args]


def test_cli_path_and_title_filters(folder_index):
    index_dir = str(folder_index.index_dir)
    found = subprocess.run(_cli("search", QUERY, "--retriever", "bm25", "-k", "4", "--json", "--path", "notes/",
                                "--path", "readme.txt", "--index-dir", index_dir),
                           cwd=ROOT, capture_output=True, text=True, check=True)
    hits = json.loads(found.stdout)
    assert len(hits) == 4 and {h["doc_id"] for h in hits} <= {"notes/2024-01.txt", "notes/2024-02.txt", "readme.txt"}
    titled = subprocess.run(_cli("search", QUERY, "--retriever", "bm25", "--title", "faq", "--path", "data/",
                                 "--index-dir", index_dir), cwd=ROOT, capture_output=True, text=True, check=True)
    assert "(path data/; title 'faq')" in titled.stdout and "data/faq.jsonl#q" in titled.stdout
    empty = subprocess.run(_cli("search", QUERY, "--retriever", "bm25", "--path", "nowhere/", "--index-dir", index_dir),
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert "note: no chunk matches the filter (path nowhere/)" in empty.stdout and ": 0 hits" in empty.stdout
    bad = subprocess.run(_cli("search", QUERY, "--path", "/abs/docs", "--index-dir", index_dir),
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: path patterns are relative to the corpus folder")
    assert "Traceback" not in bad.stderr


def test_the_sidebar_restriction_applies_on_chat_and_compare(folder_index, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LINQRAG_INDEX_DIR", str(folder_index.index_dir))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    notes = {"2024-01.txt", "2024-02.txt"}

    at.sidebar.text_input(key="path_filter").set_value("notes/")
    at.sidebar.selectbox(key="generator").set_value("none")
    at.chat_input[0].set_value(QUERY).run()
    assert not at.exception, at.exception
    cited = [c.hit for c in at.session_state["chat"][-1]["answer"].citations]
    assert cited and all(h.doc_id.startswith("notes/") for h in cited)
    assert len(cited) == min(at.sidebar.slider(key="top_k").value, len(folder_index.select(SearchFilter("notes/")).ids))

    at.sidebar.radio(key="page").set_value("Compare").run()
    at.text_input(key="compare_query_None").set_value(QUERY).run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 3
    for frame in at.dataframe:
        assert len(frame.value) > 0 and set(frame.value["document"]) <= notes, frame.value

    at.sidebar.text_input(key="path_filter").set_value("/elsewhere/docs").run()
    assert not at.exception, at.exception
    assert any("relative to the corpus folder" in e for e in texts(at.sidebar.error))
    assert any(e.startswith("Restrict to files:") for e in texts(at.main.error)) and not at.dataframe


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]
