"""The README and the guide in docs/ hold up as a newcomer reads them: every relative link resolves inside
the repository, and every command shown in a shell block parses (its ``--help`` succeeds)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "RESULTS.md"]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
#: ``python -m MODULE [subcommand]`` at the start of a shell line (a subcommand is a bare lower-case word)
_COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*python3? -m ([\w.]+)(?:\s+([a-z][a-z-]*))?(?=\s|$)")


def _links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))  # a link in a code block is no link
    return [t for t in _LINK.findall(text) if not re.match(r"^(https?:|mailto:|#)", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page):
    bad = []
    for target in _links(page):
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        if not resolved.exists():
            bad.append(f"{target}: missing")
        elif ROOT not in resolved.parents:
            bad.append(f"{target}: outside the repository")
    assert not bad, bad


def shown_commands() -> list[tuple[str, ...]]:
    """Each distinct ``python -m MODULE [subcommand]`` in a shell block of the README or docs/."""
    found: dict[tuple[str, ...], None] = {}
    for page in PAGES[:-1]:
        for language, block in _FENCE.findall(page.read_text(encoding="utf-8")):
            if language not in ("bash", "sh", "shell", "console", ""):
                continue
            for line in block.splitlines():
                match = _COMMAND.match(line.strip().removeprefix("$ "))
                if match and not match.group(1).startswith(("llama_cpp", "pytest", "pip", "torch")):
                    found[tuple(p for p in match.groups() if p)] = None
    return list(found)


def test_the_docs_show_commands():
    assert len(shown_commands()) >= 8, shown_commands()


@pytest.mark.parametrize("command", shown_commands(), ids=" ".join)
def test_every_command_shown_parses(command):
    run = subprocess.run([sys.executable, "-m", *command, "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, f"python -m {' '.join(command)} --help: {run.stderr[-800:]}"
    assert "usage:" in run.stdout.lower()
