"""LLM-written queries (E5 step two): one synthetic query per pool chunk, the chunk being its positive.

Each chunk gets a task from the brainstormed pool and a template (length, clarity, difficulty,
style), both picked deterministically from the chunk id. The answer must be a JSON object with a
``query`` (and, optionally, a ``hard_negative``); malformed answers get one repair attempt, then
``retries`` new attempts with another seed. Every rejected output is kept with its reason. This is
the ``llm`` pair source of :mod:`finetune.sources`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from finetune.jsonrepair import OutputRejected, parse_json_object
from finetune.prompts import EXAMPLE_NEGATIVES, EXAMPLE_QUERIES, TEMPLATES, generation_messages, stable_pick
from finetune.records import ChunkPool, Rejection, SyntheticPair, Task
from indexing.records import Chunk
from linqrag.generation import GenerationConfig

if TYPE_CHECKING:
    from finetune.config import DomainConfig
    from finetune.llm import CachedGenerator

#: Stop at the first closing brace: a small model tends to add keys after the two it was asked for.
JSON_STOP = ("}",)


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .?!")


def check_answer(raw: str) -> tuple[str, str | None, bool, list[str]]:
    """``(query, hard_negative or None, repaired, notes)`` or :class:`OutputRejected`."""
    text = raw if raw.rstrip().endswith("}") else raw + "}"
    parsed = parse_json_object(text, required=("query",), strings=("hard_negative",))
    query = " ".join(parsed.value["query"].split())
    notes = list(parsed.notes)
    if _norm(query) in {_norm(q) for q in EXAMPLE_QUERIES}:
        raise OutputRejected("copied_example_query")
    negative = parsed.value.get("hard_negative")
    negative = " ".join(negative.split()) if isinstance(negative, str) else None
    if negative is not None and (not negative or _norm(negative) in {_norm(n) for n in EXAMPLE_NEGATIVES}):
        notes.append("dropped_hard_negative:copied_or_empty")
        negative = None
    if negative is not None and _norm(negative) == _norm(query):
        notes.append("dropped_hard_negative:same_as_query")
        negative = None
    return query, negative, parsed.repaired, notes


def assign(chunk: Chunk, tasks: list[Task], seed: int) -> tuple[Task, str]:
    """The task and template for a chunk: stable across runs and resumes."""
    task = tasks[stable_pick(chunk.chunk_id, len(tasks), f"task{seed}")]
    template = TEMPLATES[stable_pick(chunk.chunk_id, len(TEMPLATES), f"template{seed}")]
    return task, template.template_id


def attempt_config(config: DomainConfig, attempt: int) -> GenerationConfig:
    """Retries sample with another seed (and some temperature, or greedy would repeat itself)."""
    temperature = config.temperature if attempt == 0 else max(config.temperature, 0.7)
    return GenerationConfig(max_new_tokens=config.max_new_tokens, temperature=temperature, top_p=config.top_p,
                            seed=config.seed + 1000 * attempt, stop=JSON_STOP)


def llm_chunks(pool, config: DomainConfig) -> list[Chunk]:
    """The pool chunks the LLM writes for, in pool order: training and held-out chunks have their own
    allotments, so the held-out test gets enough generated queries to have power on a small pool."""
    picked, left = [], {"train": config.max_queries, "heldout": config.max_heldout_queries}
    for chunk in pool.chunks:
        split = pool.split[chunk.chunk_id]
        if left[split] is None or left[split] > 0:
            picked.append(chunk)
            left[split] = None if left[split] is None else left[split] - 1
    return picked


def generated_pairs(config: DomainConfig, pool: ChunkPool, tasks: Sequence[Task], llm: CachedGenerator,
                    show_progress: bool = True) -> tuple[list[SyntheticPair], list[Rejection], dict]:
    """The LLM's pairs for the chunks :func:`llm_chunks` picks, in pool order, the outputs it
    rejected, and what the stage summary says of them (chunks asked, repairs, chunks given up)."""
    chunks = llm_chunks(pool, config)
    templates = {t.template_id: t for t in TEMPLATES}
    plan = {c.chunk_id: assign(c, list(tasks), config.seed) for c in chunks}
    pending = list(chunks)
    pairs: dict[str, SyntheticPair] = {}
    rejections: list[Rejection] = []
    repaired = 0
    notes: Counter = Counter()
    for attempt in range(config.retries + 1):
        if not pending:
            break
        prompts = [generation_messages(c.indexed_text, plan[c.chunk_id][0], templates[plan[c.chunk_id][1]],
                                       config.passage_chars) for c in pending]
        answers = llm.complete(prompts, attempt_config(config, attempt),
                               desc=f"generate (attempt {attempt + 1})", show_progress=show_progress)
        retry = []
        for chunk, raw in zip(pending, answers, strict=True):
            try:
                query, negative, was_repaired, answer_notes = check_answer(raw)
            except OutputRejected as error:
                rejections.append(Rejection(chunk.chunk_id, attempt, error.reason, raw[:500]))
                retry.append(chunk)
                continue
            task, template_id = plan[chunk.chunk_id]
            repaired += was_repaired
            notes.update(answer_notes)
            pairs[chunk.chunk_id] = SyntheticPair(
                pair_id=f"q{len(pairs):05d}", chunk_id=chunk.chunk_id, task_id=task.task_id,
                instruction=task.instruction, query=query, hard_negative=negative, template_id=template_id,
                split=pool.split[chunk.chunk_id], attempts=attempt + 1, repaired=was_repaired,
            )
        pending = retry
    summary = {"chunks": len(chunks), "repaired": repaired, "gave_up_chunks": len(pending),
               "answer_notes": dict(notes.most_common())}
    return [pairs[c.chunk_id] for c in chunks if c.chunk_id in pairs], rejections, summary
