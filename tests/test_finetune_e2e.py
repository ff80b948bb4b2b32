"""The whole ``python -m finetune.domain`` command on a 40-chunk corpus with the offline defaults
(SmolLM2 generator, MiniLM teacher and base) and a handful of steps: the loss falls, the best
checkpoint loads in ``embedder/``, the report exists, and a second run resumes without paying
for generation again. Plus the clear errors a user sees for bad input."""

from __future__ import annotations

import json

import pytest

from finetune.cli import domain_main as main

FACTS = [
    "Honey bees communicate the direction of flowers to their hive mates with a waggle dance.",
    "A queen bee can lay up to two thousand eggs a day during the summer months.",
    "Photosynthesis in plants turns carbon dioxide and water into sugar using sunlight.",
    "Chlorophyll absorbs red and blue light and reflects green light, which is why leaves look green.",
    "Volcanoes erupt when pressure from gas-rich magma breaks through the crust.",
    "Basalt is a dark volcanic rock formed from lava that cools quickly at the surface.",
    "The Sicilian Defence is a chess opening in which Black answers 1.e4 with c5.",
    "Castling moves the king two squares towards a rook and places the rook beside it.",
    "Sourdough bread rises thanks to wild yeast and lactic acid bacteria in the starter.",
    "Kneading dough develops gluten, the protein network that traps gas and gives bread structure.",
    "Rivers build deltas where they slow down at the sea and drop their sediment.",
    "Meanders form as a river erodes its outer bank and deposits sand on the inner bank.",
    "Steam locomotives burn coal to boil water, and the steam pushes pistons that turn the wheels.",
    "The first public railway to use steam locomotives opened in England in 1825.",
    "Solar panels use photovoltaic cells made of silicon to turn sunlight into electric current.",
    "Wind turbines convert the kinetic energy of moving air into electricity with a generator.",
    "The heart pumps blood through the arteries, and veins carry it back to the heart.",
    "Red blood cells carry oxygen bound to haemoglobin from the lungs to the tissues.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease.",
    "Antibiotics kill bacteria or stop their growth but have no effect on viruses.",
    "The Great Wall of China was built over many centuries to protect against northern invaders.",
    "The Roman aqueducts carried water to cities over long distances using a gentle slope.",
    "Jupiter is the largest planet in the solar system and has a storm called the Great Red Spot.",
    "Saturn's rings are made mostly of ice particles with some rock and dust.",
    "Coral reefs are built by colonies of tiny animals that secrete calcium carbonate skeletons.",
    "Rising sea temperatures cause coral bleaching, when corals expel the algae living in them.",
    "A compiler translates source code into machine code before the program runs.",
    "An interpreter executes a program line by line without producing a separate machine code file.",
    "Binary search finds an item in a sorted list by repeatedly halving the search interval.",
    "A hash table stores key value pairs and finds a key in constant time on average.",
    "Tea plants are grown in hilly regions, and their leaves are withered, rolled and dried.",
    "Coffee beans are the roasted seeds of the coffee cherry, which grows on tropical shrubs.",
    "Glaciers carve U-shaped valleys as they slowly slide downhill under their own weight.",
    "Icebergs are pieces of glaciers that break off and float because ice is less dense than water.",
    "The violin has four strings tuned in fifths and is played with a bow made of horsehair.",
    "A piano produces sound when hammers strike strings inside the wooden case.",
    "Penguins cannot fly but use their wings as flippers to swim fast under water.",
    "Emperor penguins breed during the Antarctic winter and the males keep the egg warm on their feet.",
    "Earthquakes happen when stress along a fault is released suddenly and the ground shakes.",
    "The Richter scale measures the magnitude of earthquakes on a logarithmic scale.",
]


@pytest.fixture(scope="module")
def facts_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("facts")
    for i, fact in enumerate(FACTS):
        (folder / f"fact{i:02d}.txt").write_text(fact + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def finished_run(facts_corpus, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "facts"
    config = run_dir.parent / "small.json"
    config.write_text(json.dumps({"brainstorm_calls": 2, "max_new_tokens": 64, "checkpoint_every": 3,
                                  "mixed_steps": 2, "learning_rate": 5e-4, "negatives_per_query": 1}))
    # one torch thread: on a CPU shared with other jobs, two OpenMP threads spin-wait on each other
    # and SmolLM2 generation slows down by an order of magnitude (measured; see bench/RESULTS.md)
    argv = ["--corpus", str(facts_corpus), "--run-dir", str(run_dir), "--max-chunks", "40", "--steps", "6",
            "--batch-size", "8", "--config", str(config), "--threads", "1", "--quiet"]
    return run_dir, argv


def test_whole_command_on_40_chunks(finished_run, capsys):
    run_dir, argv = finished_run
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("done: best checkpoint ") and "report" in summary

    stages = json.loads((run_dir / "stages.json").read_text())
    assert list(stages) == ["chunk", "brainstorm", "generate", "filter", "mine", "train", "evaluate", "report"]
    assert stages["chunk"]["chunks"] == 40 and stages["chunk"]["heldout_chunks"] > 0
    assert stages["generate"]["pairs"] >= 20, stages["generate"]
    assert set(stages["filter"]["removed_by_rule"]) == {"length", "exact_duplicate", "near_duplicate",
                                                        "copies_chunk", "teacher_disagrees"}

    # the loss falls on the fixed probe batch
    rows = [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]
    probes = [r["probe_loss"] for r in rows if r.get("probe_loss") is not None]
    assert probes[-1] < probes[0], probes

    # the report and its plots
    report = json.loads((run_dir / "report.json").read_text())
    for name in ("report.md", "loss.png", "metrics.png", "evaluation.json"):
        assert (run_dir / name).stat().st_size > 0
    assert "Held-out queries" in (run_dir / "report.md").read_text()
    best = report["best_checkpoint"]
    assert best and best in summary

    # the best checkpoint loads in embedder/ with MiniLM's mean pooling, by its own record of the base
    from embedder import load_embedder

    adapted = load_embedder(None, adapter=best)
    assert adapted.spec.name == "minilm" and adapted.spec.pooling == "mean"
    vectors = adapted.encode_queries(["how do bees tell each other where flowers are?"])
    assert vectors.shape == (1, 384)

    # and the app finds it
    from finetune.catalog import find_runs

    [found] = find_runs(run_dir.parent)
    assert found.best_checkpoint == best and found.base == "minilm" and found.gain == report["gain"]


def test_rerun_resumes_everything_without_generating(finished_run, capsys, monkeypatch):
    _run_dir, argv = finished_run
    import linqrag.generation

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run must not load the generator")

    monkeypatch.setattr(linqrag.generation, "load_generator", refuse)
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("budget 60 min: ")  # the saved plan, not a new measurement
    assert out[-1].startswith("done: best checkpoint")


def test_clear_errors_for_bad_input(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--corpus", str(empty), "--run-dir", str(tmp_path / "r1"), "--quiet"]) == 2
    assert "no readable documents" in capsys.readouterr().err

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, fact in enumerate(FACTS[:8]):
        (docs / f"{i}.txt").write_text(fact)
    # with a budget, measuring the machine meets the missing model before any stage runs
    code = main(["--corpus", str(docs), "--run-dir", str(tmp_path / "r2"), "--generator-model", "/no/such/model",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "--budget 0" in err
    assert not (tmp_path / "r2").exists()
    # without one, the chunk stage runs first and survives the failure
    code = main(["--corpus", str(docs), "--run-dir", str(tmp_path / "r2"), "--generator-model", "/no/such/model",
                 "--quiet", "--budget", "0"])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert json.loads((tmp_path / "r2" / "stages.json").read_text())["chunk"]["chunks"] == 8

    assert main(["--run-dir", str(tmp_path / "nothing-here"), "--quiet"]) == 2
    assert "no corpus" in capsys.readouterr().err
