"""Screenshots of the Chat and Compare pages for the README (``docs/chat.png``, ``docs/compare.png``).

    python scripts/screenshots.py [--beir scifact] [--out docs]

Builds (incrementally, in the cache) a MiniLM index of the demo corpus and of a BEIR folder from the
shared data, serves the app on loopback and drives it with headless Chromium.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, cache_dir, data_dir

apply_offline_env()

from app.browser import ask, browser_page, open_page, serve


def pick(page, scope, label: str, option: str | int) -> None:
    """Choose ``option`` (its text, or its position) in the selectbox labelled ``label`` inside ``scope``."""
    box = scope.get_by_test_id("stSelectbox").filter(has_text=label).first
    box.click()
    options = page.get_by_role("option")
    (options.nth(option) if isinstance(option, int) else options.filter(has_text=option).first).click()
    page.wait_for_timeout(800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", default="scifact", help="BEIR folder under the shared data for Compare")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--batch", type=int, default=100, help="queries in the Compare page's batch run")
    parser.add_argument("--query", type=int, default=4, help="position of the judged query shown on Compare")
    args = parser.parse_args()

    from corpora import demo_corpus_dir
    from embedder import load_embedder
    from indexing import build_index

    index_dir = cache_dir() / "screenshots-index"
    emb = load_embedder("minilm")
    beir = data_dir() / args.beir
    if beir.is_dir():
        print(build_index(beir, emb, index_dir).summary())
    print(build_index(demo_corpus_dir(), emb, index_dir, name="linqrag-docs").summary())
    args.out.mkdir(parents=True, exist_ok=True)

    with serve(index_dir, log_path=cache_dir() / "screenshots-streamlit.log") as url, browser_page(1500, 1250) as page:
        page.goto(url)
        ask(page, "How do I index my own folder?")  # the first of the demo's example questions
        page.get_by_test_id("stExpander").first.click()
        page.wait_for_timeout(800)
        page.screenshot(path=str(args.out / "chat.png"), full_page=True)
        print(f"wrote {args.out / 'chat.png'}")
        if beir.is_dir():
            sidebar = page.get_by_test_id("stSidebar")
            pick(page, sidebar, "Corpus", args.beir)
            open_page(page, "Compare")
            page.set_viewport_size({"width": 1500, "height": 2000})
            pick(page, page.get_by_test_id("stMain"), "Pick a judged query", args.query)
            page.get_by_test_id("stMetric").first.wait_for(timeout=120_000)
            batch = page.get_by_test_id("stNumberInput").locator("input")
            batch.fill(str(args.batch))
            batch.press("Enter")
            page.wait_for_timeout(500)
            page.get_by_role("button", name="Run the query set").click()
            page.get_by_test_id("stImage").first.wait_for(timeout=600_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(args.out / "compare.png"), full_page=True)
            print(f"wrote {args.out / 'compare.png'}")


if __name__ == "__main__":
    main()
