"""The one place where linqrag sets its process environment and default paths.

Every entry point (CLIs, the app, tests, benchmarks) calls :func:`apply_offline_env` before it
imports transformers, chromadb or streamlit, so nothing silently reaches the network: the
Hugging Face hub is offline unless the user opts in with ``LINQRAG_ONLINE=1``, and Chroma's and
Streamlit's telemetry are off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

#: Environment applied by :func:`apply_offline_env`; values the user already set win.
OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_SERVER_HEADLESS": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
}

#: Telemetry switches that stay off even when the user lets the hub online.
TELEMETRY_ENV = {k: v for k, v in OFFLINE_ENV.items() if not k.endswith("_OFFLINE")}


def apply_offline_env() -> None:
    """Set the offline/telemetry environment (idempotent; explicit user settings are kept)."""
    online = os.environ.get("LINQRAG_ONLINE", "").lower() in {"1", "true", "yes"}
    for key, value in (TELEMETRY_ENV if online else OFFLINE_ENV).items():
        os.environ.setdefault(key, value)
    quiet_bitsandbytes()


def quiet_bitsandbytes() -> None:
    """bitsandbytes' CPU backend logs, on import, that the optional ``kernels`` package (a hub
    download) is missing; its built-in CPU path works, so drop that one message."""
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(getattr(f, "linqrag", False) for f in logger.filters):
        def drop(record: logging.LogRecord) -> bool:
            return "kernels-community" not in record.getMessage()

        drop.linqrag = True  # type: ignore[attr-defined]
        logger.addFilter(drop)


def cache_dir() -> Path:
    """Where converted models and other derived artefacts are cached (``LINQRAG_CACHE``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "linqrag"
    path = Path(os.environ.get("LINQRAG_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """The shared evaluation data (``LINQRAG_DATA``, default ``../shared/data`` beside the checkout)."""
    env = os.environ.get("LINQRAG_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def index_dir() -> Path:
    """The default index directory (``LINQRAG_INDEX_DIR``, default ``.linqrag/index``), shared by the CLI and
    the app."""
    return Path(os.environ.get("LINQRAG_INDEX_DIR", ".linqrag/index"))


def chroma_url() -> str | None:
    """A Chroma server to keep vectors in instead of the embedded store (``LINQRAG_CHROMA_URL``,
    e.g. ``http://127.0.0.1:8000``); ``None`` for the embedded store in the index directory."""
    return os.environ.get("LINQRAG_CHROMA_URL") or None


def runs_dir() -> Path:
    """Where ``finetune`` writes runs and the app looks for checkpoints (``LINQRAG_RUNS``, default ``runs``)."""
    return Path(os.environ.get("LINQRAG_RUNS", "runs"))
