"""The eval package on small synthetic data (no shared data needed): suites, errors, the mteb
encoder wrapper, the result cache against new adapters, compare with its BM25 row, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.errors import DatasetError, EvalError
from eval.localdata import RETRIEVAL, STS
from eval.sampling import PairSampling, RetrievalSampling
from eval.suites import SUITES, Suite, TaskSpec, resolve_suite

REPO = Path(__file__).resolve().parents[1]

TOPICS = {
    "solar": ["Solar panels turn sunlight into electricity with photovoltaic cells.",
              "Rooftop solar installations feed power into the grid on sunny days.",
              "Photovoltaic efficiency has improved as silicon cells got cheaper."],
    "bread": ["Bread dough of flour, water, salt and yeast is kneaded and left to rise.",
              "A hot oven bakes the loaf until the crust turns brown.",
              "Sourdough uses a starter culture instead of packaged yeast."],
    "volcano": ["A volcano erupts when magma rises through the crust.",
                "Lava flows and ash clouds spread far from the crater.",
                "Geologists monitor gas emissions to predict eruptions."],
    "chess": ["The Sicilian Defence answers 1.e4 with c5.",
              "The Queen's Gambit offers a pawn to control the centre of the board.",
              "Endgames with a king and rook against a king are a forced win."],
    "bees": ["Honey bees live in colonies with a queen, workers and drones.",
             "Worker bees collect nectar and pollen and make honey in the hive.",
             "Bees communicate the direction of flowers with a waggle dance."],
    "rivers": ["Rivers carry water from the mountains to the sea.",
               "Erosion along river banks carves valleys over time.",
               "A delta forms where a river deposits sediment at its mouth."],
}
QUERIES = {
    "solar": "how do solar panels make electricity",
    "bread": "how is bread baked",
    "volcano": "why do volcanoes erupt",
    "chess": "chess opening moves",
    "bees": "how do bees make honey",
    "rivers": "how do rivers shape the land",
}
STS_PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A woman cuts an onion.", 4.5),
    ("A dog runs in the park.", "A dog is running on the grass.", 4.0),
    ("Two children are swimming.", "Kids swim in a pool.", 3.8),
    ("A chef cooks pasta.", "Someone is preparing noodles.", 3.2),
    ("A cat sleeps on the sofa.", "A cat is sitting on a couch.", 3.0),
    ("The train leaves at noon.", "A bus arrives in the morning.", 1.4),
    ("A man is playing a guitar.", "A woman is slicing an onion.", 0.2),
    ("The stock market fell today.", "A dog runs in the park.", 0.0),
    ("Birds fly south in winter.", "The chef cooks pasta.", 0.1),
    ("A boy kicks a football.", "A child plays soccer.", 4.2),
    ("It is raining in the city.", "The streets are wet from rain.", 3.6),
    ("A plane takes off.", "An aircraft departs from the runway.", 4.4),
    ("The sun is shining.", "A man reads a newspaper.", 0.3),
    ("A girl is painting a picture.", "A child draws with crayons.", 3.1),
    ("A man is riding a horse.", "A person rides a bicycle.", 1.8),
]


def write_toy_data(root: Path) -> Path:
    """A BEIR folder ``toy`` (6 topics x 3 documents, one query each) and an STS-B style test file."""
    beir = root / "toy"
    (beir / "qrels").mkdir(parents=True)
    with open(beir / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for topic, texts in TOPICS.items():
            fh.writelines(json.dumps({"_id": f"{topic}-{i}", "title": "", "text": text}) + "\n" for i,
                          text in enumerate(texts))
    with open(beir / "queries.jsonl", "w", encoding="utf-8") as fh:
        for topic, text in QUERIES.items():
            fh.write(json.dumps({"_id": f"q-{topic}", "text": text}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"q-{t}\t{t}-{i}\t{2 if i == 0 else 1}" for t in TOPICS for i in range(3)]
    (beir / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    sts = root / "stsbenchmark"
    sts.mkdir()
    lines = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score:.3f}\t{a}\t{b}" for i,
             (a, b, score) in enumerate(STS_PAIRS)]
    (sts / "sts-test.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture()
def toy_root(tmp_path) -> Path:
    return write_toy_data(tmp_path / "data")


TOY_SUITE = Suite("toy", (TaskSpec("toy"), TaskSpec("STSBenchmark")), "none")


@pytest.fixture(scope="module")
def minilm_adapters(tmp_path_factory) -> list[Path]:
    """Two LoRA adapters on MiniLM with different random weights (real PEFT directories)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from embedder import load_embedder

    out = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = load_embedder("minilm").model
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=["query", "value"],
                                                     init_lora_weights=False))
        folder = tmp_path_factory.mktemp(f"adapter-{seed}")
        peft_model.save_pretrained(folder)
        out.append(folder)
    return out


# ---- suites and records -------------------------------------------------------------------------
def test_named_suites_and_task_arguments():
    streamlined = resolve_suite("streamlined")
    assert streamlined is SUITES["streamlined"] and streamlined.decoder_quantization == "auto"
    assert all(t.sampling is not None for t in streamlined.tasks)
    assert all(t.sampling is None for t in SUITES["full"].tasks)
    assert [t.name for t in streamlined.tasks] == [t.name for t in SUITES["full"].tasks]
    custom = resolve_suite(["SciFact:streamlined", "SICK-R"])
    assert custom.tasks == (TaskSpec("SciFact", SUITES["streamlined"].tasks[0].sampling), TaskSpec("SICK-R"))
    assert custom.decoder_quantization == "auto"
    assert resolve_suite(["SICK-R"], quantization="nf4").decoder_quantization == "nf4"
    with pytest.raises(EvalError):
        resolve_suite(["SciFact:light"])
    nano = resolve_suite(["NanoBEIR"])  # an MTEB benchmark expands to its tasks (metadata only, no download)
    assert len(nano.tasks) > 5 and all(t.name.startswith("Nano") for t in nano.tasks)
    assert Suite.from_dict(streamlined.to_dict()) == streamlined


# ---- errors -------------------------------------------------------------------------------------
def test_missing_and_malformed_datasets_raise_dataset_error(tmp_path, toy_root):
    from eval.tasks import prepare_task

    with pytest.raises(DatasetError, match="LINQRAG_DATA"):
        prepare_task(TaskSpec("SciFact"), tmp_path / "empty")
    broken = toy_root / "toy" / "corpus.jsonl"
    broken.write_text(broken.read_text() + "{not json\n")
    with pytest.raises(DatasetError, match=r"corpus.jsonl:19"):
        prepare_task(TaskSpec("toy"), toy_root)
    sts = toy_root / "stsbenchmark" / "sts-test.csv"
    sts.write_text(sts.read_text().replace("4.800", "high"))
    with pytest.raises(DatasetError, match=r"sts-test.csv:1: score 'high' is not a number"):
        prepare_task(TaskSpec("STSBenchmark"), toy_root)
    (toy_root / "toy" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq-x\tnowhere\t1\n")
    with pytest.raises(DatasetError):
        prepare_task(TaskSpec("toy"), toy_root)


def test_cli_missing_dataset_exits_2_without_traceback(tmp_path):
    env = {**os.environ, "LINQRAG_DATA": str(tmp_path / "nothing-here"), "PYTHONPATH": str(REPO),
           "LINQRAG_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "eval", "score", "--embedder", "bm25", "--suite", "SciFact",
                           "--no-cache", "--quiet"], check=False, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: dataset for task SciFact not found" in done.stderr and "nothing-here" in done.stderr


def test_cli_malformed_and_unknown_inputs_exit_2(tmp_path, toy_root, capsys, monkeypatch):
    from eval.cli import main

    monkeypatch.setenv("LINQRAG_CACHE", str(tmp_path / "cache"))
    (toy_root / "toy" / "queries.jsonl").write_text('{"_id": "q-solar", "text": "sun"}\n[1, 2]\n')
    assert main(["score", "--embedder", "bm25", "--suite", str(toy_root / "toy"), "--no-cache", "--quiet"]) == 2
    assert "queries.jsonl:2: expected a JSON object" in capsys.readouterr().err
    assert main(["compare", str(tmp_path)]) == 2
    assert "holds no results" in capsys.readouterr().err
    assert main(["score", "--embedder", "no-such-model-here", "--suite", "STSBenchmark", "--data", str(toy_root),
                 "--no-cache", "--quiet"]) == 2
    assert "error:" in capsys.readouterr().err


# ---- the mteb encoder ---------------------------------------------------------------------------
def test_encoder_puts_instructions_on_queries_only(tiny_mistral_dir):
    from mteb.types import PromptType

    from embedder import load_embedder
    from eval.encoder import MtebEncoder
    from eval.tasks import local_metadata

    emb = load_embedder(str(tiny_mistral_dir))
    assert emb.spec.is_decoder and "{instruction}" in emb.spec.query_template
    encoder = MtebEncoder(emb, show_progress=False)
    instruction = "Given a claim, retrieve evidence"
    meta = local_metadata("Toy.full.0", RETRIEVAL, {"query": instruction}, "0", "toy", None)
    texts = ["solar panels", "bread dough", "solar panels"]
    batches = [{"text": texts[:2]}, {"text": texts[2:]}]
    queries = encoder.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default",
                             prompt_type=PromptType.query)
    documents = encoder.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default",
                               prompt_type=PromptType.document)
    np.testing.assert_allclose(queries, emb.encode_queries(texts, instruction=instruction), atol=1e-5)
    np.testing.assert_allclose(documents, emb.encode_documents(texts), atol=1e-5)
    assert not np.allclose(queries, documents, atol=1e-3)
    # STS has no documents: both sides are instructed, as E5-mistral evaluates symmetric tasks.
    sts_meta = local_metadata("ToySTS.full.0", STS, "Retrieve semantically similar text.", "0", "toy", None)
    both = encoder.encode(batches, task_metadata=sts_meta, hf_split="test", hf_subset="default", prompt_type=None)
    np.testing.assert_allclose(both, emb.encode_queries(texts, instruction="Retrieve semantically similar text."),
                               atol=1e-5)


def test_model_meta_revision_follows_the_adapter(minilm, minilm_adapters):
    from embedder import load_embedder
    from eval.encoder import model_meta

    metas = [model_meta(minilm)] + [model_meta(load_embedder("minilm", adapter=a)) for a in minilm_adapters]
    assert len({m.revision for m in metas}) == 3
    assert metas[1].name == f"linqrag/minilm+{minilm_adapters[0].name}"
    assert metas[1].adapted_from == "sentence-transformers/all-MiniLM-L6-v2" and metas[0].adapted_from is None
    assert metas[0].embed_dim == 384 and metas[0].similarity_fn_name.value == "cosine"


# ---- scoring and the cache ----------------------------------------------------------------------
def _config(toy_root, cache, adapter=None, **kwargs):
    from eval.harness import ScoreConfig

    return ScoreConfig(embedder="minilm", adapter=adapter, suite=TOY_SUITE, cache=cache, data_root=toy_root,
                       show_progress=False, write=False, sample_cache=None, **kwargs)


def test_cache_hit_never_hides_a_new_adapter(tmp_path, toy_root, minilm_adapters):
    from eval.harness import score

    cache = tmp_path / "mteb-cache"
    first_adapter, second_adapter = [tmp_path / "ckpt-a", tmp_path / "ckpt-b"]
    shutil.copytree(minilm_adapters[0], first_adapter)
    shutil.copytree(minilm_adapters[1], second_adapter)

    a = score(_config(toy_root, cache, first_adapter))
    assert not any(t.cached for t in a.tasks)
    again = score(_config(toy_root, cache, first_adapter))
    assert all(t.cached for t in again.tasks)
    assert [t.main_score for t in again.tasks] == [t.main_score for t in a.tasks]

    b = score(_config(toy_root, cache, second_adapter))
    assert not any(t.cached for t in b.tasks) and b.revision != a.revision
    # 16 pairs leave Spearman coarse; Pearson shows the different vectors.
    assert b.tasks[1].metrics["cosine_pearson"] != pytest.approx(a.tasks[1].metrics["cosine_pearson"], abs=1e-4)

    # Retrain in place: same directory, same name, new weights -> a miss, and the new weights' scores.
    shutil.copy(second_adapter / "adapter_model.safetensors", first_adapter / "adapter_model.safetensors")
    retrained = score(_config(toy_root, cache, first_adapter))
    assert not any(t.cached for t in retrained.tasks) and retrained.revision != a.revision
    assert retrained.tasks[1].metrics == pytest.approx(b.tasks[1].metrics, abs=1e-6)
    assert [t.main_score for t in retrained.tasks] == pytest.approx([t.main_score for t in b.tasks], abs=1e-6)

    base = score(_config(toy_root, cache))
    assert not any(t.cached for t in base.tasks)
    assert score(_config(toy_root, None)).tasks[0].cached is False  # cache=None never reads


def test_score_writes_results_beside_the_checkpoint_and_compare_adds_bm25(tmp_path, toy_root, minilm_adapters,
                                                                          capsys, monkeypatch):
    from eval.cli import main
    from eval.compare import compare, format_table
    from eval.records import load_runs

    monkeypatch.setenv("LINQRAG_CACHE", str(tmp_path / "linqrag-cache"))
    adapter = tmp_path / "checkpoint-10"
    shutil.copytree(minilm_adapters[0], adapter)
    base_dir = tmp_path / "runs" / "minilm"
    cache = tmp_path / "cache"
    common = ["--suite", "toy", "STSBenchmark", "--data", str(toy_root), "--cache-dir", str(cache), "--quiet"]
    assert main(["score", "--embedder", "minilm", "--adapter", str(adapter), *common]) == 0
    assert main(["score", "--embedder", "minilm", "--out", str(base_dir), *common]) == 0
    out = capsys.readouterr().out
    assert "results:" in out and "ndcg_at_10" in out

    (record,) = load_runs(adapter)
    assert record.path == adapter / "eval-toy+STSBenchmark.json"
    assert record.adapter == str(adapter) and record.label == "minilm+checkpoint-10"
    assert record.tasks[0].size == {"queries": 6, "documents": 18} and record.tasks[1].size == {"pairs": 16}

    comparison = compare([adapter, base_dir], cache=cache, show_progress=False)
    labels = [r.label for r in comparison.runs]
    assert sorted(labels) == ["bm25", "minilm", "minilm+checkpoint-10"]
    means = [r.mean("retrieval") for r in comparison.runs]
    assert means == sorted(means, reverse=True)
    table = format_table(comparison)
    assert "bm25" in table and "n/a" in table  # BM25 has no STS score
    assert format_table(comparison, markdown=True).startswith("| # | run | toy | STSBenchmark |")

    plot_path = tmp_path / "compare.png"
    assert main(["compare", str(adapter), str(base_dir), "--plot", str(plot_path), "--cache-dir", str(cache),
                 "--quiet"]) == 0
    assert plot_path.stat().st_size > 1000
    assert "bm25" in capsys.readouterr().out


def test_kendall_tau_and_ordering():
    from eval.agreement import kendall_tau, ordering

    a = {"x": 0.9, "y": 0.5, "z": 0.1, "w": None}
    assert ordering(a) == ["x", "y", "z"]
    assert kendall_tau(a, {"x": 0.8, "y": 0.4, "z": 0.3}) == pytest.approx(1.0)
    assert kendall_tau(a, {"x": 0.1, "y": 0.4, "z": 0.9}) == pytest.approx(-1.0)
    assert kendall_tau(a, {"x": 0.1}) is None


def test_retrieval_sampling_keeps_judged_and_pooled_documents(toy_root, tmp_path):
    from eval.localdata import load_retrieval
    from eval.sampling import bm25_candidates, dense_candidates, subsample_retrieval
    from eval.tasks import prepare_task

    data = load_retrieval(toy_root / "toy")
    sampling = RetrievalSampling(max_queries=2, bm25_depth=2, random_docs=3, seed=7, dense_depth=2)
    light = subsample_retrieval(data, sampling)
    assert len(light.queries) == 2 and set(light.qrels) == set(light.queries)
    kept = {d.doc_id for d in light.corpus}
    assert all(d in kept for q in light.queries for d in data.qrels[q])
    assert bm25_candidates(data, list(light.queries), 2) <= kept
    assert dense_candidates(data, list(light.queries), 2, "minilm") <= kept
    assert len(kept) <= 2 * 3 + 2 * 2 + 2 * 2 + 3
    assert subsample_retrieval(data, sampling) == light
    assert sampling.key == "q2-bm2-dn2-r3-s7" and PairSampling(10).key == "p10-s42"
    assert RetrievalSampling(dense_depth=0).key == "q50-bm10-r100-s42"

    # Built once, then read back from the sample cache as the same set.
    cache = tmp_path / "samples"
    first = prepare_task(TaskSpec("toy", sampling), toy_root, sample_cache=cache)
    (entry,) = cache.iterdir()
    assert entry.name == f"toy.{sampling.key}.{first.mteb_name.rsplit('.', 1)[1]}.json"
    second = prepare_task(TaskSpec("toy", sampling), toy_root, sample_cache=cache)
    assert second.task.records == first.task.records == light


def test_streamlined_keeps_small_decoders_unquantised_and_nf4_stays_available(tiny_mistral_dir):
    """``auto``: 4-bit only for the large presets on CUDA (NF4 distorted SmolLM2-135M's ranking)."""
    from eval.harness import ScoreConfig, load_model

    streamlined = load_model(ScoreConfig(embedder=str(tiny_mistral_dir)), SUITES["streamlined"])
    assert streamlined.quantization == "float32"
    forced = load_model(ScoreConfig(embedder=str(tiny_mistral_dir), quantization="nf4"),
                        resolve_suite("streamlined", quantization="nf4"))
    assert forced.quantization == "nf4"
    assert streamlined.revision != forced.revision, "the precision is part of the cache key"
