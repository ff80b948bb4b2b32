"""Compare: one query through dense, BM25 and hybrid side by side; on a BEIR folder, metrics too."""

from __future__ import annotations

import time

import streamlit as st

from answers.highlight import highlight_span
from app import session
from app.views import source_name
from corpora import DEMO_CORPUS_NAME
from eval.metrics import ndcg_at_k, recall_at_k
from indexing import FilterError

DEPTH = 100  # hits per retriever behind the metrics; the columns show the first SHOW
SHOW = 10
MARKS = {"dense": "D", "bm25": "B", "hybrid": "H"}
SNIPPET = 320  # characters of chunk text per row
TABLE_ORDER = ("rank", "text", "document", "shared", "relevant", "score")
TABLE_CONFIG = {
    "text": st.column_config.TextColumn("text", width="large",
                                        help="the chunk around its sentence closest to the query, marked «like this»"),
    "document": st.column_config.TextColumn("document", width="small"),
}


def snippet(text: str, query: str, size: int = SNIPPET) -> str:
    """About ``size`` characters of ``text`` around its sentence closest to ``query``, that sentence
    between « and », whitespace collapsed; the start of the chunk when no sentence shares a word."""
    span = highlight_span(text, query)
    if span is None:
        flat = " ".join(text.split())
        return flat if len(flat) <= size else flat[:size].rsplit(" ", 1)[0] + " …"
    start, end = span
    before, marked, after = (" ".join(part.split()) for part in (text[:start], text[start:end], text[end:]))
    if len(marked) > size:
        marked = marked[:size].rsplit(" ", 1)[0] + " …"
    room = max(size - len(marked), 0)
    lead = before[-min(len(before), room // 3):] if before and room else ""
    if lead and len(lead) < len(before):
        lead = "… " + lead.split(" ", 1)[-1]
    tail_room = max(room - len(lead), 0)
    tail = after[:tail_room] if after else ""
    if tail and len(tail) < len(after):
        tail = tail.rsplit(" ", 1)[0] + " …"
    return " ".join(p for p in (lead, f"«{marked}»", tail) if p)


@st.cache_resource(show_spinner="Reading the relevance judgements ...")
def judgements(corpus_path: str):
    from corpora import is_beir_folder, load_beir

    return load_beir(corpus_path) if is_beir_folder(corpus_path) else None


def render(settings: session.Settings) -> None:
    st.title("Compare retrievers")
    if settings.manifest is None:
        st.info("There is no index to compare on yet. Build one on the **Index** page.")
        return

    manifest = settings.manifest
    try:
        dataset = judgements(manifest.corpus_path)
        index = session.index_for(manifest)
        embedder = session.embedder_for(manifest)
    except Exception as error:  # noqa: BLE001 - a missing model, a damaged index or store: say so, keep the page alive
        st.error(f"Cannot open this index: {error}")
        return

    retrievers = {kind: index.retriever(kind, embedder) for kind in ("dense", "bm25", "hybrid")}
    judged = dataset.judged_queries if dataset else {}
    query, qid, restriction = pick_query(settings, dataset, judged)
    if query:
        titles = {"dense": f"Dense · {session.embedder_label(manifest)}", "bm25": "BM25 · bm25s",
                  "hybrid": "Hybrid · RRF k=60"}
        side_by_side(retrievers, titles, query, qid, dataset, restriction)
    if judged:
        batch(manifest, dataset, judged, retrievers, restriction)


def pick_query(settings: session.Settings, dataset, judged: dict):
    """``(query, judged query id or None, file restriction)`` from the widgets; a hint while there is no query."""
    manifest = settings.manifest
    query, qid = "", None
    if judged:
        st.caption(f"{manifest.corpus} has relevance judgements for {len(judged)} queries ({dataset.split} split).")
        ids = list(judged)
        picked = st.selectbox("Pick a judged query", ["(type your own)"] + ids, key="compare_qid",
                              format_func=lambda i: i if i == "(type your own)" else f"{i}: {judged[i][:90]}")
        if picked != "(type your own)":
            qid, query = picked, judged[picked]
    typed = st.text_input("Query", value=query, key=f"compare_query_{qid}", placeholder="a question or keywords")
    query = typed.strip()
    try:
        restriction = settings.search_filter
    except FilterError as error:  # the sidebar shows it too; search nothing rather than everything
        st.error(f"Restrict to files: {error}")
        restriction, query = None, ""

    if not query and not typed.strip():
        examples = ("e.g. *how are dense and BM25 rankings fused?*" if manifest.corpus == DEMO_CORPUS_NAME
                    else "a question or a few keywords about these documents")
        pick = " or pick a judged query above to score each list against its relevance judgements" if judged else ""
        st.info(f"Type a query above ({examples}){pick}. The three retrievers' top {SHOW} hits then appear "
                "side by side, with latency and the hits they share.")
    return query, qid, restriction


def side_by_side(retrievers: dict, titles: dict, query: str, qid, dataset, restriction) -> None:
    """The three retrievers' top hits in three columns, with latency, metrics and the hits they share."""
    results = {kind: r.search(query, DEPTH, filter=restriction) for kind, r in retrievers.items()}
    shown = {kind: res.hits[:SHOW] for kind, res in results.items()}
    holders: dict[str, set[str]] = {}
    for kind, hits in shown.items():
        for hit in hits:
            holders.setdefault(hit.chunk_id, set()).add(kind)
    shared_all = sum(1 for kinds in holders.values() if len(kinds) == 3)
    st.caption(f"{shared_all} chunk(s) appear in all three top-{SHOW} lists; "
               "the Shared column marks which lists hold each hit (D dense, B BM25, H hybrid).")
    columns = st.columns(3)
    for column, (kind, res) in zip(columns, results.items(), strict=True):
        with column:
            st.subheader(titles[kind])
            cells = column.columns(3 if qid else 1)
            cells[0].metric("latency (ms)", f"{res.seconds * 1000:.0f}")
            if qid:
                ranking = [d for d, _ in res.doc_ranking()]
                cells[1].metric("nDCG@10", f"{ndcg_at_k(ranking, dataset.qrels[qid], 10):.3f}")
                cells[2].metric("recall@10", f"{recall_at_k(ranking, dataset.qrels[qid], 10):.3f}")
            for note in res.notes:
                st.caption(note)
            rows = [hit_row(hit, holders, query, qid, dataset) for hit in shown[kind]]
            if rows:
                st.dataframe(rows, hide_index=True, column_order=[c for c in TABLE_ORDER if c in rows[0]],
                             column_config=TABLE_CONFIG)
            else:
                st.info("no hits")


def hit_row(hit, holders: dict[str, set[str]], query: str, qid, dataset) -> dict:
    relevant = dataset.qrels[qid].get(hit.doc_id, 0) if qid else None
    return {
        "rank": hit.rank, "score": round(hit.score, 4), "document": source_name(hit),
        "shared": "".join(MARKS[k] for k in ("dense", "bm25", "hybrid") if k in holders[hit.chunk_id]),
        **({"relevant": relevant} if qid else {}),
        "text": snippet(hit.text, query),
    }


def batch(manifest, dataset, judged: dict, retrievers: dict, restriction) -> None:
    """The whole judged query set through each retriever: metrics, latency and a bar chart."""
    st.divider()
    st.subheader("Batch: the whole query set")
    if restriction:
        st.caption(f"The batch searches the whole corpus; the restriction ({restriction.describe()}) "
                   "applies to the query above.")
    n = st.number_input("Queries to run", 1, len(judged), min(len(judged), 50), key="batch_n")
    if st.button("Run the query set", key="batch_run"):
        st.session_state["batch_result"] = run_batch(manifest, dataset, judged, retrievers, int(n))
    result = st.session_state.get("batch_result")
    if result and result["corpus"] == manifest.corpus:
        plot_batch(result)


def run_batch(manifest, dataset, judged: dict, retrievers: dict, n: int) -> dict:
    from eval.runs import score_run

    chosen = dict(list(judged.items())[:n])
    bar = st.progress(0.0, text="running ...")
    runs = {kind: {} for kind in retrievers}
    seconds = {kind: 0.0 for kind in retrievers}
    steps, done = len(chosen) * len(retrievers), 0
    for kind, retriever in retrievers.items():
        for q_id, text in chosen.items():
            t0 = time.perf_counter()
            runs[kind][q_id] = dict(retriever.search(text, DEPTH).doc_ranking())
            seconds[kind] += time.perf_counter() - t0
            done += 1
            bar.progress(done / steps, text=f"{kind}: {q_id}")
    qrels = {q: dataset.qrels[q] for q in chosen}
    table = []
    for kind in retrievers:
        scores = score_run(runs[kind], qrels)
        table.append({"retriever": kind, **{m: round(v, 4) for m, v in scores.items()},
                      "ms/query": round(1000 * seconds[kind] / len(chosen), 1)})
    bar.empty()
    return {"n": len(chosen), "corpus": manifest.corpus, "table": table}


def plot_batch(result: dict) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    st.dataframe(result["table"], hide_index=True)
    metrics = ["ndcg@10", "recall@10", "recall@100"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.26
    for i, row in enumerate(result["table"]):
        ax.bar(np.arange(len(metrics)) + (i - 1) * width, [row[m] for m in metrics], width,
               label=row["retriever"])
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set_ylim(0, 1)
    ax.set_title(f"{result['corpus']}: {result['n']} judged queries")
    ax.legend(loc="lower right")
    st.pyplot(fig)
    plt.close(fig)
