"""``python -m app``: serve the app (building the demo index first), or just build the demo index.

    python -m app serve [--embedder auto] [--port 8501] [--index-dir .linqrag/index]
    python -m app build-demo [--embedder auto]
    python -m app api [--embedder minilm] [--adapter DIR] [--port 8000]   (OpenAI /v1/embeddings, /search)

Beyond loopback (``--host 0.0.0.0``) both need a secret (``LINQRAG_API_KEY``, ``LINQRAG_APP_PASSWORD``)
or ``--allow-unauthenticated``; see ``app.access``.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
from pathlib import Path

from app import streamlit_command, streamlit_env
from app.access import EXPOSED_ENV, OPEN_ENV, PASSWORD_ENV, check_exposure, is_loopback
from app.api import KEY_ENV
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


#: Seconds the Streamlit child gets to stop after SIGTERM before it is killed.
STOP_GRACE = 10.0


def serve(args: argparse.Namespace) -> int:
    check_exposure(args.host, PASSWORD_ENV, args.allow_unauthenticated, args.port)  # before any model or socket
    if not args.no_build:
        build_demo(args.embedder, args.index_dir, args.chroma_url)
    env = streamlit_env(args.index_dir, args.chroma_url)
    if not is_loopback(args.host):  # the app then asks for the password and restricts folders and keys
        env[EXPOSED_ENV] = "1"
        if args.allow_unauthenticated:
            env[OPEN_ENV] = "1"
    print(f"linqrag app: http://{args.host}:{args.port}  (Ctrl+C stops it)", flush=True)
    return supervise(streamlit_command(args.host, args.port), env)


def supervise(command: list[str], env: dict[str, str]) -> int:
    """Run the Streamlit child until it ends; SIGTERM or SIGHUP sent to us goes to it too, and we
    wait for it, so ``kill`` of ``python -m app serve`` never leaves the app serving."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    before = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return child.wait()
    except KeyboardInterrupt:  # Ctrl+C reached the child too (one process group); it stops on its own
        return 0
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        stop(child)


def stop(child: subprocess.Popen) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def build_demo_command(args: argparse.Namespace) -> int:
    build_demo(args.embedder, args.index_dir, args.chroma_url)
    return 0


def serve_api_command(args: argparse.Namespace) -> int:
    from app.api import ApiState, serve_api
    from app.api_input import Limits

    check_exposure(args.host, KEY_ENV, args.allow_unauthenticated, args.port)  # before any model or socket
    state = ApiState(args.embedder, args.adapter, args.index_dir, args.chroma_url,
                     Limits(args.max_chars, args.max_body_bytes))
    if args.preload:
        state.embedder()
    return serve_api(state, args.host, args.port)


def _store_args(parser: argparse.ArgumentParser, index_help: str) -> None:
    parser.add_argument("--index-dir", type=Path, default=index_dir(),
                        help=f"{index_help} (default $LINQRAG_INDEX_DIR or .linqrag/index)")
    parser.add_argument("--chroma-url", default=chroma_url(), metavar="URL",
                        help="keep indexes in this Chroma server instead of the embedded store "
                             "(default $LINQRAG_CHROMA_URL)")


def _listen_args(parser: argparse.ArgumentParser, port: int, secret_env: str) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help=f"address to serve on (default 127.0.0.1); any other needs ${secret_env}")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    parser.add_argument("--allow-unauthenticated", action="store_true",
                        help=f"serve a non-loopback --host without ${secret_env}: anyone who reaches it gets in")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from app.api_input import Limits

    parser = argparse.ArgumentParser(prog="python -m app", description="The linqrag Streamlit app.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="index the demo corpus (incrementally) and serve the app on loopback")
    p.add_argument("--embedder", default="auto",
                   help="embedder for the demo index (default auto: linq on a GPU, else minilm)")
    _store_args(p, "index directory")
    _listen_args(p, 8501, PASSWORD_ENV)
    p.add_argument("--no-build", action="store_true", help="serve without (re)building the demo index")
    p.set_defaults(func=serve)
    a = sub.add_parser("api", help="serve the embedder (OpenAI-compatible /v1/embeddings) and the retrievers (/search)",
                       description="HTTP API on loopback: POST /v1/embeddings embeds texts as sent with a preset "
                                   "(+ adapter); POST /search queries an index. Set LINQRAG_API_KEY to require a key.")
    a.add_argument("--embedder", default="minilm",
                   help="preset, hub id or path served at /v1/embeddings (default minilm)")
    a.add_argument("--adapter", help="PEFT adapter directory on top of the embedder")
    _store_args(a, "indexes /search reads")
    _listen_args(a, 8000, KEY_ENV)
    a.add_argument("--preload", action="store_true", help="load the embedder before listening")
    limits = Limits.from_env()
    a.add_argument("--max-chars", type=_positive, default=limits.max_chars,
                   help="characters per query, question or embeddings input; longer is refused with 413 "
                        f"(default $LINQRAG_API_MAX_CHARS or {limits.max_chars})")
    a.add_argument("--max-body-bytes", type=_positive, default=limits.max_body_bytes,
                   help=f"bytes per request body; more is refused with 413 (default $LINQRAG_API_MAX_BODY or "
                        f"{limits.max_body_bytes})")
    a.set_defaults(func=serve_api_command)
    b = sub.add_parser("build-demo", help="only index the demo corpus")
    b.add_argument("--embedder", default="auto", help="embedder (default auto)")
    _store_args(b, "index directory")
    b.set_defaults(func=build_demo_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv)
