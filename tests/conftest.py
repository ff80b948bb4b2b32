"""Shared fixtures: real models only (packaged MiniLM and SmolLM2, tiny random Mistrals built here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from embedder.random_models import build_random_mistral
from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()

def wait_for(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    """Until ``url`` answers below 500 (a server started by a test is up), or the process has died."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def api_process(index_dir: Path, *extra: str, prefix: tuple[str, ...] = (), key: str | None = None):
    """``python -m app api`` on a free loopback port over ``index_dir`` (``key``: the API key it requires);
    yields its URL."""
    from indexing.chroma_server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "LINQRAG_API_KEY"}
    if key:
        env["LINQRAG_API_KEY"] = key
    process = subprocess.Popen([*prefix, sys.executable, "-m", "app", "api", "--embedder", "minilm", "--port",
                                str(port), "--index-dir", str(index_dir), "--preload", *extra], env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="session")
def tiny_mistral_dir(tmp_path_factory) -> Path:
    return build_random_mistral(tmp_path_factory.mktemp("tiny-mistral"))


@pytest.fixture(scope="session")
def tiny_mistral_eos_dir(tmp_path_factory) -> Path:
    """The same shape, but a tokenizer that already appends EOS itself."""
    return build_random_mistral(tmp_path_factory.mktemp("tiny-mistral-eos"), add_eos=True)


@pytest.fixture(scope="session")
def minilm():
    """MiniLM as a user gets it (on this CPU: the int8 ONNX backend)."""
    from embedder import load_embedder

    return load_embedder("minilm")


@pytest.fixture(scope="session")
def minilm_torch():
    """MiniLM on torch: exact vectors (the int8 backend's depend slightly on their batch mates)."""
    from embedder import load_embedder

    return load_embedder("minilm", backend="torch")


@pytest.fixture(scope="session")
def smollm2():
    from embedder import load_embedder

    return load_embedder("smollm2", max_length=256)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real evaluation data beside the checkout; tests that need it skip when it is absent."""
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LINQRAG_DATA to its folder)")
    return path


def pytest_report_header(config):
    present = "present" if data_dir().is_dir() else "absent"
    return f"linqrag data dir: {data_dir()} ({present}); HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')}"


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF with the given text lines (Helvetica), xref offsets computed."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


TOPICS = {
    "solar.md": "# Solar power\n\nSolar panels convert sunlight into electricity with photovoltaic cells. "
    "Panel efficiency has risen steadily, and rooftop installations are now common in sunny regions.",
    "bread.txt": "Baking bread needs flour, water, salt and yeast. The dough is kneaded, left to rise, shaped "
    "and baked in a hot oven until the crust is brown.",
    "volcano.html": "<html><head><title>Volcanoes</title><script>var tracking = 1;</script></head><body>"
    "<nav>Home | About | Contact</nav><h1>Volcanoes</h1><p>A volcano erupts when magma rises through the "
    "crust. Lava flows and ash clouds can travel far from the crater.</p><footer>Copyright 2024</footer></body></html>",
    "chess.md": "# Chess openings\n\nThe Sicilian Defence answers 1.e4 with c5. The Queen's Gambit offers a pawn "
    "on c4 to gain control of the centre.",
    "bees.txt": "Honey bees live in colonies with one queen, many workers and some drones. Workers collect nectar "
    "and pollen and make honey in the hive.",
    "rivers.txt": "Rivers carry water from mountains to the sea. Erosion along the banks shapes valleys, and deltas "
    "form where the river deposits sediment at its mouth.",
}


@pytest.fixture()
def topic_corpus(tmp_path) -> Path:
    """Six short documents on distinct topics in txt, md, html and pdf."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in TOPICS.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "trains.pdf").write_bytes(make_pdf(["Steam locomotives pulled the first passenger trains.",
                                                   "Railway networks spread across Europe in the 1840s."]))
    return folder


@pytest.fixture(scope="session")
def topics_index_dir(tmp_path_factory, minilm) -> Path:
    """A MiniLM index (name ``topics``) of the TOPICS documents, built once per session and only read."""
    from indexing import build_index

    corpus = tmp_path_factory.mktemp("topics-corpus")
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path_factory.mktemp("topics-index") / "index"
    build_index(corpus, minilm, index_dir, name="topics", show_progress=False)
    return index_dir
