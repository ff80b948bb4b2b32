"""The domain-adaptation levers: pair sources without an LLM (titles, inverse cloze), the fused
BM25 + dense teacher and its soft labels (MarginMSE), and the selection that refuses to ship a
checkpoint no better than the base. Unit tests on tiny inputs, then the whole command on a small
corpus with the free sources only (no generator), fast enough for every CI run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from eval.metrics import ndcg_at_k
from finetune.cli import domain_main as main
from finetune.config import DomainConfig
from finetune.evaluate import guard_pairs
from finetune.lexical import PoolBM25
from finetune.losses import margin_mse
from finetune.records import TrainingExample
from finetune.selection import best_checkpoint, decide, macro_mean, simultaneous_intervals
from finetune.sources import cloze_pairs, split_sentences, title_pairs
from finetune.teacher import Teacher, parse_teacher, positive_ranks
from indexing.records import Chunk

TOPICS = {
    "Honey bee communication": "Honey bees tell hive mates where flowers are with a waggle dance. The angle of the "
    "dance gives the direction of the food. Its length tells the distance to the flowers.",
    "Photosynthesis in green plants": "Plants turn carbon dioxide and water into sugar with sunlight. Chlorophyll "
    "absorbs red and blue light. Oxygen is released as a by-product of the reaction.",
    "How volcanoes erupt": "Volcanoes erupt when gas-rich magma breaks through the crust. Basalt forms from lava "
    "that cools quickly. Ash clouds can travel thousands of kilometres.",
    "Opening moves in chess": "The Sicilian Defence answers the king's pawn opening with c5. Castling moves the king "
    "two squares towards a rook. Control of the centre matters early in the game.",
    "Baking sourdough bread": "Sourdough rises thanks to wild yeast in the starter. Kneading develops the gluten "
    "network in the dough. A hot oven gives the loaf its crust.",
    "River landforms": "Rivers build deltas where they slow down at the sea. Meanders form as the river erodes its "
    "outer bank. Oxbow lakes are meanders cut off from the channel.",
    "Steam locomotives": "Steam locomotives burn coal to boil water in a boiler. The steam pushes pistons that turn "
    "the wheels. The first public steam railway opened in 1825.",
    "Renewable electricity": "Solar panels turn sunlight into electric current with silicon cells. Wind turbines "
    "convert moving air into electricity. Batteries store the surplus for the night.",
    "The human heart": "The heart pumps blood through the arteries to the body. Veins carry the blood back to the "
    "heart. Red blood cells carry oxygen bound to haemoglobin.",
    "Vaccines and antibiotics": "Vaccines train the immune system to recognise a pathogen. Antibiotics kill bacteria "
    "but do nothing against viruses. Resistance grows when antibiotics are overused.",
    "Coral reefs": "Coral reefs are built by tiny animals with limestone skeletons. Warm seas cause coral bleaching. "
    "Reefs shelter a quarter of all marine species.",
    "Compilers and interpreters": "A compiler translates source code into machine code before the program runs. An "
    "interpreter executes a program line by line. Some languages use both in a virtual machine.",
    "Searching sorted lists": "Binary search halves the search interval at every step. It needs the list to be sorted "
    "first. Its cost grows with the logarithm of the list length.",
    "Glaciers and icebergs": "Glaciers carve U-shaped valleys as they slide downhill. Icebergs break off glaciers and "
    "float. Ice is less dense than liquid water.",
    "String instruments": "The violin has four strings tuned in fifths. It is played with a bow of horsehair. The "
    "cello is its larger and deeper relative.",
    "Penguins of Antarctica": "Penguins use their wings as flippers under water. Emperor penguins breed in the "
    "Antarctic winter. The males keep the egg warm on their feet.",
}


def chunk(cid: str, text: str, title: str = "", doc: str | None = None) -> Chunk:
    return Chunk(cid, doc or cid, text, title, f"{cid}.md", 0, len(text))


# ---- pair sources --------------------------------------------------------------------------


def test_title_pairs_pair_a_real_title_with_its_body_only():
    chunks = [chunk("a", "Bees dance to show where flowers are. The dance has an angle.", "Honey bee communication"),
              chunk("b", "Some other page text that is long enough here.", "index"),  # a file name: no space
              chunk("c", "Menu text of a site, repeated on every page of it.", "Site menu home", doc="c"),
              chunk("d", "More menu text of the site, on another page again.", "Site menu home", doc="d")]
    split = {c.chunk_id: "train" for c in chunks}
    pairs = title_pairs(chunks, split)
    assert [(p.chunk_id, p.query, p.source, p.task_id) for p in pairs] == [
        ("a", "Honey bee communication", "title", "title")]
    assert pairs[0].positive_text == chunks[0].text and "Honey bee" not in pairs[0].positive_text
    # a title with runs of spaces (NFCorpus has them) is counted and looked up in one spelling
    spaced = [chunk("e", "A body that is long enough to be a passage here.", "Serum  vitamin D in\nEast Africa ")]
    assert [p.query for p in title_pairs(spaced, {"e": "train"})] == ["Serum vitamin D in East Africa"]


def test_cloze_pairs_cut_a_sentence_out_of_its_positive():
    text = TOPICS["River landforms"]
    c = chunk("r", text, "River landforms")
    pairs = cloze_pairs([c], {"r": "heldout"}, per_chunk=2, seed=3)
    assert len(pairs) == 2 and all(p.split == "heldout" and p.source == "cloze" for p in pairs)
    for p in pairs:
        assert p.query in text and p.query not in p.positive_text  # the sentence is gone from the positive
        assert p.positive_text.startswith("River landforms\n")  # the title stays, as it is indexed
    assert pairs == cloze_pairs([c], {"r": "heldout"}, per_chunk=2, seed=3)  # stable for a seed
    assert cloze_pairs([chunk("s", "One sentence only, nothing more to it here.")], {"s": "train"}, 2, 0) == []
    assert len(split_sentences(text)) == 3


def test_training_and_heldout_chunks_have_their_own_llm_allotments():
    from types import SimpleNamespace

    from finetune.queries import llm_chunks

    chunks = [chunk(f"k{i}", f"text {i}") for i in range(10)]
    split = {c.chunk_id: "heldout" if i % 3 == 0 else "train" for i, c in enumerate(chunks)}
    pool = SimpleNamespace(chunks=chunks, split=split)
    picked = llm_chunks(pool, DomainConfig(max_queries=3, max_heldout_queries=1))
    assert [c.chunk_id for c in picked] == ["k0", "k1", "k2", "k4"]  # pool order kept
    assert len(llm_chunks(pool, DomainConfig(max_queries=None, max_heldout_queries=None))) == 10
    assert [c.chunk_id for c in llm_chunks(pool, DomainConfig(max_queries=0, max_heldout_queries=2))] == ["k0", "k3"]


# ---- the lexical teacher -------------------------------------------------------------------


def test_pool_bm25_scores_as_bm25s_does_and_scores_outside_texts():
    from indexing.bm25 import BM25Index

    texts = [f"{t}\n{body}" for t, body in TOPICS.items()]
    ids = [str(i) for i in range(len(texts))]
    pool = PoolBM25(texts)
    query = "wind turbines and solar panels"
    mine = pool.scores([query])[0]
    theirs = dict(BM25Index.build(ids, texts).search(query, len(ids)))
    assert np.allclose(mine, [theirs.get(i, 0.0) for i in ids], atol=1e-4)
    assert pool.pair_scores([query], [texts[7]])[0] == pytest.approx(mine[7], abs=1e-5)
    assert pool.pair_scores([query], ["nothing in common"])[0] == 0.0


def test_teacher_names():
    assert parse_teacher("bm25+minilm") == (True, ("minilm",))
    assert parse_teacher("minilm") == (False, ("minilm",))
    assert parse_teacher("bm25") == (True, ())
    assert parse_teacher("bm25+minilm+e5-small") == (True, ("minilm", "e5-small"))
    with pytest.raises(ValueError):
        parse_teacher("minilm+minilm")
    with pytest.raises(ValueError):
        parse_teacher(" + ")


def test_fused_teacher_ranks_rescored_views_and_beats_a_keyword_miss(tmp_path, minilm):
    from finetune.rundir import RunDir

    chunks = [chunk(f"c{i}", body, title) for i, (title, body) in enumerate(TOPICS.items())]
    split = {c.chunk_id: "train" for c in chunks}
    pairs = title_pairs(chunks, split) + cloze_pairs(chunks, split, 1, 0)
    teacher = Teacher("bm25+minilm", embedders={"minilm": minilm})  # the session's model, not a second copy
    scores, extra = teacher.pool_scores(RunDir(tmp_path / "run"), chunks, pairs, show_progress=False,
                                        extra_texts=["Wind turbines convert moving air into electricity."] +
                                        [None] * (len(pairs) - 1))
    column = {c.chunk_id: i for i, c in enumerate(chunks)}
    ranks = positive_ranks(scores.fused, [column[p.chunk_id] for p in pairs])
    assert (ranks == 1).mean() >= 0.9, ranks  # titles and cut-out sentences find their own chunk
    assert scores.dense is not None and scores.fused.shape == (len(pairs), len(chunks))
    assert np.isfinite(extra[0]) and np.isneginf(extra[1:]).all()
    # the view really is re-scored: the cloze positive lacks the sentence, so it scores below the full chunk
    cloze = next(i for i, p in enumerate(pairs) if p.source == "cloze")
    full = minilm.encode_documents([chunks[column[pairs[cloze].chunk_id]].indexed_text])[0]
    q = minilm.encode_queries([pairs[cloze].query], instruction=pairs[cloze].instruction)[0]
    assert scores.dense[cloze, column[pairs[cloze].chunk_id]] < float(q @ full)


# ---- soft labels ---------------------------------------------------------------------------


def test_margin_mse_matches_a_hand_computation_and_pulls_margins_towards_the_teacher():
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    d = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    targets = torch.tensor([0, 1])
    rows, cols, margins = torch.tensor([0, 1]), torch.tensor([2, 2]), torch.tensor([0.5, 0.1])
    student = 1 - 1 / math.sqrt(2)  # cos(q, pos) - cos(q, d2) for both rows
    expected = ((student - 0.5) ** 2 + (student - 0.1) ** 2) / 2 / 0.05 ** 2
    assert margin_mse(q, d, targets, rows, cols, margins, 0.05).item() == pytest.approx(expected, rel=1e-5)
    empty = torch.zeros(0, dtype=torch.long)
    assert margin_mse(q, d, targets, empty, empty, torch.zeros(0), 0.05).item() == 0.0


def test_a_batch_never_takes_another_view_of_a_rows_chunk_as_its_negative(minilm):
    from finetune.train import build_batch

    texts = {"a": "Title A\nfirst sentence. second sentence.", "b": "Title B\nother text here."}
    examples = [TrainingExample("p1", "cloze", "i", "first sentence.", "a", ("b",),
                                positive_text="Title A\nsecond sentence.", teacher_margins=(0.3,)),
                TrainingExample("p2", "cloze", "i", "other", "b", ("a",), teacher_margins=(0.2,))]
    batch = build_batch(minilm, examples, texts)
    # columns: view of a (p1's positive), b, a's full text (p2's negative)
    assert batch.targets.tolist() == [0, 1]
    assert batch.exclude[0].tolist() == [False, False, True]  # a's full text is not p1's negative
    assert batch.exclude[1].tolist() == [False, False, False]
    assert batch.margin_rows.tolist() == [0, 1] and batch.margin_columns.tolist() == [1, 2]
    assert batch.margin_values.tolist() == pytest.approx([0.3, 0.2])


# ---- selection -----------------------------------------------------------------------------


def test_selection_ships_a_checkpoint_only_beyond_noise_and_within_the_guard():
    rng = np.random.default_rng(0)
    sources = ["llm"] * 60 + ["cloze"] * 60
    noise = rng.normal(0, 0.2, (3, 120))
    gains, lows, highs = simultaneous_intervals(noise, sources, resamples=2000)
    i = best_checkpoint(["step-20", "step-40", "step-60"], gains)
    assert decide("step-40", gains[i], (lows[i], highs[i]), None, 0.01, 3).recommended == "base"
    clear = 0.15 + rng.normal(0, 0.05, (1, 120))
    gains, lows, highs = simultaneous_intervals(clear, sources, resamples=2000)
    verdict = decide("step-40", gains[0], (lows[0], highs[0]), 0.002, 0.01)
    assert verdict.recommended == "step-40" and verdict.interval[0] > 0
    refused = decide("step-40", gains[0], (lows[0], highs[0]), 0.05, 0.01)
    assert refused.recommended == "base" and "guard" in refused.reason
    assert decide("step-40", float("nan"), (float("nan"), float("nan")), None, 0.01).recommended == "base"


def test_the_best_of_many_checkpoints_pays_for_being_chosen():
    """Pure-noise checkpoints: the best of twenty looks better than zero on the same queries; the
    simultaneous bound does not ship it, where the bound of one checkpoint alone often would."""
    sources = ["llm"] * 80
    shipped_alone = shipped_jointly = 0
    for seed in range(40):
        noise = np.random.default_rng(seed).normal(0, 0.2, (20, 80))
        gains, lows, _ = simultaneous_intervals(noise, sources, resamples=500, seed=seed)
        i = best_checkpoint([f"s{j}" for j in range(20)], gains)
        _, alone, _ = simultaneous_intervals(noise[i:i + 1], sources, resamples=500, seed=seed)
        shipped_alone += alone[0] > 0
        shipped_jointly += lows[i] > 0
    assert shipped_alone >= 10 and shipped_jointly <= 3


def test_bootstrap_is_stratified_and_resamples_whole_chunks():
    diff = np.array([1.0] * 10 + [0.0] * 1000)
    gains, low, high = simultaneous_intervals(diff, ["small"] * 10 + ["big"] * 1000, resamples=500)
    assert gains[0] == pytest.approx(0.5) and low[0] == pytest.approx(0.5) and high[0] == pytest.approx(0.5)
    # ten queries cut from each of 8 chunks: the chunk, not the query, is the unit of evidence
    rng = np.random.default_rng(1)
    by_chunk = np.repeat(rng.normal(0.05, 0.2, 8), 10)
    clusters = [f"c{i // 10}" for i in range(80)]
    _, per_query_low, _ = simultaneous_intervals(by_chunk, ["cloze"] * 80, None, 2000)
    _, per_chunk_low, _ = simultaneous_intervals(by_chunk, ["cloze"] * 80, clusters, 2000)
    assert per_chunk_low[0] < per_query_low[0]
    assert macro_mean(np.array([1.0, 1.0, 0.0]), ["a"] * 3, ["x", "x", "y"]) == pytest.approx(0.5)
    # held-out queries have one relevant chunk: eval.metrics' nDCG@10 at rank r is 1/log2(r+1)
    ranked = [f"c{i}" for i in range(1, 12)]
    assert [ndcg_at_k(ranked, {f"c{r}": 1}, 10) for r in (1, 3, 11)] == pytest.approx([1.0, 0.5, 0.0])


def test_guard_skips_with_a_reason_without_data(monkeypatch, tmp_path):
    monkeypatch.setenv("LINQRAG_DATA", str(tmp_path))
    sts, note = guard_pairs(100, 0)
    assert sts is None and "not found" in note
    assert guard_pairs(0, 0)[0] is None


def test_config_validates_sources_and_picks_the_temperature_by_base():
    with pytest.raises(ValueError, match="pair_sources"):
        DomainConfig(pair_sources=("llm", "tweets"))
    assert DomainConfig().resolved_temperature("mean") == 0.05
    assert DomainConfig().resolved_temperature("last") == 0.02
    assert DomainConfig(temperature_loss=0.1).resolved_temperature("last") == 0.1


# ---- the whole command, free sources only ----------------------------------------------------


@pytest.fixture(scope="module")
def topics_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topics")
    for i, (title, body) in enumerate(TOPICS.items()):
        (folder / f"topic{i:02d}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    return folder


def test_free_sources_train_and_the_run_decides(topics_corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = tmp_path / "free.json"
    config.write_text(json.dumps({"pair_sources": ["title", "cloze"], "checkpoint_every": 3, "mixed_steps": 1,
                                  "negatives_per_query": 1, "heldout_fraction": 0.3, "guard_pairs": 60}))
    argv = ["--corpus", str(topics_corpus), "--run-dir", str(run_dir), "--steps", "3", "--batch-size", "4",
            "--config", str(config), "--threads", "1", "--quiet"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    stages = json.loads((run_dir / "stages.json").read_text())
    assert stages["brainstorm"]["tasks"] == 0  # no generator was loaded
    assert stages["generate"]["by_source"]["title"] == len(TOPICS) and stages["generate"]["by_source"]["cloze"] > 20
    assert stages["mine"]["teacher"] == "bm25+minilm" and stages["mine"]["soft_label_factor"] > 0
    assert set(stages["mine"]["by_source"]) == {"title", "cloze"}
    assert all("seconds" in entry for entry in stages.values())
    examples = [json.loads(x) for x in (run_dir / "train_examples.jsonl").read_text().splitlines()]
    assert all(len(e["teacher_margins"]) == len(e["negative_ids"]) for e in examples)
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert set(evaluation["heldout_by_source"]) <= {"title", "cloze"} and evaluation["heldout_queries"] > 0
    assert "reason" in evaluation["verdict"] and evaluation["verdict"]["reason"] in line
    if evaluation["recommended"] is None:
        assert "keep the base" in line
    report = (run_dir / "report.md").read_text()
    assert "Verdict:" in report


def test_a_saved_run_with_list_settings_resumes_and_a_changed_source_is_refused(tmp_path):
    from finetune.domain import resolve_config
    from finetune.rundir import RunDirError
    from linqrag.files import write_json_atomic

    config = resolve_config({"corpus": "docs", "run_dir": str(tmp_path)})
    write_json_atomic(tmp_path / "config.json", config.to_json())  # pair_sources is read back as a list
    write_json_atomic(tmp_path / "stages.json", {"chunk": {}, "brainstorm": {}, "generate": {}})
    assert resolve_config({"corpus": "docs", "run_dir": str(tmp_path)}).pair_sources == ("llm", "title", "cloze")
    with pytest.raises(RunDirError, match="--from-stage generate"):
        resolve_config({"corpus": "docs", "run_dir": str(tmp_path), "pair_sources": ("title",)})


def test_a_second_dense_model_is_a_third_part_of_equal_weight(tmp_path, minilm):
    from finetune.rundir import RunDir
    from finetune.teacher import zscore

    chunks = [chunk(f"c{i}", body, title) for i, (title, body) in enumerate(TOPICS.items())]
    split = {c.chunk_id: "train" for c in chunks}
    pairs = title_pairs(chunks, split) + cloze_pairs(chunks, split, 1, 0)
    run = RunDir(tmp_path / "run")
    three = Teacher("bm25+minilm+e5-small", embedders={"minilm": minilm})
    two = Teacher("bm25+minilm", embedders={"minilm": minilm})
    e5 = Teacher("e5-small", embedders={"e5-small": three.dense[1].embedder})
    fused3 = three.pool_scores(run, chunks, pairs, show_progress=False)[0]
    fused2 = two.pool_scores(run, chunks, pairs, show_progress=False)[0]
    alone = e5.pool_scores(run, chunks, pairs, show_progress=False)[0]
    assert np.allclose(3 * fused3.fused, 2 * fused2.fused + zscore(alone.dense)[0], atol=1e-4)
    assert np.allclose(fused3.dense, (fused2.dense + alone.dense) / 2, atol=1e-5)  # calibrates the margins
    assert (run.path("teacher") / "chunks-e5-small.npy").exists()  # each dense part caches its own vectors
    column = {c.chunk_id: i for i, c in enumerate(chunks)}
    assert (positive_ranks(fused3.fused, [column[p.chunk_id] for p in pairs]) == 1).mean() >= 0.9
