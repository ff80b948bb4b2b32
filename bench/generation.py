"""Local generator paths on the generate stage's own prompts: the transformers path before and now, and llama.cpp.

    python bench/generation.py --threads 1 [--prompts 12] [--new-tokens 96] [--processes 2]

Prompts are built exactly as ``finetune/queries.py`` builds them: SciFact documents (the first
``--prompts`` of ``$LINQRAG_DATA/scifact``, read by ``corpora.load_beir``) as chunks, a task from
a fixed list of three and a template picked per chunk by ``finetune.queries.assign``, then
``finetune.prompts.generation_messages`` (system line, one few-shot turn, task + template +
passage of at most ``passage_chars``). Decoding is the stage's first attempt
(``finetune.queries.attempt_config``: its temperature, top-p and seed, stop at the first ``}``)
with ``--new-tokens`` new tokens at most. ``torch.set_num_threads(--threads)``.

1. current (the stage's path before): ``LocalHFGenerator`` in fp32 with ``model.generate``, batch 8.
2. transformers now: ``LocalHFGenerator`` as the stage makes it (its own decode loop, bf16 where the
   CPU has native bf16, ``generator_batch_size``).
3. llama.cpp, when ``llama_cpp`` imports: ``LlamaCppGenerator`` on the same GGUF as
   ``load_generator`` makes it (``--threads`` single-thread contexts side by side),
   ``generate_batch`` (prompts handed out in token order, so the shared system + few-shot prefix of
   consecutive prompts is reused from each KV cache).

``ratio new/current queries per minute: X`` compares the path the stage takes on this machine
(``linqrag.generation.choose_local_backend``: llama.cpp where installed, transformers otherwise)
with the path before; the other path's ratio is printed beside it. Variants on the llama.cpp side,
same prompts and settings: prefix reuse isolated on one single-thread context (``generate_batch``;
the KV cache cleared before every prompt; prompts in input order), one context with all
``--threads`` threads, and ``--processes`` worker processes of one thread each (each its own
model, prompts split in token order). Each row has how many answers the stage would accept
(``finetune.queries.check_answer``); llama.cpp rows also the prompt tokens evaluated and reused
and the prompt-eval time. The 1-minute load average is printed with each row: the CPU may be shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()

TASKS = (
    ("t0", "Given a scientific claim, retrieve abstracts that support or refute it"),
    ("t1", "Given a question about a biomedical finding, retrieve abstracts that answer it"),
    ("t2", "Given a medical term, retrieve research abstracts that study it"),
)


def stage_prompts(n: int, new_tokens: int, temperature: float | None):
    """``(messages, GenerationConfig)`` as the generate stage builds them for the first ``n`` SciFact documents."""
    from corpora import load_beir
    from finetune.config import DomainConfig
    from finetune.prompts import TEMPLATES, generation_messages
    from finetune.queries import assign, attempt_config
    from finetune.records import Task
    from indexing.records import Chunk

    overrides = {"max_new_tokens": new_tokens} | ({"temperature": temperature} if temperature is not None else {})
    config = DomainConfig(**overrides)
    docs = load_beir(data_dir() / "scifact").corpus[:n]
    chunks = [Chunk(f"c{i:04d}", d.doc_id, d.text, d.title) for i, d in enumerate(docs)]
    tasks = [Task(task_id, instruction) for task_id, instruction in TASKS]
    templates = {t.template_id: t for t in TEMPLATES}
    messages = []
    for chunk in chunks:
        task, template_id = assign(chunk, tasks, config.seed)
        messages.append(generation_messages(chunk.indexed_text, task, templates[template_id], config.passage_chars))
    return messages, attempt_config(config, 0), config


def accepted(answers: list[str]) -> int:
    from finetune.jsonrepair import OutputRejected
    from finetune.queries import check_answer

    ok = 0
    for raw in answers:
        try:
            check_answer(raw)
            ok += 1
        except OutputRejected:
            pass
    return ok


WARMUP = [{"role": "user", "content": "Say hello."}]


def row(what: str, prompts: int, seconds: float, new_tokens: int, answers: list[str], **extra) -> dict:
    return {"what": what, "prompts": prompts, "seconds": round(seconds, 2),
            "queries_per_minute": round(60 * prompts / seconds, 1),
            "new_tokens_per_s": round(new_tokens / seconds, 1), "mean_new_tokens": round(new_tokens / prompts, 1),
            "accepted": f"{accepted(answers)}/{prompts}", **extra, "load1": round(os.getloadavg()[0], 1)}


def show(r: dict) -> None:
    print("  ".join(f"{k}={v}" for k, v in r.items()), flush=True)


# ---- current path: transformers ---------------------------------------------------------------


def bench_transformers(messages, gen_config, threads: int, batch_size: int, dtype: str | None, decoder: str,
                       label: str) -> tuple[dict, list[str]]:
    import torch

    from linqrag.generation.local import LocalHFGenerator

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    gen = LocalHFGenerator("smollm2", dtype=dtype, batch_size=batch_size, decoder=decoder)
    load_s = time.perf_counter() - t0
    gen.generate_batch([WARMUP], gen_config.with_overrides(max_new_tokens=4))
    t0 = time.perf_counter()
    answers = gen.generate_batch(messages, gen_config)
    seconds = time.perf_counter() - t0
    tokens = sum(len(gen.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
    prompt_tokens = sum(len(gen.prompt_ids(m, gen_config.max_new_tokens)) for m in messages)
    return row(f"{label}: transformers {gen.dtype}, {decoder} decoder, batch {batch_size}, {threads} threads",
               len(messages), seconds, tokens, answers, prompt_tokens=prompt_tokens,
               load_s=round(load_s, 1)), answers


# ---- new path: llama.cpp ----------------------------------------------------------------------


class Perf:
    """llama.cpp's own counters (prompt-eval and decode time, summed over the generator's contexts) and
    the generator's reuse stats over a block."""

    def __init__(self, gen) -> None:
        self.gen = gen

    def __enter__(self):
        import llama_cpp

        for llm in self.gen.llms:
            llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        self.before = dict(self.gen.stats)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import llama_cpp

        self.seconds = time.perf_counter() - self.t0
        data = [llama_cpp.llama_perf_context(llm._ctx.ctx) for llm in self.gen.llms]
        stats = {k: self.gen.stats[k] - self.before[k] for k in self.gen.stats}
        self.fields = {"prompt_tokens": stats["prompt_tokens"], "reused_tokens": stats["reused_tokens"],
                       "prompt_eval_tokens": sum(d.n_p_eval for d in data),
                       "prompt_eval_s": round(sum(d.t_p_eval_ms for d in data) / 1000, 2),
                       "decode_s": round(sum(d.t_eval_ms for d in data) / 1000, 2)}
        self.new_tokens = stats["new_tokens"]
        return False


def llama_generator(threads: int, instances: int | None = None):
    from linqrag.generation import load_generator

    t0 = time.perf_counter()
    gen = load_generator("local", backend="llama.cpp", threads=threads, instances=instances)
    load_s = time.perf_counter() - t0
    gen.generate(WARMUP, None)
    return gen, load_s


LABELS = {
    "batch": "generate_batch (token order, prefix reuse)",
    "reset": "KV cache cleared before each prompt (no prefix reuse)",
    "input-order": "one call per prompt in input order (reuse of what neighbours share)",
}


def bench_llama(messages, gen_config, threads: int, instances: int | None, mode: str, label: str = "",
                gen=None) -> tuple[dict, list[str], object]:
    """``mode``: ``batch`` (generate_batch: token order, prefix reuse, all contexts), ``reset`` (one call
    per prompt in token order, caches cleared before each), ``input-order`` (one call per prompt)."""
    load_s = 0.0
    if gen is None:
        gen, load_s = llama_generator(threads, instances)
    gen.generate(WARMUP, gen_config.with_overrides(max_new_tokens=4))
    with Perf(gen) as perf:
        if mode == "batch":
            answers = gen.generate_batch(messages, gen_config)
        elif mode == "reset":
            answers = [""] * len(messages)
            ids = [gen.prompt_ids(m, gen_config.max_new_tokens) for m in messages]
            for i in sorted(range(len(messages)), key=ids.__getitem__):
                gen.clear_cache()
                answers[i] = gen.generate(messages[i], gen_config)
        elif mode == "input-order":
            answers = [gen.generate(m, gen_config) for m in messages]
        else:
            raise ValueError(mode)
    extra = perf.fields | ({"load_s": round(load_s, 1)} if load_s else {})
    what = f"{label}llama.cpp {gen.instances} context(s) x {gen.threads_per_instance} thread(s), {LABELS[mode]}"
    return row(what, len(messages), perf.seconds, perf.new_tokens, answers, **extra), answers, gen


def _worker(share, gen_config, ready, go, results) -> None:
    from linqrag.generation import LlamaCppGenerator

    gen = LlamaCppGenerator("smollm2", n_threads=1)
    gen.generate(WARMUP, gen_config.with_overrides(max_new_tokens=4))
    ready.put(os.getpid())
    go.wait()
    t0 = time.perf_counter()
    answers = gen.generate_batch([m for _, m in share], gen_config)
    results.put(([i for i, _ in share], answers, gen.stats["new_tokens"], time.perf_counter() - t0))


def bench_processes(messages, gen_config, processes: int) -> tuple[dict, list[str]]:
    """``processes`` workers of one llama.cpp thread each; prompts sorted by tokens and split in contiguous runs."""
    from linqrag.generation import LlamaCppGenerator

    probe = LlamaCppGenerator("smollm2", n_threads=1)
    ids = [probe.prompt_ids(m, gen_config.max_new_tokens) for m in messages]
    del probe
    order = sorted(range(len(messages)), key=ids.__getitem__)
    size = -(-len(order) // processes)
    shares = [[(i, messages[i]) for i in order[k:k + size]] for k in range(0, len(order), size)]
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_worker, args=(share, gen_config, ready, go, results)) for share in shares]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=300)
    t0 = time.perf_counter()
    go.set()
    answers = [""] * len(messages)
    tokens = 0
    for _ in workers:
        indices, texts, new_tokens, _seconds = results.get(timeout=1800)
        tokens += new_tokens
        for i, text in zip(indices, texts, strict=False):
            answers[i] = text
    seconds = time.perf_counter() - t0
    for w in workers:
        w.join()
    return row(f"llama.cpp, {len(workers)} processes x 1 thread", len(messages), seconds, tokens, answers), answers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--new-tokens", type=int, default=96, help="max_new_tokens (the stage stops at the first '}')")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None, help="transformers batch (default: the stage's)")
    parser.add_argument("--temperature", type=float, default=None, help="default: the stage's (DomainConfig)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes for that variant (0: skip)")
    parser.add_argument("--parallel", type=int, default=None,
                        help="prompts each llama.cpp context decodes together on the new path (default: "
                             "linqrag.generation.llamacpp.DEFAULT_PARALLEL); the variants stay one at a time")
    parser.add_argument("--no-variants", action="store_true",
                        help="no llama.cpp variants: only the paths and their ratios")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    import importlib.util

    from linqrag.generation import choose_local_backend

    have_llama = importlib.util.find_spec("llama_cpp") is not None
    stage_backend = choose_local_backend("smollm2")[0]
    messages, gen_config, config = stage_prompts(args.prompts, args.new_tokens, args.temperature)
    batch_size = args.batch_size or config.generator_batch_size
    print(f"# {len(messages)} stage prompts (SciFact), max_new_tokens={gen_config.max_new_tokens}, "
          f"temperature={gen_config.temperature}, top_p={gen_config.top_p}, seed={gen_config.seed}, "
          f"stop={list(gen_config.stop)}; {os.cpu_count()} CPUs; the stage's backend here: {stage_backend}"
          + ("" if have_llama else " (llama-cpp-python not installed: no llama.cpp rows)"), flush=True)
    rows = []

    def record(r: dict) -> None:
        show(r)
        rows.append(r)

    current, _ = bench_transformers(messages, gen_config, args.threads, 8, "fp32", "transformers", "current")
    record(current)
    now, _ = bench_transformers(messages, gen_config, args.threads, batch_size, None, "linqrag", "new")
    record(now)
    ratios = {"transformers": now["queries_per_minute"] / current["queries_per_minute"]}
    if have_llama:
        ratios["llama.cpp"] = llama_rows(messages, gen_config, args, record) / current["queries_per_minute"]
    ratio = ratios[stage_backend]
    print(f"ratio new/current queries per minute: {ratio:.2f} ({stage_backend}; "
          + ", ".join(f"{name}: {value:.2f}" for name, value in ratios.items()) + ")")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratio": round(ratio, 2),
                                         "ratios": {k: round(v, 2) for k, v in ratios.items()}}, indent=1) + "\n")
    return 0


def llama_rows(messages, gen_config, args, record) -> float:
    """The llama.cpp path and its variants; returns the path's queries per minute."""
    from linqrag.generation import llamacpp

    llamacpp.DEFAULT_PARALLEL = args.parallel or llamacpp.DEFAULT_PARALLEL
    new, new_answers, gen = bench_llama(messages, gen_config, args.threads, None, "batch",
                                        label=f"llama.cpp: {llamacpp.DEFAULT_PARALLEL} "
                                              "prompts decoded together, ")
    record(new)
    del gen
    llamacpp.DEFAULT_PARALLEL = 1  # the variants below: one prompt at a time
    if not args.no_variants:
        # prefix reuse, isolated: one single-thread context, the same prompts three ways
        one = None
        for mode in ("batch", "reset", "input-order"):
            r, answers, one = bench_llama(messages, gen_config, 1, 1, mode, gen=one)
            same = sum(a == b for a, b in zip(answers, new_answers, strict=False))
            r["same_answers_as_new"] = f"{same}/{len(messages)}"
            record(r)
        del one
        if args.threads > 1:  # one context with all the threads (ggml's threads wait on each other)
            r, _, gen = bench_llama(messages, gen_config, args.threads, 1, "batch")
            record(r)
            del gen
        if args.processes > 1:
            record(bench_processes(messages, gen_config, args.processes)[0])
    return new["queries_per_minute"]


if __name__ == "__main__":
    raise SystemExit(main())
