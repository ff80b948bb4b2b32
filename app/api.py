"""``python -m app api``: linqrag's embedder and retrievers over HTTP (Starlette + uvicorn).

    POST /v1/embeddings   OpenAI-compatible: {"model": ..., "input": "text" | ["text", ...]}
    GET  /v1/models       the served model
    POST /search          {"query": ..., "retriever": "hybrid", "k": 10, "paths": [...], "titles": [...],
                           "corpus": optional}: hits with the metadata a citation needs (the
                           retriever kinds: indexing.RETRIEVERS)
    POST /answer          {"question": ..., "mode": "extractive", "k": 5, and /search's other fields}:
                           the answer, its mode and its citations (the modes: answers.ANSWER_MODES)
    GET  /health

``/v1/embeddings`` embeds the texts exactly as sent (no instruction added: OpenAI clients, and our
``openai:`` remote embedder, format on their side), tokenised, truncated and EOS-terminated as
the preset says, so any OpenAI client (llama-index, LangChain, ``openai``) gets the vectors of a
preset + adapter; ``encoding_format`` ``base64`` sends float32 little-endian bytes, ``dimensions``
keeps the first N coordinates and normalises them again (what OpenAI does for its text-embedding-3
models; a model not trained for it loses more). ``/search`` answers from the index in ``--index-dir``
(or ``--chroma-url``) with the embedder it was built with, and moves to a newer build of it within
:data:`REFRESH_SECONDS` (a request finishes on the build it started on). With ``LINQRAG_API_KEY``
set, every call but ``/health`` needs ``Authorization: Bearer <key>``; without one it binds only
loopback unless ``--allow-unauthenticated`` says otherwise (``app.access``). Bodies are checked
before any work (``app.api_input``): a client's mistake is a 4xx with a one-line JSON error, never a 500.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.api_input import (
    MAX_HEADER_BYTES,
    EmbeddingsRequest,
    Limits,
    Refused,
    SearchRequest,
    embeddings_request,
    parse_object,
    read_body,
    search_request,
)

log = logging.getLogger(__name__)

KEY_ENV = "LINQRAG_API_KEY"
#: Seconds between two looks for a newer build of a served index (a glob and a few ``stat`` calls).
REFRESH_SECONDS = 1.0


@dataclass
class Served:
    """One corpus's opened index and query embedder, and when a newer build was last looked for."""

    index: object
    embedder: object
    published: tuple  #: ``indexing.published_state`` when this build was opened or last checked
    checked: float = field(default_factory=time.monotonic)

    @property
    def build(self) -> tuple:
        return self.index.manifest.signature, self.index.manifest.built_at


@dataclass
class ApiState:
    """What the server holds: the served embedder, loaded once, and the opened indexes, each moved
    to a newer build between requests."""

    embedder_name: str
    adapter: str | None
    index_dir: Path
    chroma_url: str | None = None
    limits: Limits = field(default_factory=Limits)
    _embedder: object = field(default=None, init=False, repr=False)
    _indexes: dict = field(default_factory=dict, init=False, repr=False)
    _generators: dict = field(default_factory=dict, init=False, repr=False)
    _refreshing: set = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def model_id(self) -> str:
        return self.embedder_name + (f"+{Path(self.adapter).name}" if self.adapter else "")

    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from embedder import load_embedder

                self._embedder = load_embedder(self.embedder_name, self.adapter)
            return self._embedder

    def generator(self, kind: str):
        """The ``local`` or ``openai`` generator (``load_generator`` defaults), loaded once per kind."""
        with self._lock:
            if kind not in self._generators:
                from linqrag.generation import load_generator

                self._generators[kind] = load_generator(kind)
            return self._generators[kind]

    def index(self, corpus: str | None):
        """``(index, query embedder)`` for ``corpus``: the request keeps this pair to its end, so a
        newer build found meanwhile serves the next requests, never half of this one."""
        with self._lock:
            served = self._indexes.get(corpus)
            if served is None:
                served = self._indexes[corpus] = self._open(corpus)
            elif time.monotonic() - served.checked >= REFRESH_SECONDS and corpus not in self._refreshing:
                served.checked = time.monotonic()
                self._refreshing.add(corpus)
                threading.Thread(target=self._refresh, args=(corpus, served), daemon=True).start()
            return served.index, served.embedder

    def _open(self, corpus: str | None, fresh: bool = False, reuse: Served | None = None) -> Served:
        from indexing import open_index, published_state

        published = published_state(self.index_dir, self.chroma_url)
        index = open_index(self.index_dir, corpus=corpus, chroma_url=self.chroma_url, fresh_store=fresh)
        same_embedder = reuse is not None and reuse.index.manifest.signature == index.manifest.signature
        embedder = reuse.embedder if same_embedder else index.manifest.load_embedder()
        return Served(index, embedder, published)

    def _refresh(self, corpus: str | None, served: Served) -> None:
        """Open a newer build of ``corpus`` if one was published, warm it up, then swap it in (in a
        thread of its own: no request waits for it). A build that cannot be opened yet (another
        build is writing) leaves the served one in place until the next look."""
        from indexing import published_state

        try:
            if published_state(self.index_dir, self.chroma_url) == served.published:
                return
            newer = self._open(corpus, fresh=True, reuse=served)
            if newer.build != served.build:
                newer.index.warm_up(newer.embedder)
                log.warning("serving the build of %s from %s", newer.index.manifest.corpus,
                            time.strftime("%H:%M:%S", time.localtime(newer.index.manifest.built_at)))
            with self._lock:
                self._indexes[corpus] = newer if newer.build != served.build else Served(
                    served.index, served.embedder, newer.published)
        except Exception:  # noqa: BLE001 (the served build stays; logged, tried again in a second)
            log.warning("could not open the newer build of %s; still serving the one before", corpus, exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(corpus)


def error(status: int, message: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def refused(problem: Refused):
    return error(problem.status, str(problem), problem.kind)


def unauthorised() -> Refused:
    return Refused(401, "missing or wrong API key (send Authorization: Bearer KEY)", "authentication_error")


def hit_json(hit) -> dict:
    return {"rank": hit.rank, "score": hit.score, "chunk_id": hit.chunk_id, "text": hit.text, **hit.metadata}


def index_failure(problem: Exception):
    """The response for an index that cannot serve: 503 for a permission fault (the same message
    every time: nothing the client sends changes it), 404 for a missing index."""
    from indexing import IndexPermissionError

    cause = problem if isinstance(problem, IndexPermissionError) else problem.__cause__
    if isinstance(cause, IndexPermissionError):
        return error(503, str(cause), "index_unavailable")
    return None


def embedding_json(vector, encoding_format: str, dimensions: int | None):
    """One vector as OpenAI sends it: a list of floats, or base64 of its float32 little-endian bytes;
    cut to ``dimensions`` and normalised again when asked."""
    import numpy as np

    vector = np.asarray(vector, dtype=np.float32)
    if dimensions is not None and dimensions < vector.shape[0]:
        vector = vector[:dimensions]
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


class Routes:
    """The endpoints over ``state``; with ``key`` set, every one but /health needs it."""

    def __init__(self, state: ApiState, key: str | None) -> None:
        self.state = state
        self.key = key

    def authorised(self, request) -> bool:
        """``Authorization: Bearer KEY``, the scheme in any case (RFC 9110); a bare key is refused."""
        if not self.key:
            return True
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self.key.encode())

    async def body(self, request) -> dict:
        """The request's checked JSON object, after its key: a stranger's body is not even read."""
        if not self.authorised(request):
            raise unauthorised()
        return parse_object(await read_body(request, self.state.limits))

    async def embeddings(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        from indexing.retrievers import window_text

        try:
            asked: EmbeddingsRequest = embeddings_request(await self.body(request), self.state.limits)
        except Refused as problem:
            return refused(problem)
        emb = self.state.embedder()
        if asked.dimensions is not None and asked.dimensions > emb.dim:
            return error(400, f'"dimensions" must be at most {emb.dim}, the size of this model\'s vectors')

        def run():  # tokenised once: the ids are both what is embedded and what usage counts
            ids = emb.tokenize([window_text(emb, t) for t in asked.texts])
            return emb.encode_ids(ids), sum(len(i) for i in ids)

        vectors, tokens = await run_in_threadpool(run)
        return JSONResponse({
            "object": "list", "model": asked.model or self.state.model_id,
            "data": [{"object": "embedding", "index": i,
                      "embedding": embedding_json(v, asked.encoding_format, asked.dimensions)}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    async def models(self, request):
        from starlette.responses import JSONResponse

        if not self.authorised(request):
            return refused(unauthorised())
        model = {"id": self.state.model_id, "object": "model", "owned_by": "linqrag"}
        return JSONResponse({"object": "list", "data": [model]})

    async def search(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        from indexing import IndexStoreError

        try:
            asked: SearchRequest = search_request(await self.body(request), self.state.limits)
        except Refused as problem:
            return refused(problem)

        def run():
            index, emb = self.state.index(asked.corpus)
            return index, index.retriever(asked.retriever, emb).search(asked.text, asked.k, filter=asked.search_filter)

        try:
            index, result = await run_in_threadpool(run)
        except IndexStoreError as problem:
            return index_failure(problem) or error(404, str(problem), "not_found")
        return JSONResponse({
            "retriever": result.retriever, "query": result.query, "corpus": index.manifest.corpus,
            "seconds": result.seconds, "notes": result.notes, "hits": [hit_json(h) for h in result.hits],
        })

    async def answer(self, request):
        """An answer to ``question`` from the top ``k`` chunks (``answers.pipeline.answer_question``)."""
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        from answers.pipeline import RetrievalError, answer_question, needs_embedder
        from indexing import IndexStoreError

        try:
            asked: SearchRequest = search_request(await self.body(request), self.state.limits, answering=True)
        except Refused as problem:
            return refused(problem)

        def run():
            index, emb = self.state.index(asked.corpus)
            return index, answer_question(
                index, asked.text, mode=asked.mode, k=asked.k, filter=asked.search_filter, retriever=asked.retriever,
                embedder=emb if needs_embedder(asked.mode, asked.retriever) else None,
                generator=lambda: self.state.generator(asked.mode))

        try:
            index, answer = await run_in_threadpool(run)
        except IndexStoreError as problem:
            return index_failure(problem) or error(404, str(problem), "not_found")
        except RetrievalError as problem:
            return index_failure(problem) or error(500, f"search failed: {problem}", "server_error")
        return JSONResponse({
            "answer": answer.text, "mode": answer.mode, "generated": answer.generated, "notes": answer.notes,
            "question": asked.text, "corpus": index.manifest.corpus, "retriever": asked.retriever,
            "seconds": answer.retrieval.seconds,
            "citations": [{"number": c.number, "inferred": c.inferred, "spans": [list(s) for s in c.spans],
                           **hit_json(c.hit)} for c in answer.citations],
            "references": [hit_json(h) for h in answer.references],
        })

    async def health(self, request):
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "model": self.state.model_id})


async def http_error(request, problem):
    """Starlette's own refusals (no such route, wrong method) in the API's JSON shape."""
    return error(problem.status_code, str(problem.detail), "invalid_request_error")


async def server_error(request, problem):
    log.error("internal error on %s", request.url.path, exc_info=problem)
    return error(500, f"internal error ({problem.__class__.__name__}); see the server's log", "server_error")


def make_app(state: ApiState):
    """The Starlette application over ``state`` (tests start it with uvicorn on a free port)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    routes = Routes(state, os.environ.get(KEY_ENV))
    return Starlette(routes=[
        Route("/v1/embeddings", routes.embeddings, methods=["POST"]),
        Route("/embeddings", routes.embeddings, methods=["POST"]),
        Route("/v1/models", routes.models, methods=["GET"]),
        Route("/search", routes.search, methods=["POST"]),
        Route("/answer", routes.answer, methods=["POST"]),
        Route("/health", routes.health, methods=["GET"]),
    ], exception_handlers={HTTPException: http_error, Exception: server_error})


def serve_api(state: ApiState, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve with h11 (not httptools, which reads a header of any size whole) and a cap on the
    request line and headers (:data:`~app.api_input.MAX_HEADER_BYTES`)."""
    import uvicorn

    print(f"linqrag api: http://{host}:{port}  (POST /v1/embeddings, POST /search, POST /answer; Ctrl+C stops it)",
          flush=True)
    uvicorn.run(make_app(state), host=host, port=port, log_level="warning", http="h11",
                h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    return 0
