"""Models: the base embedders and the fine-tuned checkpoints that ``finetune/`` produced."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import session
from embedder import PRESETS, unavailable_reason
from linqrag.settings import runs_dir


def render(settings: session.Settings) -> None:
    st.title("Models")
    st.subheader("Base embedders")
    reasons = {name: unavailable_reason(name) for name in PRESETS}
    st.dataframe([{
        "preset": name, "runs here": "yes" if reasons[name] is None else "no: " + reasons[name].split(";")[0],
        "model": spec.source, "pooling": spec.pooling,
        "queries": "instruction" if spec.query_template and "{instruction}" in spec.query_template else "bare",
        "licence": spec.licence,
    } for name, spec in PRESETS.items()], hide_index=True,
        column_config={"runs here": st.column_config.TextColumn(width="medium")})

    st.subheader("Fine-tuned checkpoints")
    runs = session.adapted_runs()
    if not runs:
        st.info(f"No checkpoint under `{runs_dir()}` yet. Make one with "
                "`python -m finetune.domain --corpus DIR --run-dir runs/NAME`.")
    else:
        st.dataframe([{
            "run": r.name, "base": r.base, "corpus": Path(r.corpus).name, "best checkpoint": Path(r.best_checkpoint).name,
            f"base {r.metric}": r.base_score, f"best {r.metric}": r.best_score, "gain": r.gain,
        } for r in runs], hide_index=True)
        st.caption("Scores are on each run's held-out synthetic queries (their chunks never reached training).")
        worse = [r.name for r in runs if r.gain is not None and r.gain <= 0]
        if worse:
            st.warning(f"No gain over the base embedder in {', '.join(worse)}: its best checkpoint scores at or "
                       "below the base on held-out queries, so the base is the better choice there.")

    manifests, _ = session.available_indexes()
    labels = list(dict.fromkeys(session.embedder_label(m) for m in manifests))
    options = list(PRESETS) + [r.best_checkpoint for r in runs]
    labels_by_option = {r.best_checkpoint: r.label for r in runs}
    # a checkpoint runs wherever its base preset runs
    reasons.update({r.best_checkpoint: reasons.get(r.base) for r in runs})
    runnable = [o for o in options if reasons[o] is None]
    default = options.index(runnable[0]) if runnable else 0
    choice = st.selectbox("Use this embedder", options, index=default, key="model_choice",
                          format_func=lambda o: labels_by_option.get(o, o) + ("" if reasons[o] is None else
                                                                              " (cannot run here)"))
    if reasons[choice] is not None:
        st.warning(f"{labels_by_option.get(choice, choice)} cannot run on this machine: {reasons[choice].rstrip('.')}.")
    if st.button("Use it", key="use_model", disabled=reasons[choice] is not None):
        label = next((lbl for lbl in labels if lbl == choice or lbl.endswith(" + " + Path(choice).name)), None)
        if label:
            st.session_state["preferred_embedder"] = label
            st.rerun()
        else:
            st.session_state["build_embedder_choice"] = choice
            st.warning(f"No index was built with {choice} yet: build one on the Index page (it is preselected there).")
