"""The eval package on the real data in ../shared/data (skipped when absent): mteb's scores of
MiniLM on local tasks equal independent computations from the same rankings and vectors, and the
streamlined sample of a real set keeps what it promises."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.sampling import PairSampling, RetrievalSampling
from eval.suites import Suite, TaskSpec

AILA_SAMPLE = RetrievalSampling(max_queries=12, bm25_depth=5, random_docs=20, seed=3, dense_depth=5)


def _need(shared_data, folder):
    if not (shared_data / folder).is_dir():
        pytest.skip(f"{folder} not found in {shared_data}")


def test_local_retrieval_ndcg_equals_independent_computation(shared_data, tmp_path):
    """nDCG@10 from mteb (pytrec_eval inside) = pytrec_eval called directly = our pure-Python trec_eval
    port, all from the rankings mteb saved for MiniLM on a sampled AILA statutes task."""
    _need(shared_data, "aila-statutes")
    import pytrec_eval

    from eval.harness import ScoreConfig, score
    from eval.metrics import mean_metric
    from eval.tasks import prepare_task

    spec = TaskSpec("AILAStatutes", AILA_SAMPLE)
    record = score(ScoreConfig(embedder="minilm", suite=Suite("aila-check", (spec,)), cache=None,
                               data_root=shared_data, out_dir=tmp_path, show_progress=False, save_predictions=True,
                               sample_cache=None))
    (task,) = record.tasks
    prepared = prepare_task(spec, shared_data)  # the same seeded sample, built again
    assert prepared.mteb_name == task.mteb_name and task.size == prepared.size
    qrels = prepared.task.records.qrels
    predictions = json.loads((tmp_path / "predictions-aila-check" / f"{task.mteb_name}_predictions.json").read_text())
    run = predictions["default"]["test"]
    assert set(run) == set(qrels) and all(len(docs) == task.size["documents"] for docs in run.values())

    ours, _ = mean_metric(run, qrels, "ndcg", 10)
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    direct = float(np.mean([v["ndcg_cut_10"] for v in per_query.values()]))
    assert task.main_score == pytest.approx(direct, abs=1e-5)  # mteb rounds to 5 decimals
    assert task.main_score == pytest.approx(ours, abs=1e-5)
    assert task.metrics["recall_at_10"] == pytest.approx(mean_metric(run, qrels, "recall", 10)[0], abs=1e-5)


def test_local_sts_spearman_equals_independent_computation(shared_data, minilm_torch):
    """SICK-R's main score = Spearman of the cosine of MiniLM's own vectors against the gold."""
    _need(shared_data, "sick")
    from scipy.stats import spearmanr

    from eval.harness import ScoreConfig, score
    from eval.tasks import prepare_task

    spec = TaskSpec("SICK-R", PairSampling(max_pairs=150, seed=5))
    record = score(ScoreConfig(embedder="minilm", suite=Suite("sick-check", (spec,)), cache=None,
                               data_root=shared_data, show_progress=False, write=False, sample_cache=None))
    pairs = prepare_task(spec, shared_data).task.records
    assert len(pairs) == 150 and min(pairs.scores) >= 1.0
    a, b = minilm_torch.encode_queries(pairs.sentence1), minilm_torch.encode_queries(pairs.sentence2)  # eval: torch
    expected = spearmanr((a * b).sum(axis=1), pairs.scores).statistic
    assert record.tasks[0].main_score == pytest.approx(expected, abs=1e-5)
    assert record.tasks[0].main_score > 0.6  # MiniLM's published SICK-R is ~0.78


def test_streamlined_sample_of_a_real_set(shared_data):
    _need(shared_data, "aila-statutes")
    from eval.localdata import load_retrieval
    from eval.sampling import bm25_candidates, dense_candidates, subsample_retrieval

    full = load_retrieval(shared_data / "aila-statutes")
    light = subsample_retrieval(full, AILA_SAMPLE)
    assert len(light.queries) == 12 and set(light.queries) <= set(full.queries)
    kept = {d.doc_id for d in light.corpus}
    judged = {d for q in light.queries for d in full.qrels[q]}
    assert judged <= kept
    assert bm25_candidates(full, list(light.queries), 5) <= kept
    assert dense_candidates(full, list(light.queries), 5, "minilm") <= kept
    assert len(kept) <= len(judged) + 12 * 5 * 2 + 20 and len(kept) < len(full.corpus)
    assert subsample_retrieval(full, AILA_SAMPLE) == light
    other_seed = RetrievalSampling(12, 5, 20, seed=4, dense_depth=0)
    assert set(subsample_retrieval(full, other_seed).queries) != set(light.queries)
