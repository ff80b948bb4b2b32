"""The pipeline with its other backends: the generator behind an OpenAI-compatible endpoint (a real
chat-completions server on loopback that answers with SmolLM2), and an ``eval/`` suite scored inside
the evaluate stage. Small on purpose: 16 chunks, 3 steps."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from finetune.cli import domain_main as main
from linqrag.generation import GenerationConfig, load_generator
from tests.test_finetune_e2e import FACTS

KEY = "sk-local-test-key"


class SmolChatHandler(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions`` answered by a local model, one request at a time."""

    generator = None
    lock = threading.Lock()
    seen: ClassVar[list[dict]] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        type(self).seen.append({"auth": self.headers.get("Authorization"), "body": body})
        if self.path != "/v1/chat/completions" or self.headers.get("Authorization") != f"Bearer {KEY}":
            self.send_response(401)
            self.end_headers()
            return
        config = GenerationConfig(max_new_tokens=body["max_tokens"], temperature=body.get("temperature", 0.0),
                                  top_p=body.get("top_p", 1.0), seed=body.get("seed"),
                                  stop=tuple(body.get("stop") or ()))
        with type(self).lock:
            text = type(self).generator.generate(body["messages"], config)
        payload = json.dumps({"object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def smol_endpoint():
    SmolChatHandler.generator = load_generator("local", batch_size=1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), SmolChatHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_pipeline_with_an_openai_compatible_generator_and_an_eval_suite(smol_endpoint, shared_data, tmp_path,
                                                                        monkeypatch, capsys):
    if not (shared_data / "aila-statutes").is_dir():
        pytest.skip(f"aila-statutes not found under {shared_data}: the eval suite needs it")
    corpus = tmp_path / "facts"
    corpus.mkdir()
    for i, fact in enumerate(FACTS[:16]):
        (corpus / f"fact{i:02d}.txt").write_text(fact + "\n", encoding="utf-8")
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"brainstorm_calls": 1, "max_new_tokens": 64, "checkpoint_every": 3,
                                  "mixed_steps": 1, "learning_rate": 5e-4, "negatives_per_query": 1,
                                  "eval_suite": "AILAStatutes:streamlined"}))
    monkeypatch.setenv("LINQRAG_TEST_ENDPOINT_KEY", KEY)
    run_dir = tmp_path / "run"
    argv = ["--corpus", str(corpus), "--run-dir", str(run_dir), "--max-chunks", "16", "--steps", "3",
            "--batch-size", "4", "--generator", "openai", "--generator-model", "smollm2-over-http",
            "--base-url", smol_endpoint, "--api-key-env", "LINQRAG_TEST_ENDPOINT_KEY", "--config", str(config),
            "--threads", "1", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err

    # every LLM call went over HTTP with the key from the environment, and none with another
    assert SmolChatHandler.seen and all(r["auth"] == f"Bearer {KEY}" for r in SmolChatHandler.seen)
    assert {r["body"]["model"] for r in SmolChatHandler.seen} == {"smollm2-over-http"}
    assert any(r["body"].get("stop") == ["}"] for r in SmolChatHandler.seen), "generation asks to stop at '}'"
    stages = json.loads((run_dir / "stages.json").read_text())
    assert stages["generate"]["pairs"] >= 8, stages["generate"]
    assert KEY not in (run_dir / "config.json").read_text(), "the key never reaches the run directory"

    # the suite scored the base and the best checkpoint, and the report shows it
    suite = json.loads((run_dir / "evaluation.json").read_text())["suite"]
    assert suite["name"] == "AILAStatutes:streamlined"
    rows = [k for k in suite if k != "name"]
    assert rows[0] == "base" and len(rows) == 2, rows
    for row in rows:
        score = suite[row]["tasks"]["AILAStatutes"]
        assert 0.0 < score < 1.0 and suite[row]["retrieval"] == pytest.approx(score)
    assert "## eval/ suite `AILAStatutes:streamlined`" in (run_dir / "report.md").read_text()
