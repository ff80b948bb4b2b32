"""The embedder choices the Index and Models pages offer, from the preset registry and finished runs."""

from __future__ import annotations

from dataclasses import dataclass

from app.choices import AUTO, embedder_choices
from embedder import PRESETS


@dataclass(frozen=True)
class Run:
    best_checkpoint: str
    base: str
    label: str


def test_every_preset_is_offered_small_ones_first_and_auto_only_when_asked(monkeypatch):
    monkeypatch.setattr("embedder.presets.gpu_memory_gib", lambda: 0.0)  # a CPU-only machine
    plain, with_auto = embedder_choices([]), embedder_choices([], with_auto=True)
    assert set(plain.options) == set(PRESETS) and AUTO not in plain.options
    assert with_auto.options[:3] == ["minilm", "smollm2", AUTO]
    assert with_auto.refusal(AUTO) is None and not with_auto.is_checkpoint(AUTO)
    assert plain.options[plain.first_runnable] == "minilm"
    assert "cannot run on this machine: needs a CUDA GPU" in plain.refusal("linq")
    assert plain.label("linq").endswith("(cannot run here)") and plain.label("minilm") == "minilm"


def test_a_checkpoint_runs_where_its_base_runs(monkeypatch):
    monkeypatch.setattr("embedder.presets.gpu_memory_gib", lambda: 0.0)
    runs = [Run("/runs/a/step-10", "minilm", "minilm adapted to a"),
            Run("/runs/b/step-10", "linq", "linq adapted to b")]
    choices = embedder_choices(runs)
    assert choices.options[-2:] == ["/runs/a/step-10", "/runs/b/step-10"]
    assert choices.is_checkpoint("/runs/a/step-10")
    assert choices.refusal("/runs/a/step-10") is None
    assert choices.refusal("/runs/b/step-10").startswith("linq adapted to b cannot run on this machine")
