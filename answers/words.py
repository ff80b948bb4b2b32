"""Words and sentences as the answer code compares them: stemmed content words, stop words out."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z0-9]+")
#: a sentence as citations and highlights see it (extractive answers split finer: :mod:`answers.sentences`)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_STOP = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "how", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "this", "to", "was", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "do", "does", "did", "can", "you", "your", "i", "we", "they", "he", "she", "not", "no", "yes",
])


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning: "erupts" and "erupted" match, "the" does not."""
    words = [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1]
    return set(_stemmer().stemWords(words))
