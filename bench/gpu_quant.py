"""bf16 vs 4-bit NF4 on a Mistral-7B-shaped model (random weights, built from config): GPU memory
and tokens/s for 4,096-token and 512-token batches, through linqrag's own loading and encoding path.

Needs a CUDA GPU with >= 24 GB. Run: ``python bench/gpu_quant.py [--out DIR]``. Also runs a few
GPU-only checks of the embedder (auto picks linq, NF4 on CUDA stays close to bf16).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedder import load_embedder, pick_auto
from embedder.random_models import build_random_mistral

SHAPES = [(4096, 4), (512, 32)]  # (sequence length, batch size): 16,384 tokens a batch either way
REPEATS = 3


def gib(n_bytes: int) -> float:
    return n_bytes / 2**30


def measure(path: Path, quantization: str) -> dict:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    emb = load_embedder(str(path), quantization=quantization, dtype="bf16", max_length=4096)
    load_s = time.perf_counter() - t0
    weights = torch.cuda.memory_allocated() - before
    row = {"mode": "nf4" if quantization == "nf4" else "bf16", "signature": emb.signature,
           "weights_gib": round(gib(weights), 2), "load_s": round(load_s, 1)}
    rng = np.random.default_rng(0)
    for seq_len, batch in SHAPES:
        ids = [[1, *rng.integers(3, 31999, seq_len - 2).tolist(), 2] for _ in range(batch)]
        emb.encode_ids(ids, batch_size=batch)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(REPEATS):
            emb.encode_ids(ids, batch_size=batch)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / REPEATS
        row[f"tok_s_{seq_len}"] = round(batch * seq_len / seconds)
        row[f"peak_gib_{seq_len}"] = round(gib(torch.cuda.max_memory_allocated() - before), 2)
    vectors = emb.encode_ids([[1, *range(100, 400), 2], [1, *range(500, 560), 2]])
    del emb
    gc.collect()
    torch.cuda.empty_cache()
    return row, vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--workdir", type=Path, default=None, help="where the 14 GB random model is written")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure")
        return 0
    device_name = torch.cuda.get_device_name(0)
    print(f"device: {device_name}, torch {torch.__version__}")
    checks = {"auto_pick": pick_auto()}

    work = Path(tempfile.mkdtemp(dir=args.workdir))
    try:
        t0 = time.perf_counter()
        path = build_random_mistral(work / "mistral-7b-random", shape="7b", device="cuda", dtype=torch.bfloat16)
        print(f"built and saved a Mistral-7B-shaped random model in {time.perf_counter() - t0:.0f}s")
        torch.cuda.empty_cache()
        rows, vectors = [], {}
        for quantization in ("none", "nf4"):
            row, vectors[quantization] = measure(path, quantization)
            rows.append(row)
            print(json.dumps(row))
        cos = (vectors["none"] * vectors["nf4"]).sum(axis=1)
        checks["nf4_vs_bf16_cosine_min"] = round(float(cos.min()), 4)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        (f"Mistral-7B-shaped model (32 layers, 4096-d, random weights from MistralConfig) on {device_name}, "
         f"torch {torch.__version__}; batches of 16,384 tokens (4 x 4096 and 32 x 512), mean of {REPEATS} after a "
         "warm-up."),
        "",
        "| mode | weights on GPU (GiB) | peak, 4096-token batch (GiB) | tokens/s @4096 | peak, 512-token batch (GiB) | "
        "tokens/s @512 | load (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['weights_gib']} | {r['peak_gib_4096']} | {r['tok_s_4096']:,} | "
                     f"{r['peak_gib_512']} | {r['tok_s_512']:,} | {r['load_s']} |")
    bf16, nf4 = rows
    lines += ["", (f"ratio nf4/bf16: weights {nf4['weights_gib'] / bf16['weights_gib']:.2f}, "
                   f"tokens/s @4096 {nf4['tok_s_4096'] / bf16['tok_s_4096']:.2f}, @512 "
                   f"{nf4['tok_s_512'] / bf16['tok_s_512']:.2f}"),
              f"checks: {json.dumps(checks)}"]
    report = "\n".join(lines)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_quant.md").write_text(report + "\n")
    (args.out / "gpu_quant.json").write_text(json.dumps({"device": device_name, "rows": rows, "checks": checks},
                                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
