"""Text out of file bytes: encodings, HTML without boilerplate, PDF. Pure functions, no file I/O."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from linqrag.errors import LinqragError


class ExtractionError(LinqragError, ValueError):
    """The bytes are not text linqrag can read; the message says why."""


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB: the test git and grep use."""
    return b"\x00" in data[:8192]


#: Single-byte Latin code pages that detectors confuse on short texts; cp1252 (the most common
#: non-UTF-8 encoding of Western text) is preferred among them when it decodes cleanly.
_LATIN_GUESSES = {"cp1250", "cp1252", "latin_1", "iso8859_1", "iso8859_2", "iso8859_15", "cp850", "mac_roman"}


_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
              (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode_wide(data: bytes) -> tuple[str, str] | None:
    """``(text, encoding)`` of UTF-16/32 text (Windows editors write it), ``None`` for anything else.

    Its NUL bytes made such files look binary. A BOM decides; without one, text whose every other
    byte is NUL in at least 90 % of the first 2,048 pairs (mostly-ASCII UTF-16) is taken as UTF-16
    on the side the NULs fall."""
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding), encoding
            except UnicodeDecodeError:
                return None
    head = data[:4096]
    head = head[: len(head) - len(head) % 2]
    pairs = len(head) // 2
    if pairs < 8:
        return None
    for encoding, nul_at in (("utf-16-le", 1), ("utf-16-be", 0)):
        if sum(head[i + nul_at] == 0 and head[i + 1 - nul_at] != 0 for i in range(0, len(head), 2)) >= 0.9 * pairs:
            try:
                return data[: len(data) - len(data) % 2].decode(encoding), encoding
            except UnicodeDecodeError:
                return None
    return None


def decode_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: UTF-8 (with or without BOM) first, then the charset-normalizer guess."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding in _LATIN_GUESSES:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    if best is None:
        raise ExtractionError("not UTF-8 and no other text encoding fits")
    return str(best), best.encoding


_SKIP_TAGS = {"script", "style", "nav", "header", "footer", "aside", "noscript", "svg", "form", "template"}
_BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "pre",
               "blockquote"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.parts.append(data)


def simple_html_to_text(html: str) -> tuple[str, str]:
    """``(text, title)`` by tag name alone: all text but scripts, styles, nav, header, footer, aside, forms."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return normalise_whitespace("".join(collector.parts)), " ".join("".join(collector.title).split())


def _class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_OUTSIDE_CONTENT = "not(ancestor::main or ancestor::article or ancestor::section or ancestor::*[@role='main'])"
_RUSTDOC = f"//body[{_class('rustdoc')}]"
#: Page chrome, by HTML and ARIA semantics first: navigation, search, menus, dialogs, hidden elements,
#: controls, and header/footer/aside when they are page landmarks (outside main, article, section). Then the
#: widgets that documentation generators put *inside* their main element: rustdoc's since/source links,
#: collapse toggles, "Expand description", toolbar and help/settings popovers (on rustdoc pages only, so a
#: section someone named "help" elsewhere stays); mdBook's menu bar and help popup; Sphinx's pilcrows.
_CHROME_XPATH = " | ".join([
    "//script", "//style", "//noscript", "//template", "//svg", "//nav", "//form", "//button", "//select",
    "//textarea", "//dialog", "//iframe",
    f"//header[{_OUTSIDE_CONTENT}]", f"//footer[{_OUTSIDE_CONTENT}]", f"//aside[{_OUTSIDE_CONTENT}]",
    "//*[@hidden]", "//*[@aria-hidden='true']",
    ("//*[@role='navigation' or @role='search' or @role='banner' or @role='contentinfo' or @role='menu'"
     " or @role='menubar' or @role='dialog' or @role='toolbar' or @role='tooltip']"),
    (f"{_RUSTDOC}//*[{_class('rightside')} or {_class('srclink')} or {_class('out-of-band')} or {_class('hideme')}"
     " or @id='help' or @id='settings' or @id='settings-menu' or @id='toggle-all-docs']"),
    f"{_RUSTDOC}//rustdoc-toolbar", f"{_RUSTDOC}//rustdoc-topbar",
    f"//*[@id='menu-bar' or @id='mdbook-help-container' or @id='search-wrapper' or {_class('menu-bar')}]",
    f"//a[{_class('headerlink')}]",
    # page-to-page navigation that generators put in the text flow: Texinfo's "Next: ..., Previous: ..., Up: ...
    # [Contents][Index]", DocBook's navheader/navfooter, any short paragraph of next/previous/up links
    f"//*[{_class('nav-panel')} or {_class('navheader')} or {_class('navfooter')} or {_class('navigation')}]",
    "//p[a[@rel='next' or @rel='prev' or @rel='previous' or @rel='up'] and string-length(normalize-space(.)) < 400]",
])
#: The outermost main landmarks (chrome inside them is dropped anyway).
_MAIN_XPATH = ("//main[not(ancestor::main or ancestor::*[@role='main'])]"
               " | //*[@role='main'][not(ancestor::main or ancestor::*[@role='main'])]")
_HTML_BLOCKS = {"address", "article", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt", "figcaption",
                "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section",
                "summary", "table", "tr", "ul"}


def _parse_html(html: str):
    """An lxml document, or None where lxml cannot parse it (empty, or nothing but comments)."""
    import lxml.html
    from lxml import etree

    try:
        # huge_tree: without it libxml2 silently drops any text node over 10 MB
        return lxml.html.document_fromstring(html, parser=lxml.html.HTMLParser(huge_tree=True))
    except ValueError:  # a str with an XML encoding declaration: lxml wants bytes then
        try:
            parser = lxml.html.HTMLParser(encoding="utf-8", huge_tree=True)
            return lxml.html.document_fromstring(html.encode("utf-8"), parser=parser)
        except (etree.ParserError, ValueError):
            return None
    except etree.ParserError:
        return None


def _render(element) -> str:
    """Text of ``element``: a line break at each block boundary, table cells space-separated, ``<pre>`` verbatim."""
    parts: list[str] = []
    code: list[str] = []

    def walk(node) -> None:
        if isinstance(node.tag, str):
            block = node.tag in _HTML_BLOCKS
            if block:
                parts.append("\n")
            if node.tag == "pre":
                code.append("\n".join(line.rstrip() for line in node.text_content().strip("\n").splitlines()))
                parts.append(f"\x00{len(code) - 1}\x00")  # a placeholder that whitespace normalisation leaves alone
            else:
                parts.append(node.text or "")
                for child in node:
                    walk(child)
            parts.append("\n" if block else " " if node.tag in ("td", "th") else "")
        parts.append(node.tail or "")  # comments and processing instructions: only their tail is text

    walk(element)
    text = normalise_whitespace("".join(parts).replace("\xa0", " "))
    return re.sub("\x00([0-9]+)\x00", lambda m: code[int(m.group(1))].replace("\xa0", " "), text).strip()


def _trafilatura_text(tree) -> str:
    import copy

    import trafilatura

    # a copy: trafilatura prunes the tree it is given, and the caller may still need this one
    document = copy.deepcopy(tree)
    return trafilatura.extract(document, include_tables=True, include_comments=False, output_format="txt") or ""


def html_to_text(html: str) -> tuple[str, str]:
    """``(text, title)`` of an HTML page without its chrome (navigation, menus, sidebars, headers, footers).

    A page with a main landmark (``<main>`` or ``role="main"``; what rustdoc, mdBook, Sphinx and most
    modern sites emit) is read from that element, after dropping the chrome named in ``_CHROME_XPATH``.
    A page without one goes, less that chrome, to trafilatura's boilerplate removal; where that finds
    nothing, the whole page is read less its chrome. HTML that lxml cannot parse falls back to
    :func:`simple_html_to_text`.
    ``bench/html_extract.py`` measures these choices on real Sphinx, rustdoc and mdBook pages.
    """
    tree = _parse_html(html)
    if tree is None:
        try:
            return simple_html_to_text(html)
        except Exception as error:  # html.parser's failures are not one exception type
            raise ExtractionError(f"malformed HTML: neither lxml nor html.parser can read it ({error})") from error
    title = " ".join((tree.findtext(".//title") or "").split())
    for element in tree.xpath(_CHROME_XPATH):
        if element.getparent() is not None:
            element.drop_tree()  # keeps the text that follows it
    text = "\n\n".join(t for t in (_render(m) for m in tree.xpath(_MAIN_XPATH)) if t)
    if text:
        return text, title
    text = _trafilatura_text(tree).strip()  # on the page less its chrome, so a long sidebar cannot pass for the text
    if text:
        heading = " ".join(tree.xpath("string(//h1)").split())
        if heading and heading not in text:  # trafilatura takes a page's h1 for its title and leaves it out
            text = f"{heading}\n\n{text}"
        return text, title
    body = tree.find("body")
    return _render(body if body is not None else tree), title


def pdf_to_text(data: bytes) -> tuple[str, str]:
    """``(text, title)`` of a PDF via pypdf; pages joined by blank lines."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError) as error:
        raise ExtractionError(f"unreadable PDF ({error})") from error
    return normalise_whitespace("\n\n".join(pages)), str(title)


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks (at most one blank line)."""
    # only runs that change are matched: re.sub keeps a piece per match, and matching every single
    # space between words cost 800 MB on a 50 MB file
    text = re.sub(r"[ \t\f\v\r]{2,}|[\t\f\v\r]", " ", text)
    text = re.sub(r" +\n *|\n +", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
