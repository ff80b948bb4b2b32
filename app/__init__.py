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

__all__ = ["MAIN", "STREAMLIT_FLAGS"]
