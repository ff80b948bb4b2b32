"""``python -m app``: serve the app (building the demo index first), or just build the demo index.

    python -m app serve [--embedder auto] [--port 8501] [--index-dir .linqrag/index]
    python -m app build-demo [--embedder auto]
    python -m app api [--embedder minilm] [--adapter DIR] [--port 8000]   (OpenAI /v1/embeddings, /search)
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from app import streamlit_command, streamlit_env
from linqrag.errors import run_parser
from linqrag.settings import chroma_url, index_dir


def build_demo(embedder_name: str, directory: Path, chroma_url: str | None = None) -> None:
    """Index the built-in demo corpus; a second run re-embeds nothing."""
    from corpora import DEMO_CORPUS_NAME, demo_corpus_dir
    from embedder import load_embedder
    from indexing import build_index

    embedder = load_embedder(embedder_name)
    print(f"embedder: {embedder.name} on {embedder.device}")
    report = build_index(demo_corpus_dir(), embedder, directory, name=DEMO_CORPUS_NAME, chroma_url=chroma_url)
    print(f"demo index: {report.documents} documents, {report.total} chunks in {directory} ({report.seconds:.1f}s)")
    print(report.summary())


def serve(args: argparse.Namespace) -> int:
    if not args.no_build:
        build_demo(args.embedder, args.index_dir, args.chroma_url)
    env = streamlit_env(args.index_dir, args.chroma_url)
    command = streamlit_command(args.host, args.port)
    print(f"linqrag app: http://{args.host}:{args.port}  (Ctrl+C stops it)", flush=True)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0


def build_demo_command(args: argparse.Namespace) -> int:
    build_demo(args.embedder, args.index_dir, args.chroma_url)
    return 0


def serve_api_command(args: argparse.Namespace) -> int:
    from app.api import ApiState, serve_api

    state = ApiState(args.embedder, args.adapter, args.index_dir, args.chroma_url)
    if args.preload:
        state.embedder()
    return serve_api(state, args.host, args.port)


def _store_args(parser: argparse.ArgumentParser, index_help: str) -> None:
    parser.add_argument("--index-dir", type=Path, default=index_dir(),
                        help=f"{index_help} (default $LINQRAG_INDEX_DIR or .linqrag/index)")
    parser.add_argument("--chroma-url", default=chroma_url(), metavar="URL",
                        help="keep indexes in this Chroma server instead of the embedded store "
                             "(default $LINQRAG_CHROMA_URL)")


def _listen_args(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="The linqrag Streamlit app.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="index the demo corpus (incrementally) and serve the app on loopback")
    p.add_argument("--embedder", default="auto",
                   help="embedder for the demo index (default auto: linq on a GPU, else minilm)")
    _store_args(p, "index directory")
    _listen_args(p, 8501)
    p.add_argument("--no-build", action="store_true", help="serve without (re)building the demo index")
    p.set_defaults(func=serve)
    a = sub.add_parser("api", help="serve the embedder (OpenAI-compatible /v1/embeddings) and the retrievers (/search)",
                       description="HTTP API on loopback: POST /v1/embeddings embeds texts as sent with a preset "
                                   "(+ adapter); POST /search queries an index. Set LINQRAG_API_KEY to require a key.")
    a.add_argument("--embedder", default="minilm",
                   help="preset, hub id or path served at /v1/embeddings (default minilm)")
    a.add_argument("--adapter", help="PEFT adapter directory on top of the embedder")
    _store_args(a, "indexes /search reads")
    _listen_args(a, 8000)
    a.add_argument("--preload", action="store_true", help="load the embedder before listening")
    a.set_defaults(func=serve_api_command)
    b = sub.add_parser("build-demo", help="only index the demo corpus")
    b.add_argument("--embedder", default="auto", help="embedder (default auto)")
    _store_args(b, "index directory")
    b.set_defaults(func=build_demo_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv)
