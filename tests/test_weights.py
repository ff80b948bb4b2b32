"""The GGUF -> Hugging Face conversion: once per file, safe when two runs start side by side."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from linqrag.weights import _remove_dead_partials, publish_directory


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partials_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "model"
    dead = tmp_path / f"model.partial-{_dead_pid()}-1"
    old_style = tmp_path / "model.partial"
    live = tmp_path / f"model.partial-{__import__('os').getpid()}-1"
    other = tmp_path / "other.partial-1-1"
    for folder in (dead, old_style, live, other):
        folder.mkdir()
    _remove_dead_partials(target)
    assert not dead.exists() and not old_style.exists()
    assert live.exists() and other.exists()


def _finished_copy(folder, text):
    folder.mkdir()
    (folder / "config.json").write_text(text)
    return folder


def test_a_second_finished_copy_keeps_the_first(tmp_path):
    """Two runs started side by side converted into one directory and one failed (2026-12-07)."""
    target = tmp_path / "model"
    assert publish_directory(_finished_copy(tmp_path / "model.partial-1-1", "first"), target) == target
    assert publish_directory(_finished_copy(tmp_path / "model.partial-2-1", "second"), target) == target
    assert (target / "config.json").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_incomplete_target_is_replaced(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "model.safetensors").write_text("half")
    publish_directory(_finished_copy(tmp_path / "model.partial-1-1", "whole"), target)
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]


def test_copies_published_at_once_leave_one_directory(tmp_path):
    target = tmp_path / "model"
    copies = [_finished_copy(tmp_path / f"model.partial-{i}-1", str(i)) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda copy: publish_directory(copy, target), copies)) == {target}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (target / "config.json").read_text() in {str(i) for i in range(8)}
