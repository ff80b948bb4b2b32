"""Each extension point is one registry entry: a toy retriever, pair source and answer mode are added
through their registry alone (the code docs/extending.md shows) and then appear everywhere a choice
is offered, and work. Real components: the MiniLM topics index on disk, BM25, the chunk stage's
real tokenizer; each toy is removed again after its test, so the other tests see the usual set."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TOPICS

# ---- a retriever kind --------------------------------------------------------------------------


@pytest.fixture()
def title_match():
    """The retriever of docs/extending.md: chunks ranked by the words their title shares with the query."""
    from indexing import RETRIEVERS, RetrieverKind, register_retriever
    from indexing.retrievers import RankingRetriever

    class TitleMatchRetriever(RankingRetriever):
        name = "title-match"

        def __init__(self, index) -> None:
            self.index = index

        def ranked(self, query, k, selection=None):
            words = set(query.lower().split())
            kept = None if selection is None else set(selection.ids)
            scored = [(cid, float(len(words & set(chunk.title.lower().split()))))
                      for cid, chunk in self.index.chunks.items() if kept is None or cid in kept]
            return sorted((s for s in scored if s[1] > 0), key=lambda s: (-s[1], s[0]))[:k]

    kind = register_retriever(RetrieverKind(
        "title-match", "chunks whose document title shares words with the query", "Title match",
        needs_embedder=False, build=lambda index, embedder, options: TitleMatchRetriever(index)))
    yield kind
    del RETRIEVERS[kind.name]


def test_a_registered_retriever_is_a_cli_choice_and_searches(title_match, topics_index_dir, capsys):
    from indexing.cli import main

    with pytest.raises(SystemExit) as shown:
        main(["search", "--help"])
    assert shown.value.code == 0
    help_text = capsys.readouterr().out
    assert "title-match" in help_text and title_match.help.split()[0] in help_text
    assert main(["search", "chess openings", "--retriever", "title-match", "--index-dir", str(topics_index_dir),
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and hits[0]["doc_id"] == "chess.md" and hits[0]["score"] == 2.0


def test_a_registered_retriever_is_offered_by_the_api_and_answers(title_match, topics_index_dir):
    from answers.pipeline import answer_question, needs_embedder
    from app.api_input import Limits, search_request
    from indexing import open_index

    asked = search_request({"query": "volcanoes", "retriever": "title-match"}, Limits())
    assert asked.retriever == "title-match"
    assert not needs_embedder("none", "title-match")  # no model loads for it
    index = open_index(topics_index_dir)
    answer = answer_question(index, "volcanoes", mode="none", retriever="title-match")
    assert answer.retrieval.retriever == "title-match"
    assert [c.hit.doc_id for c in answer.citations][:1] == ["volcano.html"]


def test_the_usual_retrievers_are_back_after_a_toy():
    from indexing import RETRIEVERS

    assert list(RETRIEVERS) == ["dense", "bm25", "hybrid"]


# ---- a pair source -----------------------------------------------------------------------------


@pytest.fixture()
def opening_words():
    """The pair source of docs/extending.md: a chunk's first words -> the rest of the chunk."""
    from finetune.records import SyntheticPair
    from finetune.sources import PAIR_SOURCES, PairSource, SourcePairs, register_pair_source

    def opening_pairs(given) -> SourcePairs:
        pairs = []
        for chunk in given.pool.chunks:
            words = chunk.text.split()
            if len(words) < 12:
                continue
            pairs.append(SyntheticPair(
                pair_id=f"o{len(pairs):05d}", chunk_id=chunk.chunk_id, task_id="opening",
                instruction="Given the opening words of a passage, retrieve the passage", query=" ".join(words[:6]),
                hard_negative=None, template_id="opening", split=given.pool.split[chunk.chunk_id],
                source="opening", positive_text=" ".join(words[6:])))
        return SourcePairs(pairs)

    source = register_pair_source(PairSource("opening", "a chunk's first words -> the rest", opening_pairs,
                                             default=False))
    yield source
    del PAIR_SOURCES[source.name]


def test_a_registered_pair_source_is_a_cli_choice_and_makes_pairs(opening_words, tmp_path):
    from finetune.brainstorm import run_brainstorm_stage
    from finetune.chunk import run_chunk_stage
    from finetune.cli import command_parser
    from finetune.config import DomainConfig
    from finetune.generate import run_generate_stage
    from finetune.llm import open_generator
    from finetune.rundir import RunDir

    parser = command_parser("domain")
    assert "opening (a chunk's first words -> the rest)" in " ".join(parser.format_help().split())
    assert parser.parse_args(["--sources", "opening,title"]).pair_sources == ("opening", "title")
    assert DomainConfig().pair_sources == ("llm", "title", "cloze")  # not a default: a run asks for it

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    config = DomainConfig(corpus=str(corpus), run_dir=str(tmp_path / "run"), pair_sources=("opening",))
    run = RunDir(config.run_dir)
    llm = open_generator(config, run.generation_cache)  # never loads: no chosen source needs it
    run_chunk_stage(config, run, show_progress=False)
    assert run_brainstorm_stage(config, run, llm, show_progress=False)["tasks"] == 0
    summary = run_generate_stage(config, run, run.tasks(), llm, show_progress=False)
    pairs = run.pairs()
    assert summary["by_source"] == {"opening": len(pairs)} and len(pairs) >= len(TOPICS) - 1
    assert {p.source for p in pairs} == {"opening"} and llm.generated == 0
    assert {p.split for p in pairs} <= {"train", "heldout"}


def test_the_usual_pair_sources_are_back_after_a_toy():
    from finetune.sources import PAIR_SOURCES

    assert list(PAIR_SOURCES) == ["llm", "title", "cloze"]


# ---- an answer mode ----------------------------------------------------------------------------


@pytest.fixture()
def first_passage():
    from answers import ANSWER_MODES, AnswerMode, register_answer_mode
    from answers.citations import passages_answer

    def answer(given):
        return passages_answer(given.hits[:1], "only the best passage")

    mode = register_answer_mode(AnswerMode("first", "First passage", "First lists the best passage only.", answer))
    yield mode
    del ANSWER_MODES[mode.name]


def test_a_registered_answer_mode_is_offered_by_the_api_and_answers(first_passage, topics_index_dir):
    from answers.pipeline import answer_question
    from app.api_input import Limits, search_request
    from indexing import open_index

    assert search_request({"question": "bees", "mode": "first"}, Limits(), answering=True).mode == "first"
    answer = answer_question(open_index(topics_index_dir), "honey bees in the hive", mode="first",
                             retriever="bm25")
    assert [c.hit.doc_id for c in answer.citations] == ["bees.txt"] and answer.notes == ["only the best passage"]
