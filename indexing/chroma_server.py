"""A Chroma server in a child process (`chroma run`, shipped with the chromadb wheel), for the
loopback tests, ``bench/scale.py`` and anyone trying the server mode on one machine."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from indexing.store import IndexStoreError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class ChromaServer:
    """``chroma run --path PATH --host HOST --port PORT``; :meth:`start` waits until it answers."""

    path: Path
    port: int = 0
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ChromaServer:
        exe = shutil.which("chroma")
        if exe is None:
            raise IndexStoreError("the `chroma` command is missing (it ships with the chromadb wheel)")
        self.port = self.port or free_port(self.host)
        self.path.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path or self.path.parent / f"chroma-{self.port}.log", "ab")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen([exe, "run", "--path", str(self.path), "--host", self.host,
                                         "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise IndexStoreError(f"chroma run exited with {self.process.returncode} (log: {log.name})")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise IndexStoreError(f"chroma run did not listen on {self.url} within {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL, as a crash would (nothing flushed on purpose)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def __enter__(self) -> ChromaServer:  # noqa: PYI034 (a dataclass; Self needs 3.11)
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
