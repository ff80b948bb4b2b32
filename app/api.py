"""``python -m app api``: linqrag's embedder and retrievers over HTTP (Starlette + uvicorn).

    POST /v1/embeddings   OpenAI-compatible: {"model": ..., "input": "text" | ["text", ...]}
    GET  /v1/models       the served model
    POST /search          {"query": ..., "retriever": "hybrid", "k": 10, "paths": [...], "titles": [...],
                           "corpus": optional}: hits with the metadata a citation needs
    POST /answer          {"question": ..., "mode": "extractive" | "local" | "openai" | "none", "k": 5, and
                           /search's other fields}: the answer, its mode and its citations
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
    _generators: dict = field(default_factory=dict, init=False, repr=False)
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
        from indexing import open_index

        with self._lock:
            if corpus not in self._indexes:
                index = open_index(self.index_dir, corpus=corpus, chroma_url=self.chroma_url)
                self._indexes[corpus] = (index, index.manifest.load_embedder())
            return self._indexes[corpus]


def error(status: int, message: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def refused():
    return error(401, "missing or wrong API key", "authentication_error")


async def read_json(request):
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def hit_json(hit) -> dict:
    return {"rank": hit.rank, "score": hit.score, "chunk_id": hit.chunk_id, "text": hit.text, **hit.metadata}


def search_params(body: dict, text_field: str, default_k: int):
    """``(retriever, k, filter)`` of a /search or /answer body, or the 400 response saying what is wrong."""
    from indexing import RETRIEVERS, FilterError, SearchFilter

    if not isinstance(body.get(text_field), str) or not body[text_field].strip():
        return error(400, f"give a JSON object with a non-empty \"{text_field}\"")
    retriever = body.get("retriever", "hybrid")
    k = body.get("k", default_k)
    if retriever not in RETRIEVERS:
        return error(400, f"retriever must be one of {', '.join(RETRIEVERS)}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
        return error(400, "k must be an integer from 1 to 1000")
    try:
        search_filter = SearchFilter(tuple(body.get("paths") or ()), tuple(body.get("titles") or ())) or None
    except (FilterError, TypeError) as problem:
        return error(400, f"filter: {problem}")
    return retriever, k, search_filter


class Routes:
    """The endpoints over ``state``; with ``key`` set, every one but /health needs it."""

    def __init__(self, state: ApiState, key: str | None) -> None:
        self.state = state
        self.key = key

    def authorised(self, request) -> bool:
        if not self.key:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.key.encode())

    async def embeddings(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        if not self.authorised(request):
            return refused()
        body = await read_json(request)
        if body is None:
            return error(400, "the body must be a JSON object")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return error(400, "input must be a string or a non-empty list of strings")
        if len(texts) > MAX_INPUTS:
            return error(413, f"at most {MAX_INPUTS} inputs per request")
        emb = self.state.embedder()

        def run():  # tokenised once: the ids are both what is embedded and what usage counts
            ids = emb.tokenize(texts)
            return emb.encode_ids(ids), sum(len(i) for i in ids)

        vectors, tokens = await run_in_threadpool(run)
        return JSONResponse({
            "object": "list", "model": body.get("model") or self.state.model_id,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    async def models(self, request):
        from starlette.responses import JSONResponse

        if not self.authorised(request):
            return refused()
        model = {"id": self.state.model_id, "object": "model", "owned_by": "linqrag"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _read_search(self, request, field: str, default_k: int, needed: str):
        """``(body, (retriever, k, filter))`` of a /search or /answer request, or ``(None, the error response)``."""
        if not self.authorised(request):
            return None, refused()
        body = await read_json(request)
        params = search_params(body, field, default_k) if body is not None else error(400, needed)
        if not isinstance(params, tuple):
            return None, params
        return body, params

    async def search(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        from indexing import IndexStoreError

        body, params = await self._read_search(request, "query", 10, QUERY_NEEDED)
        if body is None:
            return params
        retriever, k, search_filter = params

        def run():
            index, emb = self.state.index(body.get("corpus"))
            return index, index.retriever(retriever, None if retriever == "bm25" else emb).search(
                body["query"], k, filter=search_filter)

        try:
            index, result = await run_in_threadpool(run)
        except IndexStoreError as problem:
            return error(404, str(problem), "not_found")
        return JSONResponse({
            "retriever": result.retriever, "query": result.query, "corpus": index.manifest.corpus,
            "seconds": result.seconds, "notes": result.notes, "hits": [hit_json(h) for h in result.hits],
        })

    async def answer(self, request):
        """An answer to ``question`` from the top ``k`` chunks (``answers.pipeline.answer_question``)."""
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        from answers.pipeline import MODES, RetrievalError, answer_question, needs_embedder
        from indexing import IndexStoreError

        body, params = await self._read_search(request, "question", 5, QUESTION_NEEDED)
        if body is None:
            return params
        retriever, k, search_filter = params
        mode = body.get("mode", "extractive")
        if mode not in MODES:
            return error(400, f"mode must be one of {', '.join(MODES)}")

        def run():
            index, emb = self.state.index(body.get("corpus"))
            return index, answer_question(
                index, body["question"], mode=mode, k=k, filter=search_filter, retriever=retriever,
                embedder=emb if needs_embedder(mode, retriever) else None,
                generator=lambda: self.state.generator(mode))

        try:
            index, answer = await run_in_threadpool(run)
        except IndexStoreError as problem:
            return error(404, str(problem), "not_found")
        except RetrievalError as problem:
            return error(500, f"search failed: {problem}", "server_error")
        return JSONResponse({
            "answer": answer.text, "mode": answer.mode, "generated": answer.generated, "notes": answer.notes,
            "question": body["question"], "corpus": index.manifest.corpus, "retriever": retriever,
            "seconds": answer.retrieval.seconds,
            "citations": [{"number": c.number, "inferred": c.inferred, "spans": [list(s) for s in c.spans],
                           **hit_json(c.hit)} for c in answer.citations],
            "references": [hit_json(h) for h in answer.references],
        })

    async def health(self, request):
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "model": self.state.model_id})


QUERY_NEEDED = 'give a JSON object with a non-empty "query"'
QUESTION_NEEDED = 'give a JSON object with a non-empty "question"'


def make_app(state: ApiState):
    """The Starlette application over ``state`` (tests start it with uvicorn on a free port)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    routes = Routes(state, os.environ.get(KEY_ENV))
    return Starlette(routes=[
        Route("/v1/embeddings", routes.embeddings, methods=["POST"]),
        Route("/embeddings", routes.embeddings, methods=["POST"]),
        Route("/v1/models", routes.models, methods=["GET"]),
        Route("/search", routes.search, methods=["POST"]),
        Route("/answer", routes.answer, methods=["POST"]),
        Route("/health", routes.health, methods=["GET"]),
    ])


def serve_api(state: ApiState, host: str = "127.0.0.1", port: int = 8000) -> int:
    import uvicorn

    print(f"linqrag api: http://{host}:{port}  (POST /v1/embeddings, POST /search, POST /answer; Ctrl+C stops it)",
          flush=True)
    uvicorn.run(make_app(state), host=host, port=port, log_level="warning")
    return 0
