"""Strict JSON first, then one repair attempt for what small LLMs get wrong.

Small models open the object correctly and then wander: a missing closing brace, a truncated
last value, keys repeated with other content, an unescaped quote inside a value, code fences.
The repair scans ``"key": value`` pairs from the first ``{`` and keeps the first value of each
key; anything it cannot read ends the scan. Every failure raises :class:`OutputRejected` with a
short machine-readable reason that the stages count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from linqrag.errors import LinqragError

_FENCE = re.compile(r"```(?:json|JSON)?\s*")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")
_SCALAR = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|true|false|null")
_LITERALS = {"true": True, "false": False, "null": None}
#: Python refuses to turn more than 4,300 digits into an int; no field we read needs a tenth of that.
_MAX_NUMBER_CHARS = 400


class OutputRejected(LinqragError, ValueError):
    """A generator output that cannot be used; ``reason`` is a short label counted in reports."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Parsed:
    value: dict | list
    repaired: bool
    notes: tuple[str, ...] = ()


def _first_wins(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _strict(text: str, start: int):
    """Strict JSON at ``start``, or ``json.JSONDecodeError`` for anything it refuses: Python's reader
    also raises ``RecursionError`` on deep nesting and a bare ``ValueError`` on over-long integers."""
    decoder = json.JSONDecoder(object_pairs_hook=_first_wins)
    try:
        value, _ = decoder.raw_decode(text, start)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as error:
        raise json.JSONDecodeError(type(error).__name__, text, start) from None
    return value


class _Scanner:
    """A forgiving reader of ``"key": value`` pairs and string lists."""

    def __init__(self, text: str, pos: int) -> None:
        self.text, self.pos, self.notes = text, pos, []

    def skip(self, chars: str = " \t\r\n") -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def string(self, enders: str) -> str | None:
        """A quoted string; a quote not followed by one of ``enders`` is taken as part of the text."""
        quote = self.peek()
        if quote not in "\"'":
            return None
        if quote == "'":
            self.notes.append("single_quotes")
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                try:
                    out.append(json.loads(f'"{self.text[self.pos:self.pos + 2]}"'))
                except json.JSONDecodeError:
                    out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == quote:
                after = self.pos + 1
                while after < len(self.text) and self.text[after] in " \t\r\n":
                    after += 1
                if after >= len(self.text) or self.text[after] in enders:
                    self.pos += 1
                    return "".join(out)
                self.notes.append("inner_quote")
            out.append(ch)
            self.pos += 1
        self.notes.append("truncated_string")
        return None

    def scalar(self):
        """A number, ``true``, ``false`` or ``null``; numbers JSON forbids (``001``, ``1.``) are read as
        Python reads them, and a number too long to be one ends the scan."""
        match = _SCALAR.match(self.text, self.pos)
        if not match:
            return None, False
        token = match.group()
        if token in _LITERALS:
            value = _LITERALS[token]
        elif len(token) > _MAX_NUMBER_CHARS:
            return None, False
        elif re.fullmatch(r"-?\d+", token):
            if re.match(r"-?0\d", token):
                self.notes.append("leading_zero")
            value = int(token)
        else:
            value = float(token)
        self.pos = match.end()
        return value, True

    def pairs(self) -> dict:
        out: dict = {}
        while True:
            self.skip(" \t\r\n,")
            if self.peek() in ("}", ""):
                if not self.peek():
                    self.notes.append("unclosed_object")
                return out
            key = self.string(":")
            if key is None:
                self.notes.append("stopped_at_garbage")
                return out
            self.skip()
            if self.peek() != ":":
                self.notes.append("stopped_at_garbage")
                return out
            self.pos += 1
            self.skip()
            value = self.string(",}")
            if value is None:
                value, ok = self.scalar()
                if not ok:
                    self.notes.append("stopped_at_garbage")
                    return out
            if key in out:
                self.notes.append("duplicate_key")
            out.setdefault(key, value)

    def strings(self) -> list[str]:
        out = []
        while True:
            self.skip(" \t\r\n,")
            if self.peek() in ("]", ""):
                return out
            value = self.string(",]")
            if value is None:
                return out
            out.append(value)


def _clean(text: str) -> str:
    return _FENCE.sub("", text or "").strip()


def parse_json_object(text: str, required: tuple[str, ...] = (), strings: tuple[str, ...] = ()) -> Parsed:
    """The first JSON object in ``text``; ``required`` keys must hold non-empty strings, ``strings``
    keys, when present, must be strings."""
    text = _clean(text)
    start = text.find("{")
    if start < 0:
        raise OutputRejected("no_json_object", text[:80])
    repaired, notes = False, ()
    try:
        value = _strict(text, start)
    except json.JSONDecodeError:
        scanner = _Scanner(text, start + 1)
        value = scanner.pairs()
        repaired, notes = True, tuple(dict.fromkeys(scanner.notes))
        if not value:
            raise OutputRejected("unparseable_json", text[:80]) from None
    if not isinstance(value, dict):
        raise OutputRejected("not_an_object")
    for key in required:
        if key not in value:
            raise OutputRejected(f"missing_key:{key}")
        if not isinstance(value[key], str):
            raise OutputRejected(f"not_a_string:{key}")
        if not value[key].strip():
            raise OutputRejected(f"empty:{key}")
    for key in strings:
        if key in value and not isinstance(value[key], str):
            value = {**value, key: None}
            notes = (*notes, f"dropped_non_string:{key}")
    return Parsed(value, repaired, notes)


def parse_string_list(text: str) -> Parsed:
    """A JSON list of strings; repaired from a partial list or, failing that, from bullet lines."""
    text = _clean(text)
    start = text.find("[")
    if start >= 0:
        try:
            value = _strict(text, start)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return Parsed(value, False)
        except json.JSONDecodeError:
            pass
        scanner = _Scanner(text, start + 1)
        value = scanner.strings()
        if value:
            return Parsed(value, True, tuple(dict.fromkeys(scanner.notes)))
    lines = [_BULLET.sub("", line).strip().strip('"\',') for line in text.splitlines()]
    lines = [line for line in lines if line]
    if lines and start < 0 and "{" not in text:
        return Parsed(lines, True, ("lines",))
    raise OutputRejected("no_json_list", text[:80])
