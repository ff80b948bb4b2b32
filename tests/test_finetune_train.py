"""Training stage on real (tiny random) models: LoRA on a decoder and an encoder, checkpoints that
``embedder.load_embedder`` loads with the same pooling, exact resume after a kill, QLoRA on a
4-bit base, and the evaluation stage over those checkpoints."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from finetune.config import DomainConfig
from finetune.evaluate import run_evaluate_stage
from finetune.lora import ENCODER_TARGET_REGEX, lora_targets
from finetune.records import SyntheticPair, Task, TrainingExample
from finetune.rundir import RunDir
from finetune.train import STATE_FILE, run_train_stage
from indexing.records import Chunk
from linqrag.files import write_json_atomic, write_jsonl_atomic

# words the tiny Mistral's word-level tokenizer knows
DOCS = [
    "paris is the capital of france",
    "plants turn light into energy by photosynthesis",
    "dense retrieval embeds queries and passages",
    "bm25 counts words",
    "the quick brown fox jumps over the lazy dog",
    "a b c d e f g",
    "h i j k l m n",
    "o p q r s t u",
]
QUERIES = ["what is the capital of france ?", "what is photosynthesis ?", "what is dense retrieval ?",
           "what is bm25 ?", "the lazy dog", "a b c", "h i j", "o p q"]


def make_run(root, base: str, **overrides) -> tuple[DomainConfig, RunDir]:
    """A run directory whose first five stages are done, with 8 chunks (2 held out)."""
    run = RunDir(root)
    chunks = [Chunk(f"c{i}", f"d{i}", text) for i, text in enumerate(DOCS)]
    split = {c.chunk_id: ("heldout" if i >= 6 else "train") for i, c in enumerate(chunks)}
    tasks = [Task("t0", "given a question , retrieve passages that answer the question"), Task("t1", "query : a b")]
    pairs = [SyntheticPair(f"q{i}", c.chunk_id, tasks[i % 2].task_id, tasks[i % 2].instruction, QUERIES[i], None, "x",
                           split[c.chunk_id]) for i, c in enumerate(chunks)]
    examples = [TrainingExample(p.pair_id, p.task_id, p.instruction, p.query, p.chunk_id,
                                (chunks[(i + 1) % 6].chunk_id,), "the lazy fox" if i % 2 else None)
                for i, p in enumerate(pairs) if p.split == "train"]
    write_jsonl_atomic(run.chunks, chunks)
    write_json_atomic(run.path("split.json"), split)
    write_json_atomic(run.tasks_file, [t.to_json() for t in tasks])
    write_jsonl_atomic(run.pairs_file, pairs)
    write_jsonl_atomic(run.filtered, pairs)
    write_jsonl_atomic(run.examples_file, examples)
    for stage in ("chunk", "brainstorm", "generate", "filter", "mine"):
        run.mark_done(stage, {})
    settings = {"corpus": "tiny", "run_dir": str(root), "base": base, "steps": 4, "batch_size": 3, "mixed_steps": 2,
                    "checkpoint_every": 2, "learning_rate": 5e-3, "warmup_steps": 1, "lora_dropout": 0.0}
    settings.update(overrides)
    return DomainConfig(**settings), run


def test_decoder_lora_checkpoints_load_in_embedder_with_last_token_pooling(tiny_mistral_dir, tmp_path):
    from embedder import load_embedder

    config, run = make_run(tmp_path / "run", str(tiny_mistral_dir))
    summary = run_train_stage(config, run, ["t0", "t1"], show_progress=False)
    assert summary["checkpoints"] == ["step-000002", "step-000004"] and summary["resumed_from"] == 0
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"]
    ckpt = run.checkpoint_dirs()[-1]
    peft_config = json.loads((ckpt / "adapter_config.json").read_text())
    assert set(peft_config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj"}
    assert peft_config["r"] == 16
    meta = json.loads((ckpt / "linqrag_adapter.json").read_text())
    assert meta["base"] == str(tiny_mistral_dir) and meta["pooling"] == "last" and meta["step"] == 4

    base = load_embedder(str(tiny_mistral_dir))
    adapted = load_embedder(None, adapter=ckpt)  # the base comes from the adapter's own record
    assert adapted.spec.pooling == base.spec.pooling == "last"
    assert adapted.spec.append_eos == base.spec.append_eos
    assert "adapter=" in adapted.signature and adapted.signature != base.signature
    docs = adapted.encode_documents(DOCS)
    assert docs.shape == (8, base.dim)
    assert abs(docs - base.encode_documents(DOCS)).max() > 1e-4  # training changed the vectors

    losses = [json.loads(line) for line in run.losses.read_text().splitlines()]
    probes = [r["probe_loss"] for r in losses if r.get("probe_loss") is not None]
    assert len(probes) == 3 and probes[-1] < probes[0]  # step 0, 2, 4 on a fixed batch
    assert [r["phase"] for r in losses if "phase" in r] == ["homogeneous", "homogeneous", "mixed", "mixed"]

    evaluation = run_evaluate_stage(config, run, show_progress=False)
    assert [r["name"] for r in evaluation["rows"]] == ["base", "step-000002", "step-000004"]
    assert evaluation["heldout_queries"] == 2 and 0 <= evaluation["rows"][0]["ndcg@10"] <= 1


def test_killed_training_resumes_to_the_same_weights(tiny_mistral_dir, tmp_path):
    from safetensors.torch import load_file

    config, run = make_run(tmp_path / "full", str(tiny_mistral_dir), lora_dropout=0.1)
    run_train_stage(config, run, ["t0", "t1"], show_progress=False)
    # the "killed" copy lost its last checkpoint and never marked training done
    killed_root = tmp_path / "killed"
    shutil.copytree(run.root, killed_root)
    killed = RunDir(killed_root)
    shutil.rmtree(killed.checkpoints / "step-000004")
    ledger = killed.done()
    ledger.pop("train")
    write_json_atomic(killed.ledger_path, ledger)
    (killed.checkpoints / "step-000004.partial").mkdir()  # an interrupted save is ignored
    resumed_config = DomainConfig(**{**config.to_json(), "run_dir": str(killed_root)})
    summary = run_train_stage(resumed_config, killed, ["t0", "t1"], show_progress=False)
    assert summary["resumed_from"] == 2
    full = load_file(str(run.checkpoints / "step-000004" / "adapter_model.safetensors"))
    again = load_file(str(killed.checkpoints / "step-000004" / "adapter_model.safetensors"))
    assert full.keys() == again.keys()
    for key in full:
        torch.testing.assert_close(full[key], again[key], rtol=1e-5, atol=1e-6)
    steps = [json.loads(line)["step"] for line in killed.losses.read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4]  # no step logged twice


def test_changed_training_setup_refuses_to_resume_and_fresh_moves_old_aside(tiny_mistral_dir, tmp_path):
    config, run = make_run(tmp_path / "run", str(tiny_mistral_dir), steps=2)
    run_train_stage(config, run, ["t0", "t1"], show_progress=False)
    changed = DomainConfig(**{**config.to_json(), "learning_rate": 1e-3, "steps": 4})
    with pytest.raises(RuntimeError, match="--from-stage train"):
        run_train_stage(changed, run, ["t0", "t1"], show_progress=False)
    run_train_stage(changed, run, ["t0", "t1"], fresh=True, show_progress=False)
    archived = list(run.root.glob("checkpoints.prev-*"))
    assert len(archived) == 1 and (archived[0] / "step-000002" / STATE_FILE).exists()


def test_qlora_on_a_4bit_base(tiny_mistral_dir, tmp_path):
    import warnings

    from embedder import load_embedder

    config, run = make_run(tmp_path / "run", str(tiny_mistral_dir), steps=2, quantization="nf4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_train_stage(config, run, ["t0", "t1"], show_progress=False)
    # the probe forward must not repack the 4-bit weights into bitsandbytes' inference-only CPU layout
    assert not [w for w in caught if "autograd kernel was not registered" in str(w.message)]
    assert summary["quantized_base"] is True
    ckpt = run.checkpoint_dirs()[-1]
    assert json.loads((ckpt / "linqrag_adapter.json").read_text())["quantization"] == "nf4"
    adapted = load_embedder(None, adapter=ckpt, quantization="nf4")
    assert adapted.loaded_from.quantization == "nf4"
    assert adapted.encode_documents(DOCS[:2]).shape[0] == 2


def test_encoder_targets_attention_and_mlp_but_not_the_pooler(minilm):
    target = lora_targets(minilm.model)
    assert target == ENCODER_TARGET_REGEX
    import re

    names = [n for n, m in minilm.model.named_modules() if isinstance(m, torch.nn.Linear)]
    hit = [n for n in names if re.fullmatch(target, n)]
    assert len(hit) == 6 * 6 and not any("pooler" in n for n in hit)
