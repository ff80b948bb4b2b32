"""The quotable sentences of a chunk: prose paragraphs split into sentences, with code blocks, tables,
headings and rules left out, and a sentence cleaned as it is quoted."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, replace

_FENCE = re.compile(r"^\s*(```|~~~)")
_RULE = re.compile(r"^\s*([=\-~^*#+`:_.|])\1{2,}\s*$")  # rST underlines, markdown rules
_TABLE = re.compile(r"^\s*\|")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_COMMENTED = re.compile(r"^\s*[^\s#].*\S\s+#\s+\w")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?][)\]\"'`*]*\s+(?=[\"'`(\[*]*[A-Z0-9])")
_ABBREVIATIONS = frozenset(["e.g", "i.e", "etc", "vs", "cf", "al", "fig", "approx", "no", "mr", "dr", "st"])


class _Paragraphs:
    """The line-by-line state of :func:`_paragraphs`: the open paragraph, a fence, a literal block."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[tuple[int, int]] = []
        self.start: int | None = None
        self.end: int | None = None
        self.lines = 0  # lines in the open paragraph
        self.in_fence = False
        self.literal_indent: int | None = None
        self.blocks: list[tuple[int, int]] = []  # literal blocks, fenced code and table rows: never quoted alone
        self.items: set[int] = set()  # starts of paragraphs that are list items
        self.headings: list[tuple[int, str]] = []  # (offset, text) of each heading, in order

    def block(self, start: int, end: int) -> None:
        """A line of a literal block, code or a table: each line its own piece, so one can be quoted."""
        self.blocks.append((start, end))

    def close(self, heading: bool = False) -> None:
        if self.start is not None and not heading:
            self.out.append((self.start, self.end))
        elif self.start is not None:
            self.headings.append((self.start, self.text[self.start:self.end].strip()))
        self.start = self.end = None
        self.lines = 0

    def feed(self, line: str, line_start: int) -> None:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if _FENCE.match(line):
            self.close()
            self.in_fence = not self.in_fence
        elif self.in_fence:
            self._code(line, line_start, indent)
        elif self._in_literal(stripped, indent):
            if stripped:
                self.block(line_start + indent, line_start + len(line.rstrip()))
        elif not stripped:
            self._blank(line_start)
        elif _RULE.match(line):  # an rST underline makes the one line above it a heading
            self.close(heading=self.lines == 1)
        elif _TABLE.match(line) or _HEADING.match(line) or stripped.startswith(">>>"):
            self.close()
            if _HEADING.match(line):
                self.headings.append((line_start, stripped.lstrip("#").strip()))
            else:
                self.block(line_start + indent, line_start + len(line.rstrip()))
        else:
            self._prose(line, line_start, indent)

    def _code(self, line: str, line_start: int, indent: int) -> None:
        """Code is never quoted, except a command with its own comment ("make test  # ...")."""
        if _COMMENTED.match(line):
            self.close()
            self.out.append((line_start + indent, line_start + len(line.rstrip())))
        elif line.strip():
            self.block(line_start + indent, line_start + len(line.rstrip()))

    def _in_literal(self, stripped: str, indent: int) -> bool:
        """Whether the line belongs to an rST literal block (it ends at the first line indented no deeper)."""
        if self.literal_indent is None:
            return False
        if not stripped or indent > self.literal_indent:
            return True
        self.literal_indent = None
        return False

    def _blank(self, line_start: int) -> None:
        opens_literal = self.start is not None and self.text[self.start:self.end].rstrip().endswith("::")
        self.close()
        if opens_literal:
            self.literal_indent = _last_indent(self.text, line_start)

    def _prose(self, line: str, line_start: int, indent: int) -> None:
        if _ITEM.match(line):
            self.close()
            self.items.add(line_start + indent)
        if self.start is None:
            self.start = line_start + indent
        self.end = line_start + len(line.rstrip())
        self.lines += 1


def _scan(text: str) -> _Paragraphs:
    """Prose paragraphs (``out``), skipped blocks and list items of ``text``.

    Lines are grouped until a blank line or a new list item; fenced code, rST literal blocks
    (an indented block after a paragraph ending in ``::``), table rows, headings and underline
    rules never become quotable text on their own.
    """
    scan = _Paragraphs(text)
    offset = 0
    for line in text.splitlines(keepends=True):
        scan.feed(line, offset)
        offset += len(line)
    scan.close()
    return scan


def _last_indent(text: str, before: int) -> int:
    """Indent of the last non-blank line before ``before`` (the line that opened a literal block)."""
    lines = [line for line in text[:before].splitlines() if line.strip()]
    return len(lines[-1]) - len(lines[-1].lstrip()) if lines else 0


def _split_sentences(paragraph: str) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        cut = match.start() + 1
        word = re.findall(r"[A-Za-z.]+$", paragraph[cursor:cut - 1])
        if word and word[0].strip(".").lower() in _ABBREVIATIONS:
            continue
        end = match.end() - (len(match.group(0)) - len(match.group(0).rstrip()))
        spans.append((cursor, end))
        cursor = match.end()
    if cursor < len(paragraph):
        spans.append((cursor, len(paragraph)))
    return spans


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence ranges of ``text``'s prose paragraphs (offsets into ``text``)."""
    spans = [(p_start + s, p_start + e) for p_start, p_end in _scan(text).out
             for s, e in _split_sentences(text[p_start:p_end])]
    return [(s, e) for s, e in spans if text[s:e].strip()]


@dataclass(frozen=True)
class Unit:
    """A piece of a chunk in reading order: a prose ``sentence``, a list ``item`` (its first sentence)
    or a ``block`` (literal block, code, table row) that is quoted only after the sentence leading
    into it."""

    start: int
    end: int
    kind: str
    heading: str = ""  # the heading of the section it stands in (within the chunk), if any


#: where a long sentence (a statute's, a legal clause) divides: after ; or : and before an enumerator "(a)"
_CLAUSE_END = re.compile(r"[;:](?=\s)|,(?=\s+(?:and|or|but|provided|unless|where|which|if|whether)\b)|"
                         r"\s(?=\((?:[a-z]{1,3}|[ivx]{1,5}|\d{1,2})\)\s)")
#: sentences longer than this are also offered as their clauses
LONG_SENTENCE = 300


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Clause ranges of the sentence ``text[start:end]`` (each keeps its own delimiter)."""
    out, cursor = [], start
    for match in _CLAUSE_END.finditer(text, start, end):
        cut = match.end()
        if text[cursor:cut].strip() and cut - cursor >= 40:
            out.append((cursor, cut))
            cursor = cut
            while cursor < end and text[cursor].isspace():
                cursor += 1
    if text[cursor:end].strip():
        out.append((cursor, end))
    return out if len(out) > 1 else []


def units(text: str) -> list[Unit]:
    """Every sentence, list item and block line of ``text``, in order: the pieces answer candidates join.
    A sentence over :data:`LONG_SENTENCE` characters comes as its clauses (kind ``clause``) too."""
    scan = _scan(text)
    out = []
    for p_start, p_end in scan.out:
        for i, (s, e) in enumerate(_split_sentences(text[p_start:p_end])):
            start, end = p_start + s, p_start + e
            if text[start:end].strip():
                out.append(Unit(start, end, "item" if i == 0 and p_start in scan.items else "sentence"))
                if end - start > LONG_SENTENCE:
                    out += [Unit(a, b, "clause") for a, b in _clauses(text, start, end)]
    out += [Unit(s, e, "block") for s, e in scan.blocks]
    out.sort(key=lambda u: (u.start, -u.end))
    if not scan.headings:
        return out
    starts = [start for start, _ in scan.headings]  # in order: the scan meets headings top to bottom
    return [replace(u, heading=scan.headings[i - 1][1] if (i := bisect_left(starts, u.start)) else "")
            for u in out]


_FOOTNOTE = re.compile(r"\s?\[(?:\d{1,3}|#\w*)\]_?")


def clean_span(text: str) -> str:
    """The span as quoted: whitespace collapsed, the list bullet and the source's own footnote markers
    (rST ``[3]_``, ``[1]``) dropped, so they cannot pass for the answer's citations."""
    text = _FOOTNOTE.sub("", _ITEM.sub("", text, count=1))
    return " ".join(text.split())
