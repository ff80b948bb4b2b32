"""``python -m embedder``: try an embedder from the command line.

    python -m embedder demo [--embedder minilm]     similarities of a few queries and passages
    python -m embedder encode "some text" ...       vectors' shape, norm and signature
    python -m embedder presets                      the named embedders and their licences
"""

from __future__ import annotations

import argparse
import logging
import sys

from linqrag.errors import run_parser

DEMO_QUERIES = [
    "How does dense retrieval find relevant passages?",
    "What does a LoRA adapter change in a model?",
    "Which city is the capital of France?",
]
DEMO_PASSAGES = [
    "Dense retrieval embeds queries and passages as vectors and ranks passages by cosine similarity.",
    "LoRA adds small trainable low-rank matrices to frozen weight matrices, so fine-tuning touches few parameters.",
    "Paris is the capital and largest city of France.",
    "BM25 scores documents by term frequency and inverse document frequency.",
]


def _embedder_args(parser: argparse.ArgumentParser) -> None:
    from embedder.presets import PRESETS
    from embedder.spec import QUANTIZATION_CHOICES

    parser.add_argument("--embedder", default="auto",
                        help=f"preset (auto, {', '.join(PRESETS)}), hub id or path (default auto)")
    parser.add_argument("--adapter", default=None, help="a PEFT LoRA adapter directory to put on top")
    parser.add_argument("--quantization", default="auto", choices=QUANTIZATION_CHOICES,
                        help="nf4: 4-bit weights (CUDA); auto: the preset's choice on this device (default auto)")


def cmd_demo(args: argparse.Namespace) -> int:
    from embedder import load_embedder

    emb = load_embedder(args.embedder, args.adapter, quantization=args.quantization)
    scores = emb.encode_queries(DEMO_QUERIES) @ emb.encode_documents(DEMO_PASSAGES).T
    print(f"embedder: {emb.signature} (dim {emb.dim})\n")
    for query, row in zip(DEMO_QUERIES, scores, strict=True):
        print(f"Q: {query}")
        for j in row.argsort()[::-1]:
            print(f"   {row[j]:6.3f}  {DEMO_PASSAGES[j]}")
        print()
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from embedder import load_embedder

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    emb = load_embedder(args.embedder, args.adapter, quantization=args.quantization)
    vectors = emb.encode_queries(texts) if args.query else emb.encode_documents(texts)
    if args.out:
        np.save(args.out, vectors)
    print(f"{vectors.shape[0]} x {vectors.shape[1]} float32, norms {np.linalg.norm(vectors, axis=1).round(4).tolist()}")
    print(f"signature: {emb.signature}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from embedder import PRESETS

    for spec in PRESETS.values():
        print(f"{spec.name:11s} {spec.pooling:5s} max_len={spec.max_length:<5d} licence: {spec.licence}")
        print(f"{'':11s} {spec.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m embedder", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="print query/passage similarities")
    _embedder_args(demo)
    demo.set_defaults(func=cmd_demo)
    enc = sub.add_parser("encode", help="encode texts (arguments or stdin lines)")
    _embedder_args(enc)
    enc.add_argument("texts", nargs="*")
    enc.add_argument("--query", action="store_true", help="encode as queries (with the instruction)")
    enc.add_argument("--out", help="save the vectors as .npy")
    enc.set_defaults(func=cmd_encode)
    presets = sub.add_parser("presets", help="list the named embedders")
    presets.set_defaults(func=cmd_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv, configure=_quiet_logging)


def _quiet_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
