"""Generators: the packaged SmolLM2 really generates (transformers, and llama.cpp where
llama-cpp-python is installed); the OpenAI-compatible client does a real HTTP round trip against a
small chat-completions server started here (JSON and SSE)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

import linqrag.generation.llamacpp
from linqrag.generation import (
    GenerationConfig,
    GenerationError,
    Generator,
    GeneratorUnavailable,
    LocalHFGenerator,
    OpenAICompatibleGenerator,
    choose_local_backend,
    cut_at_stop,
    cut_stream_at_stop,
    llama_cpp_available,
    llama_cpp_runs,
    load_generator,
    parse_sse_chunks,
    resolve_gguf,
)

SHORT = GenerationConfig(max_new_tokens=12)
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Write one sentence about bees and honey in a hive."}],
]


@pytest.fixture(scope="module")
def smol() -> LocalHFGenerator:
    return load_generator("local", batch_size=4, backend="transformers")


def llama_cpp_skip_reason() -> str | None:
    if not llama_cpp_available():
        return "llama-cpp-python is not installed (optional: `make llama-cpp`)"
    ok, why = llama_cpp_runs(str(resolve_gguf("smollm2")[0]))
    return None if ok else f"the installed llama.cpp fails on this CPU ({why}): FORCE=1 make llama-cpp"


LLAMA_SKIP = llama_cpp_skip_reason()
needs_llama_cpp = pytest.mark.skipif(LLAMA_SKIP is not None, reason=LLAMA_SKIP or "")


def test_llama_cpp_probe_survives_a_model_it_cannot_run(tmp_path):
    if not llama_cpp_available():
        pytest.skip("llama-cpp-python is not installed (optional: `make llama-cpp`)")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF not really a model")
    ok, why = llama_cpp_runs(str(bad))
    assert not ok and why  # the child failed and said so; this process is alive


def test_auto_backend_falls_back_when_the_probe_fails(monkeypatch):
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_available", lambda: True)
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_runs", lambda gguf: (False, "killed by signal 4"))
    monkeypatch.delenv("LINQRAG_GENERATOR_BACKEND", raising=False)
    monkeypatch.setenv("LINQRAG_GENERATOR_DTYPE", "fp32")  # a CPU without native bf16, where auto probes
    chosen, why = choose_local_backend("smollm2")
    assert chosen == "transformers" and "signal 4" in why
    with pytest.raises(GeneratorUnavailable, match="probe"):
        choose_local_backend("smollm2", "llama.cpp")


@pytest.fixture(scope="module")
def llama():
    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    return load_generator("local", threads=2, backend="llama.cpp")  # two single-thread contexts


# ---- local ----------------------------------------------------------------------------------


def test_local_smollm2_generates_text(smol):
    assert isinstance(smol, Generator)
    assert smol.name == "local:smollm2"
    answer = smol.generate(CHATS[0], SHORT)
    assert isinstance(answer, str) and answer.strip()
    assert "Paris" in answer  # greedy SmolLM2 knows this one
    assert len(smol.tokenizer(answer, add_special_tokens=False)["input_ids"]) <= SHORT.max_new_tokens


def test_stream_pieces_join_to_greedy_generation(smol):
    pieces = list(smol.stream(CHATS[2], SHORT))
    assert len(pieces) > 1
    assert "".join(pieces) == smol.generate(CHATS[2], SHORT)


def test_batch_equals_single_greedy(smol):
    singles = [smol.generate(chat, SHORT) for chat in CHATS]
    assert smol.generate_batch(CHATS, SHORT) == singles


def test_stop_strings_cut_generation_and_stream_alike(smol):
    config = GenerationConfig(max_new_tokens=24, stop=(" is",))
    answer = smol.generate(CHATS[0], config)
    assert answer == "The capital of France"
    assert "".join(smol.stream(CHATS[0], config)) == answer


def test_cut_stream_matches_cut_text():
    text = "alpha beta}gamma}"
    for size in (1, 2, 3, 5):
        pieces = iter([text[i:i + size] for i in range(0, len(text), size)])
        assert "".join(cut_stream_at_stop(pieces, ("}", "a}"))) == cut_at_stop(text, ("}", "a}")) == "alpha bet"
    assert "".join(cut_stream_at_stop(iter(["no stop", " here"]), ("XYZ",))) == "no stop here"


def test_seeded_sampling_repeats(smol):
    config = GenerationConfig(max_new_tokens=10, temperature=0.9, top_p=0.95, seed=7)
    assert smol.generate(CHATS[2], config) == smol.generate(CHATS[2], config)


def test_stopping_a_stream_early_releases_the_model(smol):
    stream = smol.stream(CHATS[2], GenerationConfig(max_new_tokens=64))
    next(stream)
    stream.close()  # the worker thread sees the cancel flag and the lock is free again
    assert smol.generate(CHATS[0], SHORT)


def test_prompt_uses_chat_template(smol):
    text = smol.prompt_text(CHATS[1])
    assert "Answer in one word." in text and text.rstrip().endswith("assistant")


def test_missing_models_raise_generator_unavailable(tmp_path):
    with pytest.raises(GeneratorUnavailable, match="not on this machine"):
        LocalHFGenerator("no-such-org/no-such-model-xyz")
    with pytest.raises(GeneratorUnavailable, match="config.json"):
        LocalHFGenerator(str(tmp_path))
    with pytest.raises(GeneratorUnavailable, match="does not exist"):
        LocalHFGenerator("./no/such/dir")


def test_bad_messages_are_rejected_clearly(smol):
    with pytest.raises(ValueError, match="empty"):
        smol.generate([], SHORT)
    with pytest.raises(ValueError, match="role"):
        smol.generate([{"text": "hi"}], SHORT)


def test_config_validation():
    with pytest.raises(ValueError):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ValueError):
        GenerationConfig(top_p=0)
    assert GenerationConfig().greedy and not GenerationConfig(temperature=0.5).greedy


# ---- local, llama.cpp ------------------------------------------------------------------------


@needs_llama_cpp
def test_auto_picks_llama_cpp_for_the_packaged_gguf_without_native_bf16(llama, monkeypatch):
    assert isinstance(llama, Generator)
    assert llama.backend == "llama.cpp" and llama.name == "local:smollm2:llama.cpp"
    assert llama.instances == 2 and llama.threads_per_instance == 1
    monkeypatch.delenv("LINQRAG_GENERATOR_BACKEND", raising=False)
    monkeypatch.setenv("LINQRAG_GENERATOR_DTYPE", "fp32")
    assert choose_local_backend("smollm2") == ("llama.cpp", "SmolLM2 GGUF")
    assert choose_local_backend("HuggingFaceTB/SmolLM2-135M-Instruct")[0] == "transformers"  # not a GGUF


@needs_llama_cpp
def test_llama_cpp_generates_text_within_max_new_tokens(llama):
    before = llama.stats["new_tokens"]
    answer = llama.generate(CHATS[2], GenerationConfig(max_new_tokens=5))
    assert isinstance(answer, str) and answer.strip()
    assert llama.stats["new_tokens"] - before == 5  # a sentence about bees takes more than 5 tokens
    assert llama.count_tokens(answer) <= 6


@needs_llama_cpp
def test_llama_cpp_sees_the_same_prompt_as_transformers(llama, smol):
    for chat in CHATS:
        assert llama.prompt_text(chat) == smol.prompt_text(chat)
        assert llama.prompt_ids(chat, 16) == smol.prompt_ids(chat, 16)


@needs_llama_cpp
def test_llama_cpp_stop_strings_cut_generation_and_stream_alike(llama):
    free = llama.generate(CHATS[2], GenerationConfig(max_new_tokens=16))
    words = free.split()
    assert len(words) >= 4
    stop = " " + words[2]
    expected = free[: free.index(stop)]
    config = GenerationConfig(max_new_tokens=16, stop=(stop,))
    assert llama.generate(CHATS[2], config) == expected
    assert "".join(llama.stream(CHATS[2], config)) == expected


@needs_llama_cpp
def test_llama_cpp_seeded_sampling_repeats_and_batch_equals_single(llama):
    sampled = GenerationConfig(max_new_tokens=10, temperature=0.9, top_p=0.95, seed=7)
    assert llama.generate(CHATS[2], sampled) == llama.generate(CHATS[2], sampled)
    greedy = GenerationConfig(max_new_tokens=10)
    singles = [llama.generate(chat, greedy) for chat in CHATS]
    assert llama.generate_batch(CHATS, greedy) == singles  # two contexts, token order, input order back
    assert "".join(llama.stream(CHATS[1], greedy)) == singles[1]


@needs_llama_cpp
def test_llama_cpp_reuses_the_shared_prompt_prefix(llama):
    shared = [{"role": "system", "content": "You write short answers about nature. " * 8}]
    chats = [shared + [{"role": "user", "content": f"Name a {thing}."}] for thing in ("tree", "bird", "fish")]
    llama.clear_cache()
    before = dict(llama.stats)
    llama.generate_batch(chats, GenerationConfig(max_new_tokens=3))
    prefix = len(llama.prompt_ids(shared, 3)) - 3  # the system turn, without the opened assistant turn
    # two contexts: the first prompt on each is evaluated in full, the third reuses the system turn
    assert llama.stats["reused_tokens"] - before["reused_tokens"] >= prefix


@needs_llama_cpp
def test_llama_cpp_stopping_a_stream_early_frees_the_context(llama):
    stream = llama.stream(CHATS[2], GenerationConfig(max_new_tokens=64))
    next(stream)
    stream.close()
    assert sorted(llama._free) == list(range(llama.instances))
    assert llama.generate(CHATS[0], SHORT)


def test_auto_prefers_bf16_transformers_over_llama_cpp_where_bf16_is_native(monkeypatch):
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_available", lambda: True)
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_runs", lambda path: (True, ""))
    monkeypatch.delenv("LINQRAG_GENERATOR_BACKEND", raising=False)
    monkeypatch.setenv("LINQRAG_GENERATOR_DTYPE", "bf16")
    chosen, why = choose_local_backend("smollm2")
    assert chosen == "transformers" and "bf16" in why
    assert choose_local_backend("smollm2", "llama.cpp") == ("llama.cpp", "SmolLM2 GGUF")  # asked for by name
    monkeypatch.setenv("LINQRAG_GENERATOR_DTYPE", "fp32")
    assert choose_local_backend("smollm2") == ("llama.cpp", "SmolLM2 GGUF")


def test_without_llama_cpp_load_generator_falls_back_to_transformers(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_available", lambda: False)
    monkeypatch.delenv("LINQRAG_GENERATOR_BACKEND", raising=False)
    assert choose_local_backend("smollm2") == ("transformers", "llama-cpp-python not installed")
    with pytest.raises(GeneratorUnavailable, match="not installed"):
        choose_local_backend("smollm2", "llama.cpp")
    with caplog.at_level(logging.INFO, logger="linqrag.generation.loader"):
        gen = load_generator("local", batch_size=2)
    assert isinstance(gen, LocalHFGenerator) and gen.backend == "transformers" and gen.name == "local:smollm2"
    assert "generator: transformers (llama-cpp-python not installed)" in caplog.text
    assert gen.generate(CHATS[0], SHORT).strip()

    # the stage's cache keeps the old name on the transformers path (old caches still hit) ...
    from types import SimpleNamespace

    from finetune.llm import open_generator

    config = SimpleNamespace(generator="local", generator_model=None, generator_batch_size=8, base_url=None,
                             api_key_env=None)
    cached = open_generator(config, tmp_path / "cache.jsonl")
    assert cached.name == "local:smollm2"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="linqrag.generation.loader"):
        assert cached.generator.backend == "transformers"  # the stage logs auto's reason, not "asked for"
    assert "generator: transformers (llama-cpp-python not installed)" in caplog.text
    # ... and names llama.cpp's answers apart, their sampling being another
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_available", lambda: True)
    monkeypatch.setattr(linqrag.generation.llamacpp, "llama_cpp_runs", lambda gguf: (True, "ran"))
    monkeypatch.setenv("LINQRAG_GENERATOR_DTYPE", "fp32")  # without native bf16 auto takes llama.cpp
    assert open_generator(config, tmp_path / "cache.jsonl").name == "local:smollm2:llama.cpp"
    monkeypatch.setenv("LINQRAG_GENERATOR_BACKEND", "transformers")
    assert open_generator(config, tmp_path / "cache.jsonl").name == "local:smollm2"
    with pytest.raises(ValueError, match="backend"):
        choose_local_backend("smollm2", "vllm")


# ---- OpenAI-compatible over real HTTP -------------------------------------------------------

KEY = "sk-test-not-a-real-key"


class ChatHandler(BaseHTTPRequestHandler):
    """Speaks just enough of the chat-completions API: JSON answers, SSE streams, auth, errors."""

    requests: ClassVar[list[dict]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions":
            return self._send_json(404, {"error": {"message": "no such route"}})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._send_json(401, {"error": {"message": "bad key"}})
        if body["model"] == "broken":
            return self._send_json(500, {"error": {"message": "model crashed"}})
        last = body["messages"][-1]["content"]
        words = ["echo:", *last.split()][: body.get("max_tokens", 100)]
        if not body.get("stream"):
            text = " ".join(words)
            return self._send_json(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            })
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        first = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
        self.wfile.write(b": keep-alive\n\n")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            event = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture(scope="module")
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def keyed(monkeypatch):
    monkeypatch.setenv("LINQRAG_TEST_KEY", KEY)
    return "LINQRAG_TEST_KEY"


def test_openai_generate_round_trip(chat_server, keyed):
    gen = load_generator("openai", model="tiny", base_url=chat_server, api_key_env=keyed)
    assert isinstance(gen, Generator)
    ChatHandler.requests.clear()
    out = gen.generate([{"role": "user", "content": "hello there world"}], GenerationConfig(max_new_tokens=50, seed=3))
    assert out == "echo: hello there world"
    sent = ChatHandler.requests[-1]
    assert sent["body"]["max_tokens"] == 50 and sent["body"]["seed"] == 3 and sent["body"]["stream"] is False
    # a server that ignores "stop" still gives an answer cut before it
    stopped = gen.generate([{"role": "user", "content": "a b STOP c"}], GenerationConfig(stop=(" STOP",)))
    assert stopped == "echo: a b" and ChatHandler.requests[-1]["body"]["stop"] == [" STOP"]
    assert KEY not in repr(gen) and KEY not in gen.name


def test_openai_stream_joins_to_generate(chat_server, keyed):
    gen = OpenAICompatibleGenerator(chat_server, "tiny", api_key_env=keyed)
    chat = [{"role": "user", "content": "one two three four"}]
    pieces = list(gen.stream(chat))
    assert pieces == ["echo:", " one", " two", " three", " four"]
    assert "".join(pieces) == gen.generate(chat)


def test_openai_batch_keeps_order(chat_server, keyed):
    gen = OpenAICompatibleGenerator(chat_server, "tiny", api_key_env=keyed, concurrency=3)
    chats = [[{"role": "user", "content": f"item {i}"}] for i in range(7)]
    assert gen.generate_batch(chats) == [f"echo: item {i}" for i in range(7)]


def test_openai_errors_are_clear(chat_server, keyed, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(GeneratorUnavailable, match="NO_SUCH_KEY_VAR"):
        OpenAICompatibleGenerator(chat_server, "tiny", api_key_env="NO_SUCH_KEY_VAR")
    monkeypatch.setenv("WRONG_KEY", "sk-wrong")
    wrong = OpenAICompatibleGenerator(chat_server, "tiny", api_key_env="WRONG_KEY")
    with pytest.raises(GeneratorUnavailable, match="refused the key") as refused:
        wrong.generate([{"role": "user", "content": "hi"}])
    assert "sk-wrong" not in str(refused.value)
    with pytest.raises(GenerationError, match="HTTP 500"):
        OpenAICompatibleGenerator(chat_server, "broken", api_key_env=keyed).generate([{"role": "user", "content": "x"}])
    unreachable = OpenAICompatibleGenerator("http://127.0.0.1:9/v1", "tiny", api_key_env=keyed, timeout=5)
    with pytest.raises(GeneratorUnavailable, match="unreachable"):
        unreachable.generate([{"role": "user", "content": "hi"}])
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(GeneratorUnavailable, match="base URL"):
        load_generator("openai", model="tiny", api_key_env=keyed)


def test_sse_parser_rejects_garbage():
    assert list(parse_sse_chunks(["data: {\"choices\": [{\"delta\": {\"content\": \"a\"}}]}", "", "data: [DONE]",
                                  "data: {\"choices\": [{\"delta\": {\"content\": \"late\"}}]}"])) == ["a"]
    with pytest.raises(GenerationError, match="malformed"):
        list(parse_sse_chunks(["data: {not json"]))
    with pytest.raises(GenerationError, match="mid-stream"):
        list(parse_sse_chunks(['data: {"error": {"message": "overloaded"}}']))


def test_unknown_kind():
    with pytest.raises(ValueError, match="local"):
        load_generator("nope")


# ---- llama.cpp, batched decoding ----------------------------------------------------------------


def test_sampling_is_greedy_at_zero_keeps_to_the_nucleus_and_penalises_repeats():
    import numpy as np

    from linqrag.generation.llamacpp_batch import common_prefix, prompt_rng, sample_token

    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert sample_token(logits, GenerationConfig(), prompt_rng(0, [1])) == 0
    nucleus = GenerationConfig(temperature=1.0, top_p=0.7, seed=1)
    rng = prompt_rng(1, [1, 2])
    drawn = {sample_token(logits, nucleus, rng) for _ in range(300)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reach 0.7: tokens 2 and 3 are outside the nucleus
    wide = {sample_token(logits, GenerationConfig(temperature=1.0, seed=1), rng) for _ in range(300)}
    assert wide == {0, 1, 2, 3}
    penalised = GenerationConfig(repetition_penalty=10.0)
    assert sample_token(np.array([2.0, 1.0, -1.0]), penalised, rng, previous=[0]) == 1
    assert common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix([[1, 2], [1, 2, 3]]) == 1  # each prompt keeps a token of its own
    a = prompt_rng(3, [5, 6]).random(3).tolist()
    assert a == prompt_rng(3, [5, 6]).random(3).tolist() and a != prompt_rng(3, [5, 7]).random(3).tolist()


@pytest.fixture(scope="module")
def llama_batched():
    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    from linqrag.generation.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator("smollm2", n_threads=2, parallel=2)


@needs_llama_cpp
def test_batched_decoding_answers_in_any_grouping_within_limits(llama_batched, llama):
    gen = llama_batched
    assert gen.name == "local:smollm2:llama.cpp-batched2"  # its own cache key: its own sampler
    sampled = GenerationConfig(max_new_tokens=10, temperature=0.9, top_p=0.95, seed=7)
    answers = gen.generate_batch(CHATS, sampled)
    assert all(a.strip() for a in answers)
    assert gen.generate_batch(CHATS[::-1], sampled) == answers[::-1]  # an answer does not depend on its group
    assert all(gen.count_tokens(a) <= 11 for a in answers)
    greedy = GenerationConfig(max_new_tokens=8)
    assert gen.generate_batch(CHATS[:1], greedy) == [llama.generate(CHATS[0], greedy)]  # a clear answer: the same
    free = gen.generate_batch(CHATS[2:], GenerationConfig(max_new_tokens=16))[0]
    words = free.split()
    stop = " " + words[2]
    cut = gen.generate_batch(CHATS[2:] * 2, GenerationConfig(max_new_tokens=16, stop=(stop,)))
    assert cut == [free[: free.index(stop)]] * 2


# ---- transformers, our own decode loop ------------------------------------------------------------


def test_own_decoder_matches_model_generate_greedy_and_answers_do_not_depend_on_the_batch():
    from linqrag.generation.local import LocalHFGenerator

    msgs = [[{"role": "user", "content": "Name three fruits."}],
            [{"role": "user", "content": "Write one sentence about the sea, the moon and how tides form."}],
            [{"role": "user", "content": "Say hi"}]]
    ours = LocalHFGenerator("smollm2", dtype="fp32", batch_size=3)
    theirs = LocalHFGenerator("smollm2", dtype="fp32", batch_size=3, decoder="transformers")
    greedy = GenerationConfig(max_new_tokens=24)
    assert ours.generate_batch(msgs, greedy) == theirs.generate_batch(msgs, greedy)  # left padding, positions
    sampled = GenerationConfig(max_new_tokens=24, temperature=0.7, top_p=0.9, seed=5, stop=("}",))
    together = ours.generate_batch(msgs, sampled)
    assert together == [ours.generate(m, sampled) for m in msgs]  # a finished row leaves; the rest go on
    assert together != ours.generate_batch(msgs, sampled.with_overrides(seed=6))


def test_nucleus_from_candidates_equals_a_full_sort():
    import numpy as np

    from linqrag.generation.sampling import CANDIDATES, nucleus

    rng = np.random.default_rng(0)
    for scale in (0.5, 3.0, 8.0):  # flat (falls back to the full sort) to peaked (candidates suffice)
        logits = rng.normal(0, scale, 5000)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        full = order[: int(np.searchsorted(np.cumsum(probs[order]), 0.9)) + 1]
        assert nucleus(probs, 0.9).tolist() == full.tolist()
    assert CANDIDATES < 5000
