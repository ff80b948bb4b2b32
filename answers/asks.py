"""What a question asks for (a number, a version, a code name, a command, a reason, a person, a default) and
whether a passage holds one that the question does not already say.

"Which exception is raised ...?" is answered by the sentence holding ``TypeError``, not by the one
that restates the question's topic; "why ...?" by the one that gives a reason. The types are read
from the question's wording alone, with patterns, no model.
"""

from __future__ import annotations

import re

_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
                 r"sixty|seventy|eighty|ninety|hundred|thousand|million|billion|twice|half|double|single|dozen")
#: question wording -> the kind of answer it asks for
ASKS = {
    "number": re.compile(r"\bhow (?:many|much|long|large|big|small|old|often|far|fast|high|low)\b|"
                         r"\bwhat (?:\w+ )?(?:percentage|percent|proportion|fraction|share|number|amount|ratio|"
                         r"rate|size|length|limit|age|duration|period|term|fine|dose|value|level|count)\b|"
                         r"\b(?:odds|hazard|risk) ratio\b|\bwithin what\b|\bmaximum\b|\bminimum\b|\bup to what\b",
                         re.IGNORECASE),
    "version": re.compile(r"\b(?:which|what) (?:\w+ )?(?:version|release)\b|\bwhen was\b|\bin (?:which|what) year\b|"
                          r"\bwhat year\b|\bsince when\b|\bwhich python\b|\bsince which\b|\bas of which\b",
                          re.IGNORECASE),
    "code": re.compile(r"\b(?:which|what) (?:\w+ ){0,2}(?:attribute|function|method|module|keyword|exception|error|"
                       r"class|decorator|variable|option|flag|command|file|parameter|argument|operator|syntax|name|"
                       r"field|header|type|dunder|environment variable|setting|package|library|statement|"
                       r"builtin|built-in|object|protocol|prefix|suffix|character|symbol|token|string|marker|"
                       r"extension|format|directive|tool|script|hook|encoding|codec|opcode|identifier|model|preset|embedder|"
                       r"retriever|backend|mode|engine|server|port|address|url|path|folder|directory)s?\b|"
                       r"\bwhat (?:is|was) (?:it|the \w+) (?:called|named)\b|\bwhat does \w+ return\b", re.IGNORECASE),
    "command": re.compile(r"\bhow (?:do|can|should) (?:i|you|we)\b|\bhow to\b|\b(?:which|what) (?:\w+ )?command\b|"
                          r"\bwhat (?:do|should) i (?:run|type)\b|\bfrom the (?:terminal|command line|shell)\b",
                          re.IGNORECASE),
    "reason": re.compile(r"^\s*why\b|\bwhat (?:is|was) the (?:reason|rationale|motivation|purpose)\b|"
                         r"\bfor what reason\b|\bwhat motivated\b|\bwhy\b", re.IGNORECASE),
    "person": re.compile(r"^\s*who\b|\bwhich (?:person|author|developer|core developer)\b", re.IGNORECASE),
    "default": re.compile(r"\bdefault\b", re.IGNORECASE),
}

_FOUND = {
    "number": re.compile(rf"\b\d[\d,.]*\s*%?|\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE),
    "version": re.compile(r"\b\d+\.\d+(?:\.\d+)?\b|\b(?:19|20)\d\d\b"),
    "code": re.compile(r"``[^`]+``|`[^`]+`|\b\w+\.\w+(?:\.\w+)*\(?|\b[a-z]+_[a-z_]+\b|\b__\w+__\b|"
                       r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+\b|\b\w+(?:Error|Exception|Warning)\b|(?<!\w)--?[a-z][\w-]+|"
                       r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\bpython -m \w+"),
    "command": re.compile(r"\bpython3? -m [\w.]+|\bmake [a-z][\w-]*|\bpip install\b|\bstreamlit run\b|"
                          r"\blinqrag [a-z]+\b|(?<![\w-])--[a-z][\w-]+"),
    "reason": re.compile(r"\b(?:because|since|so that|in order to|to avoid|to allow|to make|to prevent|to keep|"
                         r"to ensure|reason|rationale|due to|as a result|otherwise|would|could|instead|rather than|"
                         r"too|motivat\w*|problem|benefit|advantage|avoid\w*|allows?|ensures?)\b", re.IGNORECASE),
    "person": re.compile(r"\b[A-Z][a-z]+ (?:[A-Z]\. )?[A-Z][a-z]+\b"),
    "default": re.compile(r"\bdefaults?\b|\bby default\b", re.IGNORECASE),
}


def asked_for(question: str) -> tuple[str, ...]:
    """The kinds of answer ``question`` asks for, most specific first (may be empty)."""
    return tuple(kind for kind, pattern in ASKS.items() if pattern.search(question))


def holds_asked(kinds: tuple[str, ...], question: str, text: str) -> bool:
    """Whether ``text`` holds an answer of one of ``kinds`` that ``question`` does not already hold."""
    said = question.lower()
    for kind in kinds:
        for match in _FOUND[kind].finditer(text):
            found = match.group(0).strip(" `.,(").lower()
            if found and found not in said:
                return True
    return False
