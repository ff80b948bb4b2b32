"""Speed of the two slow parts of domain adaptation on this machine: synthetic-query generation
(queries per minute) and LoRA training steps (seconds per step).

Generation: the stage's real prompts (SciFact chunks, the E5-style template, one few-shot turn)
answered by the offline default SmolLM2-135M-Instruct, batched as the stage batches them.
Training: real steps of ``finetune.train`` (InfoNCE, LoRA r=16) on synthetic examples built from
SciFact chunks, for MiniLM (encoder) and SmolLM2 (decoder), with and without gradient checkpointing.
The 1-minute load average is printed with each row: the CPU is shared, so compare rows, and
read absolute numbers as upper bounds on what a dedicated machine takes.

    python bench/finetune_speed.py --prompts 32 --steps 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()


def scifact_chunks(n: int):
    from indexing.records import Chunk

    path = data_dir() / "scifact" / "corpus.jsonl.gz"
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            out.append(Chunk(f"c{len(out)}", row["_id"], row["text"][:700], row.get("title", "")))
            if len(out) >= n:
                break
    return out


def bench_generation(prompts: int, threads: int, batch_size: int) -> dict:
    import torch

    from finetune.config import DomainConfig
    from finetune.prompts import TEMPLATES, generation_messages
    from finetune.queries import attempt_config
    from finetune.records import Task
    from linqrag.generation import load_generator

    torch.set_num_threads(threads)
    config = DomainConfig()
    task = Task("t0", "Given a scientific claim, retrieve abstracts that support or refute it")
    messages = [generation_messages(c.indexed_text, task, TEMPLATES[i % len(TEMPLATES)], config.passage_chars)
                for i, c in enumerate(scifact_chunks(prompts))]
    gen = load_generator("local", batch_size=batch_size)
    gen.generate_batch(messages[:2], attempt_config(config, 0))  # warm-up
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    answers = gen.generate_batch(messages, attempt_config(config, 0))
    seconds = time.perf_counter() - t0
    tokens = sum(gen.count_tokens(a) for a in answers)
    prompt_tokens = sum(len(gen.prompt_ids(m, config.max_new_tokens)) for m in messages) / len(messages)
    return {"what": f"generate ({gen.backend})", "threads": threads, "batch": batch_size, "prompts": prompts,
            "queries_per_minute": round(60 * prompts / seconds, 1), "new_tokens_per_s": round(tokens / seconds, 1),
            "mean_prompt_tokens": round(prompt_tokens), "load1": round(load, 1)}


def bench_training(base: str, steps: int, batch_size: int, checkpointing: bool, threads: int) -> dict:
    import random

    import torch

    from embedder import load_embedder
    from finetune.lora import add_lora
    from finetune.records import TrainingExample
    from finetune.train import batch_loss, build_batch

    torch.set_num_threads(threads)
    chunks = scifact_chunks(4 * batch_size)
    texts = {c.chunk_id: c.indexed_text for c in chunks}
    rng = random.Random(0)
    examples = [TrainingExample(f"q{i}", "t0", "Given a claim, retrieve abstracts", " ".join(c.text.split()[:12]),
                                c.chunk_id, (chunks[rng.randrange(len(chunks))].chunk_id,))
                for i, c in enumerate(chunks)]
    emb = load_embedder(base, max_length=128)
    model = add_lora(emb.model, 16, 32, 0.05, False, checkpointing)
    emb.model = model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    times = []
    load = os.getloadavg()[0]
    for step in range(steps + 1):
        batch = build_batch(emb, examples[(step * batch_size) % len(examples):][:batch_size], texts)
        t0 = time.perf_counter()
        loss = batch_loss(emb, batch, 0.02)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step:  # the first step warms up allocators
            times.append(time.perf_counter() - t0)
    return {"what": "train", "base": base, "threads": threads, "batch": batch_size, "docs_per_step": len(batch.doc_ids),
            "doc_tokens": max(len(ids) for ids in batch.doc_ids), "gradient_checkpointing": checkpointing,
            "seconds_per_step": round(sum(times) / len(times), 2), "load1": round(load, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--skip-generation", action="store_true")
    p.add_argument("--skip-training", action="store_true")
    args = p.parse_args(argv)
    rows = []
    if not args.skip_generation:
        for threads in args.threads:
            rows.append(bench_generation(args.prompts, threads, 8))
            print(json.dumps(rows[-1]), flush=True)
    if not args.skip_training:
        for base, batch in (("minilm", 16), ("smollm2", 8)):
            for checkpointing in (False, True):
                rows.append(bench_training(base, args.steps, batch, checkpointing, args.threads[0]))
                print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
