"""Prompts of the two E5 steps, written for small chat models: short, one few-shot turn, JSON only.

Step one (brainstorm) shows a few passages of the user's corpus and asks for retrieval tasks;
step two (generate) shows one chunk with a task and a template (query length, clarity,
difficulty, style) and asks for ``{"query": ..., "hard_negative": ...}``. The few-shot turn
comes from another domain, in a shape picked per prompt, so a small model has several patterns
to imitate and copying the example is detectable (see ``EXAMPLES``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

from finetune.records import QueryTemplate, Task

SYSTEM = "You create training data for a search engine. Reply with JSON only."

#: Used when the brainstorm yields nothing usable (E5's generic web-search task).
FALLBACK_TASK = "Given a question, retrieve passages that answer the question"

LENGTHS = {"short": "of 3 to 8 words", "medium": "of 8 to 15 words", "long": "of 15 to 30 words"}
CLARITIES = ("clear", "understandable with some effort")
DIFFICULTIES = ("high school", "college", "expert")
STYLES = ("question", "keyword search", "statement to verify")

TEMPLATES: tuple[QueryTemplate, ...] = tuple(
    QueryTemplate(f"{length}-{clarity.split()[0]}-{difficulty.split()[0]}-{style.split()[0]}",
                  length, clarity, difficulty, style)
    for length, clarity, difficulty, style in itertools.product(LENGTHS, CLARITIES, DIFFICULTIES, STYLES)
)


@dataclass(frozen=True)
class FewShot:
    """One worked example (passage, task, template) -> answer, from a domain unlike any corpus."""

    passage: str
    task: str
    style: str
    answer: dict


EXAMPLES: tuple[FewShot, ...] = (
    FewShot(
        "Honey bees live in colonies with one queen, many workers and some drones. Workers collect nectar "
        "and pollen and make honey.",
        "Given a question about insects, retrieve passages that answer it",
        "question",
        {"query": "what jobs do worker bees have in a colony",
         "hard_negative": "Wasps build paper nests and hunt other insects to feed their larvae."},
    ),
    FewShot(
        "The Sicilian Defence answers 1.e4 with c5. It leads to unbalanced positions and is the most popular "
        "reply to 1.e4 at master level.",
        "Given a chess term, retrieve passages that explain it",
        "keyword search",
        {"query": "sicilian defence c5 reply",
         "hard_negative": "The French Defence answers 1.e4 with e6 and often leads to closed pawn chains."},
    ),
    FewShot(
        "Rivers carry sediment to the sea. Where the current slows at the mouth, the sediment settles and "
        "builds a delta over many years.",
        "Given a claim about geography, retrieve passages that support or refute it",
        "statement to verify",
        {"query": "deltas form where rivers drop their sediment",
         "hard_negative": "Glaciers carve U-shaped valleys as they slide slowly downhill."},
    ),
)

EXAMPLE_QUERIES = tuple(e.answer["query"] for e in EXAMPLES)
EXAMPLE_NEGATIVES = tuple(e.answer["hard_negative"] for e in EXAMPLES)

BRAINSTORM_EXAMPLE_PASSAGES = (
    "Honey bees live in colonies with one queen, many workers and some drones.",
    "Varroa mites weaken colonies by feeding on bee larvae and spreading viruses.",
)
BRAINSTORM_EXAMPLE_ANSWER = [
    "Given a question about beekeeping, retrieve passages that answer it",
    "Given a bee disease, retrieve passages that describe its causes and treatment",
    "Given a claim about insects, retrieve passages that support or refute it",
]


def stable_pick(key: str, n: int, salt: str = "") -> int:
    """A deterministic index in ``range(n)`` from a key, independent of Python's hash seed."""
    return int(hashlib.sha256(f"{salt}\x00{key}".encode()).hexdigest()[:8], 16) % n


def clip(text: str, chars: int) -> str:
    """At most ``chars`` characters, cut at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    cut = text[:chars].rsplit(" ", 1)[0]
    return cut + " ..."


def brainstorm_messages(passages: list[str], max_tasks: int, passage_chars: int = 400) -> list[dict]:
    """E5 step one: read a sample of the corpus, propose retrieval tasks for it as a JSON list."""

    def ask(texts) -> str:
        shown = "\n".join(f"- {clip(t, passage_chars)}" for t in texts)
        return (f"Passages from a document collection:\n{shown}\n\nBrainstorm up to {max_tasks} retrieval tasks "
                "a user of this collection could have. Each task is one sentence that starts with \"Given a\" and "
                "says what is retrieved. Answer with a JSON list of strings.")

    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": ask(BRAINSTORM_EXAMPLE_PASSAGES)},
        {"role": "assistant", "content": json.dumps(BRAINSTORM_EXAMPLE_ANSWER)},
        {"role": "user", "content": ask(passages)},
    ]


def _generation_request(passage: str, task: str, template: QueryTemplate) -> str:
    return (
        f"Task: {task}\nPassage: {passage}\n\n"
        f"Write a {template.style} {LENGTHS[template.length]} that this passage answers, in your own words, "
        f"{template.clarity}, at {template.difficulty} level. Then write a hard negative: one sentence on a related "
        "topic that looks relevant but does not answer it. JSON keys: query, hard_negative."
    )


def pick_example(template: QueryTemplate) -> FewShot:
    """The few-shot turn whose query style matches the template (falls back to the first)."""
    return next((e for e in EXAMPLES if e.style == template.style), EXAMPLES[0])


def generation_messages(passage: str, task: Task, template: QueryTemplate, passage_chars: int) -> list[dict]:
    """E5 step two for domain adaptation: the chunk is the positive, the LLM writes the query."""
    example = pick_example(template)
    example_template = QueryTemplate("example", "short", "clear", "high school", example.style)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _generation_request(example.passage, example.task, example_template)},
        {"role": "assistant", "content": json.dumps(example.answer)},
        {"role": "user", "content": _generation_request(clip(passage, passage_chars), task.instruction, template)},
    ]
