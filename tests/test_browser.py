"""The app served on loopback and driven by headless Chromium: a question gets a cited answer."""

from __future__ import annotations

import pytest

from app.browser import ask, browser_page, find_chromium, open_page, serve


@pytest.fixture(scope="module")
def served_index(topics_index_dir):
    return topics_index_dir


def test_browser_asks_and_sees_a_cited_answer(served_index, tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (.ci/run does) or set LINQRAG_CHROMIUM")
    pytest.importorskip("playwright", reason="playwright is in the dev extra: pip install -e .[dev]")
    with serve(served_index, log_path=tmp_path / "streamlit.log") as url, browser_page() as page:
        page.goto(url)
        ask(page, "How does a volcano erupt?")
        shot = tmp_path / "chat.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        answer = page.get_by_test_id("stChatMessage").last.inner_text()
        assert "[1]" in answer, answer
        assert "magma rises through the crust" in answer, "the extractive answer names the cause"
        expander = page.get_by_test_id("stExpander").first
        assert "volcano.html" in expander.inner_text()
        expander.click()
        mark = expander.locator("mark").first
        mark.wait_for(timeout=10_000)
        assert mark.inner_text().strip()


@pytest.fixture(scope="module")
def demo_index_dir(tmp_path_factory, minilm):
    """The demo corpus (linqrag's own docs) indexed with MiniLM, as `make demo` does on a CPU."""
    from corpora import DEMO_CORPUS_NAME, demo_corpus_dir
    from indexing import build_index

    index_dir = tmp_path_factory.mktemp("demo-index")
    build_index(demo_corpus_dir(tmp_path_factory.mktemp("demo-corpus")), minilm, index_dir, name=DEMO_CORPUS_NAME,
                show_progress=False)
    return index_dir


def _need_browser():
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (.ci/run does) or set LINQRAG_CHROMIUM")
    pytest.importorskip("playwright", reason="playwright is in the dev extra: pip install -e .[dev]")


#: the demo's first questions, and what a right answer names (any one of them: a command by either of its names)
DEMO_QUESTIONS = {
    "How do I index my own folder?": ("linqrag build", "python -m indexing build"),
    "Which embedder is used without a GPU?": ("minilm",),
    "How do I fine-tune the embedder on my documents?": ("linqrag finetune", "python -m finetune.domain"),
}


def test_the_demo_answers_its_own_first_questions(demo_index_dir, tmp_path):
    _need_browser()
    with serve(demo_index_dir, log_path=tmp_path / "streamlit.log") as url, browser_page(1920, 1080) as page:
        page.goto(url)
        for question in DEMO_QUESTIONS:  # the empty Chat page offers them
            page.get_by_role("button", name=question).wait_for(timeout=60_000)
        for n, (question, named) in enumerate(DEMO_QUESTIONS.items(), 1):
            ask(page, question)
            page.get_by_test_id("stChatMessage").nth(2 * n - 1).wait_for(timeout=120_000)
            answer = page.get_by_test_id("stChatMessage").nth(2 * n - 1).inner_text()
            assert any(n.lower() in answer.lower() for n in named), f"{question!r} -> {answer[:400]!r}"
            assert "[1]" in answer


def test_chat_offers_a_folder_just_built_and_compare_shows_the_document_column(demo_index_dir, tmp_path):
    _need_browser()
    import shutil

    index_dir = tmp_path / "index"
    shutil.copytree(demo_index_dir, index_dir)
    folder = tmp_path / "field-notes"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep, so as not to drift.\n")
    (folder / "owls.md").write_text("# Owls\n\nAn owl cannot move its eyes; it turns its head up to 270 degrees.\n")
    with serve(index_dir, log_path=tmp_path / "streamlit.log") as url, browser_page(1920, 1080) as page:
        page.goto(url)
        page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
        open_page(page, "Index")
        page.get_by_text("A folder on this machine").click()
        box = page.get_by_label("Folder (txt, md, html, pdf, BEIR jsonl, or a BEIR dataset folder)")
        box.fill(str(folder))
        box.press("Enter")
        page.get_by_role("button", name="Build index").click()
        page.get_by_text("embedded 2 new chunks").wait_for(timeout=120_000)
        open_page(page, "Chat")
        offer = page.get_by_role("button", name="Search field-notes in Chat")
        offer.wait_for(timeout=30_000)
        offer.click()
        page.wait_for_timeout(1500)
        page.get_by_text("Searching field-notes").wait_for(timeout=30_000)  # Chat (and the sidebar) moved to it
        ask(page, "How do otters sleep?")
        assert "hold hands" in page.get_by_test_id("stChatMessage").last.inner_text()

        open_page(page, "Compare")
        query = page.get_by_label("Query")
        query.fill("Which bird turns its head?")
        query.press("Enter")
        grid = page.get_by_test_id("stDataFrame").first
        grid.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        # the grid draws on a canvas; its accessibility table gives the column order as drawn
        headers = grid.locator("th[role=columnheader]").all_inner_texts()
        assert headers[:2] == ["rank", "document"] and headers[-1] == "text", headers
        frame = grid.bounding_box()
        assert frame and frame["x"] + frame["width"] <= 1920, frame  # the table itself fits the window
        # rank (auto, narrow) and document ("medium", 200 px) end far inside a third of 1920 px
        assert frame["width"] > 300, frame
