"""``python -m app api``: linqrag's embedder and retrievers over HTTP (Starlette + uvicorn).

    POST /v1/embeddings   OpenAI-compatible: {"model": ..., "input": "text" | ["text", ...]}
    GET  /v1/models       the served model
    POST /search          {"query": ..., "retriever": "hybrid", "k": 10, "paths": [...], "titles": [...],
                           "corpus": optional}: hits with the metadata a citation needs
    GET  /health

``/v1/embeddings`` embeds the texts exactly as sent (no instruction added: OpenAI clients, and our
``openai:`` remote embedder, format on their side), tokenised, truncated and EOS-terminated as
the preset says, so any OpenAI client (llama-index, LangChain, ``openai``) gets the vectors of a
preset + adapter. ``/search`` answers from the index in ``--index-dir`` (or ``--chroma-url``) with
the embedder it was built with. With ``LINQRAG_API_KEY`` set, every call but ``/health`` needs
``Authorization: Bearer <key>``. It binds loopback unless told otherwise.
"""

from __future__ import annotations

import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

KEY_ENV = "LINQRAG_API_KEY"
#: Texts per /v1/embeddings request (a bigger request is refused, not queued).
MAX_INPUTS = 2048


@dataclass
class ApiState:
    """What the server holds: the served embedder, loaded once, and the opened indexes."""

    embedder_name: str
    adapter: str | None
    index_dir: Path
    chroma_url: str | None = None
    _embedder: object = field(default=None, init=False, repr=False)
    _indexes: dict = field(default_factory=dict, init=False, repr=False)
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

    def index(self, corpus: str | None):
        from indexing import open_index

        with self._lock:
            if corpus not in self._indexes:
                index = open_index(self.index_dir, corpus=corpus, chroma_url=self.chroma_url)
                self._indexes[corpus] = (index, index.manifest.load_embedder())
            return self._indexes[corpus]


def error(status: int, message: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def make_app(state: ApiState):
    """The Starlette application over ``state`` (tests start it with uvicorn on a free port)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    key = os.environ.get(KEY_ENV)

    def authorised(request: Request) -> bool:
        if not key:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), key.encode())

    async def read_json(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def embeddings(request: Request):
        if not authorised(request):
            return error(401, "missing or wrong API key", "authentication_error")
        body = await read_json(request)
        if body is None:
            return error(400, "the body must be a JSON object")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return error(400, "input must be a string or a non-empty list of strings")
        if len(texts) > MAX_INPUTS:
            return error(413, f"at most {MAX_INPUTS} inputs per request")
        emb = state.embedder()

        def run():  # tokenised once: the ids are both what is embedded and what usage counts
            ids = emb.tokenize(texts)
            return emb.encode_ids(ids), sum(len(i) for i in ids)

        vectors, tokens = await run_in_threadpool(run)
        return JSONResponse({
            "object": "list", "model": body.get("model") or state.model_id,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    async def models(request: Request):
        if not authorised(request):
            return error(401, "missing or wrong API key", "authentication_error")
        return JSONResponse({"object": "list", "data": [{"id": state.model_id, "object": "model", "owned_by": "linqrag"}]})

    async def search(request: Request):
        from indexing import RETRIEVERS, FilterError, IndexStoreError, SearchFilter

        if not authorised(request):
            return error(401, "missing or wrong API key", "authentication_error")
        body = await read_json(request)
        if body is None or not isinstance(body.get("query"), str) or not body["query"].strip():
            return error(400, "give a JSON object with a non-empty \"query\"")
        retriever = body.get("retriever", "hybrid")
        k = body.get("k", 10)
        if retriever not in RETRIEVERS:
            return error(400, f"retriever must be one of {', '.join(RETRIEVERS)}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
            return error(400, "k must be an integer from 1 to 1000")
        try:
            search_filter = SearchFilter(tuple(body.get("paths") or ()), tuple(body.get("titles") or ())) or None
        except (FilterError, TypeError) as problem:
            return error(400, f"filter: {problem}")

        def run():
            index, emb = state.index(body.get("corpus"))
            return index, index.retriever(retriever, None if retriever == "bm25" else emb).search(
                body["query"], k, filter=search_filter)

        try:
            index, result = await run_in_threadpool(run)
        except IndexStoreError as problem:
            return error(404, str(problem), "not_found")
        return JSONResponse({
            "retriever": result.retriever, "query": result.query, "corpus": index.manifest.corpus,
            "seconds": result.seconds, "notes": result.notes,
            "hits": [{"rank": h.rank, "score": h.score, "chunk_id": h.chunk_id, "text": h.text, **h.metadata}
                     for h in result.hits],
        })

    async def health(request: Request):
        return JSONResponse({"status": "ok", "model": state.model_id})

    return Starlette(routes=[
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/search", search, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ])


def serve_api(state: ApiState, host: str = "127.0.0.1", port: int = 8000) -> int:
    import uvicorn

    print(f"linqrag api: http://{host}:{port}  (POST /v1/embeddings, POST /search; Ctrl+C stops it)", flush=True)
    uvicorn.run(make_app(state), host=host, port=port, log_level="warning")
    return 0
