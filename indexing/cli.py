"""``python -m indexing``: build, search and inspect indexes.

    python -m indexing build --corpus DIR [--embedder auto] [--index-dir .linqrag/index]
    python -m indexing search "query" [--retriever KIND] [-k 10] [--path GLOB ...] [--title TEXT ...]
    python -m indexing stats
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from embedder.spec import BACKEND_CHOICES
from indexing.retrievers import DEFAULT_RETRIEVER, RETRIEVERS, retriever_help
from linqrag.errors import run_parser
from linqrag.settings import chroma_url, index_dir

DEFAULT_INDEX_DIR = index_dir()


def printable(name) -> str:
    """``name`` on one line: a control character (a newline in a file name) is written escaped, as
    ``repr`` would, so it cannot split or forge the line it is printed in; other text is kept as is."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", type=Path, default=DEFAULT_INDEX_DIR,
                        help=f"index directory (default {DEFAULT_INDEX_DIR}, or $LINQRAG_INDEX_DIR)")
    parser.add_argument("--chroma-url", default=chroma_url(), metavar="URL",
                        help="keep the vectors and manifests in this Chroma server (`chroma run --path DIR "
                             "--port N`) instead of the embedded store; --index-dir then only caches chunk "
                             "records and BM25 (default $LINQRAG_CHROMA_URL, else embedded)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")


def cmd_build(args: argparse.Namespace) -> int:
    from corpora import CorpusError, demo_corpus_dir
    from indexing.lock import writer_lock
    from indexing.store import check_index_dir

    if args.corpus != "demo" and not Path(args.corpus).is_dir():
        raise CorpusError(f"corpus {args.corpus} is not a directory")
    check_index_dir(args.index_dir, create=True)
    with writer_lock(args.index_dir, args.wait_lock):  # before the model loads: a busy index stops at once
        return _build(args, demo_corpus_dir() if args.corpus == "demo" else args.corpus)


def _build(args: argparse.Namespace, corpus) -> int:
    from embedder import load_embedder
    from indexing import ChunkConfig, build_index

    embedder = load_embedder(args.embedder, args.adapter, batch_size=args.batch_size, backend=args.backend)
    config = ChunkConfig(args.chunk_size, args.chunk_overlap) if args.chunk_size else None
    report = build_index(corpus, embedder, args.index_dir, name=args.name, chunk_config=config,
                         upsert_batch=args.commit_every, show_progress=not args.no_progress,
                         chroma_url=args.chroma_url, wait_for_lock=args.wait_lock)
    for skipped in report.skipped:
        print(f"skipped {printable(skipped.path)}: {printable(skipped.reason)}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"index {report.index_key}: {report.documents} documents, {report.total} chunks in {args.index_dir} "
          f"({report.seconds:.1f}s)")
    print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from embedder import load_embedder
    from embedder.loading import predict_signature
    from indexing import SearchFilter, open_index

    search_filter = SearchFilter(tuple(args.path or ()), tuple(args.title or ())) or None
    index = open_index(args.index_dir, corpus=args.corpus, chroma_url=args.chroma_url)
    chosen = _which_index_note(args, index)
    embedder = None
    if RETRIEVERS[args.retriever].needs_embedder:
        backend = args.backend or index.manifest.backend
        if args.embedder:  # refuse a mismatched embedder before loading (a GGUF converts for minutes)
            index.check_signature(predict_signature(args.embedder, args.adapter, backend=backend))
        embedder = (load_embedder(args.embedder, args.adapter, backend=backend) if args.embedder
                    else index.manifest.load_embedder(backend=backend))
    result = index.retriever(args.retriever, embedder, instruction=args.instruction).search(
        args.query, args.k, filter=search_filter)
    notes = [*([chosen] if chosen else []), *result.notes]
    if args.json:
        for note in notes:  # stderr, so stdout stays one JSON document
            print(f"note: {note}", file=sys.stderr)
        print(json.dumps([{"rank": h.rank, "score": h.score, "id": h.chunk_id, **h.metadata, "text": h.text}
                          for h in result.hits], indent=1))
        return 0
    for note in notes:
        print(f"note: {note}")
    restricted = f" ({search_filter.describe()})" if search_filter else ""
    print(f"{result.retriever}: {len(result.hits)} hits in {result.seconds * 1000:.1f} ms{restricted}")
    for h in result.hits:
        snippet = " ".join(h.text.split())[:160]
        where = f"{printable(h.metadata.get('doc_id'))} [{h.metadata.get('start')}:{h.metadata.get('end')}]"
        print(f"{h.rank:3d}. {h.score:8.4f}  {where}\n      {snippet}")
    return 0


def _which_index_note(args: argparse.Namespace, index) -> str | None:
    """Which index a search chose, when the directory holds several and ``--corpus`` did not say."""
    from indexing import list_indexes

    if args.corpus:
        return None
    others = sorted({m.corpus for m in list_indexes(args.index_dir, args.chroma_url)} - {index.manifest.corpus})
    if not others:
        return None
    return (f"searching {printable(index.manifest.corpus)!r}, the newest index here; the others: "
            f"{', '.join(repr(printable(o)) for o in others)} (choose with --corpus)")


def cmd_stats(args: argparse.Namespace) -> int:
    from indexing import list_indexes, open_index

    manifests = list_indexes(args.index_dir, args.chroma_url)
    if not manifests:
        print(f"{args.chroma_url or args.index_dir}: no finished index yet")
        return 0
    for m in manifests:
        stats = open_index(args.index_dir, corpus=m.corpus, signature=m.signature, chroma_url=args.chroma_url).stats()
        print(json.dumps(stats, indent=1) if args.json else "\n".join(f"{k:12s} {v}" for k, v in stats.items()) + "\n")
        if not stats["consistent"]:
            print(f"warning: index {stats['key']} has {stats['chunks']} chunks but {stats['vectors']} vectors "
                  "(a build is running, was killed, or two builds wrote at once): run build again", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="index a corpus directory (incremental)",
                           description="Load, chunk and embed a corpus into Chroma and BM25; only new or changed "
                                       "chunks are embedded.")
    build.add_argument("--corpus", required=True, help="a directory of documents, a BEIR folder, or 'demo'")
    build.add_argument("--embedder", default="auto", help="preset, hub id or path (default auto)")
    build.add_argument("--adapter", help="PEFT adapter directory on top of the embedder")
    build.add_argument("--name", help="corpus name (default: the directory's name)")
    build.add_argument("--chunk-size", type=int, help="tokens per chunk (default from the embedder's window)")
    build.add_argument("--chunk-overlap", type=int, default=32)
    build.add_argument("--batch-size", type=int, default=32, help="embedding batch size")
    build.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                       help="how an encoder embedder runs: torch, onnx (fp32, same vectors), onnx-int8 (2.3-2.9x "
                            "faster on 2 CPU cores), openvino-bf16 (about 3x on a CPU with AMX, vectors within "
                            "1e-4) or auto (openvino-bf16 on a CPU with AMX, else onnx-int8, else torch); the "
                            "index records it and queries run the same way")
    build.add_argument("--commit-every", type=int, default=256, help="chunks embedded per durable write to Chroma")
    build.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS",
                       help="when another build is writing this index directory, wait this long for it "
                            "(default 0: stop at once with a message naming it)")
    build.add_argument("--no-progress", action="store_true")
    _common(build)
    build.set_defaults(func=cmd_build)

    search = sub.add_parser(
        "search", help="query an index", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rank chunks for a query.",
        epilog=f"filters (the same restriction on {', '.join(RETRIEVERS)}):\n"
               "  --path docs/                   everything under the folder docs\n"
               "  --path '*.md'                  Markdown files in any folder (* crosses /)\n"
               "  --path a.txt --path b/         a.txt, or anything under b\n"
               "  --title intro                  documents whose title contains 'intro' (any case)\n"
               "  --path docs/ --title 'guide*'  under docs and titled guide...")
    search.add_argument("query")
    search.add_argument("--retriever", choices=list(RETRIEVERS), default=DEFAULT_RETRIEVER,
                        help=f"{retriever_help()} (default {DEFAULT_RETRIEVER})")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--corpus", help="which corpus, when the directory holds several")
    search.add_argument("--embedder", help="query embedder (default: the one the index was built with)")
    search.add_argument("--adapter")
    search.add_argument("--backend", choices=BACKEND_CHOICES,
                        help="how the query embedder runs (default: as the index was built)")
    search.add_argument("--instruction", help="task instruction for the query (decoder embedders)")
    search.add_argument("--path", action="append", metavar="GLOB",
                        help="only chunks of files whose path relative to the corpus folder, or a folder above "
                             "them, matches GLOB ('docs/', '*.md', 'notes/2024-*'); repeat for any of several")
    search.add_argument("--title", action="append", metavar="TEXT",
                        help="only documents whose title contains TEXT, case-insensitive (a glob over the whole "
                             "title when TEXT has * ? [); repeat for any of several; with --path both must hold")
    search.add_argument("--json", action="store_true")
    _common(search)
    search.set_defaults(func=cmd_search)

    stats = sub.add_parser("stats", help="describe the indexes in a directory")
    stats.add_argument("--json", action="store_true")
    _common(stats)
    stats.set_defaults(func=cmd_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv, configure=_logging)


def _logging(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("bm25s", "chromadb", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
