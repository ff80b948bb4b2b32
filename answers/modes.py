"""The answer modes, each one entry of :data:`ANSWER_MODES`: ``extractive`` (sentences quoted from the
passages, the offline default), ``local`` and ``openai`` (a generator writes the answer from numbered
sources), ``none`` (the best passages), and whatever :func:`register_answer_mode` adds.

The pipeline answers through the registry, and everything that offers a mode reads it: the API's
``"mode"`` field, the app's "Answer generator" choice (its labels and help), and whether answering
needs the query embedder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from answers.citations import passages_answer
from answers.extractive import ExtractiveConfig, extractive_answer
from answers.generated import answer_or_passages
from answers.records import Answer
from indexing.records import Hit
from linqrag.registry import Registry


@dataclass(frozen=True)
class ModeInput:
    """What a mode answers from: the question, the retrieved hits (never empty) and the caller's means."""

    question: str
    hits: Sequence[Hit]
    embedder: object = None  #: the query embedder, where the mode or the retriever needs it
    generator: object = None  #: a generator, a callable returning one, or None (the mode loads its own)
    history: Sequence[dict] = ()  #: the conversation so far, as chat messages
    on_text: Callable[[str], None] | None = None  #: streaming: called with the text so far
    extractive: ExtractiveConfig | None = None
    passages_reason: str = "none chosen"  #: why the passages answer was given, shown with it


@dataclass(frozen=True)
class AnswerMode:
    """One way to answer: its name, the app's label and help, and ``answer(ModeInput) -> Answer``."""

    name: str
    label: str  #: the app's choice (short: the sidebar is narrow)
    help: str  #: one sentence: what it writes and what to trust
    answer: Callable[[ModeInput], Answer]
    needs_embedder: bool = False  #: it scores text with the query embedder (whatever the retriever)
    #: the :mod:`linqrag.generation` kind it loads (``local``, ``openai``), whose settings the app asks for
    generator_kind: str | None = None


#: Every answer mode by name, in the order they are offered.
ANSWER_MODES: Registry[AnswerMode] = Registry("answer mode")
DEFAULT_MODE = "extractive"
#: Add a mode (a name is registered once).
register_answer_mode = ANSWER_MODES.register
#: The registered mode of a name; ``ValueError`` naming the modes otherwise.
answer_mode = ANSWER_MODES.entry


def _generated(kind: str, given: ModeInput) -> Answer:
    return answer_or_passages(kind, given.question, given.hits, given.generator, history=given.history,
                              on_text=given.on_text)


register_answer_mode(AnswerMode(
    "extractive", "Extractive (quotes, offline)",
    "Extractive quotes the passages that answer, verbatim and cited, and never invents.",
    lambda given: extractive_answer(given.question, given.hits, given.embedder, given.extractive),
    needs_embedder=True))
register_answer_mode(AnswerMode(
    "local", "Local LLM (SmolLM2-135M)", "The local 135M model writes an answer but may invent.",
    partial(_generated, "local"), generator_kind="local"))
register_answer_mode(AnswerMode(
    "openai", "OpenAI-compatible endpoint", "An endpoint is any OpenAI-compatible server.",
    partial(_generated, "openai"), generator_kind="openai"))
register_answer_mode(AnswerMode(
    "none", "None: the best passages", "None lists the best passages.",
    lambda given: passages_answer(given.hits, given.passages_reason)))
