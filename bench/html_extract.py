"""HTML extraction on real documentation pages: page chrome left, main content kept, seconds per page.

    python bench/html_extract.py [--pages 30] [--sphinx DIR] [--rustdoc DIR] [--mdbook DIR] [--repeat 1]

Pages: real generated HTML that Debian ships (no page is copied into the repository):
- Sphinx: the Python documentation, ``apt-get install python3-doc`` (/usr/share/doc/python3-doc/html);
- rustdoc: the standard library docs, ``apt-get install rust-doc`` (/usr/share/doc/rust-doc/html/std);
- mdBook: the Rust books in the same package (/usr/share/doc/rust-doc/html, pages marked "mdBook").
``--pages`` pages per generator, shared round-robin among the top-level folders (books, modules, doc
sections) and spread evenly inside each (redirect stubs, indexes, search and print-all pages left out).
A generator whose folder is absent is skipped with the reason.

Measures, from each page's own DOM (parsed with lxml):
- chrome: the text of the page's navigation, header, footer and sidebar elements: ``<nav>``,
  ``[role=navigation|search|banner|contentinfo]``, ``<header>``/``<footer>``/``<aside>`` outside
  main/article/section (inside, they are content: Sphinx puts footnotes in ``<aside>``); rustdoc's
  ``.sidebar``/``.mobile-topbar``/``nav.sub``/``#settings``/``#help``/``.out-of-band``/``summary.hideme``/
  ``.rightside``/``.srclink``/``#copy-path``/``#toggle-all-docs``; mdBook's ``#sidebar``/``#menu-bar``/
  ``#theme-list``/``#search-wrapper``/``.nav-wrapper``/help popup; Sphinx's ``.sphinxsidebar``/``.related``/
  ``.footer``/``.mobile-nav``/``.menu-wrapper``/``a.headerlink``. The reference set is the
  whitespace-normalised text of every element and text node inside them, minus any string that also
  occurs in the main content (a TOC entry that repeats a heading is not counted as chrome).
  *chrome %* = output lines equal to a string of that set / all non-empty output lines; *chrome/page*
  = the same count per page.
- main kept: the main element (rustdoc ``#main-content``, ``[role=main]`` for Sphinx, ``<main>`` for mdBook),
  chrome inside it removed, rendered to lines at block boundaries; *main kept %* = characters of those
  lines found (whitespace-normalised, as substrings) in the whitespace-normalised output, over all
  their characters. An extractor that drops everything scores 0 here.
- s/page: wall seconds per page, mean over the pages (best of ``--repeat`` runs per page), after one
  warm-up extraction.

Extractors:
- ``tags (old)``: ``corpora.extract.simple_html_to_text``, linqrag's own parser (drops elements by tag
  name: script, style, nav, header, footer, aside, form...), the HTML path before trafilatura;
- ``landmarks (generic)``: a line renderer over lxml after dropping generic chrome only (``<nav>``, forms,
  buttons, hidden elements, ARIA navigation/search/banner/contentinfo/menu/dialog, header/footer/aside
  outside the content) and keeping only the main landmark when there is one. Its rule overlaps the chrome
  rule above (``<nav>``, ``role=navigation``), so part of its chrome score holds by construction;
- ``trafilatura ...``: ``trafilatura.extract`` with include_tables=True, include_comments=False, text
  output, and the named mode (default, favor_precision, favor_recall, fast = no fallback extractors);
- ``linqrag``: ``corpora.extract.html_to_text`` as the loader calls it now: the generic landmark rule plus a
  short list of generator widgets inside the main element (rustdoc since/source links and toggles, mdBook
  menu bar and help popup, Sphinx pilcrows), trafilatura (default mode) for pages without a main landmark.
  That widget list is also in the chrome rule, so the rustdoc chrome column is by construction for it;
- ``linqrag, landmark removed``: the same on the page with ``<main>``/``role="main"`` turned into plain
  ``<div>``s, which exercises its path for pages that have no main landmark (trafilatura, default mode).

The last lines compare trafilatura (default) and linqrag to the old extractor: ``ratio X/old: ...``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lxml.html
from lxml import etree

from corpora.extract import html_to_text, simple_html_to_text

SKIP_NAMES = {"print.html", "search.html", "genindex.html", "all.html", "toc.html"}
DEFAULT_DIRS = {
    "sphinx": "/usr/share/doc/python3-doc/html",
    "rustdoc": "/usr/share/doc/rust-doc/html/std",
    "mdbook": "/usr/share/doc/rust-doc/html",
}
INSTALL = {"sphinx": "apt-get install python3-doc", "rustdoc": "apt-get install rust-doc",
           "mdbook": "apt-get install rust-doc"}


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_OUTSIDE_CONTENT = "not(ancestor::main or ancestor::article or ancestor::section or ancestor::*[@role='main'])"
_GENERIC_CHROME = [
    "//nav", f"//header[{_OUTSIDE_CONTENT}]", f"//footer[{_OUTSIDE_CONTENT}]", f"//aside[{_OUTSIDE_CONTENT}]",
    "//*[@role='navigation' or @role='search' or @role='banner' or @role='contentinfo']",
]
_GENERATOR_CHROME = {
    "rustdoc": [f"//*[{_has_class('sidebar')}]", f"//*[{_has_class('mobile-topbar')}]", f"//nav[{_has_class('sub')}]",
                "//*[@id='settings' or @id='help' or @id='settings-menu' or @id='help-button']",
                f"//*[{_has_class('out-of-band')}]", f"//summary[{_has_class('hideme')}]", "//*[@id='copy-path']",
                f"//*[{_has_class('rightside')} or {_has_class('srclink')}]", "//*[@id='toggle-all-docs']"],
    "mdbook": ["//*[@id='sidebar' or @id='menu-bar' or @id='theme-list' or @id='search-wrapper']",
               f"//*[{_has_class('menu-bar')} or {_has_class('nav-wrapper')} or {_has_class('nav-wide-wrapper')}]",
               "//*[@id='mdbook-help-container' or @id='mdbook-help-popup']"],
    "sphinx": [f"//*[{_has_class('sphinxsidebar')} or {_has_class('related')} or {_has_class('footer')}]",
               f"//*[{_has_class('mobile-nav')} or {_has_class('menu-wrapper')}]", f"//a[{_has_class('headerlink')}]"],
}
_MAIN = {
    "rustdoc": ["//*[@id='main-content']", "//main"],
    "mdbook": ["//main", "//*[@id='content']"],
    "sphinx": ["//*[@role='main']", f"//*[{_has_class('body')}]"],
}
BLOCK_TAGS = {"address", "article", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt", "figcaption",
              "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section", "summary",
              "table", "td", "th", "tr", "ul"}
_INVISIBLE = {"script", "style", "noscript", "template", "head", "title"}


def norm(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- pages


def _is_redirect(head: str) -> bool:
    low = head.lower()
    return 'http-equiv="refresh"' in low or "<title>redirection</title>" in low


def _is_page_of(kind: str, root: Path, path: Path) -> bool:
    """A real page (not an index, a stub or a redirect) that ``kind`` generated."""
    rel = path.relative_to(root).as_posix()
    if path.name in SKIP_NAMES or "genindex-" in path.name or path.stat().st_size < 2048:
        return False
    head = path.read_text(encoding="utf-8", errors="replace")[:3000]
    if _is_redirect(head):
        return False
    if kind == "mdbook":
        return "mdBook" in head
    if kind == "rustdoc":
        return 'name="generator" content="rustdoc"' in head and not rel.startswith("src/")
    if kind == "sphinx":
        return "sphinx" in head.lower() or "_static/" in head
    return True


def find_pages(kind: str, root: Path, count: int) -> list[Path]:
    """``count`` pages of one generator under ``root``, evenly spread over the sorted candidates."""
    candidates = [path for path in sorted(root.rglob("*.html")) if _is_page_of(kind, root, path)]
    if len(candidates) <= count:
        return candidates
    # round-robin over the top-level folders (books, modules, doc sections), evenly spread inside each,
    # so one folder of many tiny pages does not fill the sample
    groups: dict[str, list[Path]] = {}
    for path in candidates:
        rel = path.relative_to(root).parts
        groups.setdefault(rel[0] if len(rel) > 1 else "", []).append(path)
    if len(groups) > count:  # more folders than pages: every k-th folder, one page each
        names = list(groups)
        groups = {names[int(i * len(names) / count)]: groups[names[int(i * len(names) / count)]] for i in range(count)}
    quota = dict.fromkeys(groups, 0)
    left = count
    while left:
        for name, paths in groups.items():
            if left and quota[name] < len(paths):
                quota[name] += 1
                left -= 1
    picked = []
    for name, paths in groups.items():
        step = len(paths) / max(quota[name], 1)
        picked.extend(paths[int((i + 0.5) * step)] for i in range(quota[name]))  # centred in each stretch
    return sorted(picked)


# ---------------------------------------------------------------- reference sets from the DOM


def _walk(node, parts: list[str]) -> None:
    """Append the text under ``node`` to ``parts``, with a break around every block element."""
    tag = node.tag if isinstance(node.tag, str) else None
    if tag is None or tag in _INVISIBLE:  # a comment, a processing instruction, a script or style
        if node.tail:
            parts.append(node.tail)
        return
    block = tag in BLOCK_TAGS
    if block:
        parts.append("\n")
    if tag == "pre":
        parts.append(node.text_content())
    else:
        if node.text:
            parts.append(node.text)
        for child in node:
            _walk(child, parts)
    if block:
        parts.append("\n")
    if node.tail:
        parts.append(node.tail)


def render_lines(element) -> list[str]:
    """Text of ``element`` with a line break at every block boundary (scripts and styles left out)."""
    parts: list[str] = []
    _walk(element, parts)
    return [norm(chunk) for chunk in "".join(parts).split("\n") if norm(chunk)]


def _strings_of(element) -> set[str]:
    """Every whitespace-normalised text an extractor could emit as one line from inside ``element``."""
    out: set[str] = set()
    for node in element.iter():
        if not isinstance(node.tag, str) or node.tag in _INVISIBLE:
            continue
        whole = norm(node.text_content())
        if whole:
            out.add(whole)
        for piece in (node.text, node.tail if node is not element else None):
            if piece and norm(piece):
                out.add(norm(piece))
    out.update(render_lines(element))
    return out


def reference(kind: str, html: str) -> tuple[set[str], list[str]]:
    """``(chrome strings, main lines)`` of one page."""
    tree = lxml.html.fromstring(html)
    chrome = []
    for xpath in _GENERIC_CHROME + _GENERATOR_CHROME[kind]:
        chrome.extend(tree.xpath(xpath))
    main = None
    for xpath in _MAIN[kind]:
        found = tree.xpath(xpath)
        if found:
            main = found[0]
            break
    chrome_strings: set[str] = set()
    for element in chrome:
        chrome_strings |= _strings_of(element)
    if main is None:
        return chrome_strings, []
    main = _copy(main)
    for element in list(main.iter()):
        if element.getparent() is not None and _matches_any(element, kind):
            _drop_keep_tail(element)
    main_strings = _strings_of(main)
    return chrome_strings - main_strings, render_lines(main)


def _copy(element):
    return lxml.html.fromstring(etree.tostring(element, encoding="unicode"))


def _matches_any(element, kind: str) -> bool:
    """Is ``element`` (in a copied subtree) itself one of the chrome elements?"""
    if not isinstance(element.tag, str):
        return False
    for xpath in _GENERIC_CHROME + _GENERATOR_CHROME[kind]:
        test = "self::" + xpath[2:] if xpath.startswith("//") else xpath
        if element.xpath(test):
            return True
    return False


def _drop_keep_tail(element) -> None:
    parent = element.getparent()
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


# ---------------------------------------------------------------- extractors


_LANDMARK_DROP = ("//script | //style | //noscript | //template | //svg | //nav | //form"
                  f" | //header[{_OUTSIDE_CONTENT}] | //footer[{_OUTSIDE_CONTENT}] | //aside[{_OUTSIDE_CONTENT}]"
                  " | //button | //select | //*[@hidden] | //*[@aria-hidden='true']"
                  " | //*[@role='navigation' or @role='search' or @role='banner' or @role='contentinfo'"
                  " or @role='menu' or @role='menubar' or @role='dialog' or @role='toolbar']")
_LANDMARK_MAIN = "//main | //*[@role='main'] | //*[@id='main-content']"


def landmarks_generic(html: str) -> str:
    tree = lxml.html.fromstring(html)
    for element in tree.xpath(_LANDMARK_DROP):
        if element.getparent() is not None:
            _drop_keep_tail(element)
    mains = tree.xpath(_LANDMARK_MAIN)
    root = mains[-1] if mains else tree  # the innermost when landmarks nest (rustdoc: <main> > #main-content)
    return "\n".join(render_lines(root))


def trafilatura_extractor(**mode) -> Callable[[str], str]:
    import trafilatura

    def run(html: str) -> str:
        return trafilatura.extract(html, include_tables=True, include_comments=False, output_format="txt", **mode) or ""

    return run


def _without_main(html: str) -> str:
    """The page as if its generator emitted no main landmark: linqrag's path for such pages (trafilatura)."""
    return re.sub(r"<(/?)main\b", r"<\1div", html).replace('role="main"', "")


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "tags (old)": lambda html: simple_html_to_text(html)[0],
    "landmarks (generic)": landmarks_generic,
    "trafilatura default": trafilatura_extractor(),
    "trafilatura favor_precision": trafilatura_extractor(favor_precision=True),
    "trafilatura favor_recall": trafilatura_extractor(favor_recall=True),
    "trafilatura fast": trafilatura_extractor(fast=True),
    "linqrag": lambda html: html_to_text(html)[0],
    "linqrag, landmark removed": lambda html: html_to_text(_without_main(html))[0],
}


# ---------------------------------------------------------------- scoring


def score(output: str, chrome: set[str], main_lines: list[str]) -> tuple[int, int, int, int]:
    """``(chrome lines, output lines, main characters found, main characters)``."""
    lines = [norm(line) for line in output.splitlines() if norm(line)]
    chrome_count = sum(1 for line in lines if line in chrome)
    flat = norm(output)
    found = sum(len(line) for line in main_lines if line in flat)
    return chrome_count, len(lines), found, sum(len(line) for line in main_lines)


def run_generator(kind: str, pages: list[Path], names: list[str], repeat: int) -> dict[str, dict[str, float]]:
    totals = {name: {"chrome": 0, "lines": 0, "found": 0, "main": 0, "seconds": []} for name in names}
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        chrome, main_lines = reference(kind, html)
        for name in names:
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                output = EXTRACTORS[name](html)
                best = min(best, time.perf_counter() - start)
            c, n, f, m = score(output, chrome, main_lines)
            row = totals[name]
            row["chrome"] += c
            row["lines"] += n
            row["found"] += f
            row["main"] += m
            row["seconds"].append(best)
    result = {}
    for name, row in totals.items():
        result[name] = {
            "chrome_pct": 100 * row["chrome"] / max(row["lines"], 1),
            "chrome_per_page": row["chrome"] / len(pages),
            "lines_per_page": row["lines"] / len(pages),
            "main_pct": 100 * row["found"] / max(row["main"], 1),
            "s_per_page": statistics.fmean(row["seconds"]),
            "s_max": max(row["seconds"]),
        }
    return result


def print_table(kind: str, root: Path, pages: list[Path], result: dict[str, dict[str, float]]) -> None:
    size = sum(p.stat().st_size for p in pages) / len(pages) / 1024
    print(f"\n### {kind}: {len(pages)} pages from {root} (mean {size:.0f} KiB)\n")
    print("| extractor | chrome % of output lines | chrome lines/page | output lines/page | main kept % | s/page "
          "| max s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in result.items():
        print(f"| {name} | {r['chrome_pct']:.1f} | {r['chrome_per_page']:.1f} | {r['lines_per_page']:.0f} | "
              f"{r['main_pct']:.1f} | {r['s_per_page']:.4f} | {r['s_max']:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=30, help="pages per generator")
    parser.add_argument("--repeat", type=int, default=1, help="runs per page and extractor; the best one counts")
    for kind, default in DEFAULT_DIRS.items():
        parser.add_argument(f"--{kind}", type=Path, default=Path(default), help=f"folder of {kind} pages")
    parser.add_argument("--extractors", nargs="*", default=list(EXTRACTORS), choices=list(EXTRACTORS))
    args = parser.parse_args(argv)

    warm = "<html><body><main><p>" + "Warm-up text for the extractors. " * 20 + "</p></main></body></html>"
    for name in args.extractors:
        EXTRACTORS[name](warm)
    overall: dict[str, dict[str, float]] = {}
    ran = 0
    for kind in DEFAULT_DIRS:
        root: Path = getattr(args, kind)
        if not root.is_dir():
            print(f"\n### {kind}: skipped, {root} is absent ({INSTALL[kind]})")
            continue
        pages = find_pages(kind, root, args.pages)
        if not pages:
            print(f"\n### {kind}: skipped, no {kind} pages under {root}")
            continue
        result = run_generator(kind, pages, args.extractors, args.repeat)
        print_table(kind, root, pages, result)
        ran += 1
        for name, r in result.items():
            acc = overall.setdefault(name, {k: 0.0 for k in r})
            for k, v in r.items():
                acc[k] += v
    if not ran:
        print("no pages found: nothing measured")
        return 0
    print_overall(overall, ran)
    return 0


def print_overall(overall: dict[str, dict[str, float]], ran: int) -> None:
    print(f"\nmean over the {ran} generators:")
    for name, acc in overall.items():
        print(f"  {name}: chrome {acc['chrome_pct'] / ran:.1f}% of lines, main kept {acc['main_pct'] / ran:.1f}%, "
              f"{acc['s_per_page'] / ran:.4f} s/page")
    old = overall.get("tags (old)")
    if not old:
        return
    for name in ("trafilatura default", "linqrag"):
        new = overall.get(name)
        if new:
            chrome = new["chrome_per_page"] / max(old["chrome_per_page"], 1e-9)
            print(f"ratio {name}/old: chrome lines {chrome:.2f}, "
                  f"main kept {new['main_pct'] / max(old['main_pct'], 1e-9):.2f}, "
                  f"s/page {new['s_per_page'] / max(old['s_per_page'], 1e-9):.1f}")


if __name__ == "__main__":
    sys.exit(main())
