"""Answers from retrieved chunks: extractive quotes, generated answers with their citations, or the
best passages, always citing real chunks; and the one pipeline (:func:`answer_question`) the Chat
page, the HTTP API and the benches run.

Modules: ``records`` (Answer, Citation), ``words`` (content words), ``prompt`` (the generator's
messages), ``citations`` (parsed or inferred citations, the passages answer), ``highlight`` (the
cited sentence marked), ``sentences`` (quotable sentences of a chunk), ``extractive`` (quoted
answers), ``generated`` (a generator's answer, or the passages when it fails), ``modes`` (the
registry of answer modes), ``pipeline`` (retrieve, answer in a mode).
"""

from answers.citations import (
    attach_citations,
    best_source,
    cited_numbers,
    citing_sentences,
    passages_answer,
    strip_invalid_citations,
)
from answers.extractive import NOT_FOUND, ExtractiveConfig, extractive_answer
from answers.highlight import highlight_span, highlighted_html
from answers.modes import ANSWER_MODES, DEFAULT_MODE, AnswerMode, ModeInput, register_answer_mode
from answers.pipeline import RetrievalError, answer_hits, answer_question
from answers.prompt import SYSTEM_PROMPT, build_messages, format_sources
from answers.records import MODE_LABELS, Answer, Citation
from answers.sentences import sentence_spans
from answers.words import content_words

__all__ = [
    "ANSWER_MODES",
    "DEFAULT_MODE",
    "MODE_LABELS",
    "NOT_FOUND",
    "SYSTEM_PROMPT",
    "Answer",
    "AnswerMode",
    "Citation",
    "ExtractiveConfig",
    "ModeInput",
    "RetrievalError",
    "answer_hits",
    "answer_question",
    "attach_citations",
    "best_source",
    "build_messages",
    "cited_numbers",
    "citing_sentences",
    "content_words",
    "extractive_answer",
    "format_sources",
    "highlight_span",
    "highlighted_html",
    "passages_answer",
    "register_answer_mode",
    "sentence_spans",
    "strip_invalid_citations",
]
