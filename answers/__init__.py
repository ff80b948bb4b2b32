"""Answers from retrieved chunks: extractive quotes, generated answers with their citations, or the
best passages, always citing real chunks; and the one pipeline (:func:`answer_question`) the Chat
page, the HTTP API and the benches run.

Modules: ``records`` (Answer, Citation), ``words`` (content words), ``prompt`` (the generator's
messages), ``citations`` (parsed or inferred citations, the passages answer), ``highlight`` (the
cited sentence marked), ``sentences`` (quotable sentences of a chunk), ``extractive`` (quoted
answers), ``pipeline`` (retrieve, answer in a mode, fall back).
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
from answers.pipeline import MODES, RetrievalError, answer_hits, answer_question
from answers.prompt import SYSTEM_PROMPT, build_messages, format_sources
from answers.records import MODE_LABELS, Answer, Citation
from answers.sentences import sentence_spans
from answers.words import content_words

__all__ = [
    "MODES",
    "MODE_LABELS",
    "NOT_FOUND",
    "SYSTEM_PROMPT",
    "Answer",
    "Citation",
    "ExtractiveConfig",
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
    "sentence_spans",
    "strip_invalid_citations",
]
