"""Models: the base embedders and the fine-tuned checkpoints that ``finetune/`` produced."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import session
from app.choices import checkpoint_rows, embedder_choices, preset_rows
from linqrag.settings import runs_dir


def render(settings: session.Settings) -> None:
    st.title("Models")
    runs = session.adapted_runs()
    choices = embedder_choices(runs)
    st.subheader("Base embedders")
    st.dataframe(preset_rows(choices), hide_index=True,
                 column_config={"runs here": st.column_config.TextColumn(width="medium")})
    st.subheader("Fine-tuned checkpoints")
    if not runs:
        st.info(f"No checkpoint under `{runs_dir()}` yet. Make one with "
                "`python -m finetune.domain --corpus DIR --run-dir runs/NAME`.")
    else:
        st.dataframe(checkpoint_rows(runs), hide_index=True)
        st.caption("Scores are on each run's held-out synthetic queries (their chunks never reached training).")
        worse = [r.name for r in runs if r.gain is not None and r.gain <= 0]
        if worse:
            st.warning(f"No gain over the base embedder in {', '.join(worse)}: its best checkpoint scores at or "
                       "below the base on held-out queries, so the base is the better choice there.")
    choice = st.selectbox("Use this embedder", choices.options, index=choices.first_runnable, key="model_choice",
                          format_func=choices.label)
    if choices.refusal(choice):
        st.warning(choices.refusal(choice))
    if st.button("Use it", key="use_model", disabled=choices.refusal(choice) is not None):
        manifests, _ = session.available_indexes()
        labels = [session.embedder_label(m) for m in manifests]
        label = next((lbl for lbl in labels if lbl == choice or lbl.endswith(" + " + Path(choice).name)), None)
        if label:
            st.session_state["preferred_embedder"] = label
            st.rerun()
        st.session_state["build_embedder_choice"] = choice
        st.warning(f"No index was built with {choice} yet: build one on the Index page (it is preselected there).")
