"""``python -m app api`` under load while its index is rebuilt: do searches fail, how slow do they
get, and how soon is the new build served?

    python bench/api_load.py [--clients 4] [--seconds 20] [--docs 120] [--changed 60] [--retriever hybrid]

Builds a MiniLM index of ``--docs`` generated notes in a temporary folder, starts the API on a free
loopback port as a subprocess, and runs ``--clients`` threads that POST /search back to back for
``--seconds``. A third of the way in, one note is deleted, two are added (with words no other note
has), ``--changed`` notes are rewritten (so the build embeds for a while) and ``build_index`` runs
again in this process while the clients keep going. Every client
query alternates between the new notes' words and the deleted note's words.

Prints requests, errors (any status but 200, or a transport error), p50/p95 latency over the whole
run and over the build, and the last line ``seconds until the new build served: X``: from the end of
the build to the start of the first search whose hits include a new note (a refresh is looked for
every ``app.api.REFRESH_SECONDS``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env

apply_offline_env()

import httpx
import numpy as np

from embedder import load_embedder
from indexing import build_index
from indexing.chroma_server import free_port

NEW_WORDS = "quasar telescope redshift"
OLD_WORDS = "zebra crossing stripes"


def write_notes(folder: Path, count: int) -> None:
    """``count`` short notes on harbours, and one on zebra crossings (the one the rebuild deletes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note-{i:03d}.txt").write_text(
            " ".join(f"Harbour {i} keeps lighthouse {j} lit for the boats of town {i * j}." for j in range(8)))
    (folder / "zebra.txt").write_text("Zebra crossings are painted with white stripes so drivers stop for walkers.")


def change_notes(folder: Path, changed: int) -> None:
    for path in sorted(folder.glob("note-*.txt"))[:changed]:
        path.write_text(path.read_text() + " The harbour master logged the tide at dawn.")
    (folder / "zebra.txt").unlink()
    (folder / "quasar.txt").write_text("A quasar is so bright that a small telescope sees it; its redshift tells "
                                       "how far away it is.")
    (folder / "comet.txt").write_text("A comet grows a tail of gas and dust as it nears the sun.")


def start_api(index_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "LINQRAG_API_KEY"}
    process = subprocess.Popen([sys.executable, "-m", "app", "api", "--embedder", "minilm", "--port", str(port),
                                "--index-dir", str(index_dir), "--preload"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the API exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the API did not come up in 180 s")


class Load:
    """Clients that search until stopped, each request recorded as ``(start, seconds, ok, new_served)``."""

    def __init__(self, url: str, clients: int, retriever: str) -> None:
        self.url, self.retriever = url, retriever
        self.records: list[tuple[float, float, bool, bool]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(clients)]

    def client(self, n: int) -> None:
        with httpx.Client(timeout=120) as http:
            while not self.stop.is_set():
                query = NEW_WORDS if n % 2 == 0 else OLD_WORDS
                n += 1
                began = time.monotonic()
                try:
                    reply = http.post(f"{self.url}/search", json={"query": query, "retriever": self.retriever, "k": 3})
                    ok = reply.status_code == 200
                    new = ok and any(h["doc_id"] == "quasar.txt" for h in reply.json()["hits"])
                except httpx.HTTPError:
                    ok, new = False, False
                self.records.append((began, time.monotonic() - began, ok, new))

    def run(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)


def percentiles(seconds: list[float]) -> str:
    if not seconds:
        return "no requests"
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms ({len(ms)} requests)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--docs", type=int, default=120)
    parser.add_argument("--changed", type=int, default=60, help="notes rewritten before the rebuild")
    parser.add_argument("--retriever", default="hybrid", choices=("dense", "bm25", "hybrid"))
    args = parser.parse_args()

    embedder = load_embedder("minilm")
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        write_notes(corpus, args.docs)
        first = build_index(corpus, embedder, index_dir, name="load", show_progress=False)
        print(f"index: {first.documents} documents, {first.total} chunks ({first.seconds:.1f} s)")
        process, url = start_api(index_dir)
        load = Load(url, args.clients, args.retriever)
        try:
            start = time.monotonic()
            load.run()
            time.sleep(args.seconds / 3)
            change_notes(corpus, args.changed)
            build_began = time.monotonic()
            rebuilt = build_index(corpus, embedder, index_dir, name="load", show_progress=False)
            built = time.monotonic()
            time.sleep(max(0.0, start + args.seconds - time.monotonic()))
        finally:
            load.finish()
            process.terminate()
            process.wait(30)
    records = list(load.records)
    errors = sum(1 for *_, ok, _ in records if not ok)
    during = [s for began, s, ok, _ in records if ok and build_began <= began <= built]
    served = [began for began, _, _, new in records if new]
    print(f"clients {args.clients}, {args.seconds:.0f} s, retriever {args.retriever}; rebuild: embedded "
          f"{rebuilt.embedded}, removed {rebuilt.removed} chunks in {built - build_began:.1f} s")
    print(f"requests: {len(records)}, errors: {errors}")
    print(f"latency, whole run: {percentiles([s for _, s, ok, _ in records if ok])}")
    print(f"latency, during the build: {percentiles(during)}")
    print(f"seconds until the new build served: {min(served) - built:.2f}" if served else
          "seconds until the new build served: never")
    return 1 if errors or not served else 0


if __name__ == "__main__":
    sys.exit(main())
