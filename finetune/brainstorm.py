"""Stage 2 (E5 step one): the generator reads samples of the corpus and proposes retrieval tasks.

Several calls, each on a different handful of train chunks; answers are parsed as JSON lists
(with repair), then each proposed task is checked: one sentence starting with "Given", a sane
length, not a copy of the few-shot example, not a duplicate. Rejections are counted by reason.
If nothing survives, the generic web-search task is used and the report says so.
"""

from __future__ import annotations

import random
from collections import Counter

from finetune.config import DomainConfig
from finetune.jsonrepair import OutputRejected, parse_string_list
from finetune.llm import CachedGenerator
from finetune.prompts import BRAINSTORM_EXAMPLE_ANSWER, FALLBACK_TASK, brainstorm_messages
from finetune.records import Task
from finetune.rundir import RunDir
from finetune.sources import needs_llm
from linqrag.files import write_json_atomic
from linqrag.generation import GenerationConfig

MIN_TASK_WORDS, MAX_TASK_WORDS = 6, 30


def check_task(text: str) -> str:
    """A cleaned task sentence, or :class:`OutputRejected` with the reason."""
    task = " ".join(str(text).split()).strip(" \"'.,;")
    words = task.split()
    if not task.lower().startswith("given "):
        raise OutputRejected("task_not_given_sentence")
    if not MIN_TASK_WORDS <= len(words) <= MAX_TASK_WORDS:
        raise OutputRejected("task_length")
    if "retriev" not in task.lower() and "find" not in task.lower():
        raise OutputRejected("task_says_nothing_retrieved")
    if task.lower() in {t.lower() for t in BRAINSTORM_EXAMPLE_ANSWER}:
        raise OutputRejected("task_copied_example")
    return task


def collect_tasks(answers: list[str], max_tasks: int) -> tuple[list[Task], Counter]:
    rejected: Counter = Counter()
    seen: dict[str, str] = {}
    for answer in answers:
        try:
            proposed = parse_string_list(answer).value
        except OutputRejected as error:
            rejected[error.reason] += 1
            continue
        for text in proposed:
            try:
                task = check_task(text)
            except OutputRejected as error:
                rejected[error.reason] += 1
                continue
            if task.lower() in seen:
                rejected["task_duplicate"] += 1
                continue
            seen[task.lower()] = task
    tasks = [Task(f"t{i}", text) for i, text in enumerate(list(seen.values())[:max_tasks])]
    return tasks, rejected


def run_brainstorm_stage(config: DomainConfig, run: RunDir, llm: CachedGenerator, show_progress: bool = True) -> dict:
    if not needs_llm(config.pair_sources):  # no generated queries: no tasks to brainstorm, no model to load
        write_json_atomic(run.tasks_file, [])
        summary = {"calls": 0, "tasks": 0, "notes": ["no chosen pair source needs the LLM: brainstorm skipped"]}
        run.mark_done("brainstorm", summary)
        return summary
    pool = run.pool()
    train = pool.of_split("train") or pool.chunks
    rng = random.Random(config.seed + 2)
    prompts = []
    for _ in range(config.brainstorm_calls):
        sample = rng.sample(train, min(config.brainstorm_passages, len(train)))
        prompts.append(brainstorm_messages([c.indexed_text for c in sample], config.max_tasks))
    gen_config = GenerationConfig(max_new_tokens=160, temperature=config.temperature, top_p=config.top_p,
                                  seed=config.seed, stop=("]",))
    answers = llm.complete(prompts, gen_config, desc="brainstorm", show_progress=show_progress)
    # the stop string is cut off; give the list its bracket back so a well-formed answer parses strictly
    tasks, rejected = collect_tasks([a + "]" if "[" in a else a for a in answers], config.max_tasks)
    notes = []
    if not tasks:
        tasks = [Task("t0", FALLBACK_TASK)]
        notes.append(f"the brainstorm gave no usable task; using the generic task {FALLBACK_TASK!r}")
    write_json_atomic(run.tasks_file, [t.to_json() for t in tasks])
    write_json_atomic(run.path("brainstorm_raw.json"), answers)
    summary = {"calls": len(prompts), "tasks": len(tasks), "rejected": dict(rejected), "notes": notes,
               "task_list": [t.instruction for t in tasks]}
    run.mark_done("brainstorm", summary)
    return summary
