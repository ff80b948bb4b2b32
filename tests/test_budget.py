"""``--budget MINUTES``: the planner sizes a run to fit, explicit sizes win, a run that cannot fit
says so, training stops at the deadline, and the whole command on a tiny corpus keeps to its plan
(real SmolLM2 generator, real MiniLM, real probes of this machine)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune.budget import FLOOR, PLANNED, RECIPE, Plan, Rates, choose_plan, expected_seconds
from finetune.cli import domain_main
from finetune.config import DomainConfig
from finetune.domain import plan_run
from finetune.rundir import RunDir
from finetune.train import run_train_stage

from .test_finetune_e2e import FACTS
from .test_finetune_train import make_run


def rates(**changes) -> Rates:
    """Rates of the order this 2-core machine measures (SmolLM2 ~50 prompts/min, MiniLM ~3 s/step)."""
    values = dict(prompts_per_minute=50.0, rejected_share=0.2, seconds_per_step=3.0, documents_per_second=40.0,
                  queries_per_second=170.0, load_seconds=0.5, generator_load_seconds=2.0, read_seconds=3.0,
                  seconds_per_document=0.03, documents=5000, sample_chunks=(1, 2, 3, 5, 8), probe_seconds=25.0)
    values.update(changes)
    return Rates(**values)


CONFIG = DomainConfig()


def test_plans_grow_with_the_budget_and_fit_it():
    plans = [choose_plan(b, rates(), CONFIG, {}, max_scale=4.0) for b in (5, 10, 20, 40, 80)]
    for plan in plans:
        assert not plan.overrun and plan.expected_minutes <= plan.budget_minutes
    for small, large in zip(plans, plans[1:], strict=False):
        assert all(getattr(large.sizes, k) >= getattr(small.sizes, k) for k in PLANNED)
    assert plans[-1].sizes.max_queries > plans[0].sizes.max_queries
    assert plans[2].describe().startswith("budget 20 min: ")


def test_the_cap_stops_growth_at_the_recipe():
    plan = choose_plan(600, rates(), CONFIG, {}, max_scale=1.0)
    assert plan.sizes == RECIPE and plan.expected_minutes < 600
    assert any("budget_max_scale" in r for r in plan.reasons)


def test_explicit_sizes_are_kept_and_costed():
    plan = choose_plan(20, rates(), CONFIG, {"steps": 400}, max_scale=4.0)
    assert plan.sizes.steps == 400 and "steps" not in plan.settings() and plan.explicit == ("steps",)
    free = choose_plan(20, rates(), CONFIG, {}, max_scale=4.0)
    assert plan.sizes.max_queries < free.sizes.max_queries  # the steps' minutes came out of the prompts


def test_a_budget_too_small_says_it_will_overrun():
    plan = choose_plan(2, rates(prompts_per_minute=5.0), CONFIG, {}, max_scale=1.0)
    assert plan.overrun and plan.sizes == FLOOR
    assert "will overrun" in plan.describe()


def test_a_small_corpus_is_the_whole_pool():
    plan = choose_plan(60, rates(documents=30, sample_chunks=(1,)), CONFIG, {}, max_scale=4.0)
    assert plan.sizes.max_chunks == 30 and "all of it" in plan.describe()


@settings(max_examples=60, deadline=None)
@given(budget=st.floats(1, 600), ppm=st.floats(1, 500), step=st.floats(0.05, 60), dps=st.floats(2, 2000),
       rejected=st.floats(0.1, 0.6), scale=st.floats(0.1, 8))
def test_a_plan_that_does_not_overrun_fits_its_budget(budget, ppm, step, dps, rejected, scale):
    measured = rates(prompts_per_minute=ppm, seconds_per_step=step, documents_per_second=dps,
                     queries_per_second=dps * 4, rejected_share=rejected)
    plan = choose_plan(budget, measured, CONFIG, {}, max_scale=scale)
    stages = expected_seconds(plan.sizes, measured, CONFIG)
    total = (sum(stages.values()) + measured.probe_seconds) / 60
    assert abs(total - plan.expected_minutes) < 0.02
    assert plan.overrun == (plan.expected_minutes > budget)
    if not plan.overrun:
        assert plan.expected_minutes <= budget
    assert all(getattr(plan.sizes, k) >= getattr(FLOOR, k) for k in PLANNED)
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_training_stops_at_the_deadline_with_a_checkpoint(minilm, tmp_path):
    config, run = make_run(tmp_path / "run", "minilm", steps=12, checkpoint_every=5)
    summary = run_train_stage(config, run, ["t0", "t1"], show_progress=False, stop_at=time.perf_counter())
    assert summary["stopped_by_budget_after"] == 1
    assert [p.name for p in run.checkpoint_dirs()] == ["step-000001"]


def test_a_run_begun_without_a_budget_keeps_its_sizes(tmp_path):
    run = RunDir(tmp_path / "old")
    run.mark_done("chunk", {})
    old = DomainConfig(corpus="x", run_dir=str(run.root), max_chunks=300).to_json()
    del old["budget"], old["budget_max_scale"]  # settings that did not exist then
    (run.root / "config.json").write_text(json.dumps(old))
    config, plan = plan_run({"run_dir": str(run.root)}, show=None)
    assert plan is None and config.max_chunks == 300


@pytest.mark.parametrize("value", ["abc", "-3", "nan"])
def test_a_bad_budget_is_a_clear_error(value, capsys):
    with pytest.raises(SystemExit) as stop:
        domain_main(["--corpus", "x", "--budget", value])
    assert stop.value.code == 2 and "minutes must be" in capsys.readouterr().err


def test_the_budgeted_command_keeps_to_its_plan(tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "facts"
    corpus.mkdir()
    for i, fact in enumerate(FACTS):
        (corpus / f"fact{i:02d}.txt").write_text(fact + "\n", encoding="utf-8")
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"brainstorm_calls": 2, "max_new_tokens": 64, "guard_pairs": 50,
                                 "negatives_per_query": 1, "batch_size": 8}))
    run_dir = tmp_path / "run"
    argv = ["--corpus", str(corpus), "--run-dir", str(run_dir), "--budget", "4", "--config", str(small),
            "--threads", "1", "--quiet"]
    assert domain_main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("budget 4 min: ") and "expected" in out

    plan = Plan.from_json(json.loads((run_dir / "plan.json").read_text())["plan"])
    saved = json.loads((run_dir / "config.json").read_text())
    assert {k: saved[k] for k in plan.settings()} == plan.settings()  # the run used what the plan chose
    assert plan.sizes.max_chunks == 40  # the corpus' 40 one-chunk documents are all of the pool
    stages = json.loads((run_dir / "stages.json").read_text())
    assert stages["chunk"]["chunks"] == 40
    trained = stages["train"]["stopped_by_budget_after"] or stages["train"]["steps"]
    assert trained <= plan.sizes.steps == saved["steps"]
    spent = sum(entry["seconds"] for entry in stages.values()) + plan.rates.probe_seconds
    assert spent <= 4 * 60, stages

    # a rerun reads the plan instead of measuring again, and finds every stage done
    import finetune.budget

    def refuse(config):
        raise AssertionError("a resumed run must not measure again")

    monkeypatch.setattr(finetune.budget, "measure_rates", refuse)
    assert domain_main(argv) == 0
    again = capsys.readouterr().out
    assert again.splitlines()[0] == out.splitlines()[0]
    assert Plan.from_json(json.loads((run_dir / "plan.json").read_text())["plan"]) == plan


@pytest.mark.parametrize("garbage", ["{not json", '{"plan": {"sizes": 3}}', "[]"])
def test_an_unreadable_plan_file_is_made_again(tmp_path, garbage):
    from finetune.budget import plan_for

    (tmp_path / "plan.json").write_text(garbage)
    config = DomainConfig(corpus="x", run_dir=str(tmp_path), budget=20)
    plan = plan_for(config, {}, measure=lambda _config: rates())
    assert plan.budget_minutes == 20 and not plan.overrun
    assert Plan.from_json(json.loads((tmp_path / "plan.json").read_text())["plan"]) == plan


def test_without_generated_queries_the_generator_costs_nothing():
    from finetune.budget import NO_LLM

    config = DomainConfig(pair_sources=("cloze", "title"))
    stages = expected_seconds(RECIPE, rates(prompts_per_minute=NO_LLM), config)
    assert stages["generate"] == 0 and stages["brainstorm"] == 0
    plan = choose_plan(20, rates(prompts_per_minute=NO_LLM), config, {}, max_scale=4.0)
    assert "prompts/min" not in plan.describe()


def test_an_overrunning_plan_trains_to_its_own_minutes_not_the_budget():
    from finetune.budget import train_deadline_seconds

    plan = choose_plan(2, rates(prompts_per_minute=5.0), CONFIG, {}, max_scale=1.0)
    assert plan.overrun
    after = (plan.stage_minutes["evaluate"] + plan.stage_minutes["other"]) * 60
    assert train_deadline_seconds(plan, spent_seconds=0) == pytest.approx(plan.expected_minutes * 60 - after)
    fitting = choose_plan(60, rates(), CONFIG, {}, max_scale=1.0)
    assert train_deadline_seconds(fitting, spent_seconds=600) == pytest.approx(
        3600 - 600 - (fitting.stage_minutes["evaluate"] + fitting.stage_minutes["other"]) * 60)
