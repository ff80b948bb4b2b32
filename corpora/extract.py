"""Text out of file bytes: encodings, HTML without boilerplate, PDF. Pure functions, no file I/O."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser


class ExtractionError(ValueError):
    """The bytes are not text linqrag can read; the message says why."""


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB: the test git and grep use."""
    return b"\x00" in data[:8192]


#: Single-byte Latin code pages that detectors confuse on short texts; cp1252 (the most common
#: non-UTF-8 encoding of Western text) is preferred among them when it decodes cleanly.
_LATIN_GUESSES = {"cp1250", "cp1252", "latin_1", "iso8859_1", "iso8859_2", "iso8859_15", "cp850", "mac_roman"}


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
_BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "pre", "blockquote"}


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


def html_to_text(html: str) -> tuple[str, str]:
    """``(text, title)`` of an HTML page, without scripts, styles, navigation, headers and footers."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return normalise_whitespace("".join(collector.parts)), " ".join("".join(collector.title).split())


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
    text = re.sub(r"[ \t\f\v\r]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def markdown_title(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""
