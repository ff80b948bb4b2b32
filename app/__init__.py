"""The Streamlit app: chat over documents with citations, retriever comparison, indexing, models.

``python -m app serve`` builds (incrementally) the demo index and serves ``app/main.py``.
"""

from pathlib import Path

MAIN = Path(__file__).with_name("main.py")

__all__ = ["MAIN"]
