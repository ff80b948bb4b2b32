"""Models: the base embedders and the fine-tuned checkpoints that ``finetune/`` produced."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from app import session
from embedder import PRESETS
from linqrag.settings import runs_dir


def render(settings: session.Settings) -> None:
    st.title("Models")
    st.subheader("Base embedders")
    st.dataframe([{
        "preset": name, "model": spec.source, "pooling": spec.pooling,
        "queries": "instruction" if spec.query_template and "{instruction}" in spec.query_template else "bare",
        "licence": spec.licence,
    } for name, spec in PRESETS.items()], hide_index=True)

    st.subheader("Fine-tuned checkpoints")
    checkpoints = session.find_checkpoints()
    if not checkpoints:
        st.info(f"No checkpoint under `{runs_dir()}` yet. Make one with "
                "`python -m finetune.domain --corpus DIR --run-dir runs/NAME`.")
    else:
        rows = []
        for c in checkpoints:
            row = {"checkpoint": c["path"], "base": c["base"], "best": "yes" if c["best"] else ""}
            if c["report"]:
                try:
                    report = json.loads(Path(c["report"]).read_text())
                    row["gain nDCG@10"] = report.get("gain", {}).get("ndcg@10") if isinstance(report.get("gain"), dict) else report.get("gain")
                except (OSError, json.JSONDecodeError):
                    pass
            rows.append(row)
        st.dataframe(rows, hide_index=True)

    manifests, _ = session.available_indexes()
    labels = list(dict.fromkeys(session.embedder_label(m) for m in manifests))
    options = list(PRESETS) + [c["path"] for c in checkpoints]
    choice = st.selectbox("Use this embedder", options, key="model_choice")
    if st.button("Use it", key="use_model"):
        label = next((lbl for lbl in labels if lbl == choice or lbl.endswith(" + " + Path(choice).name)), None)
        if label:
            st.session_state["preferred_embedder"] = label
            st.rerun()
        else:
            st.session_state["build_embedder_choice"] = choice
            st.warning(f"No index was built with {choice} yet: build one on the Index page (it is preselected there).")
