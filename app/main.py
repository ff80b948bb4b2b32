"""The linqrag app: ``streamlit run app/main.py`` (or ``python -m app serve``, which builds the demo index first).

Pages are plain modules in ``app/screens/`` (not ``pages/``, which Streamlit would list as pages of its own) with a
``render(settings)`` function, chosen in the sidebar; the sidebar's
choices (corpus, embedder, retriever, top-k, generator) are drawn once and passed to the page.
Served beyond loopback, the password comes first (``app.access``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only app/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st

from app import access, session
from app.screens import chat, compare, index, models

PAGES = {"Chat": chat, "Compare": compare, "Index": index, "Models": models}

st.set_page_config(page_title="linqrag", page_icon="🔎", layout="wide")
access.require_login()  # served beyond loopback: nothing below renders before the password
page = st.sidebar.radio("Page", list(PAGES), key="page", horizontal=True)
settings = session.sidebar()
PAGES[page].render(settings)
