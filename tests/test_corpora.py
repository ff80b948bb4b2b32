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


@pytest.mark.parametrize(("name", "text", "title"), [
    ("pep-0572.rst", "PEP: 572\nTitle: Assignment Expressions\nAuthor: Chris Angelico\n\nAbstract\n========\n\nBody.\n",
     "Assignment Expressions"),
    ("guide.rst", "=============\n User Guide\n=============\n\nInstalling\n----------\n\nRun it.\n", "User Guide"),
    ("intro.rst", "Getting started\n~~~~~~~~~~~~~~~\n\nText.\n", "Getting started"),
    ("setext.md", "Release notes\n=============\n\nText.\n", "Release notes"),
    ("setext2.md", "Caching results\n---------------\n\nText.\n", "Caching results"),
    ("atx.md", "Some lead-in.\n\n# Real title\n\nText.\n", "Real title"),
    ("abstract.rst", "Abstract\n========\n\nThis PEP proposes things.\n", "abstract"),  # a section name: file name
    ("para.md", "A paragraph that goes on\nand then a rule\n---\n\nText.\n", "para"),  # not a heading
    # a PEP body: every section underlined alike, so the first is a section, not the document's title
    ("pep-0001.rst", "What is a PEP?\n==============\n\nText.\n\nPEP Audience\n============\n\nMore.\n", "pep-0001"),
])
def test_rst_and_setext_titles_are_read(tmp_path, name, text, title):
    (tmp_path / name).write_text(text, encoding="utf-8")
    (doc,) = load_directory(tmp_path).documents
    assert doc.title == title


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


# Handwritten in the shape of real generated pages (mdBook 0.4 with its help popup, rustdoc): the chrome
# that used to end up in the chunks, and the body text that must stay.
MDBOOK_PAGE = """<!DOCTYPE HTML>
<html lang="en" class="light sidebar-visible"><head><meta charset="UTF-8">
<title>Ownership - The Widget Book</title><script>var path_to_root = "";</script></head>
<body>
<div id="mdbook-help-container"><div id="mdbook-help-popup">
  <h2 class="mdbook-help-title">Keyboard shortcuts</h2>
  <p>Press <kbd>←</kbd> or <kbd>→</kbd> to navigate between chapters</p>
  <p>Press <kbd>S</kbd> or <kbd>/</kbd> to search in the book</p>
</div></div>
<nav id="sidebar" class="sidebar" aria-label="Table of contents"><div class="sidebar-scrollbox">
  <ol class="chapter"><li class="chapter-item"><a href="intro.html">1. Introduction to widgets</a></li>
  <li class="chapter-item"><a href="ownership.html" class="active">2. Ownership</a></li></ol></div></nav>
<div id="page-wrapper" class="page-wrapper"><div class="page">
  <div id="menu-bar" class="menu-bar sticky">
    <div class="left-buttons">
      <button id="sidebar-toggle" class="icon-button" title="Toggle Table of Contents">Toggle</button>
      <button id="theme-toggle" class="icon-button" title="Change theme">Theme</button>
      <ul id="theme-list" class="theme-popup" aria-label="Themes" role="menu">
        <li role="none"><button role="menuitem" class="theme" id="light">Light</button></li>
        <li role="none"><button role="menuitem" class="theme" id="rust">Rust</button></li>
        <li role="none"><button role="menuitem" class="theme" id="coal">Coal</button></li>
        <li role="none"><button role="menuitem" class="theme" id="navy">Navy</button></li>
      </ul>
    </div>
    <h1 class="menu-title">The Widget Book</h1>
    <div class="right-buttons"><a href="print.html" title="Print this book">Print</a></div>
  </div>
  <div id="search-wrapper" class="hidden"><form id="searchbar-outer">
    <input type="search" placeholder="Search this book ..."></form></div>
  <div id="content" class="content"><main>
    <h1 id="ownership"><a class="header" href="#ownership">Ownership</a></h1>
    <p>Every widget has exactly one owner, and the widget is dropped when its owner goes out of scope.</p>
    <pre><code class="language-rust">fn main() {
    let w = Widget::new();
}</code></pre>
    <h2 id="moving"><a class="header" href="#moving">Moving a widget</a></h2>
    <p>Assigning a widget to another variable moves it; the first variable can no longer be used.</p>
  </main>
  <nav class="nav-wrapper" aria-label="Page navigation">
    <a rel="prev" href="intro.html" title="Previous chapter">Previous chapter</a>
    <a rel="next" href="borrowing.html" title="Next chapter">Next chapter</a></nav>
  </div></div></div>
</body></html>"""

RUSTDOC_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="generator" content="rustdoc">
<title>Widget in widgets - Rust</title></head>
<body class="rustdoc struct">
<nav class="mobile-topbar"><button class="sidebar-menu-toggle">&#9776;</button><h2>Widget</h2></nav>
<nav class="sidebar"><h2 class="location"><a href="#">Widget</a></h2><div class="sidebar-elems">
  <h3><a href="#implementations">Methods</a></h3><ul class="block"><li><a href="#method.spin">spin</a></li></ul>
  <h3><a href="#trait-implementations">Trait Implementations</a></h3></div></nav>
<main><div class="width-limiter">
  <nav class="sub"><form class="search-form"><input class="search-input" placeholder="Click or press 'S' to search">
    <div id="help-button" title="help" tabindex="-1"><button type="button">?</button>
      <div id="help" class="popover"><div class="infos"><h2>Keyboard Shortcuts</h2>
        <dl><dt><kbd>?</kbd></dt><dd>Show this help dialog</dd><dt><kbd>S</kbd></dt><dd>Focus the search field</dd></dl>
      </div></div></div>
    <div id="settings-menu" tabindex="-1"><a href="settings.html" title="settings">Change settings</a>
      <div id="settings" class="popover"><div class="setting-line"><div class="radio-line" id="theme">
        <span class="setting-name">Theme</span><label><input type="radio" name="theme" value="light">light</label>
        <label><input type="radio" name="theme" value="dark">dark</label><label><input type="radio" name="theme"
        value="ayu">ayu</label></div></div></div></div></form></nav>
  <section id="main-content" class="content">
    <div class="main-heading"><h1>Struct <a href="index.html">widgets</a>::<a class="struct" href="#">Widget</a>
      <button id="copy-path" title="Copy item path to clipboard">Copy item path</button></h1>
      <span class="out-of-band"><span class="since" title="Stable since Rust version 1.0.0">1.0.0</span> ·
      <a class="srclink" href="../src/widgets/lib.rs.html#10">source</a> ·
      <a id="toggle-all-docs" href="javascript:void(0)" title="collapse all docs">[<span>−</span>]</a></span></div>
    <div class="item-decl"><pre class="rust"><code>pub struct Widget { /* private fields */ }</code></pre></div>
    <details class="toggle top-doc" open><summary class="hideme"><span>Expand description</span></summary>
      <div class="docblock"><p>A widget spins on a spindle and counts its turns.</p></div></details>
    <h2 id="implementations" class="section-header">Implementations</h2>
    <details class="toggle implementors-toggle" open><summary><section id="impl-Widget" class="impl">
      <div class="rightside"><a class="src" href="../src/widgets/lib.rs.html#12">source</a></div>
      <h3 class="code-header">impl Widget</h3></section></summary>
      <div class="impl-items"><section id="method.spin" class="method"><div class="rightside">
        <span class="since">1.2.0</span> · <a class="srclink" href="../src/widgets/lib.rs.html#14">source</a></div>
        <h4 class="code-header">pub fn spin(&amp;mut self, turns: u32)</h4></section>
      <div class="docblock"><p>Turns the widget and adds the turns to its counter.</p></div></div></details>
  </section></div></main>
</body></html>"""


@pytest.mark.parametrize(
    ("name", "page", "title", "body", "chrome"),
    [
        ("book.html", MDBOOK_PAGE, "Ownership - The Widget Book",
         ["Every widget has exactly one owner", "Moving a widget", "the first variable can no longer be used",
          "fn main() {\n    let w = Widget::new();\n}"],
         ["Keyboard shortcuts", "navigate between chapters", "Light", "Coal", "Navy", "Change theme", "Toggle",
          "The Widget Book", "Introduction to widgets", "Print", "Search this book", "Previous chapter"]),
        ("struct.Widget.html", RUSTDOC_PAGE, "Widget in widgets - Rust",
         ["Struct widgets::Widget", "pub struct Widget { /* private fields */ }",
          "A widget spins on a spindle and counts its turns.", "Implementations", "impl Widget",
          "pub fn spin(&mut self, turns: u32)", "Turns the widget and adds the turns to its counter."],
         ["Keyboard Shortcuts", "Show this help dialog", "Focus the search field", "Change settings", "ayu",
          "Expand description", "source", "1.2.0", "Copy item path", "[−]", "Methods", "Trait Implementations"]),
    ],
)
def test_documentation_page_chrome_is_dropped(tmp_path, name, page, title, body, chrome):
    (tmp_path / name).write_text(page, encoding="utf-8")
    report = load_directory(tmp_path)
    assert report.skipped == []
    (doc,) = report.documents
    assert doc.title == title
    for text in body:
        assert text in doc.text
    for text in chrome:
        assert text not in doc.text, f"chrome {text!r} left in:\n{doc.text}"


def test_html_without_a_main_landmark_goes_through_trafilatura():
    from corpora.extract import html_to_text

    paragraph = "Glaciers carve valleys as they move, grinding the rock beneath them into fine silt. " * 4
    page = (f"<html><head><title>Glaciers</title></head><body><div id='top'><a href='/'>Home</a> | "
            f"<a href='/about'>About us</a></div><div class='menu'><ul><li><a href='/a'>Archive</a></li>"
            f"<li><a href='/b'>Subscribe to the newsletter</a></li></ul></div>"
            f"<div class='post'><h2>How glaciers shape land</h2><p>{paragraph}</p></div>"
            f"<div class='footer'>All rights reserved. Terms of use.</div></body></html>")
    text, title = html_to_text(page)
    assert title == "Glaciers"
    assert "grinding the rock beneath them" in text and "How glaciers shape land" in text
    for chrome in ("About us", "Subscribe to the newsletter", "All rights reserved"):
        assert chrome not in text


def test_unreadable_html_gives_a_reason(tmp_path, monkeypatch):
    from corpora import extract

    (tmp_path / "blob.html").write_bytes(b"<html>\x00\x01\x02" * 100)
    (tmp_path / "comment.html").write_text("<!-- nothing but a comment -->")  # lxml: "Document is empty"
    reasons = {s.path: s.reason for s in load_directory(tmp_path).skipped}
    assert "binary" in reasons["blob.html"]
    assert reasons["comment.html"] == "no text in it"

    def refuse(self, data):
        raise AssertionError("bad tag")

    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "odd.html").write_text("<html><body><main><p>text</p></main></body></html>")
    monkeypatch.setattr(extract, "_parse_html", lambda html: None)  # neither parser can read it
    monkeypatch.setattr(extract.HTMLParser, "feed", refuse)
    (skipped,) = load_directory(odd).skipped
    assert skipped.reason == "malformed HTML: neither lxml nor html.parser can read it (bad tag)"


def test_whitespace_is_collapsed_but_single_spaces_and_paragraphs_are_kept():
    from corpora.extract import normalise_whitespace

    text = "a  b\tc \r\n  d\n\n\n\ne\x0bf single spaces stay"
    assert normalise_whitespace(text) == "a b c\nd\n\ne f single spaces stay"


def test_texinfo_page_navigation_is_not_text():
    from corpora.extract import html_to_text

    page = """<html><head><title>Invoking make (GNU make)</title></head><body>
<div class="nav-panel"><p>Next: <a href="Options.html" accesskey="n" rel="next">Options</a>, Previous:
<a href="Running.html" accesskey="p" rel="prev">Running</a>, Up: <a href="index.html" rel="up">Top</a>
[<a href="index.html#SEC_Contents" rel="contents">Contents</a>][<a href="Index.html" rel="index">Index</a>]</p></div>
<hr><h2>9.1 Arguments to Specify the Makefile</h2>
<p>The way to specify the name of the makefile is with the -f or --file option.</p>
<div class="header"><p>Next: <a href="Goals.html" rel="next">Goals</a>,
Up: <a href="Running.html" rel="up">How to Run</a></p></div>
</body></html>"""
    text, _ = html_to_text(page)
    assert "with the -f or --file option" in text
    for chrome in ("Next:", "Previous:", "Up:", "[Contents]", "[Index]"):
        assert chrome not in text, text
