"""The Streamlit app: chat over documents with citations, retriever comparison, indexing, models.

``python -m app serve`` builds (incrementally) the demo index and serves ``app/main.py``.
"""

from pathlib import Path

MAIN = Path(__file__).with_name("main.py")

#: The Streamlit options every launcher passes (``python -m app serve``, ``app.browser.serve``):
#: headless, no usage statistics, and the viewer toolbar (no Deploy, Rerun or Clear cache items).
#: ``.streamlit/config.toml`` sets the same for a plain ``streamlit run app/main.py`` in the checkout.
STREAMLIT_FLAGS = (
    "--server.headless", "true", "--browser.gatherUsageStats", "false",
    "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
)



def streamlit_command(host: str, port: int, *extra: str) -> list[str]:
    """The one ``streamlit run app/main.py`` command line every launcher uses."""
    import sys

    return [sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.address", host,
            "--server.port", str(port), *STREAMLIT_FLAGS, *extra]


def streamlit_env(index_dir: Path, chroma_url: str | None = None, base: dict | None = None) -> dict[str, str]:
    """The environment the app reads its index location from (``base``: the current one)."""
    import os

    env = dict(os.environ if base is None else base, LINQRAG_INDEX_DIR=str(Path(index_dir).resolve()),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    if chroma_url:  # every page opens and builds indexes through the server
        env["LINQRAG_CHROMA_URL"] = chroma_url
    return env


__all__ = ["MAIN", "STREAMLIT_FLAGS", "streamlit_command", "streamlit_env"]
