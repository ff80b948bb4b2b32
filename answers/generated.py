"""Answers a language model writes from the numbered passages, their citations attached.

The generated modes (``local``, ``openai``: :mod:`answers.modes`) answer through
:func:`generated_answer`; a generator that cannot run here, or fails mid-answer, gives the passages
answer with the reason instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from answers.citations import attach_citations, passages_answer
from answers.prompt import build_messages
from answers.records import Answer
from indexing.records import Hit

MAX_ANSWER_TOKENS = 200
REPETITION_PENALTY = 1.1


def _generator_of(generator, kind: str):
    """``generator`` itself, what a loader callable returns, or a fresh :func:`load_generator` of ``kind``."""
    if generator is None:
        from linqrag.generation import load_generator

        return load_generator(kind)
    if hasattr(generator, "generate"):
        return generator
    return generator()


def generated_answer(question: str, hits: Sequence[Hit], generator, *, history: Sequence[dict] = (),
                     on_text: Callable[[str], None] | None = None) -> Answer:
    """A generator's answer from numbered ``hits``, its citations attached (parsed or inferred).

    With ``on_text`` the answer is streamed and ``on_text`` gets the text so far after every piece;
    without it, one ``generate`` call."""
    from linqrag.generation import GenerationConfig

    config = GenerationConfig(max_new_tokens=MAX_ANSWER_TOKENS, repetition_penalty=REPETITION_PENALTY)
    messages = build_messages(question, hits, history)
    if on_text is None:
        text = generator.generate(messages, config)
    else:
        text = ""
        for piece in generator.stream(messages, config):
            text += piece
            on_text(text)
    answer = attach_citations(text, hits)
    notes = [f"written by {generator!r}"]
    counted = getattr(generator, "count_tokens", None)
    if counted and counted(text) >= MAX_ANSWER_TOKENS - 2:
        notes.append(f"the answer reached the {MAX_ANSWER_TOKENS}-token limit and was cut off")
    return replace(answer, notes=notes + answer.notes)


def answer_or_passages(kind: str, question: str, hits: Sequence[Hit], generator, *, history: Sequence[dict] = (),
                       on_text: Callable[[str], None] | None = None) -> Answer:
    """:func:`generated_answer` by ``generator`` (a generator, a callable returning one, or None for
    ``load_generator(kind)``); the passages answer with the reason when it cannot run or fails."""
    from linqrag.generation import GeneratorUnavailable

    try:
        return generated_answer(question, hits, _generator_of(generator, kind), history=history, on_text=on_text)
    except GeneratorUnavailable as error:
        return passages_answer(hits, str(error))
    except Exception as error:  # noqa: BLE001 (an endpoint that fails mid-answer: fall back to the passages)
        return passages_answer(hits, f"the generator failed: {error}")
