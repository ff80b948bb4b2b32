"""The README and the guide in docs/ hold up as a newcomer reads them: every relative link resolves inside
the repository, every command shown in a shell block parses (its ``--help`` succeeds, and each ``linqrag``
command's flags are its own), and the README's table of commands is ``linqrag --help``'s list."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from app.commands import SUBCOMMANDS, main, parser_of

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
    assert len(shown_commands()) + len(shown_linqrag_commands()) >= 12, (shown_commands(), shown_linqrag_commands())


@pytest.mark.parametrize("command", shown_commands(), ids=" ".join)
def test_every_command_shown_parses(command):
    run = subprocess.run([sys.executable, "-m", *command, "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, f"python -m {' '.join(command)} --help: {run.stderr[-800:]}"
    assert "usage:" in run.stdout.lower()


#: ``linqrag ...`` at the start of a shell line (after any ``VAR=value``), or as a whole inline code span
_LINQRAG_LINE = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(linqrag(?:\s.*)?)$")
_LINQRAG_SPAN = re.compile(r"`(linqrag [a-z][^`]*)`")
_SHELL_OPERATORS = ("|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1")


def linqrag_words(command: str) -> list[str]:
    """The words of one shown ``linqrag`` command, up to a comment or a shell operator."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # an unclosed quote: the words before it are still the command's
        words = command.split("#", 1)[0].split()
    end = next((i for i, w in enumerate(words) if w in _SHELL_OPERATORS or w.startswith((">", "<"))), len(words))
    return words[:end]


def shown_linqrag_commands() -> list[tuple[str, tuple[str, ...]]]:
    """Each ``linqrag ...`` command in a shell block or an inline code span of the README or docs/:
    (where it is shown, its words)."""
    found: dict[tuple[str, tuple[str, ...]], None] = {}
    for page in PAGES[:-1]:
        text = page.read_text(encoding="utf-8")
        for language, block in _FENCE.findall(text):
            if language in ("bash", "sh", "shell", "console", ""):
                for line in block.replace("\\\n", " ").splitlines():
                    match = _LINQRAG_LINE.match(line.strip().removeprefix("$ "))
                    if match:
                        found[(page.name, tuple(linqrag_words(match.group(1))))] = None
        for span in _LINQRAG_SPAN.findall(_FENCE.sub("", text)):
            if not span.split()[1].isupper():  # `linqrag SUBCOMMAND` names no subcommand
                found[(page.name, tuple(linqrag_words(span)))] = None
    return list(found)


@pytest.mark.parametrize("shown", shown_linqrag_commands(), ids=lambda s: f"{s[0]}: {' '.join(s[1])}")
def test_every_linqrag_command_shown_parses_with_its_flags(shown, capsys):
    page, words = shown
    assert words[0] == "linqrag", words
    if len(words) == 1 or words[1].startswith("-"):
        with pytest.raises(SystemExit) as stop:
            main([*words[1:2], "--help"] if len(words) > 1 else ["--help"])
        assert stop.value.code == 0
        return
    name = words[1]
    assert name in SUBCOMMANDS, f"{page}: linqrag has no subcommand {name!r}"
    parser = parser_of(name)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--help"])
    assert stop.value.code == 0 and "usage: linqrag " in capsys.readouterr().out
    flags = [w.strip("[]").split("=", 1)[0] for w in words[2:] if re.match(r"-+[a-zA-Z]", w.strip("[]"))]
    unknown = [f for f in flags if f not in parser._option_string_actions]
    assert not unknown, f"{page}: linqrag {name} has no {unknown}"


def listed_in_help(capsys) -> dict[str, str]:
    """``{subcommand: its line}`` as ``linqrag --help`` prints them."""
    with pytest.raises(SystemExit):
        main(["--help"])
    return dict(re.findall(r"^  ([a-z][\w-]*) +(\S.*)$", capsys.readouterr().out, re.M))


def readme_command_table() -> dict[str, str]:
    """``{subcommand: the command shown}`` from the rows of the README's table of commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(linqrag [^`]*)` \|", section, re.M)
    return {row.split()[1]: row for row in rows}


def test_the_readme_command_table_is_linqrag_help(capsys):
    listed = listed_in_help(capsys)
    table = readme_command_table()
    assert len(listed) == len(SUBCOMMANDS) >= 10
    assert sorted(table) == sorted(listed), (sorted(set(listed) - set(table)), sorted(set(table) - set(listed)))
    assert list(table) == list(listed), "the table lists them in linqrag --help's order"
    shown = {(page, words) for page, words in shown_linqrag_commands() if page == "README.md"}
    assert {words[1] for _, words in shown if len(words) > 1} >= set(table), "each table row is also checked"
