"""The title of a plain-text document (Markdown or reStructuredText), read the way each format marks it.

A title reaches every chunk, BM25 and the pages, so a folder of ``.rst`` files titled by file name
(``pep-0572``) loses the words a user searches by. Recognised, first one wins, top to bottom:

- a field header before the first blank line (``Title: ...`` as PEPs and RFC-822 headers write it,
  or reST docinfo ``:Title: ...``);
- an ATX heading ``# Title`` (level one);
- a setext / reST heading: a line underlined with a run of one punctuation character (``====``,
  ``----``, ``~~~~`` ...), with or without the same run as an overline, when no later heading has
  the same adornment (as docutils promotes a lone top-level section to the document's title).

A first heading that only names a section (``Abstract``, ``Introduction`` ...) is no title: the
caller falls back to the file name.
"""

from __future__ import annotations

import re

_ATX = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_FIELD = re.compile(r"^:?title:\s*(.+?)\s*$", re.IGNORECASE)
#: a reST adornment: one punctuation character repeated; Markdown setext uses = and -
_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:._<>!$%&,;?@\\/|])\1{2,}\s*$")
#: section names that say nothing about the document they open
_GENERIC = frozenset(["abstract", "introduction", "overview", "contents", "table of contents", "summary",
                      "motivation", "preamble", "readme", "index"])
_SCAN_LINES = 400  # header fields sit at the top


def _clean(title: str) -> str:
    title = re.sub(r"[*_`]{1,2}(\S(?:.*?\S)?)[*_`]{1,2}", r"\1", title)  # emphasis and literals
    return " ".join(title.split())


def _header_title(lines: list[str]) -> str:
    """``Title:`` in the leading field block (every line a ``Field: value`` or its continuation), or
    in YAML front matter between two ``---`` lines."""
    if lines and lines[0].strip() == "---":
        lines = lines[1:]
        lines = lines[:lines.index("---")] if "---" in lines else []
    for line in lines:
        if not line.strip():
            return ""
        match = _FIELD.match(line.strip())
        if match:
            return match.group(1)
        if not re.match(r"^:?[A-Za-z][\w -]*:(\s|$)", line.strip()) and not line[:1].isspace():
            return ""
    return ""


def _heading(lines: list[str], i: int) -> tuple[str, str] | None:
    """``(text, style)`` of the heading that starts at line ``i`` (ATX, underline or overline form), or
    None; ``style`` is the adornment (``"#"`` for ATX, ``"=/="`` for an overlined ``=`` title ...)."""
    line = lines[i].rstrip()
    atx = _ATX.match(line)
    if atx:
        return atx.group(1), "#"
    over = _ADORNMENT.match(line)
    if over:
        if i + 2 < len(lines) and lines[i + 1].strip() and not _ADORNMENT.match(lines[i + 1].rstrip()):
            under = _ADORNMENT.match(lines[i + 2].rstrip())
            if under and under.group(1) == over.group(1):
                return lines[i + 1].strip(), f"{over.group(1)}/{over.group(1)}"
        return None
    text = line.strip()
    if not text or line[:1].isspace() or i + 1 >= len(lines):
        return None
    under = _ADORNMENT.match(lines[i + 1].rstrip())
    if not under or len(lines[i + 1].strip()) < min(len(text), 3):
        return None
    previous = lines[i - 1].strip() if i > 0 else ""
    if previous and not _ADORNMENT.match(previous):  # a heading stands after a blank line
        return None
    return (text, under.group(1)) if not previous else None  # an overlined one is read from its overline


def _first_heading(lines: list[str]) -> str:
    """The first heading, when it is the document's title: an ATX ``#`` heading, or a setext / reST one
    whose adornment no later heading shares (docutils promotes a lone top section to the title;
    where every section is ``====``-underlined, as in a PEP body, the first is just a section)."""
    headings = [h for i in range(len(lines)) if (h := _heading(lines, i))]
    if not headings:
        return ""
    text, style = headings[0]
    if style != "#" and any(other == style for _, other in headings[1:]):
        return ""
    return text


def text_title(text: str) -> str:
    """The document's title, or ``""`` (the caller uses the file name)."""
    lines = text.splitlines()
    title = _clean(_header_title(lines[:_SCAN_LINES]) or _first_heading(lines))
    return "" if title.lower().strip(" :.") in _GENERIC else title
