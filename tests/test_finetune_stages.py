"""Unit tests of the domain-adaptation stages on tiny inputs: prompts, JSON repair, every filter
rule, the mining window and false-negative margin, homogeneous batching, InfoNCE against a
hand-computed value, the run directory and the config precedence. No model is loaded here."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from finetune.batching import plan_batches
from finetune.brainstorm import check_task, collect_tasks
from finetune.chunk import per_document_cap, sample_pool, split_by_document
from finetune.config import DomainConfig
from finetune.domain import resolve_config
from finetune.filters import (
    copy_share,
    rule_copies_chunk,
    rule_exact_duplicates,
    rule_length,
    rule_near_duplicates,
    rule_teacher,
)
from finetune.jsonrepair import OutputRejected, parse_json_object, parse_string_list
from finetune.llm import CachedGenerator
from finetune.losses import info_nce
from finetune.mining import mine_negatives
from finetune.prompts import EXAMPLES, TEMPLATES, brainstorm_messages, generation_messages
from finetune.queries import assign, check_answer
from finetune.records import SyntheticPair, Task, TrainingExample
from finetune.rundir import STAGES, RunDir, RunDirError, append_jsonl, iter_jsonl
from finetune.teacher import positive_ranks
from linqrag.generation import GenerationConfig


def pair(pid: str, query: str, chunk: str = "c1", split: str = "train", task: str = "t0") -> SyntheticPair:
    return SyntheticPair(pid, chunk, task, "Given a question, retrieve passages", query, None, "tpl", split)


# ---- prompts -------------------------------------------------------------------------------


def test_generation_prompt_has_task_template_passage_and_one_shot():
    task = Task("t3", "Given a symptom, retrieve passages about its causes")
    template = next(t for t in TEMPLATES if t.style == "keyword search" and t.length == "long")
    messages = generation_messages("Fever is a rise in body temperature. " * 60, task, template, passage_chars=200)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    ask = messages[-1]["content"]
    assert task.instruction in ask and "keyword search of 15 to 30 words" in ask
    assert template.clarity in ask and template.difficulty in ask
    assert "Fever is a rise" in ask and ask.count("Fever") < 60 and " ..." in ask  # clipped at a word
    shot = json.loads(messages[2]["content"])
    assert set(shot) == {"query", "hard_negative"} and shot["query"] == EXAMPLES[1].answer["query"]
    assert "JSON" in messages[0]["content"]


def test_templates_cover_the_e5_controls():
    assert {t.length for t in TEMPLATES} == {"short", "medium", "long"}
    assert len({t.clarity for t in TEMPLATES}) >= 2 and len({t.difficulty for t in TEMPLATES}) >= 3
    assert len({t.template_id for t in TEMPLATES}) == len(TEMPLATES)


def test_task_and_template_assignment_is_stable():
    from indexing.records import Chunk

    tasks = [Task(f"t{i}", f"Given a thing {i}, retrieve passages") for i in range(4)]
    chunks = [Chunk(f"c{i}", "d", f"text {i}") for i in range(40)]
    first = [assign(c, tasks, 13) for c in chunks]
    assert first == [assign(c, tasks, 13) for c in chunks]
    assert len({task.task_id for task, _ in first}) == 4  # spread over the pool


def test_brainstorm_prompt_shows_passages_and_asks_for_a_list():
    messages = brainstorm_messages(["alpha passage", "beta passage"], max_tasks=5)
    assert "alpha passage" in messages[-1]["content"] and "up to 5" in messages[-1]["content"]
    assert json.loads(messages[2]["content"])[0].startswith("Given a")


# ---- JSON repair ---------------------------------------------------------------------------


def test_strict_json_is_not_marked_repaired():
    parsed = parse_json_object('{"query": "a b c", "hard_negative": "x"} trailing chatter', required=("query",))
    assert parsed.value == {"query": "a b c", "hard_negative": "x"} and not parsed.repaired


@pytest.mark.parametrize(
    ("raw", "expected", "note"),
    [
        ('```json\n{"query": "heat pumps", "hard_negative": "gas boilers"}\n```', "heat pumps", None),
        ('{"query": "heat pumps", "hard_negative": "gas boil', "heat pumps", "truncated_string"),
        ('{"query": "heat pumps", "hard_negative": "x", "query": "other", "junk": "y", "z": ', "heat pumps",
         "duplicate_key"),
        ('{"query": "what "heat pump" means", "hard_negative": "x"}', 'what "heat pump" means', "inner_quote"),
        ("{'query': 'heat pumps', 'hard_negative': 'x'}", "heat pumps", "single_quotes"),
        ('{"query": "heat pumps",, "hard_negative": "x",}', "heat pumps", None),
        ('Sure! {"query": "heat pumps", "hard_negative": "x", "n": 3 ??? }', "heat pumps", "stopped_at_garbage"),
    ],
)
def test_repair_recovers_the_first_values(raw, expected, note):
    parsed = parse_json_object(raw, required=("query",))
    assert parsed.value["query"] == expected
    if note:
        assert parsed.repaired and note in parsed.notes


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("I cannot help with that.", "no_json_object"),
        ("{ ??? }", "unparseable_json"),
        ('{"hard_negative": "x"}', "missing_key:query"),
        ('{"query": "   "}', "empty:query"),
        ('{"query": 42}', "not_a_string:query"),
        ("[1, 2]", "no_json_object"),
    ],
)
def test_unusable_outputs_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(OutputRejected) as error:
        parse_json_object(raw, required=("query",))
    assert error.value.reason == reason


def test_string_lists_parse_strictly_partially_or_from_lines():
    assert parse_string_list('["Given a a, retrieve b", "Given c, retrieve d"]').value == [
        "Given a a, retrieve b", "Given c, retrieve d"]
    partial = parse_string_list('["Given a a, retrieve b", "Given c, retrie')
    assert partial.value == ["Given a a, retrieve b"] and partial.repaired
    lines = parse_string_list("1. Given a law, retrieve cases\n- Given a case, retrieve statutes")
    assert lines.value == ["Given a law, retrieve cases", "Given a case, retrieve statutes"]
    with pytest.raises(OutputRejected):
        parse_string_list("")


def test_check_answer_restores_the_stop_brace_and_rejects_copied_examples():
    query, negative, repaired, _ = check_answer('{"query": "heat pump efficiency", "hard_negative": "gas prices"')
    assert (query, negative, repaired) == ("heat pump efficiency", "gas prices", False)
    with pytest.raises(OutputRejected, match="copied_example_query"):
        check_answer(json.dumps(EXAMPLES[0].answer))
    _, negative, _, notes = check_answer(json.dumps({"query": "heat pumps", "hard_negative": EXAMPLES[2].answer[
        "hard_negative"]}))
    assert negative is None and "dropped_hard_negative:copied_or_empty" in notes
    _, negative, _, _ = check_answer('{"query": "heat pumps", "hard_negative": 7}')
    assert negative is None


def test_brainstorm_tasks_are_checked_and_counted():
    assert check_task(' "Given a statute, retrieve the cases that apply it". ') == \
        "Given a statute, retrieve the cases that apply it"
    for bad, reason in [("Retrieve cases", "task_not_given_sentence"), ("Given a law, retrieve", "task_length"),
                        ("Given a law the judge reads aloud in court", "task_says_nothing_retrieved")]:
        with pytest.raises(OutputRejected, match=reason):
            check_task(bad)
    tasks, rejected = collect_tasks(
        ['["Given a statute, retrieve the cases that apply it", "Given a statute, retrieve the cases that apply it"]',
         "nonsense without a list {", '["Given a question about beekeeping, retrieve passages that answer it"]'],
        max_tasks=5)
    assert [t.instruction for t in tasks] == ["Given a statute, retrieve the cases that apply it"]
    assert rejected == {"task_duplicate": 1, "no_json_list": 1, "task_copied_example": 1}


# ---- filters -------------------------------------------------------------------------------


def test_length_rule():
    kept, removed = rule_length([pair("a", "too short"), pair("b", "a query of fine length"),
                                 pair("c", "word " * 60)], 3, 48)
    assert [p.pair_id for p in kept] == ["b"] and [p.pair_id for p in removed] == ["a", "c"]


def test_exact_duplicate_rule_ignores_case_and_punctuation():
    kept, removed = rule_exact_duplicates([pair("a", "What is BM25?"), pair("b", "what is bm25"),
                                           pair("c", "what is tf-idf")])
    assert [p.pair_id for p in kept] == ["a", "c"] and [p.pair_id for p in removed] == ["b"]


def test_near_duplicate_rule_uses_word_jaccard():
    kept, removed = rule_near_duplicates([
        pair("a", "effects of folic acid on preeclampsia risk"),
        pair("b", "folic acid effects on preeclampsia risk"),  # same word set
        pair("c", "folic acid and neural tube defects"),
    ], threshold=0.8)
    assert [p.pair_id for p in kept] == ["a", "c"] and [p.pair_id for p in removed] == ["b"]


def test_copy_rule_catches_lifted_sentences_not_paraphrases():
    chunk = "Folic acid supplementation in pregnancy lowers the risk of preeclampsia in most cohorts."
    assert copy_share("folic acid supplementation in pregnancy lowers the risk", chunk) == 1.0
    assert copy_share("does taking vitamins while pregnant prevent high blood pressure", chunk) == 0.0
    kept, removed = rule_copies_chunk([
        pair("a", "Folic acid supplementation in pregnancy lowers the risk of preeclampsia"),
        pair("b", "does taking folate while pregnant prevent preeclampsia"),
    ], {"c1": chunk}, overlap=0.8)
    assert [p.pair_id for p in kept] == ["b"] and [p.pair_id for p in removed] == ["a"]


def test_teacher_rule_and_positive_ranks():
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.85], [0.3, 0.3, 0.1]])
    ranks = positive_ranks(scores, [0, 1, 1])
    assert ranks.tolist() == [1, 2, 2]  # a tie counts against the positive
    pairs = [pair("a", "q a"), pair("b", "q b"), pair("c", "q c")]
    kept, removed = rule_teacher(pairs, {"a": 1, "b": 2, "c": 3}, top_k=2)
    assert [p.pair_id for p in kept] == ["a", "b"] and [p.pair_id for p in removed] == ["c"]


# ---- mining --------------------------------------------------------------------------------


def test_mining_skips_positive_and_false_negatives_and_samples_the_window():
    ids = [f"c{i}" for i in range(10)]
    # positive c0 scores 0.80; c1 (0.79) and c2 (0.90) are within the margin or above: likely false negatives
    scores = np.array([0.80, 0.79, 0.90, 0.70, 0.69, 0.68, 0.67, 0.66, 0.10, 0.05])
    mined = mine_negatives(scores, ids, "c0", n=2, window=(2, 4), margin=0.95, rng=random.Random(0))
    assert mined.false_negatives_skipped == 2
    # remaining ranking: c3 c4 c5 c6 c7 c8 c9 -> ranks 2..4 are c4 c5 c6
    assert set(mined.ids) <= {"c4", "c5", "c6"} and len(mined.ids) == 2
    assert "c0" not in mined.ids and "c3" not in mined.ids


def test_mining_margin_one_only_skips_candidates_above_the_positive():
    ids = ["p", "a", "b", "c"]
    scores = np.array([0.5, 0.6, 0.49, 0.1])
    mined = mine_negatives(scores, ids, "p", n=3, window=(1, 3), margin=1.0, rng=random.Random(0))
    assert mined.false_negatives_skipped == 1 and mined.ids == ["b", "c"]


def test_mining_window_slides_back_on_a_small_pool():
    ids = ["p", "a", "b", "c"]
    scores = np.array([0.9, 0.5, 0.4, 0.3])
    mined = mine_negatives(scores, ids, "p", n=2, window=(3, 30), margin=0.95, rng=random.Random(0))
    assert sorted(mined.ids) == ["b", "c"] and mined.window == (2, 3)


# ---- batching ------------------------------------------------------------------------------


def examples_for(tasks: dict[str, int]) -> list[TrainingExample]:
    out = []
    for task, count in tasks.items():
        out += [TrainingExample(f"{task}-{i}", task, "inst", f"q {task} {i}", f"{task}-chunk{i}") for i in range(count)]
    return out


def test_homogeneous_batches_then_a_short_mixed_phase():
    examples = examples_for({"t0": 10, "t1": 7, "t2": 5})
    plan = plan_batches(examples, batch_size=4, steps=14, mixed_steps=4, seed=1, task_order=["t1", "t0", "t2"])
    assert len(plan) == 14
    homogeneous, mixed = plan[:10], plan[10:]
    for batch in homogeneous:
        assert len({examples[i].task_id for i in batch}) == 1 and len(batch) >= 2
    # tasks take turns, interleaved by size (t0: 3 batches, t1: 2, t2: 1), ties in the given order
    assert [examples[b[0]].task_id for b in homogeneous[:6]] == ["t0", "t1", "t0", "t2", "t1", "t0"]
    assert any(len({examples[i].task_id for i in batch}) > 1 for batch in mixed)
    assert plan == plan_batches(examples, 4, 14, 4, 1, ["t1", "t0", "t2"])  # resumable: same plan


def test_batches_never_hold_one_positive_twice():
    examples = [TrainingExample(f"p{i}", "t0", "inst", f"q{i}", f"chunk{i % 3}") for i in range(9)]
    for batch in plan_batches(examples, batch_size=4, steps=6, mixed_steps=2, seed=0):
        positives = [examples[i].positive_id for i in batch]
        assert len(positives) == len(set(positives))


def test_mixed_steps_are_capped_and_tiny_data_refused():
    with pytest.raises(ValueError, match="<= 20"):
        DomainConfig(mixed_steps=21)
    with pytest.raises(ValueError, match="at least 2"):
        plan_batches(examples_for({"t0": 1}), 4, 3, 1, 0)


# ---- InfoNCE -------------------------------------------------------------------------------


def test_info_nce_matches_a_hand_computed_value():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # two positives and a hard negative
    t = 0.5
    # row 0: logits 2, 0, 1.2 (target 0); row 1: logits 0, 2, 1.6 (target 1)
    row0 = -2 + math.log(math.exp(2) + math.exp(0) + math.exp(1.2))
    row1 = -2 + math.log(math.exp(0) + math.exp(2) + math.exp(1.6))
    loss = info_nce(q, d, torch.tensor([0, 1]), temperature=t)
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_info_nce_excluded_columns_do_not_count_and_temperature_sharpens():
    q = torch.tensor([[1.0, 0.0]])
    d = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    exclude = torch.tensor([[False, True, False]])
    expected = -50 + math.log(math.exp(50) + math.exp(0))
    assert info_nce(q, d, torch.tensor([0]), 0.02, exclude).item() == pytest.approx(expected, abs=1e-6)
    assert info_nce(q, d, torch.tensor([0]), 0.02).item() == pytest.approx(math.log(2), abs=1e-6)


# ---- chunk sampling and split ----------------------------------------------------------------


def test_pool_sampling_caps_per_document_and_split_is_by_document():
    from corpora.records import Document
    from indexing.chunking import ChunkConfig, chunk_documents

    docs = [Document(f"d{i}", " ".join(f"Sentence {j} of document {i} is here." for j in range(40))) for i in range(8)]

    def chunker(batch):
        return chunk_documents(batch, ChunkConfig(chunk_size=40, chunk_overlap=0), str.split)

    pool, chunked = sample_pool(docs, chunker, max_chunks=24, max_per_doc=5, seed=0, show_progress=False)
    assert len(pool) == 24 and chunked == 8  # 8 documents can fill 24 places at 3 each: the cap spreads to all
    per_doc = {}
    for c in pool:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    assert set(per_doc.values()) == {3}
    pool, chunked = sample_pool(docs, chunker, max_chunks=12, max_per_doc=1, seed=0, show_progress=False)
    assert len(pool) == 8 and chunked == 8  # the setting still caps: 8 documents give 8 chunks
    assert [per_document_cap(1200, 4, n) for n in (5183, 1200, 400, 197, 0)] == [1, 1, 3, 4, 4]
    pool, _ = sample_pool(docs, chunker, max_chunks=12, max_per_doc=3, seed=0, show_progress=False)
    split = split_by_document(pool, 0.25, seed=0)
    heldout_docs = {c.doc_id for c in pool if split[c.chunk_id] == "heldout"}
    train_docs = {c.doc_id for c in pool if split[c.chunk_id] == "train"}
    assert heldout_docs and train_docs and not heldout_docs & train_docs


# ---- run dir, cache and config -----------------------------------------------------------------


def test_torn_last_line_is_skipped_and_ledger_resets(tmp_path):
    run = RunDir(tmp_path / "run")
    append_jsonl(run.losses, [{"step": 1}, {"step": 2}])
    with open(run.losses, "a") as fh:
        fh.write('{"step": 3, "lo')  # a writer killed mid-line
    assert [r["step"] for r in iter_jsonl(run.losses)] == [1, 2]
    for stage in ("chunk", "brainstorm", "generate", "filter"):
        run.mark_done(stage, {})
    run.reset_from("generate")
    assert set(run.done()) == {"chunk", "brainstorm"}
    with pytest.raises(RunDirError, match="--from-stage generate"):
        run.require("generate")


class CountingGenerator:
    name = "counting"

    def __init__(self):
        self.calls = 0

    def generate_batch(self, batch, config=None):
        self.calls += len(batch)
        return [f"answer to {m[-1]['content']}" for m in batch]


def test_generation_cache_pays_once_and_survives_a_new_process(tmp_path):
    backend = CountingGenerator()
    cache = tmp_path / "gen.jsonl"
    llm = CachedGenerator(lambda: backend, "counting", cache, batch_size=2)
    prompts = [[{"role": "user", "content": f"p{i}"}] for i in range(5)] + [[{"role": "user", "content": "p0"}]]
    config = GenerationConfig(max_new_tokens=8)
    first = llm.complete(prompts, config, show_progress=False)
    assert first[0] == first[-1] == "answer to p0" and backend.calls == 5
    again = CachedGenerator(lambda: pytest.fail("must not load the model"), "counting", cache)
    assert again.complete(prompts, config, show_progress=False) == first
    other = CachedGenerator(lambda: backend, "counting", cache)
    other.complete(prompts[:1], GenerationConfig(max_new_tokens=9), show_progress=False)
    assert backend.calls == 6  # other decoding settings are another cache entry


def test_config_precedence_and_refusal_of_silent_changes(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('steps = 7\nbatch_size = 4\nmax_chunks = 50\n')
    run_dir = tmp_path / "run"
    config = resolve_config({"corpus": "x", "run_dir": str(run_dir), "batch_size": 8}, str(conf))
    assert (config.steps, config.batch_size, config.max_chunks, config.base) == (7, 8, 50, "minilm")
    run = RunDir(run_dir)
    (run_dir / "config.json").write_text(json.dumps(config.to_json()))
    run.mark_done("chunk", {})
    run.mark_done("train", {})
    # resuming without flags keeps the saved settings
    assert resolve_config({"run_dir": str(run_dir)}).steps == 7
    with pytest.raises(RunDirError, match="--from-stage train"):
        resolve_config({"run_dir": str(run_dir), "steps": 20})
    assert resolve_config({"run_dir": str(run_dir), "steps": 20}, from_stage="train").steps == 20
    with pytest.raises(RunDirError, match="--from-stage chunk"):
        resolve_config({"run_dir": str(run_dir), "max_chunks": 10}, from_stage="train")
    bad = tmp_path / "bad.json"
    bad.write_text('{"stepz": 3}')
    with pytest.raises(ValueError, match="unknown setting"):
        resolve_config({"corpus": "x"}, str(bad))


def test_every_setting_names_the_stage_it_feeds_or_none():
    from dataclasses import fields

    from finetune.config import FIELD_STAGE, TRAIN_FINGERPRINT_KEYS

    no_output = {"run_dir", "threads", "api_key_env", "generator_deadline", "generation_cache",
                 "generator_batch_size", "extra",
                 "budget", "budget_max_scale"}  # where files go, threads, time limits: no output changes
    for f in fields(DomainConfig):
        assert "stage" in f.metadata, f"{f.name} has no stage: declare it with setting(STAGE, ...)"
        assert f.metadata["stage"] in STAGES or (f.metadata["stage"] is None and f.name in no_output), f.name
    assert set(FIELD_STAGE) == {f.name for f in fields(DomainConfig)} - no_output
    # the order is part of the hash in every checkpoint's trainer state: a resumed run must match it
    assert TRAIN_FINGERPRINT_KEYS == ("base", "quantization", "learning_rate", "warmup_steps", "weight_decay",
                                      "temperature_loss", "lora_r", "lora_alpha", "lora_dropout", "train_max_length",
                                      "seed", "distill_weight")


def test_the_stage_table_has_one_row_per_stage_in_order():
    from finetune.domain import STAGE_TABLE

    assert tuple(STAGE_TABLE) == STAGES
    assert all(name == stage.name and callable(stage.run) for name, stage in STAGE_TABLE.items())


def _flags(parser) -> dict[str, tuple]:
    return {a.option_strings[0]: (a.dest, a.choices) for a in parser._actions if a.option_strings}


def test_one_cli_shape_for_python_m_finetune_and_the_module_commands(tmp_path, capsys):
    import argparse

    from finetune.cli import build_parser, command_parser, main
    from linqrag.generation import GENERATOR_KINDS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("domain", "export"):
        assert _flags(sub.choices[name]) == _flags(command_parser(name))
    domain = _flags(command_parser("domain"))
    assert domain["--from-stage"][1] == STAGES and domain["--generator"][1] == GENERATOR_KINDS
    bad = tmp_path / "bad.toml"
    bad.write_text("batch_size = 1\n")
    assert main(["domain", "--corpus", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--config", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == "error: batch_size must be >= 2 (in-batch negatives)"
